//! The run manifest: one JSON document per run recording what was read, with
//! which model and preprocessing, what was written, how long each stage took and
//! how the run ended. Secrets never appear in it (paths are redacted).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::source::InputFile;

/// Version of the manifest layout.
pub const MANIFEST_VERSION: u32 = 1;

/// How a run (or a commit, or a backfill's date) ended, written as today's
/// strings (`succeeded`, `checks_failed`, …) so manifests and run histories stay
/// readable by every reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started and not finished (a manifest of a run that was killed stays so).
    Running,
    /// Published; every check held.
    Succeeded,
    /// Published with a failing check (`on_fail: fail` exits 5), or not
    /// published because the quality gate failed.
    ChecksFailed,
    /// Ended in error; nothing published.
    Failed,
    /// Not run: the date was already committed (backfill), or the schedule skipped it.
    Skipped,
}

impl RunStatus {
    /// Every status, in the order metrics list them.
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::ChecksFailed,
        RunStatus::Running,
        RunStatus::Skipped,
    ];

    /// The status as manifests and histories write it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::ChecksFailed => "checks_failed",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
        }
    }

    /// The status of a run that ended with `e`: `checks_failed` for the quality
    /// gate (exit 5), else `failed`.
    pub fn of_error(e: &crate::error::Error) -> RunStatus {
        if e.exit_code() == crate::error::ExitCode::QualityGate {
            RunStatus::ChecksFailed
        } else {
            RunStatus::Failed
        }
    }

    /// The status of a run process that exited with `code` (`None`: killed).
    pub fn of_exit_code(code: Option<i32>) -> RunStatus {
        match code {
            Some(0) => RunStatus::Succeeded,
            Some(c) if c == crate::error::ExitCode::QualityGate.code() => RunStatus::ChecksFailed,
            _ => RunStatus::Failed,
        }
    }

    /// Whether a partition with this status is published (its rows are live).
    pub fn is_published(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::ChecksFailed)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so `{:<13}` aligns it.
        f.pad(self.as_str())
    }
}

impl Manifest {
    /// The manifest of a run that is starting: status `running`, started now,
    /// nothing read or written yet.
    pub fn start(
        run_id: String,
        kind: &'static str,
        job: JobInfo,
        ds: chrono::NaiveDate,
        inference: InferenceInfo,
    ) -> Manifest {
        Manifest {
            manifest_version: MANIFEST_VERSION,
            scorch_version: env!("CARGO_PKG_VERSION"),
            run_id,
            kind,
            job,
            ds: ds.format("%Y-%m-%d").to_string(),
            status: RunStatus::Running,
            exit_code: 0,
            error: None,
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            finished_at: String::new(),
            model: None,
            preprocessing: None,
            challenger: None,
            shard: None,
            rollout: None,
            source: None,
            source_version: None,
            inputs: vec![],
            rows: RowCounts::default(),
            stages: BTreeMap::new(),
            rows_per_second: BTreeMap::new(),
            output: None,
            report: None,
            report_html: None,
            checks: vec![],
            warnings: vec![],
            contract: None,
            keys: None,
            inference,
        }
    }

    /// Records how a run ended in error: status (`checks_failed` for the quality
    /// gate, else `failed`), exit code and the redacted message.
    pub fn record_failure(
        &mut self,
        e: &crate::error::Error,
        red: &crate::spec::template::Redactor,
    ) {
        self.status = RunStatus::of_error(e);
        self.exit_code = e.exit_code().code();
        self.error = Some(red.redact(&e.to_string()));
    }
}

/// What readers of a published partition's `_manifest.json` rely on, read into a
/// typed struct: a missing or mistyped field is an error, never a default.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishedManifest {
    pub run_id: String,
    /// `succeeded` or `checks_failed` for a published partition.
    pub status: RunStatus,
    pub rows: PublishedRows,
}

/// The row counts of a published partition: a run's `rows` object, or the row
/// total of a commit of shards.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PublishedRows {
    Run { written: u64 },
    Commit(u64),
}

impl PublishedRows {
    /// Rows in the partition.
    pub fn written(&self) -> u64 {
        match self {
            PublishedRows::Run { written } | PublishedRows::Commit(written) => *written,
        }
    }
}

impl PublishedManifest {
    /// Parses the manifest of partition `what` (named in the error).
    pub fn parse(bytes: &[u8], what: &str) -> crate::error::Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| {
            crate::error::Error::DataContract(format!(
                "the manifest of {what} cannot be read: {e} (was it written by scorch?)"
            ))
        })
    }
}

/// What a commit reads from a shard's manifest, typed: a missing or mistyped
/// field fails the commit naming the shard, never counts as zero.
#[derive(Debug, Clone, Deserialize)]
pub struct ShardManifest {
    pub run_id: String,
    pub status: RunStatus,
    pub job: ReadJob,
    pub model: ReadModel,
    pub shard: ShardInfo,
    /// Every input file of the date (all shards list the same files).
    pub inputs: Vec<InputFile>,
    pub rows: ReadRows,
    pub output: ReadOutput,
}

