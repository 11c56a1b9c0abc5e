//! Command-line interface. Every flag is documented where it is defined; `main`
//! only parses, sets up logging and maps the result to an exit code.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::error::{Error, ExitCode, Result};
pub use crate::observe::logging::{LogFormat, init_logging};

/// scorch — batch scoring job runner: job YAML → Parquet/SQL → versioned Polars
/// preprocessing → LibTorch → Parquet table.
#[derive(Debug, Parser)]
#[command(name = "scorch", version, max_term_width = 100, after_help = ExitCode::help())]
pub struct Cli {
    /// Log format on stderr: `human` (default) or `json` (one object per line).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// More log output (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors on stderr; no closing summary.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Write each run's Prometheus metrics to DIR/scorch_<job>.prom (for
    /// node_exporter's textfile collector). Default `$SCORCH_METRICS_DIR`.
    #[arg(long, global = true, value_name = "DIR")]
    pub metrics_dir: Option<PathBuf>,
    /// Send OpenLineage run events (START, COMPLETE, FAIL) to an http(s) URL (POST
    /// <url>/api/v1/lineage) or append them to a file. Default `$SCORCH_LINEAGE`,
    /// else `$OPENLINEAGE_URL`.
    #[arg(long, global = true, value_name = "URL_OR_FILE")]
    pub lineage: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a new project folder: a job, a preprocessing spec, profiles.yaml, a small
    /// sample input and a starter model bundle. It validates clean and runs as is.
    Init {
        /// The new folder (must not exist, or be empty).
        dir: PathBuf,
    },
    /// Run a job for one date: read, preprocess, score, write the partition and manifest.
    Run(RunArgs),
    /// Check jobs, model bundles, preprocessing specs and data contracts without reading data.
    Validate(ValidateArgs),
    /// Fit or apply a preprocessing spec.
    #[command(subcommand)]
    Preprocess(PreprocessCommand),
    /// Profile training data into a model bundle (the reference for drift reports).
    Profile(ProfileArgs),
    /// The model registry: list, show, register, promote, rollback.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Make a model bundle from a model file and a fitted state, or check one.
    #[command(subcommand)]
    Bundle(BundleCommand),
    /// Assemble the shards of a sharded run (`run --shard I/N`) into the partition and
    /// publish it atomically.
    Commit(CommitArgs),
    /// Show the lock of a job's partition (or shard) and remove it when its holder is
    /// gone (a dead process of this host, or no heartbeat for a lease).
    Unlock(UnlockArgs),
    /// Run the scheduled jobs of a folder at their times until SIGTERM/SIGINT, or with
    /// --list print their next fire times.
    Schedule(ScheduleArgs),
    /// Print crontab lines that run the scheduled jobs of a folder from system cron.
    Crontab(CrontabArgs),
    /// The scheduler's run history, newest first.
    Runs(RunsArgs),
    /// Run a job for every date of a range: committed dates are skipped (unless
    /// --force), the rest run, several at once with --parallel.
    Backfill(BackfillArgs),
    /// Score dates of a job's input with its model and a challenger, write both scores
    /// to the shadow table and compare them; optionally promote the challenger.
    Shadow(ShadowArgs),
    /// Realized performance once labels arrive: join the job's `labels:` to the
    /// published scores of past dates, write realized metrics beside the run's
    /// estimates in the metrics history.
    Evaluate(EvaluateArgs),
    /// One HTML page over a job's runs: status and checks, rows, PSI per column as a
    /// heat map of columns × dates, estimated and realized performance.
    History(HistoryArgs),
    /// Drift between two full datasets, every statistic exact (KS, Wasserstein, PSI,
    /// Jensen-Shannon, chi-square), and both sides' column metrics, as JSON.
    Drift(DriftArgs),
    /// Print a shell completion script: `scorch completions bash >
    /// /etc/bash_completion.d/scorch` (or zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of a kind of YAML file (for editors: a `#
    /// yaml-language-server: $schema=FILE` line at the top of a job file).
    Schema {
        /// The kind of file.
        #[arg(value_enum)]
        kind: crate::validate::SchemaKind,
    },
    /// Write man pages: `scorch.1` and one `scorch-<command>.1` per command.
    Man {
        /// The folder they go to (created if missing).
        #[arg(long, default_value = "man")]
        out: PathBuf,
    },
}

/// `scorch model …`: the registry (default: $SCORCH_REGISTRY, else the folder `models`).
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Every model with its versions and aliases.
    List {
        #[command(flatten)]
        reg: RegistryArg,
    },
    /// One model (`NAME`) or one version or alias (`NAME@REF`): bundle, aliases, audit log.
    Show {
        /// `churn`, `churn@1.0.0` or `churn@champion`.
        model: String,
        #[command(flatten)]
        reg: RegistryArg,
    },
    /// Copy a bundle folder into the registry as `<name>/<version>` (from its bundle.yaml);
    /// refuses a version that is already there.
    Register {
        /// The bundle folder.
        bundle: PathBuf,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        why: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        reg: RegistryArg,
    },
    /// Point an alias at a registered version (atomically; logged).
    Promote {
        /// `NAME@VERSION`.
        model: String,
        /// The alias to move (e.g. champion).
        #[arg(long)]
        alias: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        why: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        reg: RegistryArg,
    },
    /// Point an alias back at the version it named before its latest change.
    Rollback {
        /// The model name.
        name: String,
        /// The alias to move back.
        #[arg(long)]
        alias: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        why: String,
        #[command(flatten)]
        actor: ActorArg,
        #[command(flatten)]
        reg: RegistryArg,
    },
}

