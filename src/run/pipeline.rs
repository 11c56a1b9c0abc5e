//! The streaming engine: read → preprocess + tensorize → infer → write, one chunk at a
//! time, each stage on its own thread with a bounded queue (one chunk) in between.
//!
//! While chunk *n* is scored, chunk *n+1* is decoded and preprocessed and chunk *n−1*
//! is encoded and written; at most about six chunks are in memory whatever the input
//! size. Chunks keep their order through every queue, so the output rows are in input
//! order, and every chunk is a whole number of inference batches, so scores are the
//! same to the bit as a one-chunk (non-streaming) run.
//!
//! Errors travel downstream: a stage that fails sends its error on and stops; the
//! writer returns the first error it receives; stages upstream of a stopped one see
//! their queue closed and stop too.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Instant;

use polars::prelude::*;

use crate::contract::Checker;
use crate::error::{Error, Result};
use crate::infer::{Engine, tensorize};
use crate::preprocess::fused::Compiled;
use crate::preprocess::state::FittedState;
use crate::sink::{BatchWriter, ParquetOptions};
use crate::source::Resolved;

/// Busy seconds of each stage (stages overlap, so these add up to more than the wall time).
#[derive(Debug, Default, Clone, Copy)]
pub struct StageSeconds {
    pub read: f64,
    pub preprocess: f64,
    pub tensorize: f64,
    pub infer: f64,
    pub write: f64,
    /// Data-contract checks and column statistics.
    pub contract: f64,
}

/// What the pipeline reads and how it scores.
pub struct Plan<'a> {
    pub source: &'a Resolved,
    /// Columns to read: the keys, then the preprocessing inputs.
    pub columns: &'a [String],
    pub keys: &'a [String],
    /// Rows per chunk (a multiple of `batch_size`).
    pub chunk_rows: usize,
    pub batch_size: usize,
    pub state: &'a FittedState,
    /// The state compiled for the fused path, when it applies (see [`crate::preprocess::fused`]).
    pub fused: Option<&'a Compiled>,
    pub engine: &'a Engine,
    /// The job's data contract, applied to each chunk before preprocessing.
    pub contract: Option<&'a std::sync::Mutex<Checker>>,
    /// Column statistics of the input, updated with every chunk read (and with
    /// every chunk of scores, for score drift).
    pub profile: Option<&'a std::sync::Mutex<crate::reports::Profile>>,
    /// The names of the score columns, in the order the engine returns them.
    pub score_columns: &'a [String],
}

/// Where and how the output is written.
pub struct Output<'a> {
    /// The staging folder.
    pub dir: &'a Path,
    /// Name of data file `i`.
    pub file_name: &'a (dyn Fn(usize) -> String + Sync),
    pub schema: &'a Schema,
    pub parquet: ParquetOptions,
    /// Start a new file once the current one holds at least this many bytes.
    pub max_file_bytes: u64,
    /// Builds the output frame of a chunk from its keys and scores.
    pub frame: &'a FrameFn<'a>,
    /// Where quarantined rows go (a local file, created with the first such row) and
    /// their schema (the columns read plus the reason).
    pub quarantine: Option<(&'a Path, &'a Schema)>,
}

/// Builds a chunk's output frame from its key columns and score columns.
pub type FrameFn<'a> = dyn Fn(&DataFrame, Vec<Vec<f32>>) -> Result<DataFrame> + Sync + 'a;

/// One written data file.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    pub name: String,
    pub bytes: u64,
    pub rows: u64,
}

/// What a finished pipeline did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rows_read: u64,
    /// Rows set aside by the data contract (written to the quarantine file).
    pub rows_quarantined: u64,
    pub rows_scored: u64,
    pub rows_written: u64,
    pub files: Vec<WrittenFile>,
    pub seconds: StageSeconds,
}

/// Called after each chunk is written with the total rows written so far.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// A chunk between preprocessing and inference.
struct Features {
    keys: DataFrame,
    matrix: Vec<f32>,
    quarantined: Option<DataFrame>,
}

/// A scored chunk.
struct Scored {
    keys: DataFrame,
    scores: Vec<Vec<f32>>,
    quarantined: Option<DataFrame>,
}

