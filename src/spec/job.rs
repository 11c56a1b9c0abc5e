//! The job YAML: what to read, which model bundle scores it, where the scores go.
//!
//! ```yaml
//! name: churn_daily
//! source:
//!   parquet:
//!     path: data/churn/features/ds={{ ds }}/*.parquet
//! keys: [customer_id]
//! model: models/churn/1.0.0
//! output:
//!   path: output/churn_scores
//! ```
//!
//! Parsing is strict (`deny_unknown_fields` everywhere). [`JobSpec::validate`]
//! is pure: it checks the spec itself and touches nothing on disk; the checks
//! that need files (SQL file present, bundle hashes) live in `crate::validate`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Problems, Result};
use crate::spec::{is_simple_name, limits, load_yaml, template};

/// One scoring job.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Job name: letters, digits, `_`, `-`, `.`. Names the run in logs, manifests and Parquet metadata.
    pub name: String,
    /// Free text for humans; not used by scorch.
    #[serde(default)]
    pub description: Option<String>,
    /// Environment variables whose values are secret (`${NAME}` in any templated
    /// field): recorded as `${NAME}` in manifests, logs, reports and Parquet
    /// metadata. Other variables are settings and are recorded as their values.
    /// Credential fields of profiles and URL passwords are always secret.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Where the rows to score come from.
    pub source: SourceSpec,
    /// Columns copied unchanged from the input to the output, in this order (entity keys).
    /// Together they are unique among the rows a run writes: a duplicate fails the run
    /// (exit 3) unless `output.on_duplicate_keys` says otherwise.
    pub keys: Vec<String>,
    /// The model bundle: a folder (`models/<name>/<version>`, relative to the project
    /// folder) or a registered model, `<name>@<version>` or `<name>@<alias>` (e.g.
    /// `churn@champion`; registry folder `$SCORCH_REGISTRY`, else `models`).
    pub model: String,
    /// The preprocessing this job expects to apply. Optional; when given it must equal the
    /// bundle's pin, else the run stops with exit 4 before reading data.
    #[serde(default)]
    pub preprocessing: Option<PreprocessingPin>,
    /// A data contract (`schemas/<name>.yaml`, relative to the project folder) the
    /// input must satisfy: schema checked before reading, rows that break a rule
    /// quarantined, dataset rules checked before publishing.
    #[serde(default)]
    pub contract: Option<String>,
    /// Column metrics of the input, computed while scoring and written to
    /// `<table>/_runs/<run id>.report.json`. Present (even empty: `report: {}`) to enable.
    #[serde(default)]
    pub report: Option<ReportSpec>,
    /// Where and how the scored table is written.
    pub output: OutputSpec,
    /// Batching and threading of inference.
    #[serde(default)]
    pub inference: InferenceSpec,
    /// An `object_store` profile (in `profiles.yaml`) for the job's `s3://`, `gs://`
    /// and `az://` URLs; without one, credentials come from the standard environment.
    #[serde(default)]
    pub storage_profile: Option<String>,
    /// When the job runs: a crontab expression read in a time zone (for `scorch
    /// schedule`, `scorch crontab` and the Airflow DAG factory).
    #[serde(default)]
    pub schedule: Option<crate::spec::schedule::ScheduleSpec>,
    /// How many shards orchestrators split a date into: the Airflow DAG factory maps
    /// the scoring task over `--shard I/N` and then runs `scorch commit`. Default 1
    /// (one `scorch run`). Each shard writes its report statistics and the commit
    /// merges them into one report. Jobs with `contract:` cannot be sharded.
    #[serde(default = "default_shards")]
    pub shards: usize,
    /// Canary split scoring: a deterministic, hash-selected share of the entities is
    /// scored by a challenger model in the production run.
    #[serde(default)]
    pub rollout: Option<RolloutSpec>,
    /// How `scorch shadow` compares a challenger with this job's model.
    #[serde(default)]
    pub shadow: Option<ShadowSpec>,
    /// Where the true outcomes are, when they arrive: `scorch evaluate` joins them to
    /// past runs' scores (realized performance) and `scorch shadow` judges both
    /// models on them (AUC, log loss, Brier, accuracy).
    #[serde(default)]
    pub labels: Option<LabelsSpec>,
    /// `scorch evaluate` on a schedule: `scorch schedule`, `scorch crontab` and the
    /// Airflow DAG factory run it beside the job's runs (needs `labels:`).
    #[serde(default)]
    pub evaluate: Option<EvaluateSpec>,
}

/// When the job's realized performance is computed from late labels.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateSpec {
    /// When to evaluate, as a job's `schedule`; its `ds_offset_days` is the last
    /// date evaluated, the label lag: `-8` evaluates up to eight days before the
    /// fire's date.
    pub schedule: crate::spec::schedule::ScheduleSpec,
    /// Dates evaluated at each fire, ending at that date, so labels that arrive
    /// late for older dates are picked up again (1 to 366). Default 7.
    #[serde(default = "default_evaluate_window")]
    pub window: u32,
}

