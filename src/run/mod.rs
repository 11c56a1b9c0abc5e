//! One scoring run of a job for one date: source → preprocess → tensorize → infer
//! → sink, with a manifest recording every stage.

pub mod checks;
pub mod context;
mod execute;
mod input;
pub mod lock;
pub(crate) mod models;
mod output;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod rollout;
pub mod shard;

pub use context::{JobContext, TableOf};
pub use plan::{DryRun, RunPlan};

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, SecondsFormat, Utc};

use crate::error::Result;
use crate::sink::manifest::*;

/// Set to `polars` to apply preprocessing with Polars expressions and a separate
/// tensorize step instead of the fused path (same results; for comparison).
pub const PREPROCESS_PATH_ENV: &str = "SCORCH_PREPROCESS_PATH";

/// Test hook (only in builds with the `test-hooks` feature, which `make test`
/// enables; the binary users build has none): when set, a run sleeps this many
/// milliseconds after its files are staged and before it publishes them, so tests
/// can kill it mid-write.
#[cfg(feature = "test-hooks")]
pub const PAUSE_BEFORE_PUBLISH_ENV: &str = "SCORCH_TEST_PAUSE_BEFORE_PUBLISH_MS";

/// Test hook (`test-hooks` builds only), `MS:PATH`: inside the publish guard, after
/// the lock was checked to be still the run's, a run creates the file `PATH` and
/// sleeps `MS` milliseconds before it publishes, so tests can take its lock over
/// while it publishes.
#[cfg(feature = "test-hooks")]
pub const PAUSE_IN_PUBLISH_ENV: &str = "SCORCH_TEST_PAUSE_IN_PUBLISH";

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The job YAML file.
    pub job_file: PathBuf,
    /// Project folder: relative paths in the job resolve against it.
    pub root: PathBuf,
    /// Logical date of the run.
    pub ds: NaiveDate,
    /// Overrides `inference.threads`.
    pub threads: Option<usize>,
    /// Overrides `inference.batch_size`.
    pub batch_size: Option<usize>,
    /// Overrides `inference.device`.
    pub device: Option<String>,
    /// Overrides `inference.precision`.
    pub precision: Option<String>,
    /// Show a progress bar on stderr (the CLI sets this when stderr is a terminal).
    pub progress: bool,
    /// The connection profiles file; default `$SCORCH_PROFILES`, else `<root>/profiles.yaml`.
    pub profiles: Option<PathBuf>,
    /// A shadow run's date instead of a production run (see [`crate::shadow`]).
    pub shadow: Option<ShadowTarget>,
    /// Score only shard `index` of `count` (0-based) and leave its files for
    /// `scorch commit` (see [`shard`]).
    pub shard: Option<(usize, usize)>,
    /// Wait up to this long for another run's lock on the partition (or shard)
    /// instead of failing at once with exit 6 (see [`lock`]).
    pub wait_lock: Option<std::time::Duration>,
}

/// What makes a run a shadow run: the second model, the shadow table, and where the
/// written frames are collected for the comparison.
#[derive(Debug, Clone)]
pub struct ShadowTarget {
    /// The challenger: `<name>@<version>`, `<name>@<alias>` or a bundle folder.
    pub challenger: String,
    /// The shadow table (path or URL; templated like `output.path`).
    pub table: String,
    /// Input columns written to the shadow table after the keys (segments, labels).
    pub carry: Vec<String>,
    /// The score column compared (checked to be both models').
    pub score: String,
}

/// Prefix of the champion's score columns in the shadow table.
pub const CHAMPION_PREFIX: &str = "champion_";
/// Prefix of the challenger's score columns in the shadow table.
pub const CHALLENGER_PREFIX: &str = "challenger_";

/// The outcome of a successful run.
#[derive(Debug)]
pub struct RunSummary {
    pub manifest: Manifest,
    /// Where the published partition is (path or URL, secrets redacted).
    pub partition: String,
    /// Where this run's manifest was written (path or URL, secrets redacted).
    pub manifest_path: String,
}

