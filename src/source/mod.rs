//! Sources: where a job's rows come from. Parquet files by path, folder or glob,
//! and SQL files run by Polars SQL over named Parquet tables (the embedded default
//! warehouse), and queries on a PostgreSQL-protocol warehouse ([`postgres`]).
//! Nothing is read until the run asks for the columns it needs, so only those are read.

pub mod adbc;
pub mod bind;
pub mod delta;
pub mod files;
pub mod labels;
pub mod partition;
pub mod postgres;

use std::path::{Path, PathBuf};

use polars::io::cloud::CloudOptions;
use polars::prelude::*;
use polars::sql::SQLContext;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::spec::job::{AdbcSource, ParquetSource, PostgresSource, SourceSpec, SqlSource};
use crate::spec::template::{Redactor, TemplateVars, render};

/// One input file, as recorded in the run manifest.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct InputFile {
    /// Path (secrets redacted).
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Last modification time, RFC 3339 UTC, when the file system gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    /// Hex SHA-256 of the file (recorded for queries, whose text is the input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Object-store entity tag (objects on object stores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// What a resolved source reads from.
pub enum Frame {
    /// A lazy Polars plan (Polars SQL).
    Lazy(Box<LazyFrame>),
    /// Parquet files, read row group by row group ([`files`]); the lazy scan over
    /// them serves whole reads.
    Files(Box<files::ParquetFiles>, Box<LazyFrame>),
    /// A query on a PostgreSQL-protocol warehouse.
    Postgres(Box<postgres::PgQuery>),
    /// A query on a warehouse through an ADBC driver.
    Adbc(Box<adbc::AdbcQuery>),
}

/// A source resolved for one run.
pub struct Resolved {
    pub frame: Frame,
    pub inputs: Vec<InputFile>,
    /// The Parquet files among `inputs`, in their order, with their store: one set
    /// per path or SQL table (a PostgreSQL query has none). Their footers give the
    /// inputs' row counts ([`Resolved::input_rows`]).
    pub parquet: Vec<(Vec<files::FileRef>, Option<crate::storage::Store>)>,
    /// Human description (redacted), for logs and the manifest.
    pub description: String,
    /// The table version read (a Delta source), for the manifest's lineage.
    pub version: Option<u64>,
}

impl Resolved {
    /// The columns and types the source yields, without reading rows.
    pub fn schema(&self) -> Result<Schema> {
        match &self.frame {
            Frame::Lazy(lf) => Ok(lf.as_ref().clone().collect_schema()?.as_ref().clone()),
            Frame::Files(f, _) => Ok(f.schema.clone()),
            Frame::Postgres(q) => q.schema(),
            Frame::Adbc(q) => q.schema(),
        }
    }

    /// The number of rows the source will yield, when it is known without reading
    /// (local Parquet files: from their footers).
    pub fn total_rows(&self) -> Option<u64> {
        match &self.frame {
            Frame::Files(f, _) => f.total_rows(),
            _ => None,
        }
    }

    /// The row count of each of `inputs`, from the Parquet footers (`None` for an
    /// input that is not a Parquet file: a query). Reads footers only, no rows.
    pub fn input_rows(&self) -> Result<Vec<Option<u64>>> {
        let mut rows = Vec::with_capacity(self.inputs.len());
        for (files, store) in &self.parquet {
            rows.extend(
                files::footer_rows(files, store.as_ref())?
                    .into_iter()
                    .map(Some),
            );
        }
        rows.resize(self.inputs.len(), None);
        Ok(rows)
    }