fn default_evaluate_window() -> u32 {
    7
}

impl JobSpec {
    /// The job's labels: `labels`, or the older `shadow.labels` (the same setting).
    pub fn labels(&self) -> Option<&LabelsSpec> {
        self.labels
            .as_ref()
            .or_else(|| self.shadow.as_ref().and_then(|s| s.labels.as_ref()))
    }

    /// The job field that holds the labels setting, for messages.
    pub fn labels_field(&self) -> &'static str {
        if self.labels.is_some() {
            "labels"
        } else {
            "shadow.labels"
        }
    }
}

/// Canary split: which entities the challenger scores.
///
/// An entity goes to the challenger when the first 8 bytes of
/// `SHA-256(salt ":" key)`, read as a big-endian integer and divided by 2^64, are
/// below `fraction` (`key`: the key columns' values as text, joined by `|`). The split
/// depends only on the key and the salt, so it is the same in every run.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    /// The challenger model: `<name>@<version>`, `<name>@<alias>` or a bundle folder.
    /// Its score columns must be the job model's.
    pub challenger: String,
    /// Share of entities the challenger scores, 0 to 1.
    pub fraction: f64,
    /// Salt of the hash. A new salt draws a new, independent split.
    pub salt: String,
}

/// What `scorch shadow` writes and how it compares.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowSpec {
    /// Base folder or URL of the shadow table. Default: the output path with `_shadow`
    /// appended. Never the production table.
    #[serde(default)]
    pub output: Option<String>,
    /// The score column compared. Default: the model's first score column.
    #[serde(default)]
    pub score: Option<String>,
    /// Decision thresholds for agreement and accuracy. Default `[0.5]`.
    #[serde(default = "default_thresholds")]
    pub thresholds: Vec<f64>,
    /// Input columns the comparison is broken down by (each value of each column).
    #[serde(default)]
    pub segments: Vec<String>,
    /// The same setting as the job-level `labels` (kept for jobs written before it);
    /// give one of them.
    #[serde(default)]
    pub labels: Option<LabelsSpec>,
    /// Rows listed in the report as the most disagreeing. Default 20.
    #[serde(default = "default_top_disagreements")]
    pub top_disagreements: usize,
    /// Bootstrap resamples for the confidence intervals of metric differences
    /// (Poisson bootstrap, fixed seed). Default 1000; 0 turns them off.
    #[serde(default = "default_bootstrap")]
    pub bootstrap: usize,
    /// Promotion rules: `scorch shadow --promote-if-pass` promotes the challenger only
    /// when every rule holds.
    #[serde(default)]
    pub gate: Vec<crate::spec::gate::GateRule>,
}

impl Default for ShadowSpec {
    fn default() -> Self {
        ShadowSpec {
            output: None,
            score: None,
            thresholds: default_thresholds(),
            segments: vec![],
            labels: None,
            top_disagreements: default_top_disagreements(),
            bootstrap: default_bootstrap(),
            gate: vec![],
        }
    }
}

fn default_shards() -> usize {
    1
}

fn default_thresholds() -> Vec<f64> {
    vec![0.5]
}
fn default_top_disagreements() -> usize {
    20
}
fn default_bootstrap() -> usize {
    1000
}

/// The true outcomes of scored rows, which usually arrive later than the scores.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsSpec {
    /// The label column: 0/1 (integers, floats or digits in text) or booleans; null
    /// or NaN means not labelled yet. Any other value is a data error naming its row.
    pub column: String,
    /// Parquet path, folder or glob of a labels table, rendered for each date
    /// (`{{ ds }}`). A date without label files has no labels (late labels). Without
    /// `path`, the label column is read from the job's input.
    #[serde(default)]
    pub path: Option<String>,
    /// Columns that join the labels table to the scored rows. Default: the job's keys.
    #[serde(default)]
    pub on: Vec<String>,
}

/// The input of a job: exactly one of `parquet`, `sql`, `postgres`, `delta` or `adbc`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSpec {
    /// Parquet files read directly.
    Parquet(ParquetSource),
    /// A SQL query (a file under `sql/`) run by Polars SQL over named Parquet tables.
    Sql(SqlSource),
    /// A SQL query run on a PostgreSQL-protocol warehouse named by a connection profile.
    Postgres(PostgresSource),
    /// A snapshot of a Delta Lake table.
    Delta(DeltaSource),
    /// A SQL query run on a warehouse through an ADBC driver named by a connection profile.
    Adbc(AdbcSource),
}