/// `scorch bundle …`: make and check model bundles.
#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Probe a model for its outputs, hash it and write `bundle.yaml` beside it (or in
    /// --out, where the model and state are copied), then check the bundle as a run
    /// would open it.
    Create(BundleCreateArgs),
    /// Open a bundle as a run does (every hash and pin), load the model on the CPU and
    /// run it on a probe against its declared outputs.
    Check {
        /// The bundle folder.
        dir: PathBuf,
    },
}

/// Arguments of `scorch bundle create`.
#[derive(Debug, Args)]
pub struct BundleCreateArgs {
    /// The model file: TorchScript (`.pt`) or an AOTInductor package (`.pt2`).
    #[arg(long)]
    pub model: PathBuf,
    /// The fitted preprocessing state the model was trained on (`scorch preprocess
    /// fit`, or `scorch.fit` in Python).
    #[arg(long)]
    pub state: PathBuf,
    /// The model's name (letters, digits, `_`, `-`, `.`).
    #[arg(long)]
    pub name: String,
    /// The model's version, e.g. 1.0.0.
    #[arg(long)]
    pub version: String,
    /// An output, in the order the model returns them: `NAME` (shape as probed),
    /// `NAME:K` (k scores per row) or `NAME:[]` (one per row). Repeatable. Default:
    /// `score` (or `score_0`, `score_1`, … for a model that returns several).
    #[arg(long = "output", value_name = "NAME[:SHAPE]", value_parser = crate::model::create::OutputArg::parse)]
    pub outputs: Vec<crate::model::create::OutputArg>,
    /// The bundle folder (default: the model file's folder). The model file and the
    /// state are copied into it when they are elsewhere.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The model file's format (default: from its extension).
    #[arg(long, value_enum)]
    pub format: Option<BundleFormat>,
    /// A description for humans.
    #[arg(long)]
    pub description: Option<String>,
    /// Replace an existing `bundle.yaml` in the folder.
    #[arg(long)]
    pub force: bool,
}

/// `--format` of `scorch bundle create`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BundleFormat {
    /// TorchScript (`torch.jit.trace` / `torch.jit.script` + `save`).
    Torchscript,
    /// An AOTInductor package (`torch._inductor.aoti_compile_and_package`).
    Aoti,
}

/// Who acts, for the audit log.
#[derive(Debug, Args)]
pub struct ActorArg {
    /// Who is acting, for the audit log. Default `$SCORCH_USER`, else `$USER`, else
    /// the OS user.
    #[arg(long)]
    pub by: Option<String>,
}

impl ActorArg {
    fn name(&self) -> String {
        self.by
            .clone()
            .filter(|b| !b.trim().is_empty())
            .unwrap_or_else(crate::registry::who)
    }
}

/// The registry location flag.
#[derive(Debug, Args)]
pub struct RegistryArg {
    /// The registry: a folder, or an object-store URL (`s3://bucket/models`, `gs://…`,
    /// `az://…`; credentials and endpoint from object_store's environment variables).
    #[arg(long, env = "SCORCH_REGISTRY", default_value = "models")]
    pub registry: PathBuf,
}

/// Where a job's project is: the folder its relative paths resolve against and its
/// connection profiles.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// Project folder that relative paths in the job resolve against.
    #[arg(long, default_value = ".")]
    pub project_dir: PathBuf,
    /// Connection profiles file (default: $SCORCH_PROFILES, else profiles.yaml in the
    /// project folder).
    #[arg(long)]
    pub profiles: Option<PathBuf>,
}

/// Arguments of `scorch commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The job YAML file the shards ran.
    pub job: PathBuf,
    /// Logical date of the sharded run, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    pub date: NaiveDate,
    /// How many shards the run was split into.
    #[arg(long, value_parser = crate::spec::limits::shards)]
    pub shards: usize,
    /// When another run or commit holds the partition or a shard, wait up to
    /// SECONDS for it instead of failing at once with exit 6.
    #[arg(long, value_parser = crate::spec::limits::seconds, value_name = "SECONDS")]
    pub wait_lock: Option<f64>,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Arguments of `scorch unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// The job YAML file.
    pub job: PathBuf,
    /// Logical date of the locked partition, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    pub date: NaiveDate,
    /// The lock of shard INDEX/COUNT instead of the partition's.
    #[arg(long, value_parser = crate::run::shard::parse)]
    pub shard: Option<(usize, usize)>,
    /// Remove the lock even when its holder looks alive (a heartbeat within the
    /// lease): only for a holder you know is dead on another host.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Arguments of `scorch schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The folder of job files; those with `schedule:` are run.
    #[arg(default_value = "jobs")]
    pub jobs: PathBuf,
    /// Print each scheduled job's next fire times and logical dates, then exit.
    #[arg(long)]
    pub list: bool,
    /// Fire times listed per job with --list.
    #[arg(long, value_parser = crate::spec::limits::count, default_value_t = 3)]
    pub count: usize,
    /// The run history (SQLite); default `.scorch/history.sqlite` in the project folder.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Seconds running jobs get to finish after SIGTERM/SIGINT before they are stopped.
    #[arg(long, value_parser = crate::spec::limits::seconds, default_value_t = 300.0)]
    pub grace: f64,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Arguments of `scorch crontab`.
