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

/// One model of a pipeline: its preprocessing and its engine.
pub struct Scorer<'a> {
    /// `name version`, for messages.
    pub model: &'a str,
    pub state: &'a FittedState,
    /// The state compiled for the fused path, when it applies (see [`crate::preprocess::fused`]).
    pub fused: Option<&'a Compiled>,
    pub engine: &'a Engine,
    /// The names of the score columns, in the order the engine returns them.
    pub score_columns: &'a [String],
}

/// Sends each row of a chunk to one scorer (canary split): returns the scorer index
/// of every row.
pub type RouteFn<'a> = dyn Fn(&DataFrame) -> Result<Vec<u8>> + Sync + 'a;

/// What the pipeline reads and how it scores.
pub struct Plan<'a> {
    pub source: &'a Resolved,
    /// Columns to read: the carried columns, then the preprocessing inputs.
    pub columns: &'a [String],
    /// Columns carried unchanged to the output frame (the keys, and for shadow runs
    /// the segment and label columns).
    pub keys: &'a [String],
    /// Rows per chunk (a multiple of `batch_size`).
    pub chunk_rows: usize,
    pub batch_size: usize,
    /// The models. Without `route`, every scorer scores every row (one scorer for a
    /// plain run, two for a shadow run); scorers whose preprocessing states are equal
    /// share one feature matrix.
    pub scorers: &'a [Scorer<'a>],
    /// Canary split: which scorer scores each row.
    pub route: Option<&'a RouteFn<'a>>,
    /// The job's data contract, applied to each chunk before preprocessing.
    pub contract: Option<&'a std::sync::Mutex<Checker>>,
    /// Column statistics of the input, updated with every chunk read (and with
    /// every chunk of scores, for score drift).
    pub profile: Option<&'a std::sync::Mutex<crate::reports::Profile>>,
    /// What a NaN or infinite score does.
    pub invalid_scores: crate::spec::job::InvalidScores,
}

/// The first NaN or infinite score of a chunk: scorer, score column and the row of
/// the chunk it belongs to.
fn first_invalid(scores: &ChunkScores) -> Option<(usize, usize, usize)> {
    for (i, cols) in scores.by_scorer.iter().enumerate() {
        for (c, col) in cols.iter().enumerate() {
            let Some(r) = col.iter().position(|v| !v.is_finite()) else {
                continue;
            };
            // With a canary split, the scorer's r-th row is the r-th routed to it.
            let row = match &scores.route {
                None => r,
                Some(route) => route
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| **x as usize == i)
                    .nth(r)
                    .map_or(r, |(row, _)| row),
            };
            return Some((i, c, row));
        }
    }
    None
}

impl Plan<'_> {
    /// For each scorer, the index of the first scorer with the same preprocessing state.
    fn feature_groups(&self) -> Vec<usize> {
        self.scorers
            .iter()
            .map(|s| {
                self.scorers
                    .iter()
                    .position(|o| o.state.content_hash == s.state.content_hash)
                    .expect("a scorer matches itself")
            })
            .collect()
    }
}

/// The scores of one chunk.
#[derive(Debug)]
pub struct ChunkScores {
    /// For each scorer, its score columns over the rows it scored (in row order).
    pub by_scorer: Vec<Vec<Vec<f32>>>,
    /// With a canary split, the scorer of every row; `None`: every scorer scored every row.
    pub route: Option<Vec<u8>>,
}

impl ChunkScores {
    /// One set of score columns over all rows: scorer 0's, or with a split, each
    /// row's own scorer's (the scorers of a split have the same score columns).
    pub fn merged(&self) -> std::borrow::Cow<'_, [Vec<f32>]> {
        let Some(route) = &self.route else {
            return std::borrow::Cow::Borrowed(&self.by_scorer[0]);
        };
        let width = self.by_scorer[0].len();
        let mut next = vec![0usize; self.by_scorer.len()];
        let mut cols = vec![Vec::with_capacity(route.len()); width];
        for &r in route {
            let s = &self.by_scorer[r as usize];
            for (c, col) in cols.iter_mut().enumerate() {
                col.push(s[c][next[r as usize]]);
            }
            next[r as usize] += 1;
        }
        std::borrow::Cow::Owned(cols)
    }

    /// [`ChunkScores::merged`], consuming the scores.
    pub fn into_merged(mut self) -> Vec<Vec<f32>> {
        if self.route.is_none() {
            return self.by_scorer.swap_remove(0);
        }
        self.merged().into_owned()
    }
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
    /// their schema (the columns read plus the reason; an input `ds` column as
    /// [`crate::sink::INPUT_DS`]).
    pub quarantine: Option<(&'a Path, &'a Schema)>,
    /// The exact key check, updated with the keys of every chunk written.
    pub key_check: Option<&'a std::sync::Mutex<crate::reports::keys::KeyCheck>>,
}