/// A query on a warehouse reached through an ADBC driver (Snowflake, BigQuery,
/// PostgreSQL, SQLite, Flight SQL, …).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdbcSource {
    /// Name of the connection profile (an `adbc` profile in `profiles.yaml`).
    pub profile: String,
    /// Path of the SQL file, relative to the project folder. `{{ ds }}`,
    /// `{{ ds_add(N) }}`, `{{ ds_nodash }}` and `{{ params.NAME }}` in it are bound
    /// as parameters of the driver's style, never pasted into the text.
    pub query: String,
    /// Values of `{{ params.NAME }}`, bound as text. Templated (`{{ ds }}`, `${ENV}`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// A snapshot of a Delta Lake table (local folder or `s3://`, `gs://`, `az://` URL).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeltaSource {
    /// The table's folder or URL. Templated (`${ENV}`).
    pub path: String,
    /// Read this table version (time travel), e.g. `42` or `${FEATURES_VERSION}`.
    /// Templated. Default: the latest version. Not with `timestamp`.
    #[serde(default)]
    pub version: Option<String>,
    /// Read the table as it was at this time (RFC 3339, e.g.
    /// `{{ ds }}T23:59:59Z`): the last version committed at or before it.
    /// Templated. Not with `version`.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Column → value: rows whose column equals the value (compared as text, e.g.
    /// `ds: "{{ ds }}"`). Filters on partition columns skip the other partitions'
    /// files without reading them; others filter rows. Values are templated.
    #[serde(default)]
    pub filters: BTreeMap<String, String>,
}

impl DeltaSource {
    /// A rendered `version`: a table version. The one parser `scorch validate`
    /// and the run share, so both say the same.
    pub fn parse_version(text: &str) -> Result<u64, String> {
        text.trim()
            .parse::<u64>()
            .map_err(|_| format!("{text:?} is not a table version (0, 1, 2, …)"))
    }

    /// A rendered `timestamp`: an RFC 3339 time (shared like [`Self::parse_version`]).
    pub fn parse_timestamp(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
        chrono::DateTime::parse_from_rfc3339(text.trim())
            .map(|d| d.with_timezone(&chrono::Utc))
            .map_err(|e| format!("{text:?} is not an RFC 3339 time (2026-11-28T23:59:59Z): {e}"))
    }
}

/// A query on a PostgreSQL-protocol warehouse.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    /// Name of the connection profile (in `profiles.yaml`).
    pub profile: String,
    /// Path of the SQL file, relative to the project folder. `{{ ds }}`, `{{ ds_nodash }}`
    /// and `{{ params.NAME }}` in it are bound as parameters, never pasted into the text.
    pub query: String,
    /// Values of `{{ params.NAME }}`, bound as text. Templated (`{{ ds }}`, `${ENV}`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// Parquet files by path, folder or glob.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParquetSource {
    /// A file, a folder (read recursively) or a glob (`*`, `**`, `?`, `[..]`). Templated:
    /// `{{ ds }}`, `{{ ds_nodash }}`, `${ENV}`.
    pub path: String,
    /// Turn `name=value` folders in the path (`ds=2026-11-28/`) into columns.
    #[serde(default = "default_true")]
    pub hive_partitioning: bool,
}

/// A query over named Parquet tables (the embedded default warehouse).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlSource {
    /// Path of the SQL file, relative to the project folder (by convention under `sql/`).
    /// The file may use `{{ ds }}` and `{{ ds_nodash }}`, rendered as SQL string literals' contents.
    pub query: String,
    /// Table name → Parquet path, folder or glob (templated like `parquet.path`). Hive
    /// partition folders become columns, so a query can filter on `ds`.
    pub tables: BTreeMap<String, String>,
}

/// What the run report covers.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Input columns to profile; empty (the default): every column the run reads.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Quality checks on the metrics, each `warn` or `fail`.
    #[serde(default)]
    pub checks: Vec<crate::spec::report::CheckSpec>,
    /// Drift against the model bundle's reference profile (`scorch profile`).
    #[serde(default)]
    pub drift: Option<DriftSpec>,
    /// Anomaly checks of this run's metrics against the table's metrics history.
    #[serde(default)]
    pub anomalies: Vec<crate::spec::report::AnomalySpec>,
    /// The model's performance estimated from its scores alone (CBPE), with the
    /// calibration map `scorch profile --labels` stored in the bundle's reference
    /// profile. Present (even empty: `performance: {}`) to enable.
    #[serde(default)]
    pub performance: Option<crate::spec::report::PerformanceSpec>,
    /// MiB of memory the exact value frequencies (`distinct`, `uniqueness`,
    /// `unique_value_ratio`) of all profiled columns may hold together; past it they
    /// spill to sorted run files in the run's staging folder and stay exact at any
    /// row count. Default 256.
    #[serde(default = "default_memory_budget_mb")]
    pub memory_budget_mb: usize,
}