#[derive(Debug, Args)]
pub struct CrontabArgs {
    /// The folder of job files; those with `schedule:` get a line.
    #[arg(default_value = "jobs")]
    pub jobs: PathBuf,
    /// The scorch binary the lines call (default: this one).
    #[arg(long)]
    pub scorch: Option<PathBuf>,
    /// Project folder the lines `cd` into (default: the current folder, made absolute).
    #[arg(long, default_value = ".")]
    pub project_dir: PathBuf,
}

/// Arguments of `scorch runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only this job's runs (its `name:`).
    #[arg(long)]
    pub job: Option<String>,
    /// At most this many rows.
    #[arg(long, value_parser = crate::spec::limits::limit, default_value_t = 50)]
    pub limit: usize,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The run history (SQLite); default `.scorch/history.sqlite` in the project folder.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Project folder.
    #[arg(long, default_value = ".")]
    pub project_dir: PathBuf,
}

/// The default run history of a project.
fn history_path(root: &std::path::Path, given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| root.join(".scorch/history.sqlite"))
}

/// Arguments of `scorch backfill`.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// The job YAML file.
    pub job: PathBuf,
    /// First date (inclusive), YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    pub from: NaiveDate,
    /// Last date (inclusive), YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    pub to: NaiveDate,
    /// Dates run at once; each gets its share of the cores for inference.
    #[arg(long, value_parser = crate::spec::limits::parallel, default_value_t = 1)]
    pub parallel: usize,
    /// Rerun dates whose partition is already committed (replacing it).
    #[arg(long)]
    pub force: bool,
    /// Inference threads per run (default: the cores divided by --parallel).
    #[arg(long, value_parser = crate::spec::limits::threads)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Arguments of `scorch shadow`.
