//! Reads every column of a Parquet dataset (local path, folder, glob or object-store
//! URL) the way a scorch source does — listing, then Polars' streaming scan in
//! chunks — and prints rows, bytes, seconds and MB/s. Used by `make bench-s3`.
//!
//!   cargo run --example read_bench -- PATH_OR_URL [KEY=VALUE ...]
//!   cargo run --example read_bench -- --put LOCAL_DIR URL [KEY=VALUE ...]
//!
//! KEY=VALUE pairs are object_store options (aws_endpoint=…, aws_allow_http=true, …).
//! `--put` uploads a local folder tree to URL first (as a user's pipeline would), so
//! the server stores the objects through its own PUT path.

use std::time::Instant;

fn put_tree(
    local: &std::path::Path,
    url: &str,
    storage: &scorch::storage::Settings,
) -> scorch::Result<()> {
    use object_store::ObjectStoreExt;
    let (store, prefix) = scorch::storage::open(url, storage)?;
    let rt = scorch::storage::runtime()?;
    let mut stack = vec![(local.to_path_buf(), prefix)];
    while let Some((dir, p)) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(|e| scorch::Error::io("list", &dir, e))? {
            let e = e.map_err(|e| scorch::Error::io("list", &dir, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            let child = p.clone().join(name.as_str());
            if e.path().is_dir() {
                stack.push((e.path(), child));
            } else {
                let bytes = std::fs::read(e.path())
                    .map_err(|err| scorch::Error::io("read", e.path(), err))?;
                rt.block_on(store.store.put(&child, bytes.into()))
                    .map_err(|err| scorch::storage::runtime_error("upload", err))?;
            }
        }
    }
    Ok(())
}

// The allocator the scorch binary uses (src/main.rs).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> scorch::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let put = if args.peek().map(String::as_str) == Some("--put") {
        args.next();
        Some(args.next().expect("--put LOCAL_DIR"))
    } else {
        None
    };
    let target = args
        .next()
        .expect("usage: read_bench [--put LOCAL_DIR] PATH_OR_URL [KEY=VALUE ...]");
    let options: Vec<(String, String)> = args
        .map(|a| {
            let (k, v) = a.split_once('=').expect("options are KEY=VALUE");
            (k.to_string(), v.to_string())
        })
        .collect();
    let storage = scorch::storage::Settings {
        options,
        ..Default::default()
    };
    if let Some(local) = put {
        let t = Instant::now();
        put_tree(std::path::Path::new(&local), &target, &storage)?;
        println!(
            "uploaded {local} to {target} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let root = std::path::Path::new(".");
    let ctx = scorch::source::Context {
        root,
        profiles: root,
        storage: &storage,
    };
    let red = scorch::spec::template::Redactor::default();
    let t = Instant::now();
    let resolved = scorch::source::open_parquet(&target, true, &ctx, &red)?;
    let bytes: u64 = resolved.inputs.iter().map(|i| i.bytes).sum();
    let columns: Vec<String> = resolved
        .schema()?
        .iter_names()
        .map(|n| n.to_string())
        .collect();
    let mut rows = 0usize;
    for chunk in resolved.batches(&columns, 256 * 1024)? {
        rows += chunk?.height();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{target}: {} files, {:.1} MB, {rows} rows, {} columns in {secs:.2} s = {:.0} MB/s",
        resolved.inputs.len(),
        bytes as f64 / 1e6,
        columns.len(),
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}