fn default_memory_budget_mb() -> usize {
    crate::spec::report::DEFAULT_MEMORY_BUDGET_MB
}

impl Default for ReportSpec {
    fn default() -> Self {
        ReportSpec {
            columns: vec![],
            checks: vec![],
            drift: None,
            anomalies: vec![],
            performance: None,
            memory_budget_mb: default_memory_budget_mb(),
        }
    }
}

/// Drift thresholds. PSI is always judged; the other statistics are judged only
/// when their thresholds are set. A column's status is the worst of its verdicts.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriftSpec {
    /// A column whose PSI reaches this is flagged (`warn`). Default 0.1.
    #[serde(default = "default_psi_warn")]
    pub psi_warn: f64,
    /// A column whose PSI reaches this fails the run (exit 5, after writing). Default 0.25.
    #[serde(default = "default_psi_fail")]
    pub psi_fail: f64,
    /// Flag a numeric column whose Kolmogorov–Smirnov statistic reaches this. Default: not judged.
    #[serde(default)]
    pub ks_warn: Option<f64>,
    /// Fail the run when a numeric column's KS statistic reaches this. Default: not judged.
    #[serde(default)]
    pub ks_fail: Option<f64>,
    /// Flag a numeric column whose Wasserstein-1 distance, divided by the reference's
    /// standard deviation, reaches this (Evidently's default threshold is 0.1). Default: not judged.
    #[serde(default)]
    pub wasserstein_warn: Option<f64>,
    /// Fail the run when a numeric column's normalised Wasserstein distance reaches this. Default: not judged.
    #[serde(default)]
    pub wasserstein_fail: Option<f64>,
    /// Flag a column whose Jensen–Shannon distance reaches this. Default: not judged.
    #[serde(default)]
    pub js_warn: Option<f64>,
    /// Fail the run when a column's Jensen–Shannon distance reaches this. Default: not judged.
    #[serde(default)]
    pub js_fail: Option<f64>,
    /// Multivariate drift: the mean PCA reconstruction error of the model's feature
    /// matrix against the band from the reference profile's chunk-to-chunk spread.
    /// It catches a changed correlation between features that every per-column
    /// statistic misses. Present (even empty: `multivariate: {}`) to enable; the
    /// bundle's reference profile must come from `scorch profile` of this version.
    #[serde(default)]
    pub multivariate: Option<MultivariateSpec>,
}

/// How multivariate drift is judged.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MultivariateSpec {
    /// Half-width of the band in standard deviations of the reference chunks' mean
    /// errors, scaled to the run's row count. Default 3 (NannyML's).
    #[serde(default = "default_sigmas")]
    pub sigmas: f64,
    /// The band is at least this share of the reference's mean error either side,
    /// e.g. `0.02`: on millions of rows the statistical band gets so narrow that a
    /// harmless change fires it. Default 0.
    #[serde(default)]
    pub min_width: f64,
    /// What an error outside the band does: `warn` (the default) or `fail` (exit 5
    /// after writing).
    #[serde(default = "default_warn")]
    pub severity: crate::spec::report::Severity,
}

impl Default for MultivariateSpec {
    fn default() -> Self {
        MultivariateSpec {
            sigmas: default_sigmas(),
            min_width: 0.0,
            severity: default_warn(),
        }
    }
}

fn default_sigmas() -> f64 {
    3.0
}
fn default_warn() -> crate::spec::report::Severity {
    crate::spec::report::Severity::Warn
}

impl Default for DriftSpec {
    fn default() -> Self {
        DriftSpec {
            psi_warn: default_psi_warn(),
            psi_fail: default_psi_fail(),
            ks_warn: None,
            ks_fail: None,
            wasserstein_warn: None,
            wasserstein_fail: None,
            js_warn: None,
            js_fail: None,
            multivariate: None,
        }
    }
}

fn default_psi_warn() -> f64 {
    0.1
}
fn default_psi_fail() -> f64 {
    0.25
}