#[derive(Debug, Args)]
pub struct ShadowArgs {
    /// The job YAML file; its model is the champion, its `shadow` section says how to compare.
    pub job: PathBuf,
    /// The challenger: `NAME@VERSION`, `NAME@ALIAS` (registry) or a bundle folder.
    #[arg(long)]
    pub challenger: String,
    /// One date to score, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date, conflicts_with_all = ["from", "to"])]
    pub date: Option<NaiveDate>,
    /// First date of the range (inclusive).
    #[arg(long, value_parser = parse_date, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Last date of the range (inclusive).
    #[arg(long, value_parser = parse_date, requires = "from")]
    pub to: Option<NaiveDate>,
    /// Promote the challenger (move --alias to it) when every `shadow.gate` rule holds.
    /// A failing rule exits 5 with or without this flag.
    #[arg(long)]
    pub promote_if_pass: bool,
    /// The alias --promote-if-pass moves.
    #[arg(long, default_value = "champion")]
    pub alias: String,
    /// The registry a `NAME@VERSION` / `NAME@ALIAS` challenger is looked up in and
    /// --promote-if-pass writes to: a folder or an object-store URL (default:
    /// $SCORCH_REGISTRY, else `models`). The job's own `model:` resolves as in `run`.
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Inference worker threads (overrides `inference.threads`; 0 = one per core).
    #[arg(long, value_parser = crate::spec::limits::threads)]
    pub threads: Option<usize>,
    /// Device: cpu, auto, cuda or cuda:N (overrides `inference.device`).
    #[arg(long, value_parser = crate::spec::limits::device)]
    pub device: Option<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Arguments of `scorch evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The job YAML file; its `labels:` say where the outcomes are.
    pub job: PathBuf,
    /// One date to evaluate, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date, conflicts_with_all = ["from", "to", "days_ago"])]
    pub date: Option<NaiveDate>,
    /// First date of the range (inclusive).
    #[arg(long, value_parser = parse_date, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Last date of the range (inclusive).
    #[arg(long, value_parser = parse_date, requires = "from")]
    pub to: Option<NaiveDate>,
    /// For schedulers: evaluate the date this many days before today (UTC), e.g.
    /// the label lag; with --window, that many dates ending there.
    #[arg(long, conflicts_with_all = ["from", "to"], value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub days_ago: Option<u32>,
    /// With --days-ago or --date: evaluate this many dates, ending at that date
    /// (labels that arrive late for older dates are picked up again).
    #[arg(long, conflicts_with_all = ["from", "to"], default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub window: u32,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Arguments of `scorch history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The job YAML file whose output table's history is shown.
    pub job: PathBuf,
    /// First date shown (inclusive). Default: the earliest in the history.
    #[arg(long, value_parser = parse_date)]
    pub from: Option<NaiveDate>,
    /// Last date shown (inclusive). Default: the latest.
    #[arg(long, value_parser = parse_date)]
    pub to: Option<NaiveDate>,
    /// The HTML file to write (self-contained: opens from disk).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Arguments of `scorch drift`.
#[derive(Debug, Args)]
pub struct DriftArgs {
    /// The reference data (e.g. training data): a Parquet file, folder or glob.
    #[arg(long)]
    pub reference: String,
    /// The data to compare with it: a Parquet file, folder or glob.
    #[arg(long)]
    pub current: String,
    /// Columns to compare, comma-separated (default: every column both have).
    #[arg(long, value_delimiter = ',')]
    pub columns: Vec<String>,
    /// Bins per numeric column for PSI and Jensen-Shannon (`quantile` binning).
    #[arg(long, value_parser = crate::spec::limits::bins, default_value_t = 10)]
    pub bins: usize,
    /// Numeric binning: `quantile` (the reference's quantiles, as `scorch profile`) or
    /// `evidently` (numpy's Sturges bins over both samples, as Evidently's PSI test).
    #[arg(long, value_enum, default_value_t = crate::reports::exact::Binning::Quantile)]
    pub binning: crate::reports::exact::Binning,
    /// MiB of exact value counts held in memory, all columns and both sides
    /// together; past it the largest counts spill to sorted files (so any size
    /// fits; the JSON's `spill_bytes` says how much went to disk).
    #[arg(long, value_parser = crate::spec::limits::memory_mb, default_value_t = crate::spec::report::DEFAULT_MEMORY_BUDGET_MB)]
    pub memory_budget_mb: usize,
    /// Folder for spilled counts (made if missing, removed afterwards; default: a
    /// new folder in the system's temporary folder, `$TMPDIR`).
    #[arg(long)]
    pub spill_dir: Option<PathBuf>,
    /// Write the JSON here instead of to standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Arguments of `scorch profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The model bundle folder; gets `reference.profile.json` and a
    /// `reference_profile` line in its `bundle.yaml`.
    #[arg(long)]
    pub bundle: PathBuf,
    /// The training data: a Parquet file, folder or glob (hive folders become columns).
    #[arg(long)]
    pub data: String,
    /// Quantile bins per numeric column (PSI uses them).
    #[arg(long, value_parser = crate::spec::limits::bins, default_value_t = 10)]
    pub bins: usize,
    /// Points of the quantile sketch per numeric column (KS and Wasserstein use it;
    /// their error bounds shrink about as 1/N).
    #[arg(long, value_parser = crate::spec::limits::sketch, default_value_t = crate::reports::drift::DEFAULT_SKETCH)]
    pub sketch: usize,
    /// Calibrate a score column for performance estimated without labels
    /// (`report.performance`): the label column (booleans or 0/1 numbers; null and
    /// NaN rows are left out) of the calibration rows, or of `--labels-data`.
    #[arg(long, value_name = "COLUMN")]
    pub labels: Option<String>,
    /// The labelled rows to calibrate on: held-out validation data the model was
    /// not trained on (a Parquet file, folder or glob). Default: `--data`.
    #[arg(long, requires = "labels", value_name = "PATTERN")]
    pub calibration_data: Option<String>,
    /// A labels table (Parquet file, folder or glob) joined to the calibration rows
    /// on `--labels-on`, when the label is not a column of those rows.
    #[arg(
        long,
        requires = "labels",
        requires = "labels_on",
        value_name = "PATTERN"
    )]
    pub labels_data: Option<String>,
    /// Columns joining `--labels-data` to the calibration rows, comma-separated
    /// (e.g. `customer_id,ds`); they must identify one label.
    #[arg(
        long,
        requires = "labels_data",
        value_delimiter = ',',
        value_name = "COLUMNS"
    )]
    pub labels_on: Vec<String>,
    /// The score column calibrated. Default: the model's first.
    #[arg(long, requires = "labels", value_name = "COLUMN")]
    pub score: Option<String>,
    /// Decision thresholds the reference performance (precision, recall, F1,
    /// accuracy) is measured at, comma-separated, each in [0, 1] and listed once.
    #[arg(long, requires = "labels", value_delimiter = ',', default_value = "0.5", value_parser = crate::spec::limits::unit_interval)]
    pub thresholds: Vec<f64>,
    /// Also write the profile as a self-contained HTML page here: columns, the
    /// reference performance with the reliability diagram, the PCA.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// Arguments of `scorch run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job YAML file (e.g. jobs/churn_daily.yaml).
    pub job: PathBuf,
    /// Logical date of the run, YYYY-MM-DD; fills `{{ ds }}` and names the output
    /// partition. Default: today in UTC.
    #[arg(long, value_parser = parse_date)]
    pub date: Option<NaiveDate>,
    /// Inference worker threads (overrides `inference.threads`; 0 = one per core).
    #[arg(long, value_parser = crate::spec::limits::threads)]
    pub threads: Option<usize>,
    /// Rows per forward call (overrides `inference.batch_size`).
    #[arg(long, value_parser = crate::spec::limits::batch_size)]
    pub batch_size: Option<usize>,
    /// Device: cpu, auto, cuda or cuda:N (overrides `inference.device`).
    #[arg(long, value_parser = crate::spec::limits::device)]
    pub device: Option<String>,
    /// Model precision (overrides `inference.precision`).
    #[arg(long, value_parser = crate::spec::inference::Precision::NAMES)]
    pub precision: Option<String>,
    /// Score only shard INDEX/COUNT (0-based, e.g. 2/4) of the input and leave its
    /// files for `scorch commit`.
    #[arg(long, value_parser = crate::run::shard::parse, conflicts_with = "shards")]
    pub shard: Option<(usize, usize)>,
    /// Split into this many shards and score the one `$JOB_COMPLETION_INDEX` names
    /// (a Kubernetes Indexed Job's pod index).
    #[arg(long, value_parser = crate::spec::limits::shards)]
    pub shards: Option<usize>,
    /// No progress bar (it is shown only when stderr is a terminal, and never with --quiet).
    #[arg(long)]
    pub no_progress: bool,
    /// When another run holds this job's partition (same table and date, or shard),
    /// wait up to SECONDS for it instead of failing at once with exit 6.
    #[arg(long, value_parser = crate::spec::limits::seconds, value_name = "SECONDS")]
    pub wait_lock: Option<f64>,
    /// Build the run's plan and print it — inputs with sizes and row counts from the
    /// Parquet footers, model and device, the partition it would replace and its
    /// rows — without taking the lock or writing anything. Exits with the code the
    /// run would give for a configuration, model or input error.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// Arguments of `scorch validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files or folders to check. YAML files named `bundle.yaml` are model bundles,
    /// files in a `preprocess/` folder preprocessing specs, files in a `schemas/`
    /// folder data contracts, `profiles.yaml` connection profiles, all others jobs.
    #[arg(default_value = "jobs")]
    pub paths: Vec<PathBuf>,
    /// Project folder that relative paths in jobs resolve against.
    #[arg(long, default_value = ".")]
    pub project_dir: PathBuf,
    /// Connection profiles file (default: $SCORCH_PROFILES, else profiles.yaml in the
    /// project folder). Only read for jobs with a `postgres` source.
    #[arg(long)]
    pub profiles: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum PreprocessCommand {
    /// Fit a spec on training data; writes the fitted state (JSON with a content hash).
    Fit {
        /// The preprocessing spec YAML.
        #[arg(long)]
        spec: PathBuf,
        /// Training data: a Parquet file, folder or glob.
        #[arg(long)]
        data: String,
        /// Where to write the fitted state.
        #[arg(long)]
        out: PathBuf,
    },
    /// Apply a fitted state to data and write the feature matrix as Parquet
    /// (the keys given by --keep, then the features).
    Apply {
        /// The fitted state JSON.
        #[arg(long)]
        state: PathBuf,
        /// Input data: a Parquet file, folder or glob.
        #[arg(long)]
        data: String,
        /// Columns to copy in front of the features (repeatable or comma-separated).
        #[arg(long, value_delimiter = ',')]
        keep: Vec<String>,
        /// Output Parquet file.
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_date(s: &str) -> std::result::Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| format!("{s:?} is not a YYYY-MM-DD date: {e}"))
}