/// Runs the pipeline to the end. Files are written into `out.dir`; nothing is published.
pub fn run(plan: &Plan<'_>, out: &Output<'_>, progress: Progress<'_>) -> Result<Outcome> {
    std::thread::scope(|s| {
        let (raw_tx, raw_rx) = sync_channel::<Result<DataFrame>>(1);
        let (feat_tx, feat_rx) = sync_channel::<Result<Features>>(1);
        let (score_tx, score_rx) = sync_channel::<Result<Scored>>(1);
        let reader = std::thread::Builder::new()
            .name("scorch-read".into())
            .spawn_scoped(s, || read_stage(plan, raw_tx))
            .map_err(|e| Error::Internal(format!("cannot start the reader thread: {e}")))?;
        let prep = std::thread::Builder::new()
            .name("scorch-prep".into())
            .spawn_scoped(s, || prep_stage(plan, raw_rx, feat_tx))
            .map_err(|e| Error::Internal(format!("cannot start the preprocessing thread: {e}")))?;
        let infer = std::thread::Builder::new()
            .name("scorch-infer".into())
            .spawn_scoped(s, || infer_stage(plan, feat_rx, score_tx))
            .map_err(|e| Error::Internal(format!("cannot start the inference thread: {e}")))?;
        let written = write_stage(out, score_rx, progress);
        let (rows_read, read) = reader.join().map_err(|_| panicked("reader"))?;
        let (preprocess, tensorize, contract) =
            prep.join().map_err(|_| panicked("preprocessing"))?;
        let (rows_scored, infer) = infer.join().map_err(|_| panicked("inference"))?;
        let (files, rows_quarantined, write) = written?;
        Ok(Outcome {
            rows_read,
            rows_quarantined,
            rows_scored,
            rows_written: files.iter().map(|f| f.rows).sum(),
            files,
            seconds: StageSeconds {
                read,
                preprocess,
                tensorize,
                infer,
                write,
                contract,
            },
        })
    })
}

fn panicked(what: &str) -> Error {
    Error::Internal(format!("the {what} thread panicked"))
}

/// Reads chunks of exactly `chunk_rows` rows. Returns rows read and busy seconds.
fn read_stage(plan: &Plan<'_>, tx: SyncSender<Result<DataFrame>>) -> (u64, f64) {
    let mut busy = 0.0;
    let mut rows = 0u64;
    let t = Instant::now();
    let batches = plan.source.batches(plan.columns, plan.chunk_rows);
    busy += t.elapsed().as_secs_f64();
    let batches = match batches {
        Ok(b) => b,
        Err(e) => {
            let _ = tx.send(Err(
                e.context(format!("reading {}", plan.source.description))
            ));
            return (0, busy);
        }
    };
    let mut chunks = crate::source::exact_chunks(batches, plan.chunk_rows);
    loop {
        let t = Instant::now();
        let next = chunks.next();
        busy += t.elapsed().as_secs_f64();
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| e.context(format!("reading {}", plan.source.description)));
        let failed = chunk.is_err();
        if let Ok(c) = &chunk {
            rows += c.height() as u64;
        }
        if tx.send(chunk).is_err() || failed {
            break;
        }
    }
    (rows, busy)
}

/// Applies the contract, preprocesses and tensorizes. Returns busy seconds of
/// preprocessing, tensorizing and contract checks.
fn prep_stage(
    plan: &Plan<'_>,
    rx: Receiver<Result<DataFrame>>,
    tx: SyncSender<Result<Features>>,
) -> (f64, f64, f64) {
    let (mut prep, mut tens, mut checks) = (0.0, 0.0, 0.0);
    let mut offset = 0usize;
    for raw in rx {
        let out = raw.and_then(|raw| {
            if let Some(p) = plan.profile {
                let t = Instant::now();
                p.lock().expect("profile lock").update(&raw)?;
                checks += t.elapsed().as_secs_f64();
            }
            let (raw, quarantined) = match plan.contract {
                Some(c) => {
                    let t = Instant::now();
                    let split = c.lock().expect("contract lock").split(raw)?;
                    checks += t.elapsed().as_secs_f64();
                    (split.valid, split.quarantined)
                }
                None => (raw, None),
            };
            if let Some(fused) = plan.fused {
                let t = Instant::now();
                let frame = if plan.state.spec.derived.is_empty() {
                    raw.clone()
                } else {
                    crate::preprocess::with_derived(raw.clone().lazy(), &plan.state.spec)?
                        .collect()?
                };
                let matrix = plan.engine.install(|| fused.run(&frame))?;
                prep += t.elapsed().as_secs_f64();
                if let Some(matrix) = matrix {
                    offset += raw.height();
                    let keys = raw.select(plan.keys.iter().map(|k| k.as_str()))?;
                    return Ok(Features {
                        keys,
                        matrix,
                        quarantined,
                    });
                }
                // A null, NaN or infinite feature: the Polars path below reports it.
            }
            let t = Instant::now();
            let features = crate::preprocess::apply(raw.clone().lazy(), plan.state, &[])?
                .collect()
                .map_err(|e| {
                    Error::from(e).context(format!(
                        "preprocessing {} {}",
                        plan.state.spec.name, plan.state.spec.version
                    ))
                })?;
            prep += t.elapsed().as_secs_f64();
            let t = Instant::now();
            let matrix = plan.engine.install(|| {
                tensorize::to_row_major(
                    &features,
                    &plan.state.feature_names,
                    &raw,
                    plan.keys,
                    offset,
                )
            });
            drop(features);
            let matrix = matrix.map_err(|e| e.context(&plan.source.description))?;
            tens += t.elapsed().as_secs_f64();
            offset += raw.height();
            let keys = raw.select(plan.keys.iter().map(|k| k.as_str()))?;
            Ok(Features {
                keys,
                matrix,
                quarantined,
            })
        });
        let failed = out.is_err();
        if tx.send(out).is_err() || failed {
            break;
        }
    }
    (prep, tens, checks)
}