/// Where the scored table goes.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Base folder of the output table; the run writes the partition `<path>/ds=<date>/`.
    /// Templated (`${ENV}` only makes sense here; dates go in the partition).
    pub path: String,
    /// The table format: `parquet` (the default: hive folders of Parquet files, each
    /// partition published with its `_manifest.json`) or `delta` (a Delta Lake table,
    /// partitioned by `ds`: each run replaces its date's files in one Delta
    /// transaction that Spark, Databricks, Trino, DuckDB and Polars read).
    #[serde(default)]
    pub format: OutputFormat,
    /// zstd compression level, 1 (fast) to 22 (small).
    #[serde(default = "default_zstd_level")]
    pub zstd_level: i32,
    /// Rows per Parquet row group.
    #[serde(default = "default_row_group_size")]
    pub row_group_size: usize,
    /// Start a new data file (`part-00001.parquet`, …) once the current one reaches this
    /// many MiB. Files roll over between chunks, so a file may exceed it by one chunk.
    #[serde(default = "default_max_file_mb")]
    pub max_file_mb: u64,
    /// Publish a run that read no rows. By default such a run fails with exit 3 and
    /// leaves the partition as it was (an empty query result or an emptied upstream
    /// table would otherwise replace yesterday's scores with nothing).
    #[serde(default)]
    pub allow_empty: bool,
    /// Fail (exit 3, nothing published) when the run would write fewer rows than
    /// this share of the rows of the partition it replaces, e.g. `0.5`: a half-empty
    /// upstream load does not silently replace a full partition. Between 0 and 1.
    #[serde(default)]
    pub min_rows_ratio: Option<f64>,
    /// What a key (`keys:`) that occurs more than once among the rows written does:
    /// `fail` (the default: exit 3 before anything is published, naming the key and
    /// its count), `warn` (publish, and list the duplicates in the manifest's
    /// warnings) or `off` (no check). Checked exactly at any row count, in the
    /// scoring pass; rows with a null key column are not keys and not counted.
    #[serde(default)]
    pub on_duplicate_keys: OnDuplicateKeys,
    /// MiB of memory the key check may hold before it spills its counts to sorted
    /// run files in the run's staging folder. Default 128.
    #[serde(default = "default_keys_memory_mb")]
    pub keys_memory_mb: usize,
}

fn default_keys_memory_mb() -> usize {
    128
}

/// What a duplicated key does (`output.on_duplicate_keys`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnDuplicateKeys {
    /// Exit 3 before publishing.
    #[default]
    Fail,
    /// Publish; the duplicates are warnings in the manifest and the summary.
    Warn,
    /// Do not check.
    Off,
}

/// The format of an output table.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// Hive-partitioned Parquet folders, each published with a `_manifest.json`.
    #[default]
    Parquet,
    /// A Delta Lake table partitioned by `ds`, committed through its `_delta_log/`.
    Delta,
}

/// How inference is run.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InferenceSpec {
    /// Rows per forward call. 1–8K rows are fastest for small MLPs on CPU.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Worker threads that run batches in parallel (each with one libtorch intra-op
    /// thread). 0 = one per available core.
    #[serde(default)]
    pub threads: usize,
    /// `cpu`, `auto` (CUDA when available, else CPU), `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Rows read, preprocessed, scored and written together. Bounds the run's memory:
    /// peak memory grows with this, not with the input. (PostgreSQL sources use the
    /// profile's `fetch_rows` instead.)
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
    /// The floating-point type the model runs in: `f32` (default, as exported),
    /// `bf16` or `f16`. Lower precision is faster on GPUs with tensor cores and changes
    /// scores slightly (docs/concepts/engine.md has measured differences).
    #[serde(default = "default_precision")]
    pub precision: String,
    /// What a NaN or infinite score from the model does: `fail` (default: exit 4
    /// naming the score column, row and key; nothing is published) or `null` (the
    /// score is written as null and counted in the manifest's `rows.null_scores`).
    #[serde(default)]
    pub invalid_scores: InvalidScores,
}

/// The policy for NaN or infinite model outputs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum InvalidScores {
    #[default]
    Fail,
    Null,
}

impl Default for InferenceSpec {
    fn default() -> Self {
        Self {
            batch_size: default_batch_size(),
            threads: 0,
            device: default_device(),
            chunk_rows: default_chunk_rows(),
            precision: default_precision(),
            invalid_scores: InvalidScores::Fail,
        }
    }
}

/// The preprocessing a job expects; compared with the bundle's pin.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PreprocessingPin {
    /// Spec name (`name:` in the preprocessing YAML).
    pub name: String,
    /// Spec version (`version:` in the preprocessing YAML).
    pub version: String,
    /// Optional content hash of the fitted state (`sha256:...`), for the strictest pin.
    #[serde(default)]
    pub state_hash: Option<String>,
}

fn default_true() -> bool {
    true
}
fn default_zstd_level() -> i32 {
    3
}
fn default_row_group_size() -> usize {
    128 * 1024
}
fn default_batch_size() -> usize {
    4096
}
fn default_chunk_rows() -> usize {
    128 * 1024
}
fn default_precision() -> String {
    "f32".to_string()
}
fn default_max_file_mb() -> u64 {
    512
}
fn default_device() -> String {
    "cpu".to_string()
}

impl JobSpec {
    /// Reads and validates a job file (no other file is touched).
    pub fn load(path: &Path) -> Result<Self> {
        let job: JobSpec = load_yaml(path)?;
        job.validate().into_result(path)?;
        Ok(job)
    }

