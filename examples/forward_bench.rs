//! Benchmark ceiling: scorch's inference engine alone on an in-memory matrix.
//! Loads a bundle's model (TorchScript or an AOTInductor package) and scores ROWS rows of random features in batches, as a
//! run does, and prints one JSON line with the seconds. Used by `make bench`.
//!
//!   cargo run --example forward_bench -- BUNDLE_DIR ROWS [THREADS] [BATCH]

use std::time::Instant;

// The allocator the scorch binary uses (src/main.rs).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> scorch::Result<()> {
    scorch::infer::init_threading();
    let mut args = std::env::args().skip(1);
    let usage = "usage: forward_bench BUNDLE_DIR ROWS [THREADS] [BATCH]";
    let bundle = args.next().expect(usage);
    let rows: usize = args.next().expect(usage).parse().expect("ROWS is a number");
    let threads: usize = args
        .next()
        .map_or_else(scorch::infer::available_cores, |t| {
            t.parse().expect("THREADS is a number")
        });
    let batch: usize = args
        .next()
        .map_or(4096, |b| b.parse().expect("BATCH is a number"));
    let b = scorch::model::Bundle::open(std::path::Path::new(&bundle))?;
    let k = b.spec.features.len();
    let engine = scorch::infer::Engine::load(
        &b.model_path,
        b.spec.model_format(),
        scorch::spec::inference::DeviceChoice::Cpu,
        scorch::spec::inference::Precision::F32,
        threads,
        k,
        &b.spec.outputs,
    )?;
    // A cheap deterministic pseudo-random fill (xorshift), in chunks like a run's.
    let chunk = (128 * 1024usize).div_ceil(batch) * batch;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut secs = 0.0;
    let mut done = 0;
    while done < rows {
        let n = chunk.min(rows - done);
        let x: Vec<f32> = (0..n * k)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
            })
            .collect();
        let t = Instant::now();
        std::hint::black_box(engine.score(&x, batch)?);
        secs += t.elapsed().as_secs_f64();
        done += n;
    }
    println!(
        "{{\"what\": \"forward\", \"format\": \"{}\", \"rows\": {rows}, \"seconds\": {secs:.3}}}",
        b.spec.model_format().name()
    );
    Ok(())
}