/// The command that runs this scorch again (the scheduler starts runs with it,
/// `scorch crontab` writes it): the Python package's launcher sets it to its own
/// console script; otherwise the running binary.
static SELF_EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Sets the command that runs this scorch (see [`SELF_EXE`]); the first call wins.
pub fn set_self_exe(exe: PathBuf) {
    let _ = SELF_EXE.set(exe);
}

fn self_exe() -> Result<PathBuf> {
    match SELF_EXE.get() {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe()
            .map_err(|e| Error::Internal(format!("cannot find the scorch binary: {e}"))),
    }
}

/// Runs the parsed command. Returns the process exit code.
pub fn execute(cli: Cli) -> ExitCode {
    let quiet = cli.quiet;
    crate::observe::configure(cli.metrics_dir.clone(), cli.lineage.clone());
    let result = match cli.command {
        Command::Init { dir } => crate::init::init(&dir).map(|made| {
            if !quiet {
                println!("{made}");
            }
        }),
        Command::Run(a) => run(a, quiet),
        Command::Validate(a) => return validate(a, quiet),
        Command::Preprocess(p) => preprocess(p, quiet),
        Command::Profile(a) => profile(a, quiet),
        Command::Drift(a) => drift(a, quiet),
        Command::Shadow(a) => shadow(a, quiet),
        Command::Evaluate(a) => evaluate(a, quiet),
        Command::History(a) => history(a, quiet),
        Command::Backfill(a) => backfill(a, quiet),
        Command::Schedule(a) => schedule(a),
        Command::Commit(a) => commit(a, quiet),
        Command::Unlock(a) => unlock(a),
        Command::Crontab(a) => crontab(a),
        Command::Runs(a) => runs(a),
        Command::Model(c) => model(c, quiet),
        Command::Bundle(c) => bundle(c, quiet),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "scorch", &mut std::io::stdout());
            Ok(())
        }
        Command::Man { out } => man(&out, quiet),
        Command::Schema { kind } => {
            let doc = crate::validate::json_schema(kind);
            println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::Ok,
        Err(e) => report(&e),
    }
}

