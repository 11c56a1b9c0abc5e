//! `scorch backfill JOB --from D --to D [--parallel N] [--force]`: one run per date,
//! idempotent and resumable.
//!
//! A date whose partition is already committed (its `_manifest.json` says
//! `succeeded` or `checks_failed`: the output was published) is skipped unless
//! `--force`; every other date is run (a rerun replaces the partition, so a
//! backfill never duplicates rows). Dates run `parallel` at a time, each with its
//! share of the cores; a failing date does not stop the others. The exit code is
//! that of the first failed date (in date order), 0 when none failed.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::NaiveDate;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::run::RunOptions;
use crate::sink::manifest::RunStatus;

/// What to backfill.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    pub job_file: PathBuf,
    pub root: PathBuf,
    pub dates: Vec<NaiveDate>,
    /// Dates run at once (at least 1).
    pub parallel: usize,
    /// Rerun committed dates too.
    pub force: bool,
    /// Inference threads per run; default: the cores divided among the parallel runs.
    pub threads: Option<usize>,
    pub profiles: Option<PathBuf>,
}

/// The outcome of one date.
#[derive(Debug, Clone, Serialize)]
pub struct DateOutcome {
    pub ds: String,
    /// `skipped` (already committed), `succeeded`, `checks_failed` or `failed`.
    pub status: RunStatus,
    pub exit_code: i32,
    /// The run that wrote the partition (this backfill's, or the earlier one when skipped).
    pub run_id: Option<String>,
    pub rows: Option<u64>,
    /// The error, for failed dates.
    pub error: Option<String>,
}

/// The committed run of a partition: `(run id, status, rows written)`, if any.
fn committed(opts: &BackfillOptions, ds: NaiveDate) -> Result<Option<(String, RunStatus, u64)>> {
    let ctx =
        crate::run::JobContext::open(&opts.job_file, &opts.root, opts.profiles.as_deref(), ds)?;
    let (job, table) = (&ctx.job, &ctx.table);
    let day = ds.format("%Y-%m-%d").to_string();
    let bytes = if job.output.format == crate::spec::job::OutputFormat::Delta {
        // A Delta table: the run that wrote the date's live files, from its run log.
        let log = crate::sink::delta::DeltaLog::open(table)?;
        match log.partition_run_id(&day)? {
            Some(run_id) => table.run_log().read_manifest(&run_id)?,
            None => None,
        }
    } else {
        table.partition_manifest(&format!("ds={day}"))?
    };
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let m = crate::sink::manifest::PublishedManifest::parse(
        &bytes,
        &format!("partition ds={ds} of {}", ctx.location),
    )?;
    if !m.status.is_published() {
        return Ok(None);
    }
    Ok(Some((m.run_id, m.status, m.rows.written())))
}

/// The outcome of a date whose run (or check) failed.
fn failed(ds: String, e: &Error) -> DateOutcome {
    let code = e.exit_code();
    DateOutcome {
        ds,
        status: RunStatus::of_error(e),
        exit_code: code.code(),
        run_id: None,
        rows: None,
        error: Some(e.to_string()),
    }
}

/// Runs the backfill; returns every date's outcome in date order.
pub fn backfill(opts: &BackfillOptions) -> Result<Vec<DateOutcome>> {
    // The job, its profiles and every date's table resolve (confined) before any run.
    if let Some(&first) = opts.dates.first() {
        let mut ctx = crate::run::JobContext::open(
            &opts.job_file,
            &opts.root,
            opts.profiles.as_deref(),
            first,
        )?;
        for &ds in &opts.dates[1..] {
            ctx.table_path_for(ds)?;
        }
    }
    let parallel = opts.parallel.max(1);
    let threads = opts
        .threads
        .unwrap_or_else(|| (crate::infer::available_cores() / parallel).max(1));
    let next = Mutex::new(0usize);
    let outcomes: Mutex<Vec<Option<DateOutcome>>> = Mutex::new(vec![None; opts.dates.len()]);
    let work = || {
        loop {
            let i = {
                let mut n = next.lock().expect("queue lock");
                if *n >= opts.dates.len() {
                    return;
                }
                *n += 1;
                *n - 1
            };
            let ds = opts.dates[i];
            let text = ds.format("%Y-%m-%d").to_string();
            let done = if opts.force {
                Ok(None)
            } else {
                committed(opts, ds)
            };
            let outcome = match done {
                Err(e) => failed(text, &e),
                Ok(Some((run_id, _, rows))) => {
                    tracing::info!(ds = %text, run_id = %run_id, "already committed; skipped");
                    DateOutcome {
                        ds: text,
                        status: RunStatus::Skipped,
                        exit_code: 0,
                        run_id: Some(run_id),
                        rows: Some(rows),
                        error: None,
                    }
                }
                Ok(None) => match crate::run::run(&RunOptions {
                    job_file: opts.job_file.clone(),
                    root: opts.root.clone(),
                    ds,
                    threads: Some(threads),
                    batch_size: None,
                    device: None,
                    precision: None,
                    progress: false,
                    profiles: opts.profiles.clone(),
                    shadow: None,
                    shard: None,
                    wait_lock: None,
                }) {
                    Ok(s) => DateOutcome {
                        ds: text,
                        status: RunStatus::Succeeded,
                        exit_code: 0,
                        run_id: Some(s.manifest.run_id.clone()),
                        rows: Some(s.manifest.rows.written),
                        error: None,
                    },
                    Err(e) => failed(text, &e),
                },
            };
            outcomes.lock().expect("outcomes lock")[i] = Some(outcome);
        }
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..parallel.min(opts.dates.len()).max(1))
            .map(|_| s.spawn(work))
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| Error::Internal("a backfill worker panicked".into()))
        })
    })?;
    Ok(outcomes
        .into_inner()
        .expect("outcomes lock")
        .into_iter()
        .map(|o| o.expect("every date ran"))
        .collect())
}

/// The lines `scorch backfill` prints: one per date, then the totals.
pub fn summary(outcomes: &[DateOutcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        out.push_str(&format!(
            "{}  {:<13} {}{}\n",
            o.ds,
            o.status,
            o.run_id.as_deref().unwrap_or("-"),
            match (&o.rows, &o.error) {
                (_, Some(e)) => format!("  exit {}: {e}", o.exit_code),
                (Some(r), None) => format!("  {r} rows"),
                _ => String::new(),
            }
        ));
    }
    let count = |s: RunStatus| outcomes.iter().filter(|o| o.status == s).count();
    out.push_str(&format!(
        "scorch: backfill of {} date(s): {} ran, {} skipped (committed), {} failed",
        outcomes.len(),
        count(RunStatus::Succeeded),
        count(RunStatus::Skipped),
        count(RunStatus::Failed) + count(RunStatus::ChecksFailed)
    ));
    out
}

/// The backfill's result: the first failed date's exit code (in date order) and
/// what failed, or `Ok` when every date ran or was committed.
pub fn result(outcomes: &[DateOutcome]) -> Result<()> {
    match outcomes.iter().find(|o| o.exit_code != 0) {
        None => Ok(()),
        Some(first) => Err(Error::with_code(
            first.exit_code,
            format!(
                "backfill: {} of {} date(s) failed (the others ran or were committed); first {}: {}",
                outcomes.iter().filter(|o| o.exit_code != 0).count(),
                outcomes.len(),
                first.ds,
                first.error.as_deref().unwrap_or("")
            ),
        )),
    }
}