    /// Pure checks of the spec: names, templates, numeric ranges. Returns every
    /// problem. Each section checks itself (vector-style); this composes them and
    /// adds the rules that span sections.
    pub fn validate(&self) -> Problems {
        let mut p = Problems::new();
        if !is_simple_name(&self.name) {
            p.push(
                "name",
                format!(
                    "{:?} must be 1-128 letters, digits, `_`, `-` or `.`",
                    self.name
                ),
            );
        }
        self.source.validate(&mut p);
        self.validate_keys(&mut p);
        template_field(&mut p, "model", &self.model);
        self.output.validate(&mut p);
        self.inference.validate(&mut p);
        if let Err(e) = limits::SHARDS.check(self.shards as u64) {
            p.push("shards", e);
        }
        if self.output.format == OutputFormat::Delta && self.shards > 1 {
            p.push(
                "shards",
                "a Delta output (`output.format: delta`) is written by one run per date; \
                 sharded runs (`shards` > 1) commit Parquet tables only. Set `shards: 1`, or \
                 write `format: parquet`",
            );
        }
        if self.shards > 1 && self.contract.is_some() {
            p.push(
                "shards",
                "sharded jobs cannot have `contract:` (its unique keys and quarantine span the \
                 whole date); drop `contract:` or `shards:`",
            );
        }
        if let Some(r) = &self.report {
            r.validate(&mut p);
        }
        if let Some(sc) = &self.schedule
            && let Err(e) = sc.validate()
        {
            p.push("schedule", e);
        }
        if let Some(ev) = &self.evaluate {
            ev.validate(&mut p);
            if self.labels().is_none() {
                p.push(
                    "evaluate",
                    "needs the job's `labels:` (where the outcomes arrive)",
                );
            }
        }
        if let Some(r) = &self.rollout {
            r.validate(&mut p);
        }
        if let Some(sh) = &self.shadow {
            sh.validate(&mut p, &self.output.path);
            if sh.labels.is_some() && self.labels.is_some() {
                p.push(
                    "shadow.labels",
                    "the job also has `labels`: give the labels once, as the job-level `labels`",
                );
            }
        }
        if let Some(l) = self.labels() {
            l.validate(&mut p, self.labels_field());
        }
        if let Some(pin) = &self.preprocessing {
            pin.validate(&mut p);
        }
        p
    }