    /// Reads `columns` as a sequence of frames of about `chunk_rows` rows, in input
    /// order. At most a couple of chunks are in memory at once: the iterator pulls
    /// the next one while the caller works on the last.
    pub fn batches(&self, columns: &[String], chunk_rows: usize) -> Result<Batches> {
        match &self.frame {
            Frame::Lazy(lf) => {
                let it = lf
                    .as_ref()
                    .clone()
                    .select(columns.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
                    .collect_batches(
                        Engine::Streaming,
                        true,
                        std::num::NonZeroUsize::new(chunk_rows.max(1)),
                        false,
                    )?;
                Ok(Box::new(it.map(|r| r.map_err(Error::from))))
            }
            Frame::Files(f, _) => Ok(Box::new(f.row_groups(columns)?)),
            Frame::Postgres(q) => q.batches(columns),
            Frame::Adbc(q) => q.batches(columns),
        }
    }

    /// Restricts the source to the rows `[start, end)` of its files, in order, and
    /// returns the total rows of the input. Only Parquet files (local or on an
    /// object store: their footers give the row counts) can be split so.
    pub fn restrict_rows(&mut self, share: impl Fn(u64) -> (u64, u64)) -> Result<(u64, u64, u64)> {
        match &mut self.frame {
            Frame::Files(f, _) => {
                let rows = f.file_rows()?;
                let mut at = 0u64;
                f.offsets = rows
                    .iter()
                    .map(|r| {
                        let o = at;
                        at += r;
                        o
                    })
                    .collect();
                let (start, end) = share(at);
                f.range = Some((start, end));
                Ok((start, end, at))
            }
            _ => Err(Error::usage(
                "sharded runs need a `parquet` source (a SQL query's rows cannot be split \
                 deterministically before it runs)",
            )),
        }
    }

    /// Reads `columns`, in this order, into one frame.
    pub fn read(&self, columns: &[String]) -> Result<DataFrame> {
        match &self.frame {
            Frame::Lazy(lf) | Frame::Files(_, lf) => Ok(lf
                .as_ref()
                .clone()
                .select(columns.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
                .collect()?),
            Frame::Postgres(q) => q.read(columns),
            Frame::Adbc(q) => q.read(columns),
        }
    }
}

/// Whether `e` says that a path or glob matched no Parquet files.
pub fn is_no_files(e: &Error) -> bool {
    matches!(e, Error::DataContract(m) if m.starts_with("no Parquet files match"))
}

/// Frames of a source, in order.
pub type Batches = Box<dyn Iterator<Item = Result<DataFrame>>>;

/// Where a warehouse query hands its frames: returns false to stop the query.
pub type Sink<'a> = &'a mut dyn FnMut(DataFrame) -> bool;

/// Runs `stream` (a query handing its frames, at least one, to a sink) and
/// stacks the frames into one.
fn stack_stream(stream: impl FnOnce(Sink<'_>) -> Result<()>) -> Result<DataFrame> {
    let mut frame: Option<DataFrame> = None;
    let mut err = None;
    stream(&mut |batch| match frame.as_mut() {
        None => {
            frame = Some(batch);
            true
        }
        Some(f) => match f.vstack_mut_owned(batch) {
            Ok(_) => true,
            Err(e) => {
                err = Some(e);
                false
            }
        },
    })?;
    if let Some(e) = err {
        return Err(e.into());
    }
    let mut f = frame.ok_or_else(|| Error::Internal("a query yielded no frame".into()))?;
    f.rechunk_mut_par();
    Ok(f)
}

/// Runs `stream` on a thread named `name` and yields its frames; at most one
/// waits in the channel, so memory stays bounded whatever the result's size.
fn stream_batches(
    name: &str,
    stream: impl FnOnce(Sink<'_>) -> Result<()> + Send + 'static,
) -> Result<Batches> {
    let (send, recv) = std::sync::mpsc::sync_channel::<Result<DataFrame>>(1);
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let tx = send.clone();
            if let Err(e) = stream(&mut |b| tx.send(Ok(b)).is_ok()) {
                let _ = send.send(Err(e));
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start the reader thread {name}: {e}")))?;
    Ok(Box::new(recv.into_iter()))
}

/// Where a source's relative paths and connection profiles are found.
pub struct Context<'a> {
    /// The project folder.
    pub root: &'a Path,
    /// The profiles file (see [`crate::spec::profiles::locate`]).
    pub profiles: &'a Path,
    /// Settings for object-store URLs.
    pub storage: &'a crate::storage::Settings,
}

/// Resolves a job's source for the run date.
pub fn resolve(
    spec: &SourceSpec,
    ctx: &Context<'_>,
    vars: &TemplateVars,
    redactor: &mut Redactor,
) -> Result<Resolved> {
    match spec {
        SourceSpec::Parquet(p) => parquet(p, ctx, vars, redactor),
        SourceSpec::Sql(s) => sql(s, ctx, vars, redactor),
        SourceSpec::Postgres(p) => pg(p, ctx, vars, redactor),
        SourceSpec::Delta(d) => delta::resolve(d, ctx, vars, redactor),
        SourceSpec::Adbc(a) => adbc_query(a, ctx, vars, redactor),
    }
}

fn adbc_query(
    a: &AdbcSource,
    ctx: &Context<'_>,
    vars: &TemplateVars,
    red: &mut Redactor,
) -> Result<Resolved> {
    let profile = crate::spec::profiles::adbc(ctx.profiles, &a.profile)?;
    let file = ctx
        .root
        .join(render_field(&a.query, "source.adbc.query", vars, red)?);
    let q = adbc::prepare(&a.profile, &profile, ctx.root, &file, &a.params, vars, red)?;
    Ok(Resolved {
        description: q.describe(),
        frame: Frame::Adbc(Box::new(q)),
        inputs: vec![query_input(&file, red)],
        parquet: vec![],
        version: None,
    })
}

/// A query file as an input of the manifest: its path and hash.
fn query_input(file: &Path, red: &Redactor) -> InputFile {
    InputFile {
        path: red.redact(&file.display().to_string()),
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
        modified: None,
        sha256: crate::storage::sha256_file(file).ok(),
        etag: None,
    }
}

fn pg(
    p: &PostgresSource,
    ctx: &Context<'_>,
    vars: &TemplateVars,
    red: &mut Redactor,
) -> Result<Resolved> {
    let profile = crate::spec::profiles::postgres(ctx.profiles, &p.profile)?;
    let file = ctx
        .root
        .join(render_field(&p.query, "source.postgres.query", vars, red)?);
    let q = postgres::prepare(&p.profile, &profile, &file, &p.params, vars, red)?;
    let description = q.describe();
    Ok(Resolved {
        frame: Frame::Postgres(Box::new(q)),
        inputs: vec![query_input(&file, red)],
        parquet: vec![],
        description,
        version: None,
    })
}

fn render_field(t: &str, field: &str, vars: &TemplateVars, red: &mut Redactor) -> Result<String> {
    let r = render(t, vars).map_err(|e| Error::usage(format!("{field}: {e}")))?;
    red.add(&r);
    Ok(r.value)
}

/// The files a path or URL names, listed.
pub struct Listed {
    /// A lazy scan over them.
    pub lazy: LazyFrame,
    /// Their sizes and versions, for the manifest.
    pub inputs: Vec<InputFile>,
    pub files: Vec<files::FileRef>,
    /// The object store they are on, if any.
    pub store: Option<crate::storage::Store>,
}

/// Lists the files a path or URL names and opens a lazy scan over them.
pub fn open_files(pattern: &str, hive: bool, ctx: &Context<'_>, red: &Redactor) -> Result<Listed> {
    if crate::storage::is_url(pattern) {
        let (store, metas) = crate::storage::list_parquet(pattern, ctx.storage)
            .map_err(|e| e.redacted(|m| red.redact(m)))?;
        let paths: Vec<PlRefPath> = metas
            .iter()
            .map(|m| crate::storage::object_url(&store, m))
            .collect();
        let inputs = metas
            .iter()
            .zip(&paths)
            .map(|(m, p)| InputFile {
                path: red.redact(p.as_str()),
                bytes: m.size,
                modified: Some(
                    m.last_modified
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                ),
                sha256: None,
                etag: m.e_tag.clone(),
            })
            .collect();
        let files = metas
            .iter()
            .zip(&paths)
            .map(|(m, p)| files::FileRef::Object {
                path: m.location.clone(),
                url: p.as_str().to_string(),
            })
            .collect();
        Ok(Listed {
            lazy: scan_paths(paths, hive, Some(store.cloud.clone()))?,
            inputs,
            files,
            store: Some(store),
        })
    } else {
        let found = expand(ctx.root, pattern).map_err(|e| Error::DataContract(red.redact(&e)))?;
        Ok(Listed {
            lazy: scan(&found, hive)?,
            inputs: describe_files(&found, red),
            files: found.into_iter().map(files::FileRef::Local).collect(),
            store: None,
        })
    }
}

/// Opens Parquet files (a path, folder, glob or URL) as a source read row group by row group.
pub fn open_parquet(
    pattern: &str,
    hive: bool,
    ctx: &Context<'_>,
    red: &Redactor,
) -> Result<Resolved> {
    let listed = open_files(pattern, hive, ctx, red)?;
    let schema = match listed.lazy.clone().collect_schema() {
        Ok(s) => s.as_ref().clone(),
        Err(e) => {
            // Name the file that cannot be read (Polars' message does not).
            for f in &listed.files {
                if let files::FileRef::Local(path) = f {
                    let bad = std::fs::File::open(path)
                        .map_err(|e| e.to_string())
                        .and_then(|file| {
                            ParquetReader::new(file)
                                .schema()
                                .map(|_| ())
                                .map_err(|e| e.to_string())
                        });
                    if let Err(why) = bad {
                        return Err(Error::DataContract(format!(
                            "{} is not a readable Parquet file ({why}); replace or remove it",
                            red.redact(&path.display().to_string())
                        )));
                    }
                }
            }
            return Err(Error::DataContract(format!(
                "parquet {}: {e}",
                red.redact(pattern)
            )));
        }
    };
    Ok(Resolved {
        parquet: vec![(listed.files.clone(), listed.store.clone())],
        frame: Frame::Files(
            Box::new(files::ParquetFiles {
                files: listed.files,
                hive,
                schema,
                store: listed.store,
                range: None,
                offsets: vec![],
            }),
            Box::new(listed.lazy),
        ),
        inputs: listed.inputs,
        description: format!("parquet {}", red.redact(pattern)),
        version: None,
    })
}

fn parquet(
    p: &ParquetSource,
    ctx: &Context<'_>,
    vars: &TemplateVars,
    red: &mut Redactor,
) -> Result<Resolved> {
    let pattern = render_field(&p.path, "source.parquet.path", vars, red)?;
    open_parquet(&pattern, p.hive_partitioning, ctx, red)
}

fn sql(
    s: &SqlSource,
    ctx: &Context<'_>,
    vars: &TemplateVars,
    red: &mut Redactor,
) -> Result<Resolved> {
    let query_path = ctx
        .root
        .join(render_field(&s.query, "source.sql.query", vars, red)?);
    let text = std::fs::read_to_string(&query_path).map_err(|e| {
        Error::config(
            &query_path,
            format!("cannot read SQL file (source.sql.query): {e}"),
        )
    })?;
    let text = render(&text, vars).map_err(|e| Error::config(&query_path, e))?;
    red.add(&text);
    let mut sql_ctx = SQLContext::new();
    let (mut inputs, mut parquet) = (Vec::new(), Vec::new());
    for (name, t) in &s.tables {
        let pattern = render_field(t, &format!("source.sql.tables.{name}"), vars, red)?;
        let listed = open_files(&pattern, true, ctx, red)
            .map_err(|e| e.context(format!("table `{name}`")))?;
        sql_ctx.register(name, listed.lazy);
        inputs.extend(listed.inputs);
        parquet.push((listed.files, listed.store));
    }
    let frame = sql_ctx
        .execute(&text.value)
        .map_err(|e| Error::config(&query_path, format!("SQL error: {e}")))?;
    Ok(Resolved {
        frame: Frame::Lazy(Box::new(frame)),
        inputs,
        parquet,
        description: format!("sql {}", query_path.display()),
        version: None,
    })
}

/// Opens a lazy scan over the local Parquet files a path, folder or glob names
/// (relative to `root`; hive partition folders become columns).
pub fn scan_pattern(root: &Path, pattern: &str) -> Result<LazyFrame> {
    let files = expand(root, pattern).map_err(Error::DataContract)?;
    scan(&files, true)
}

/// Opens a lazy scan over local `files` (hive partition folders become columns when asked).
pub fn scan(files: &[PathBuf], hive: bool) -> Result<LazyFrame> {
    let paths: Vec<PlRefPath> = files
        .iter()
        .map(|f| PlRefPath::new(f.to_string_lossy().as_ref()))
        .collect();
    scan_paths(paths, hive, None)
}

/// Opens a lazy scan over paths or object URLs.
fn scan_paths(paths: Vec<PlRefPath>, hive: bool, cloud: Option<CloudOptions>) -> Result<LazyFrame> {
    let args = ScanArgsParquet {
        cloud_options: cloud,
        hive_options: HiveOptions {
            enabled: Some(hive),
            hive_start_idx: 0,
            schema: None,
            try_parse_dates: true,
        },
        glob: false,
        ..Default::default()
    };
    Ok(LazyFrame::scan_parquet_files(
        paths.into_iter().collect(),
        args,
    )?)
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// True for names readers skip: `_staging`, `.tmp`, `_SUCCESS` (Spark/Hive convention).
fn hidden(name: &std::ffi::OsStr) -> bool {
    let n = name.to_string_lossy();
    n.starts_with('_') || n.starts_with('.')
}

/// Expands a file, folder (recursively, `*.parquet`) or glob into a sorted list of files.
/// Files and folders whose name starts with `_` or `.` are skipped, as Spark and Hive do.
pub fn expand(root: &Path, pattern: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let full = root.join(pattern);
    let mut files = Vec::new();
    if has_glob(pattern) {
        let g = glob::glob(&full.to_string_lossy())
            .map_err(|e| format!("bad glob `{pattern}`: {e}"))?;
        // Only what the wildcards matched is skipped when hidden: folders the
        // pattern names literally (`~/.cache/lake/*/*.parquet`) are the user's choice.
        let literal: PathBuf = full
            .components()
            .take_while(|c| !has_glob(&c.as_os_str().to_string_lossy()))
            .collect();
        for entry in g {
            let p = entry.map_err(|e| format!("cannot list {pattern}: {e}"))?;
            let rel = p.strip_prefix(&literal).unwrap_or(&p);
            if p.is_file() && !rel.components().any(|c| hidden(c.as_os_str())) {
                files.push(p);
            }
        }
    } else if full.is_dir() {
        walk(&full, &mut files).map_err(|e| format!("cannot list {}: {e}", full.display()))?;
    } else if full.is_file() {
        files.push(full.clone());
    }
    files.sort();
    if files.is_empty() {
        return Err(format!("no Parquet files match `{}`", full.display()));
    }
    Ok(files)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if hidden(&e.file_name()) {
            continue;
        }
        let p = e.path();
        if e.file_type()?.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    Ok(())
}

fn describe_files(files: &[PathBuf], red: &Redactor) -> Vec<InputFile> {
    files
        .iter()
        .map(|f| {
            let md = std::fs::metadata(f).ok();
            InputFile {
                path: red.redact(&f.to_string_lossy()),
                bytes: md.as_ref().map_or(0, |m| m.len()),
                modified: md.and_then(|m| m.modified().ok()).map(|t| {
                    chrono::DateTime::<chrono::Utc>::from(t)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                }),
                sha256: None,
                etag: None,
            }
        })
        .collect()
}

/// Re-cuts a stream of frames into frames of exactly `rows` rows (the last may be
/// shorter, and an empty input yields one empty frame, so the schema is seen).
/// The run aligns chunks to whole inference batches this way, so the batches the
/// model sees — and therefore the scores, to the bit — do not depend on how the
/// source happened to split its output.
pub fn exact_chunks(inner: Batches, rows: usize) -> Batches {
    Box::new(ExactChunks {
        inner,
        rows: rows.max(1),
        buf: None,
        emitted: false,
        done: false,
    })
}

struct ExactChunks {
    inner: Batches,
    rows: usize,
    buf: Option<DataFrame>,
    emitted: bool,
    done: bool,
}

impl Iterator for ExactChunks {
    type Item = Result<DataFrame>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(b) = &self.buf
                && (b.height() >= self.rows || (self.done && (b.height() > 0 || !self.emitted)))
            {
                let b = self.buf.take().expect("checked");
                let (head, tail) = if b.height() > self.rows {
                    let (h, t) = b.split_at(self.rows as i64);
                    (h, Some(t))
                } else {
                    (b, None)
                };
                self.buf = tail;
                self.emitted = true;
                return Some(Ok(head));
            }
            if self.done {
                return None;
            }
            match self.inner.next() {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    self.buf = None;
                    return Some(Err(e));
                }
                Some(Ok(df)) => match self.buf.as_mut() {
                    None => self.buf = Some(df),
                    Some(b) => {
                        if let Err(e) = b.vstack_mut_owned(df) {
                            self.done = true;
                            return Some(Err(e.into()));
                        }
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(sizes: &[usize]) -> Batches {
        let mut start = 0i64;
        let v: Vec<Result<DataFrame>> = sizes
            .iter()
            .map(|&n| {
                let s: Vec<i64> = (start..start + n as i64).collect();
                start += n as i64;
                Ok(df!("x" => s).unwrap())
            })
            .collect();
        Box::new(v.into_iter())
    }

    #[test]
    fn globs_skip_hidden_matches_but_not_hidden_folders_they_name() {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().join(".cache/lake");
        for f in [
            "ds=1/part-0.parquet",
            "ds=2/part-0.parquet",
            "_tmp/x.parquet",
            "ds=3/.part.parquet",
        ] {
            let p = lake.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, b"").unwrap();
        }
        let names = |found: Vec<PathBuf>| -> Vec<String> {
            found
                .iter()
                .map(|p| p.strip_prefix(&lake).unwrap().display().to_string())
                .collect()
        };
        let want = vec!["ds=1/part-0.parquet", "ds=2/part-0.parquet"];
        // Absolute, relative to a root, and a folder: the same two files.
        let abs = format!("{}/*/*.parquet", lake.display());
        assert_eq!(names(expand(Path::new("/elsewhere"), &abs).unwrap()), want);
        assert_eq!(
            names(expand(dir.path(), ".cache/lake/*/*.parquet").unwrap()),
            want
        );
        assert_eq!(names(expand(dir.path(), ".cache/lake").unwrap()), want);
    }

    #[test]
    fn exact_chunks_recut_in_order() {
        let out: Vec<DataFrame> = exact_chunks(frames(&[3, 0, 7, 1, 5]), 4)
            .collect::<Result<_>>()
            .unwrap();
        let sizes: Vec<usize> = out.iter().map(DataFrame::height).collect();
        assert_eq!(sizes, [4, 4, 4, 4]);
        let all: Vec<i64> = out
            .iter()
            .flat_map(|d| {
                d.column("x")
                    .unwrap()
                    .i64()
                    .unwrap()
                    .into_no_null_iter()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
        let out: Vec<DataFrame> = exact_chunks(frames(&[2, 3]), 4)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            out.iter().map(DataFrame::height).collect::<Vec<_>>(),
            [4, 1]
        );
        // An empty input still yields one (empty) frame.
        let out: Vec<DataFrame> = exact_chunks(frames(&[0]), 4)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].height(), 0);
    }
}