/// Prints an error the way every command does and returns its exit code: a plain
/// `error: …` line on stderr, and with `--log-format json` also a JSON log event.
pub fn report(e: &Error) -> ExitCode {
    let code = e.exit_code();
    // JSON logs: the error is one more JSON line (nothing else on stderr).
    if crate::observe::logging::json_logs() {
        match crate::run::last_run_id() {
            Some(run_id) => tracing::error!(exit_code = code.code(), run_id, "{e}"),
            None => tracing::error!(exit_code = code.code(), "{e}"),
        }
    } else {
        eprintln!("error: {e}");
    }
    code
}

/// Writes the man pages of `scorch` and of every command (`scorch-run.1`, …) to `out`.
fn man(out: &std::path::Path, quiet: bool) -> Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(out).map_err(|e| Error::io("create", out, e))?;
    let cmd = Cli::command();
    let mut pages = vec![(String::from("scorch"), cmd.clone())];
    for sub in cmd.get_subcommands() {
        pages.push((format!("scorch-{}", sub.get_name()), sub.clone()));
    }
    for (name, page) in &pages {
        let mut roff = Vec::new();
        // A command's name is `&'static str` without clap's `string` feature; a
        // page is rendered once per process.
        let static_name: &'static str = Box::leak(name.clone().into_boxed_str());
        clap_mangen::Man::new(page.clone().name(static_name))
            .render(&mut roff)
            .map_err(|e| Error::io("render", out.join(format!("{name}.1")), e))?;
        crate::storage::write_file_atomic(&out.join(format!("{name}.1")), &roff)?;
    }
    if !quiet {
        println!("wrote {} man pages to {}", pages.len(), out.display());
    }
    Ok(())
}

fn unlock(a: UnlockArgs) -> Result<()> {
    let u = crate::run::lock::unlock_date(
        &a.job,
        &a.project.project_dir,
        a.project.profiles.as_deref(),
        a.date,
        a.shard,
        a.force,
    )?;
    println!("{u}");
    Ok(())
}

fn commit(a: CommitArgs, quiet: bool) -> Result<()> {
    let c = crate::run::shard::commit(
        &a.job,
        &a.project.project_dir,
        a.date,
        a.shards,
        a.project.profiles.as_deref(),
        a.wait_lock.map(std::time::Duration::from_secs_f64),
    )?;
    if !quiet {
        println!("{c}");
    }
    Ok(())
}

fn schedule(a: ScheduleArgs) -> Result<()> {
    use crate::schedule::daemon;
    if a.list {
        print!(
            "{}",
            daemon::upcoming(&a.jobs, a.count, chrono::Utc::now())?
        );
        return Ok(());
    }
    let exe = self_exe()?;
    daemon::run_scheduler(&daemon::SchedulerOptions {
        jobs_dir: a.jobs,
        history: history_path(&a.project.project_dir, a.history),
        root: a.project.project_dir,
        grace: std::time::Duration::from_secs_f64(a.grace),
        profiles: a.project.profiles,
        exe,
    })
}

fn crontab(a: CrontabArgs) -> Result<()> {
    let exe = match a.scorch {
        Some(p) => p,
        None => self_exe()?,
    };
    print!(
        "{}",
        crate::schedule::crontab::render(&a.jobs, &a.project_dir, &exe)?
    );
    Ok(())
}

fn runs(a: RunsArgs) -> Result<()> {
    let h = crate::schedule::run_history::History::open(&history_path(&a.project_dir, a.history))?;
    for r in h.list(a.job.as_deref(), a.limit)? {
        if a.json {
            println!("{}", serde_json::to_string(&r).expect("row serializes"));
        } else {
            println!("{r}");
        }
    }
    Ok(())
}

fn backfill(a: BackfillArgs, quiet: bool) -> Result<()> {
    let opts = crate::schedule::backfill::BackfillOptions {
        job_file: a.job,
        root: a.project.project_dir,
        dates: crate::spec::schedule::date_range(a.from, a.to)?,
        parallel: a.parallel,
        force: a.force,
        threads: a.threads,
        profiles: a.project.profiles,
    };
    let outcomes = crate::schedule::backfill::backfill(&opts)?;
    if !quiet {
        println!("{}", crate::schedule::backfill::summary(&outcomes));
    }
    crate::schedule::backfill::result(&outcomes)
}

fn shadow(a: ShadowArgs, quiet: bool) -> Result<()> {
    let opts = crate::shadow::runner::ShadowOptions {
        job_file: a.job,
        root: a.project.project_dir,
        challenger: a.challenger,
        dates: crate::spec::schedule::dates(a.date, a.from, a.to)?,
        promote_if_pass: a.promote_if_pass,
        alias: a.alias,
        registry: a.registry,
        threads: a.threads,
        batch_size: None,
        device: a.device,
        precision: None,
        profiles: a.project.profiles,
    };
    let s = crate::shadow::runner::shadow(&opts)?;
    if !quiet {
        println!("{s}");
    }
    Ok(())
}

fn history(a: HistoryArgs, quiet: bool) -> Result<()> {
    let page = crate::history_page::history(&crate::history_page::HistoryOptions {
        job_file: a.job,
        root: a.project.project_dir,
        from: a.from,
        to: a.to,
        profiles: a.project.profiles,
    })?;
    crate::storage::write_file_atomic(&a.out, page.html.as_bytes())?;
    if !quiet {
        println!(
            "{} date(s) of {} in {}",
            page.dates,
            page.table,
            a.out.display()
        );
    }
    Ok(())
}