/// Builds a chunk's output frame from its carried columns and scores.
pub type FrameFn<'a> = dyn Fn(&DataFrame, ChunkScores) -> Result<DataFrame> + Sync + 'a;

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
    /// One row-major matrix per distinct preprocessing state (see [`Plan::feature_groups`]).
    matrices: Vec<Option<Vec<f32>>>,
    route: Option<Vec<u8>>,
    quarantined: Option<DataFrame>,
}

/// A scored chunk.
struct Scored {
    keys: DataFrame,
    scores: ChunkScores,
    quarantined: Option<DataFrame>,
}

/// The errors of the run layer's own work: a thread of the pipeline could not be
/// started (exit 1), with the system's error as the source.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl crate::error::LayerError for RunError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Internal
    }
}

fn thread_error(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| RunError::Thread { what, source }.into()
}

/// Runs the pipeline to the end. Files are written into `out.dir`; nothing is published.
pub fn run(plan: &Plan<'_>, out: &Output<'_>, progress: Progress<'_>) -> Result<Outcome> {
    std::thread::scope(|s| {
        let (raw_tx, raw_rx) = sync_channel::<Result<DataFrame>>(1);
        let (feat_tx, feat_rx) = sync_channel::<Result<Features>>(1);
        let (score_tx, score_rx) = sync_channel::<Result<Scored>>(1);
        // The stages log inside the run's span (its run id).
        let span = tracing::Span::current();
        let (s1, s2, s3) = (span.clone(), span.clone(), span);
        let reader = std::thread::Builder::new()
            .name("scorch-read".into())
            .spawn_scoped(s, move || s1.in_scope(|| read_stage(plan, raw_tx)))
            .map_err(thread_error("reader"))?;
        let prep = std::thread::Builder::new()
            .name("scorch-prep".into())
            .spawn_scoped(s, move || s2.in_scope(|| prep_stage(plan, raw_rx, feat_tx)))
            .map_err(thread_error("preprocessing"))?;
        let infer = std::thread::Builder::new()
            .name("scorch-infer".into())
            .spawn_scoped(s, move || {
                s3.in_scope(|| infer_stage(plan, feat_rx, score_tx))
            })
            .map_err(thread_error("inference"))?;
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

/// Busy seconds of the preprocessing stage's parts.
#[derive(Default)]
struct PrepSeconds {
    prep: f64,
    tens: f64,
    checks: f64,
}

/// The row-major feature matrix of `raw` under one scorer's preprocessing; `offset`
/// is the index of the chunk's first row in the input (for error messages).
fn features(
    plan: &Plan<'_>,
    scorer: &Scorer<'_>,
    raw: &DataFrame,
    offset: usize,
    secs: &mut PrepSeconds,
) -> Result<Vec<f32>> {
    let state = scorer.state;
    if let Some(fused) = scorer.fused {
        let t = Instant::now();
        let frame = if state.spec.derived.is_empty() {
            raw.clone()
        } else {
            crate::preprocess::with_derived(raw.clone().lazy(), &state.spec)?.collect()?
        };
        let matrix = scorer.engine.install(|| fused.run(&frame))?;
        secs.prep += t.elapsed().as_secs_f64();
        if let Some(matrix) = matrix {
            return Ok(matrix);
        }
        // A null, NaN or infinite feature: the Polars path below reports it.
    }
    let t = Instant::now();
    let features = crate::preprocess::apply(raw.clone().lazy(), state, &[])?
        .collect()
        .map_err(|e| {
            Error::from(e).context(format!(
                "preprocessing {} {}",
                state.spec.name, state.spec.version
            ))
        })?;
    secs.prep += t.elapsed().as_secs_f64();
    let t = Instant::now();
    let matrix = scorer.engine.install(|| {
        tensorize::to_row_major(&features, &state.feature_names, raw, plan.keys, offset)
    });
    drop(features);
    let matrix = matrix.map_err(|e| e.context(&plan.source.description))?;
    secs.tens += t.elapsed().as_secs_f64();
    Ok(matrix)
}

/// Applies the contract, routes rows, preprocesses and tensorizes (once per distinct
/// preprocessing state). Returns busy seconds of preprocessing, tensorizing and
/// contract checks.
fn prep_stage(
    plan: &Plan<'_>,
    rx: Receiver<Result<DataFrame>>,
    tx: SyncSender<Result<Features>>,
) -> (f64, f64, f64) {
    let mut secs = PrepSeconds::default();
    let groups = plan.feature_groups();
    let mut offset = 0usize;
    for raw in rx {
        let out = raw.and_then(|raw| {
            if let Some(p) = plan.profile {
                let t = Instant::now();
                p.lock().expect("profile lock").update(&raw)?;
                secs.checks += t.elapsed().as_secs_f64();
            }
            let (raw, quarantined) = match plan.contract {
                Some(c) => {
                    let t = Instant::now();
                    let split = c.lock().expect("contract lock").split(raw)?;
                    secs.checks += t.elapsed().as_secs_f64();
                    (split.valid, split.quarantined)
                }
                None => (raw, None),
            };
            let route = plan.route.map(|r| r(&raw)).transpose()?;
            let mut matrices: Vec<Option<Vec<f32>>> = vec![None; plan.scorers.len()];
            for (i, scorer) in plan.scorers.iter().enumerate() {
                let needed = match &route {
                    // A scorer no row is routed to needs no features.
                    Some(r) => r.iter().any(|&x| groups[x as usize] == i),
                    None => true,
                };
                if groups[i] == i && needed {
                    matrices[i] = Some(features(plan, scorer, &raw, offset, &mut secs)?);
                }
            }
            offset += raw.height();
            let keys = raw.select(plan.keys.iter().map(|k| k.as_str()))?;
            Ok(Features {
                keys,
                matrices,
                route,
                quarantined,
            })
        });
        let failed = out.is_err();
        if tx.send(out).is_err() || failed {
            break;
        }
    }
    (secs.prep, secs.tens, secs.checks)
}

/// Scores. Returns rows scored and busy seconds.
fn infer_stage(
    plan: &Plan<'_>,
    rx: Receiver<Result<Features>>,
    tx: SyncSender<Result<Scored>>,
) -> (u64, f64) {
    let mut busy = 0.0;
    let mut rows = 0u64;
    let groups = plan.feature_groups();
    // Multivariate drift: the PCA the first scorer's feature matrix is measured with.
    let pca = plan.profile.and_then(|p| {
        p.lock()
            .expect("profile lock")
            .reconstruction
            .as_ref()
            .map(|r| r.reference.pca.clone())
    });
    for f in rx {
        let out = f.and_then(|f| {
            let t = Instant::now();
            let mut by_scorer = Vec::with_capacity(plan.scorers.len());
            for (i, scorer) in plan.scorers.iter().enumerate() {
                let all = f.matrices[groups[i]].as_deref().unwrap_or(&[]);
                let scores = match &f.route {
                    None => scorer.engine.score(all, plan.batch_size)?,
                    Some(route) => {
                        // The rows routed to this scorer, in order.
                        let k = scorer.state.feature_names.len();
                        let mut mine = Vec::new();
                        for (r, _) in route.iter().enumerate().filter(|(_, x)| **x as usize == i) {
                            mine.extend_from_slice(&all[r * k..(r + 1) * k]);
                        }
                        scorer.engine.score(&mine, plan.batch_size)?
                    }
                };
                by_scorer.push(scores);
            }
            let scores = ChunkScores {
                by_scorer,
                route: f.route,
            };
            busy += t.elapsed().as_secs_f64();
            if plan.invalid_scores == crate::spec::job::InvalidScores::Fail
                && let Some((i, c, row)) = first_invalid(&scores)
            {
                let s = &plan.scorers[i];
                let v = scores.by_scorer[i][c]
                    .iter()
                    .find(|v| !v.is_finite())
                    .copied()
                    .unwrap_or(f32::NAN);
                return Err(Error::Model(format!(
                    "model {} returned {v} for score column `{}` at row {} of the scored rows{}; \
                     fix the model or its input, or set `inference.invalid_scores: null` to \
                     write such scores as null",
                    s.model,
                    s.score_columns[c],
                    rows as usize + row,
                    crate::infer::tensorize::describe_keys(&f.keys, plan.keys, row)
                )));
            }
            if let Some(p) = plan.profile {
                let cols = plan.scorers[0]
                    .score_columns
                    .iter()
                    .zip(scores.merged().iter())
                    .map(|(n, v)| Column::new(n.as_str().into(), v))
                    .collect();
                let df = DataFrame::new(f.keys.height(), cols)?;
                let sums = match (&pca, f.matrices.first().and_then(|m| m.as_deref())) {
                    (Some(pca), Some(m)) => {
                        Some(crate::reports::multivariate::ReconstructionCounter::errors_of(pca, m))
                    }
                    _ => None,
                };
                let mut p = p.lock().expect("profile lock");
                p.update_scores(&df)?;
                if let Some(sums) = sums {
                    p.add_reconstruction(&sums);
                }
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
            // Hive layout: the file sits in a ds= folder, so an input `ds` is renamed.
            if q.column(crate::sink::PARTITION_COLUMN).is_ok() {
                q.rename(crate::sink::PARTITION_COLUMN, crate::sink::INPUT_DS.into())?;
            }
            quarantine.as_mut().expect("created").write(&mut q)?;
        }
        if let Some(k) = out.key_check {
            k.lock().expect("key check lock").update(&scored.keys)?;
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