    /// `keys` (present, each once, none scorch writes itself) and `secrets`
    /// (environment variable names).
    fn validate_keys(&self, p: &mut Problems) {
        if self.keys.is_empty() {
            p.push(
                "keys",
                "name at least one key column to carry to the output",
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for k in &self.keys {
            if !seen.insert(k) {
                p.push("keys", format!("column `{k}` is listed twice"));
            }
            if crate::spec::RESERVED_COLUMNS.contains(&k.as_str()) {
                p.push(
                    "keys",
                    format!("`{k}` is a column scorch writes itself; rename it in the source"),
                );
            }
        }
        for v in &self.secrets {
            if v.is_empty()
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || v.starts_with(|c: char| c.is_ascii_digit())
            {
                p.push(
                    "secrets",
                    format!("`{v}` is not an environment variable name (letters, digits, `_`)"),
                );
            }
        }
    }
}

/// A templated field: not empty, and its `{{ }}` / `${}` parts well formed.
fn template_field(p: &mut Problems, field: &str, v: &str) {
    if v.trim().is_empty() {
        p.push(field, "must not be empty");
    } else if let Err(e) = template::check_syntax(v) {
        p.push(field, e);
    }
}

impl SourceSpec {
    /// Pure checks of `source:` (fields `source.<kind>.…`).
    pub fn validate(&self, p: &mut Problems) {
        let tmpl = template_field;
        match self {
            SourceSpec::Parquet(s) => tmpl(p, "source.parquet.path", &s.path),
            SourceSpec::Delta(s) => {
                tmpl(p, "source.delta.path", &s.path);
                if s.version.is_some() && s.timestamp.is_some() {
                    p.push(
                        "source.delta",
                        "give `version` or `timestamp`, not both: they both pick the snapshot",
                    );
                }
                if let Some(v) = &s.version {
                    tmpl(p, "source.delta.version", v);
                }
                if let Some(t) = &s.timestamp {
                    tmpl(p, "source.delta.timestamp", t);
                }
                for (k, v) in &s.filters {
                    tmpl(p, &format!("source.delta.filters.{k}"), v);
                }
            }
            SourceSpec::Postgres(s) => {
                warehouse(p, "postgres", &s.profile, &s.query, &s.params);
            }
            SourceSpec::Adbc(s) => warehouse(p, "adbc", &s.profile, &s.query, &s.params),
            SourceSpec::Sql(s) => {
                tmpl(p, "source.sql.query", &s.query);
                if s.tables.is_empty() {
                    p.push(
                        "source.sql.tables",
                        "name at least one table the query reads",
                    );
                }
                for (name, path) in &s.tables {
                    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        || name.starts_with(|c: char| c.is_ascii_digit())
                    {
                        p.push(
                            format!("source.sql.tables.{name}"),
                            "table names are letters, digits and `_`, not starting with a digit",
                        );
                    }
                    tmpl(p, &format!("source.sql.tables.{name}"), path);
                }
            }
        }
    }
}

/// A warehouse source (`source.postgres`, `source.adbc`): a profile, a query,
/// templated parameters.
fn warehouse(
    p: &mut Problems,
    kind: &str,
    profile: &str,
    query: &str,
    params: &BTreeMap<String, String>,
) {
    if profile.trim().is_empty() {
        p.push(format!("source.{kind}.profile"), "must name a profile");
    }
    template_field(p, &format!("source.{kind}.query"), query);
    for (k, v) in params {
        template_field(p, &format!("source.{kind}.params.{k}"), v);
    }
}

impl OutputSpec {
    /// Pure checks of `output:`.
    pub fn validate(&self, p: &mut Problems) {
        template_field(p, "output.path", &self.path);
        if !(1..=22).contains(&self.zstd_level) {
            p.push("output.zstd_level", "must be between 1 and 22");
        }
        if self.row_group_size == 0 {
            p.push("output.row_group_size", "must be at least 1");
        }
        if let Err(m) = limits::MEMORY_MB.check(self.keys_memory_mb as u64) {
            p.push("output.keys_memory_mb", m);
        }
        if self.max_file_mb == 0 {
            p.push("output.max_file_mb", "must be at least 1");
        }
        if let Some(r) = self.min_rows_ratio
            && !(0.0..=1.0).contains(&r)
        {
            p.push("output.min_rows_ratio", "must be between 0 and 1");
        }
    }
}

impl InferenceSpec {
    /// Pure checks of `inference:` (the bounds `--threads`, `--batch-size` and the
    /// other flags share, `crate::spec::limits`).
    pub fn validate(&self, p: &mut Problems) {
        for (field, range, v) in [
            ("inference.batch_size", limits::BATCH_SIZE, self.batch_size),
            ("inference.threads", limits::THREADS, self.threads),
            ("inference.chunk_rows", limits::CHUNK_ROWS, self.chunk_rows),
        ] {
            if let Err(e) = range.check(v as u64) {
                p.push(field, e);
            }
        }
        if let Err(e) = crate::spec::inference::Precision::parse(&self.precision) {
            p.push("inference.precision", e);
        }
        if let Err(e) = crate::spec::inference::DeviceChoice::parse(&self.device) {
            p.push("inference.device", e);
        }
    }
}

impl ReportSpec {
    /// Pure checks of `report:`: drift thresholds, checks, performance, anomalies,
    /// the memory budget.
    pub fn validate(&self, p: &mut Problems) {
        if let Some(d) = &self.drift {
            d.validate(p);
        }
        for (i, c) in self.checks.iter().enumerate() {
            if let Err(e) = c.validate() {
                p.push(format!("report.checks[{i}]"), e);
            } else if c.is_performance() && self.performance.is_none() {
                p.push(
                    format!("report.checks[{i}]"),
                    "an estimated performance metric needs `report.performance` \
                     (e.g. `performance: {}`)",
                );
            }
        }
        if let Some(perf) = &self.performance
            && let Err(e) = perf.validate()
        {
            p.push("report.performance", e);
        }
        for (i, a) in self.anomalies.iter().enumerate() {
            if let Err(e) = a.validate() {
                p.push(format!("report.anomalies[{i}]"), e);
            }
        }
        if let Err(m) = limits::MEMORY_MB.check(self.memory_budget_mb as u64) {
            p.push("report.memory_budget_mb", m);
        }
    }
}

impl DriftSpec {
    /// Pure checks of `report.drift:`: each warn threshold at most its fail one.
    pub fn validate(&self, p: &mut Problems) {
        if !(self.psi_warn >= 0.0 && self.psi_warn <= self.psi_fail) {
            p.push("report.drift", "needs 0 <= psi_warn <= psi_fail");
        }
        for (name, w, f) in [
            ("ks", self.ks_warn, self.ks_fail),
            ("wasserstein", self.wasserstein_warn, self.wasserstein_fail),
            ("js", self.js_warn, self.js_fail),
        ] {
            if let (Some(w), Some(f)) = (w, f)
                && !(0.0 <= w && w <= f)
            {
                p.push(
                    "report.drift",
                    format!("needs 0 <= {name}_warn <= {name}_fail"),
                );
            }
        }
        if let Some(m) = &self.multivariate {
            if !(m.sigmas.is_finite() && m.sigmas > 0.0) {
                p.push(
                    "report.drift.multivariate.sigmas",
                    format!("{} is not a positive number", m.sigmas),
                );
            }
            if !(m.min_width.is_finite() && m.min_width >= 0.0) {
                p.push(
                    "report.drift.multivariate.min_width",
                    format!("{} is not a number >= 0", m.min_width),
                );
            }
        }
    }
}

impl EvaluateSpec {
    /// Pure checks of `evaluate:` (its schedule and window).
    pub fn validate(&self, p: &mut Problems) {
        if let Err(e) = self.schedule.validate() {
            p.push("evaluate.schedule", e);
        }
        if !(1..=366).contains(&self.window) {
            p.push(
                "evaluate.window",
                format!("{} is not between 1 and 366", self.window),
            );
        }
    }
}

impl RolloutSpec {
    /// Pure checks of `rollout:`.
    pub fn validate(&self, p: &mut Problems) {
        template_field(p, "rollout.challenger", &self.challenger);
        if !(0.0..=1.0).contains(&self.fraction) {
            p.push("rollout.fraction", "must be between 0 and 1");
        }
        if self.salt.is_empty() {
            p.push(
                "rollout.salt",
                "must not be empty (any text; a new salt draws a new split)",
            );
        }
    }
}

impl ShadowSpec {
    /// Pure checks of `shadow:`; `output_path` is the production table's
    /// template, which the shadow table must not be.
    pub fn validate(&self, p: &mut Problems, output_path: &str) {
        if let Some(o) = &self.output {
            template_field(p, "shadow.output", o);
            if o.trim_end_matches('/') == output_path.trim_end_matches('/') {
                p.push(
                    "shadow.output",
                    "must not be the production table (`output.path`)",
                );
            }
        }
        if self.thresholds.is_empty() {
            p.push(
                "shadow.thresholds",
                "list one or more thresholds between 0 and 1",
            );
        } else if let Err(e) = super::limits::thresholds(&self.thresholds) {
            p.push("shadow.thresholds", e);
        }
        for (i, g) in self.gate.iter().enumerate() {
            if let Err(e) = g.validate() {
                p.push(format!("shadow.gate[{i}]"), e);
            }
        }
    }
}

impl LabelsSpec {
    /// Pure checks of the labels setting, found at `field` (`labels` or `shadow.labels`).
    pub fn validate(&self, p: &mut Problems, field: &str) {
        if self.column.is_empty() {
            p.push(format!("{field}.column"), "must name the label column");
        }
        if let Some(path) = &self.path {
            template_field(p, &format!("{field}.path"), path);
        } else if !self.on.is_empty() {
            p.push(
                format!("{field}.on"),
                format!("only applies with `{field}.path`"),
            );
        }
    }
}

impl PreprocessingPin {
    /// Pure checks of `preprocessing:` (the pin).
    pub fn validate(&self, p: &mut Problems) {
        if self.name.is_empty() {
            p.push("preprocessing.name", "must not be empty");
        }
        if self.version.is_empty() {
            p.push("preprocessing.version", "must not be empty");
        }
        if let Some(h) = &self.state_hash
            && !crate::spec::is_hash(h)
        {
            p.push(
                "preprocessing.state_hash",
                "must look like `sha256:<64 hex digits>`",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse_yaml;

    fn parse(y: &str) -> Result<JobSpec> {
        parse_yaml(Path::new("jobs/t.yaml"), y)
    }

    const OK: &str = "name: t\nsource:\n  parquet:\n    path: data/ds={{ ds }}/*.parquet\nkeys: [id]\nmodel: models/m/1\noutput:\n  path: out\n";

    #[test]
    fn parses_minimal_job_with_defaults() {
        let j = parse(OK).unwrap();
        assert!(j.validate().is_empty());
        assert_eq!(j.inference.batch_size, 4096);
        assert_eq!(j.output.zstd_level, 3);
        assert!(matches!(j.source, SourceSpec::Parquet(ref p) if p.hive_partitioning));
    }

    #[test]
    fn unknown_field_is_an_error_naming_it() {
        let e = parse(&format!("{OK}colour: red\n")).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::ExitCode::Config);
        let msg = e.to_string();
        assert!(msg.contains("colour"), "{msg}");
        assert!(msg.contains("jobs/t.yaml"), "{msg}");
    }

    #[test]
    fn validate_reports_every_problem() {
        let y = OK
            .replace("name: t", "name: 'bad name'")
            .replace("keys: [id]", "keys: [id, id, model_version]")
            + "inference:\n  batch_size: 0\n  device: tpu\n";
        let p = parse(&y).unwrap().validate();
        let e = p.into_result(Path::new("j.yaml")).unwrap_err().to_string();
        for needle in [
            "`name`",
            "listed twice",
            "model_version",
            "inference.batch_size",
            "inference.device",
        ] {
            assert!(e.contains(needle), "{needle} missing in {e}");
        }
    }
}