/// Scores. Returns rows scored and busy seconds.
fn infer_stage(
    plan: &Plan<'_>,
    rx: Receiver<Result<Features>>,
    tx: SyncSender<Result<Scored>>,
) -> (u64, f64) {
    let mut busy = 0.0;
    let mut rows = 0u64;
    for f in rx {
        let out = f.and_then(|f| {
            let t = Instant::now();
            let scores = plan.engine.score(&f.matrix, plan.batch_size)?;
            busy += t.elapsed().as_secs_f64();
            if let Some(p) = plan.profile {
                let cols = plan
                    .score_columns
                    .iter()
                    .zip(&scores)
                    .map(|(n, v)| Column::new(n.as_str().into(), v))
                    .collect();
                let df = DataFrame::new(f.keys.height(), cols)?;
                p.lock().expect("profile lock").update_scores(&df)?;
            }
            rows += f.keys.height() as u64;
            Ok(Scored {
                keys: f.keys,
                scores,
                quarantined: f.quarantined,
            })
        });
        let failed = out.is_err();
        if tx.send(out).is_err() || failed {
            break;
        }
    }
    (rows, busy)
}

/// Writes scored chunks, rolling over to a new file at `max_file_bytes`.
fn write_stage(
    out: &Output<'_>,
    rx: Receiver<Result<Scored>>,
    progress: Progress<'_>,
) -> Result<(Vec<WrittenFile>, u64, f64)> {
    let mut busy = 0.0;
    let mut quarantine: Option<BatchWriter> = None;
    let mut quarantined = 0u64;
    let mut files: Vec<WrittenFile> = Vec::new();
    let mut current: Option<(BatchWriter, PathBuf, WrittenFile)> = None;
    let mut total = 0u64;
    let open = |index: usize| -> Result<(BatchWriter, PathBuf, WrittenFile)> {
        let name = (out.file_name)(index);
        let path = out.dir.join(&name);
        let w = BatchWriter::create(&path, out.schema, &out.parquet)?;
        Ok((
            w,
            path,
            WrittenFile {
                name,
                bytes: 0,
                rows: 0,
            },
        ))
    };
    for scored in rx {
        let scored = scored?;
        let t = Instant::now();
        if let (Some(mut q), Some((path, schema))) = (scored.quarantined, out.quarantine) {
            if quarantine.is_none() {
                quarantine = Some(BatchWriter::create(path, schema, &out.parquet)?);
            }
            quarantined += q.height() as u64;
            quarantine.as_mut().expect("created").write(&mut q)?;
        }
        let mut frame = (out.frame)(&scored.keys, scored.scores)?;
        drop(scored.keys);
        if current.is_none() {
            current = Some(open(files.len())?);
        }
        let (w, path, info) = current.as_mut().expect("opened");
        w.write(&mut frame)?;
        info.rows += frame.height() as u64;
        total += frame.height() as u64;
        let size = std::fs::metadata(&*path).map(|m| m.len()).unwrap_or(0);
        if size >= out.max_file_bytes {
            let (w, _, mut info) = current.take().expect("opened");
            info.bytes = w.finish()?;
            files.push(info);
        }
        busy += t.elapsed().as_secs_f64();
        progress(total);
    }
    let t = Instant::now();
    if current.is_none() && files.is_empty() {
        // No chunk at all (cannot happen with `exact_chunks`, which yields one empty
        // frame for an empty input): still write a file with the schema.
        current = Some(open(0)?);
    }
    if let Some((w, _, mut info)) = current.take() {
        info.bytes = w.finish()?;
        files.push(info);
    }
    if let Some(q) = quarantine {
        q.finish()?;
    }
    busy += t.elapsed().as_secs_f64();
    Ok((files, quarantined, busy))
}