fn evaluate(a: EvaluateArgs, quiet: bool) -> Result<()> {
    let end = match (a.days_ago, a.date) {
        (Some(n), _) => {
            Some(chrono::Utc::now().date_naive() - chrono::Duration::days(i64::from(n)))
        }
        (None, Some(d)) => Some(d),
        (None, None) => None,
    };
    let dates = match end {
        Some(end) => {
            let start = end - chrono::Duration::days(i64::from(a.window) - 1);
            crate::spec::schedule::date_range(start, end)?
        }
        None => crate::spec::schedule::dates(a.date, a.from, a.to)?,
    };
    let e = crate::evaluate::evaluate(&crate::evaluate::EvaluateOptions {
        job_file: a.job,
        root: a.project.project_dir,
        dates,
        profiles: a.project.profiles,
    })?;
    if !quiet {
        println!("{e}");
    }
    Ok(())
}

fn run(a: RunArgs, quiet: bool) -> Result<()> {
    let shard = match (a.shard, a.shards) {
        (Some(s), _) => Some(s),
        (None, Some(n)) => Some(crate::run::shard::from_completion_index(n)?),
        (None, None) => None,
    };
    let opts = crate::run::RunOptions {
        job_file: a.job,
        root: a.project.project_dir,
        ds: a.date.unwrap_or_else(|| chrono::Utc::now().date_naive()),
        threads: a.threads,
        batch_size: a.batch_size,
        device: a.device,
        precision: a.precision,
        progress: !quiet && !a.no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        profiles: a.project.profiles,
        shadow: None,
        shard,
        wait_lock: a.wait_lock.map(std::time::Duration::from_secs_f64),
    };
    if a.dry_run {
        let plan = crate::run::dry_run(&opts)?;
        if !quiet {
            println!("{plan}");
        }
    } else {
        let summary = crate::run::run(&opts)?;
        if !quiet {
            println!("{summary}");
        }
    }
    Ok(())
}

fn validate(a: ValidateArgs, quiet: bool) -> ExitCode {
    let files = match crate::validate::collect(&a.paths) {
        Ok(f) => f,
        Err(e) => return report(&e),
    };
    if files.is_empty() {
        return report(&Error::usage("no YAML files to validate"));
    }
    let profiles = crate::spec::profiles::locate(a.profiles.as_deref(), &a.project_dir);
    let results: Vec<_> = files
        .iter()
        .map(|f| crate::validate::check_file(f, &a.project_dir, &profiles))
        .collect();
    for r in &results {
        if r.errors.is_empty() {
            if !quiet {
                println!("ok    {} ({})", r.file.display(), r.kind);
            }
        } else {
            println!("FAIL  {} ({})", r.file.display(), r.kind);
            for e in &r.errors {
                eprintln!("error: {e}");
            }
        }
    }
    let bad = results.iter().filter(|r| !r.errors.is_empty()).count();
    if !quiet {
        println!("{} file(s) checked, {bad} with problems", results.len());
    }
    crate::validate::exit_code(&results)
}

fn profile(a: ProfileArgs, quiet: bool) -> Result<()> {
    // The flag's name in the message (clap checks each value, this the list).
    crate::spec::limits::thresholds(&a.thresholds)
        .map_err(|e| Error::usage(format!("--thresholds: {e}")))?;
    let text = crate::model::profile::profile(&a.into())?;
    if !quiet {
        print!("{text}");
    }
    Ok(())
}

impl From<ProfileArgs> for crate::model::profile::ProfileOptions {
    fn from(a: ProfileArgs) -> Self {
        crate::model::profile::ProfileOptions {
            bundle: a.bundle,
            data: a.data,
            bins: a.bins,
            sketch: a.sketch,
            labels: a.labels,
            calibration_data: a.calibration_data,
            labels_data: a.labels_data,
            labels_on: a.labels_on,
            score: a.score,
            thresholds: a.thresholds,
            html: a.html,
        }
    }
}

fn model(c: ModelCommand, quiet: bool) -> Result<()> {
    use crate::registry::{Registry, parse_ref};
    let say = |s: String| {
        if !quiet {
            println!("{s}");
        }
    };
    let split = |m: &str| -> Result<(String, String)> {
        parse_ref(m)
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .ok_or_else(|| Error::usage(format!("{m:?}: expected NAME@VERSION")))
    };
    match c {
        ModelCommand::List { reg } => {
            for line in Registry::open(&reg.registry)?.listing()? {
                println!("{line}");
            }
        }
        ModelCommand::Show { model, reg } => {
            let doc = Registry::open(&reg.registry)?.show(&model)?;
            println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        }
        ModelCommand::Register {
            bundle,
            why,
            actor,
            reg,
        } => {
            let r = Registry::open(&reg.registry)?;
            let (name, version) = r.register(&bundle, &why, &actor.name())?;
            say(format!(
                "registered {name}@{version} in {}",
                r.root.join(&name).join(&version).display()
            ));
        }
        ModelCommand::Promote {
            model,
            alias,
            why,
            actor,
            reg,
        } => {
            let r = Registry::open(&reg.registry)?;
            let (name, version) = split(&model)?;
            let before = r.promote(&name, &version, &alias, &why, &actor.name())?;
            say(format!(
                "{name}@{alias}: {} -> {version}",
                before.as_deref().unwrap_or("(new)")
            ));
        }
        ModelCommand::Rollback {
            name,
            alias,
            why,
            actor,
            reg,
        } => {
            let r = Registry::open(&reg.registry)?;
            let (from, to) = r.rollback(&name, &alias, &why, &actor.name())?;
            say(format!("{name}@{alias}: {from} -> {to} (rolled back)"));
        }
    }
    Ok(())
}