impl ShardManifest {
    /// Parses the manifest of the shard at `what` (named in the error).
    pub fn parse(bytes: &[u8], what: &str) -> crate::error::Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| {
            crate::error::Error::DataContract(format!(
                "{what}: not a shard manifest of this scorch version: {e}; rerun that shard"
            ))
        })
    }
}

/// The job of a manifest being read back.
#[derive(Debug, Clone, Deserialize)]
pub struct ReadJob {
    /// Hex SHA-256 of the job file.
    pub sha256: String,
}

/// The model of a manifest being read back.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ReadModel {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// The row counts of a run's manifest being read back.
#[derive(Debug, Clone, Deserialize)]
pub struct ReadRows {
    pub read: u64,
    pub written: u64,
}

/// The output of a run's manifest being read back.
#[derive(Debug, Clone, Deserialize)]
pub struct ReadOutput {
    pub files: Vec<ReadFile>,
}

/// One output file of a manifest being read back.
#[derive(Debug, Clone, Deserialize)]
pub struct ReadFile {
    pub path: String,
    pub bytes: u64,
    pub rows: u64,
}

/// A published partition's manifest as far as "was this commit already done"
/// needs it: run manifests (kind `run`) have no shards.
#[derive(Debug, Clone, Deserialize)]
pub struct PublishedCommit {
    pub kind: String,
    pub run_id: String,
    pub job: ReadJob,
    #[serde(default)]
    pub shards: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub scorch_version: &'static str,
    pub run_id: String,
    /// `run` (a production run) or `shadow` (a `scorch shadow` date, written to the shadow table).
    pub kind: &'static str,
    pub job: JobInfo,
    /// The logical date, `YYYY-MM-DD`.
    pub ds: String,
    /// How the run ended.
    pub status: RunStatus,
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<PreprocessingInfo>,
    /// The second model: the shadow run's challenger or the canary's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenger: Option<ModelInfo>,
    /// The shard of a sharded run (`--shard I/N`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// The canary split, when the job has `rollout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The table version the source read (a Delta source): the exact snapshot scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<u64>,
    pub inputs: Vec<InputFile>,
    pub rows: RowCounts,
    /// Seconds per stage: read, preprocess, tensorize, infer, write, total.
    pub stages: BTreeMap<&'static str, f64>,
    /// Input rows per second of each stage's own time (and end to end for `total`).
    pub rows_per_second: BTreeMap<&'static str, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputInfo>,
    pub inference: InferenceInfo,
    /// Quality checks and their outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::reports::CheckResult>,
    /// Warnings (checks of severity warn that did not hold).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The run report (`report.json`), when the job asks for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// The same report as a self-contained page (`report.html`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_html: Option<String>,
    /// The data contract applied, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<ContractInfo>,
    /// The exact check that the job's `keys` are unique among the rows written
    /// (`output.on_duplicate_keys`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<crate::reports::keys::KeyReport>,
}

/// The data contract of a run and where its quarantined rows went.
#[derive(Debug, Clone, Serialize)]
pub struct ContractInfo {
    pub name: String,
    pub file: String,
    /// The quarantine file (only when rows were quarantined).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobInfo {
    pub name: String,
    pub file: String,
    /// Hex SHA-256 of the job file as read.
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub bundle: String,
    pub sha256: String,
    pub format: String,
}

/// A sharded run's share of the input.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ShardInfo {
    pub index: usize,
    pub count: usize,
    /// Rows `[row_start, row_end)` of the input, in file order.
    pub row_start: u64,
    pub row_end: u64,
    pub total_rows: u64,
}

/// A canary split and how many rows each model scored.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutInfo {
    pub fraction: f64,
    pub salt: String,
    pub rows_champion: u64,
    pub rows_challenger: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreprocessingInfo {
    pub name: String,
    pub version: String,
    pub state_hash: String,
    /// `fused` (one pass into the model input) or `polars` (expressions, then tensorize).
    pub path: &'static str,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RowCounts {
    pub read: u64,
    pub scored: u64,
    pub written: u64,
    /// Rows the data contract set aside (not scored).
    pub quarantined: u64,
    /// Score values written as null because the model returned NaN or infinity
    /// (`inference.invalid_scores: null`).
    #[serde(skip_serializing_if = "is_zero")]
    pub null_scores: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputInfo {
    pub table: String,
    pub partition: String,
    pub files: Vec<OutputFile>,
    pub columns: Vec<String>,
    /// The Delta table version this run committed (`output.format: delta`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta_version: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputFile {
    pub path: String,
    pub bytes: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InferenceInfo {
    pub device: String,
    /// Inference workers (batches scored at once on CPU).
    pub threads: usize,
    pub batch_size: usize,
    /// Rows per pipeline chunk.
    pub chunk_rows: usize,
    /// `f32`, `bf16` or `f16`.
    pub precision: String,
}

impl Manifest {
    /// Fills `rows_per_second` from `stages` and the rows read.
    pub fn compute_throughput(&mut self) {
        let rows = self.rows.read as f64;
        self.rows_per_second = self
            .stages
            .iter()
            .map(|(k, secs)| {
                (
                    *k,
                    if *secs > 0.0 {
                        (rows / secs).round()
                    } else {
                        0.0
                    },
                )
            })
            .collect();
    }
}