impl std::fmt::Display for RunSummary {
    /// The closing summary `scorch run` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.manifest;
        let st = |k: &str| m.stages.get(k).copied().unwrap_or(0.0);
        let rps = |k: &str| m.rows_per_second.get(k).copied().unwrap_or(0.0);
        write!(
            f,
            "scorch: job {} ds={} run {} succeeded\n  rows: {} read, {} scored, {} written{}\n  \
             busy seconds per stage (stages overlap): read {:.3}, preprocess {:.3}, tensorize {:.3}, \
             infer {:.3}, write {:.3}; wall {:.3}\n  \
             rows/s: {:.0} end to end; infer alone {:.0}\n  \
             output: {}\n  manifest: {}",
            m.job.name,
            m.ds,
            m.run_id,
            m.rows.read,
            m.rows.scored,
            m.rows.written,
            [
                (m.rows.quarantined, "quarantined"),
                (
                    m.rows.null_scores,
                    "with a null score (NaN or infinite, `invalid_scores: null`)"
                ),
            ]
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!(", {n} {what}"))
            .collect::<String>(),
            st("read"),
            st("preprocess"),
            st("tensorize"),
            st("infer"),
            st("write"),
            st("total"),
            rps("total"),
            rps("infer"),
            self.partition,
            self.manifest_path
        )?;
        if let Some(q) = m.contract.as_ref().and_then(|c| c.quarantine.as_ref()) {
            write!(f, "\n  quarantine: {q}")?;
        }
        if let Some(r) = &m.report {
            let failed = m.checks.iter().filter(|c| c.status != "pass").count();
            write!(
                f,
                "\n  report: {r} ({} checks, {} passed)",
                m.checks.len(),
                m.checks.len() - failed
            )?;
        }
        for w in &m.warnings {
            write!(f, "\n  warning: {w}")?;
        }
        Ok(())
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn new_run_id() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", Utc::now().format("%Y%m%dT%H%M%SZ"), &u[..8])
}

/// The id of the last run this process started (for its closing error line).
static LAST_RUN_ID: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// A new run id, remembered as this process's last, and the span (`what`: `run`
/// or `commit`) that puts it on every log line of the run.
fn begin(what: &'static str, ds: NaiveDate) -> (String, tracing::Span) {
    let run_id = new_run_id();
    if let Ok(mut g) = LAST_RUN_ID.lock() {
        *g = Some(run_id.clone());
    }
    let span = match what {
        "commit" => tracing::info_span!("commit", run_id = %run_id, ds = %ds),
        _ => tracing::info_span!("run", run_id = %run_id, ds = %ds),
    };
    (run_id, span)
}

/// The id of the last run this process started, if any.
pub fn last_run_id() -> Option<String> {
    LAST_RUN_ID.lock().ok().and_then(|g| g.clone())
}

/// Runs a job: builds its plan, then executes it. On failure after the output
/// table is known, a manifest with `status: failed` is still written to
/// `<table>/_runs/<run id>.json`.
pub fn run(opts: &RunOptions) -> Result<RunSummary> {
    // Every log line of the run, from any of its threads, carries its id.
    let (run_id, span) = begin("run", opts.ds);
    let _entered = span.enter();
    let (setup, m) = plan::Setup::resolve(opts, run_id)?;
    match RunPlan::assemble(setup, m) {
        Ok(plan) => plan.execute(),
        Err((e, setup, m)) => {
            crate::observe::run_started(&m, &setup.ctx.location);
            Err(setup.fail(*m, e))
        }
    }
}

/// Builds the plan of a run of `opts` and describes it (`scorch run --dry-run`):
/// nothing is written, and a configuration error is the run's error.
pub fn dry_run(opts: &RunOptions) -> Result<DryRun> {
    let (_, span) = begin("run", opts.ds);
    let _entered = span.enter();
    RunPlan::build(opts)?.describe()
}

/// The manifest as JSON. Its fields were redacted when they were set (paths,
/// sources, errors): nothing is replaced in the serialized text, so no key or
/// value can be corrupted by a secret that happens to occur in it.
fn manifest_bytes(m: &Manifest) -> Vec<u8> {
    let text = serde_json::to_string_pretty(m).expect("manifest serializes");
    format!("{text}\n").into_bytes()
}

fn write_manifest(path: &Path, m: &Manifest) -> Result<()> {
    crate::storage::write_file_atomic(path, &manifest_bytes(m))
}