fn bundle(c: BundleCommand, quiet: bool) -> Result<()> {
    use crate::model::create;
    let checked = match c {
        BundleCommand::Check { dir } => create::check(&dir)?,
        BundleCommand::Create(a) => {
            let dir = match a.out {
                Some(d) => d,
                None => a
                    .model
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."))
                    .to_path_buf(),
            };
            create::create(&create::NewBundle {
                dir,
                model: a.model,
                state: a.state,
                name: a.name,
                version: a.version,
                description: a.description,
                format: a.format.map(|f| match f {
                    BundleFormat::Torchscript => crate::spec::bundle::ModelFormat::Torchscript,
                    BundleFormat::Aoti => crate::spec::bundle::ModelFormat::Aoti,
                }),
                outputs: a.outputs,
                force: a.force,
            })?
        }
    };
    if !quiet {
        println!("{checked}");
    }
    Ok(())
}

fn drift(a: DriftArgs, quiet: bool) -> Result<()> {
    let root = std::path::Path::new(".");
    use crate::reports::exact::{Dataset, DriftOptions, drift_document};
    let profiles = crate::spec::profiles::locate(None, root);
    let storage = crate::storage::Settings::default();
    let ctx = crate::source::Context {
        root,
        profiles: &profiles,
        storage: &storage,
    };
    let redactor = crate::spec::template::Redactor::default();
    let open = |data| -> Result<(crate::source::Resolved, polars::prelude::Schema)> {
        let r = crate::source::open_parquet(data, true, &ctx, &redactor)?;
        let schema = r.schema()?;
        Ok((r, schema))
    };
    let (reference, r_schema) = open(&a.reference)?;
    let (current, c_schema) = open(&a.current)?;
    fn dataset<'a>(
        name: &'a str,
        r: &'a crate::source::Resolved,
        schema: polars::prelude::Schema,
    ) -> Dataset<'a> {
        Dataset {
            name,
            schema,
            read: Box::new(move |columns: &[String]| r.batches(columns, 1 << 20)),
        }
    }
    let mut options = DriftOptions::new(a.bins, a.binning);
    options.memory_budget = a.memory_budget_mb << 20;
    // Spilled runs go into a folder of their own inside the one named (removed
    // afterwards, as the folder is when scorch made it).
    options.spill_dir = a
        .spill_dir
        .as_ref()
        .map(|d| d.join(format!(".scorch-drift-spill-{}", std::process::id())));
    let (columns, doc) = drift_document(
        dataset(&a.reference, &reference, r_schema),
        dataset(&a.current, &current, c_schema),
        &a.columns,
        options,
    )?;
    let text = format!("{}\n", serde_json::to_string_pretty(&doc).expect("json"));
    match &a.out {
        Some(p) => {
            crate::storage::write_file_atomic(p, text.as_bytes())?;
            if !quiet {
                println!("{columns} columns compared; JSON in {}", p.display());
            }
        }
        None => print!("{text}"),
    }
    Ok(())
}

fn preprocess(p: PreprocessCommand, quiet: bool) -> Result<()> {
    let root = std::path::Path::new(".");
    match p {
        PreprocessCommand::Fit { spec, data, out } => {
            let s = crate::preprocess::load_spec(&spec)?;
            let lf = crate::source::scan_pattern(root, &data)?;
            let state = crate::preprocess::fit(&s, lf, &data)?;
            state.save(&out)?;
            if !quiet {
                println!(
                    "fitted {} {} on {} rows: {} features, {}\n  state: {}",
                    s.name,
                    s.version,
                    state.fitted_on.rows,
                    state.feature_names.len(),
                    state.content_hash,
                    out.display()
                );
            }
        }
        PreprocessCommand::Apply {
            state,
            data,
            keep,
            out,
        } => {
            let st = crate::preprocess::state::FittedState::load(&state)?;
            let lf = crate::source::scan_pattern(root, &data)?;
            let schema = lf.clone().collect_schema()?;
            crate::preprocess::check_input_schema(&st.spec, &schema)?;
            let keys = crate::preprocess::apply(lf.clone(), &st, &keep)?;
            let mut df = keys.collect()?;
            crate::sink::write_parquet(
                &mut df,
                &out,
                &crate::sink::ParquetOptions {
                    zstd_level: 3,
                    row_group_size: 128 * 1024,
                    metadata: vec![(
                        "scorch.preprocessing_state_hash".into(),
                        st.content_hash.clone(),
                    )],
                },
            )?;
            if !quiet {
                println!(
                    "wrote {} rows × {} columns to {}",
                    df.height(),
                    df.width(),
                    out.display()
                );
            }
        }
    }
    Ok(())
}
