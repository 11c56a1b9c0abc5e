//! One scoring run of a job for one date: source → preprocess → tensorize → infer
//! → sink, with a manifest recording every stage.

pub mod lock;
pub mod pipeline;
pub mod progress;
pub mod rollout;
pub mod shard;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{NaiveDate, SecondsFormat, Utc};
use polars::prelude::*;

use crate::error::{Error, Result};
use crate::infer::{Engine, available_cores};
use crate::model::Bundle;
use crate::preprocess;
use crate::sink::manifest::*;
use crate::sink::{self, ParquetOptions};
use crate::spec::inference::{DeviceChoice, Precision};
use crate::spec::job::JobSpec;
use crate::spec::template::{Redactor, TemplateVars, render};

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
    /// Every frame written to the shadow table is appended here.
    pub capture: std::sync::Arc<std::sync::Mutex<Vec<DataFrame>>>,
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

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn new_run_id() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", Utc::now().format("%Y%m%dT%H%M%SZ"), &u[..8])
}

/// Runs a job. On failure after the output table is known, a manifest with
/// `status: failed` is still written to `<table>/_runs/<run id>.json`.
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

pub fn run(opts: &RunOptions) -> Result<RunSummary> {
    // Every log line of the run, from any of its threads, carries its id.
    let (run_id, span) = begin("run", opts.ds);
    let _entered = span.enter();
    let job_bytes = std::fs::read(&opts.job_file)
        .map_err(|e| Error::config(&opts.job_file, format!("cannot read job file: {e}")))?;
    let mut job = JobSpec::load(&opts.job_file)?;
    let (out_path, out_field) = match &opts.shadow {
        Some(s) => {
            // A shadow run writes nothing of the production run's: no report, no canary.
            job.report = None;
            job.rollout = None;
            (s.table.clone(), "shadow.output")
        }
        None => (job.output.path.clone(), "output.path"),
    };
    let vars = TemplateVars::new(opts.ds, &job.secrets);
    let mut redactor = Redactor::default();
    let out = render(&out_path, &vars)
        .and_then(|r| crate::spec::template::confine(&out_path, &r.value).map(|_| r))
        .map_err(|e| Error::config(&opts.job_file, format!("field `{out_field}`: {e}")))?;
    redactor.add(&out);
    let profiles = crate::spec::profiles::locate(opts.profiles.as_deref(), &opts.root);
    let storage = storage_settings(&job, &profiles, &vars, &mut redactor)?;
    let table = sink::Table::open(&out.value, &opts.root, &storage)?;
    let mut inference = job.inference.clone();
    // Overrides pass the same checks as the job's fields (crate::spec::limits).
    use crate::spec::limits;
    let bad = |flag: &str, e: String| Error::usage(format!("{flag} {e}"));
    if let Some(t) = opts.threads {
        limits::THREADS
            .check(t as u64)
            .map_err(|e| bad("--threads", e))?;
        inference.threads = t;
    }
    if let Some(b) = opts.batch_size {
        limits::BATCH_SIZE
            .check(b as u64)
            .map_err(|e| bad("--batch-size", e))?;
        inference.batch_size = b;
    }
    if let Some(d) = &opts.device {
        DeviceChoice::parse(d).map_err(|e| bad("--device", e))?;
        inference.device = d.clone();
    }
    if let Some(p) = &opts.precision {
        Precision::parse(p).map_err(|e| bad("--precision", e))?;
        inference.precision = p.clone();
    }
    let threads = if inference.threads == 0 {
        available_cores()
    } else {
        inference.threads
    };
    let kind = match (&opts.shadow, &opts.shard) {
        (Some(_), _) => "shadow",
        (None, Some(_)) => "shard",
        (None, None) => "run",
    };
    let job_info = JobInfo {
        name: job.name.clone(),
        file: opts.job_file.display().to_string(),
        sha256: {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&job_bytes))
        },
    };
    let inference_info = InferenceInfo {
        device: inference.device.clone(),
        threads,
        batch_size: inference.batch_size,
        chunk_rows: inference.chunk_rows.div_ceil(inference.batch_size) * inference.batch_size,
        precision: inference.precision.clone(),
    };
    let mut m = Manifest::start(run_id, kind, job_info, opts.ds, inference_info);
    // One writer per partition (or shard): held until the run manifest is written.
    let lock_name = match opts.shard {
        Some((i, n)) => format!("ds={}.{}", m.ds, shard::dir_name(i, n)),
        None => format!("ds={}", m.ds),
    };
    let lock = lock::Lock::acquire(
        &table,
        &lock_name,
        lock::Holder::me(&m.run_id, &job.name, m.kind),
        opts.wait_lock,
    )
    .map_err(|e| match e {
        Error::Locked(msg) => Error::Locked(redactor.redact(&msg)),
        e => e,
    })?;
    // The fencing token: what this run's commit may replace, read under its lock.
    let replaces = table
        .replaces(&match opts.shard {
            Some((i, n)) => format!("{}/ds={}/{}", sink::SHARDS_DIR, m.ds, shard::dir_name(i, n)),
            None => format!("ds={}", m.ds),
        })
        .map_err(|e| match e {
            Error::Internal(msg) => Error::Internal(redactor.redact(&msg)),
            e => e,
        })?;
    let location = redactor.redact(&table.location());
    crate::observe::run_started(&m, &location);
    let t0 = Instant::now();
    let env = Env {
        profiles: &profiles,
        storage: &storage,
        table: &table,
        lock: &lock,
        replaces: &replaces,
    };
    let result = execute(
        opts,
        &job,
        &vars,
        &mut redactor,
        &env,
        &inference,
        threads,
        t0,
        &mut m,
    );
    m.stages.insert("total", t0.elapsed().as_secs_f64());
    m.compute_throughput();
    m.finished_at = now();
    match result {
        Ok(partition) => {
            m.status = "succeeded";
            let manifest_path = table
                .run_log()
                .write_manifest(&m.run_id, &manifest_bytes(&m))?;
            crate::observe::run_finished(&m, &location);
            Ok(RunSummary {
                manifest: m,
                partition: redactor.redact(&partition),
                manifest_path: redactor.redact(&manifest_path),
            })
        }
        Err(e) => {
            m.record_failure(&e, &redactor);
            if let Err(w) = table
                .run_log()
                .write_manifest(&m.run_id, &manifest_bytes(&m))
            {
                tracing::warn!(error = %redactor.redact(&w.to_string()), "could not write the failed run's manifest");
            }
            crate::observe::run_finished(&m, &location);
            Err(e)
        }
    }
}

/// The object-store settings of a job's `storage_profile` (defaults without one).
pub fn storage_settings(
    job: &JobSpec,
    profiles: &Path,
    vars: &TemplateVars,
    redactor: &mut Redactor,
) -> Result<crate::storage::Settings> {
    match &job.storage_profile {
        Some(name) => {
            let p = crate::spec::profiles::storage(profiles, name)?;
            crate::storage::settings(Some((name, &p)), vars, redactor)
        }
        None => Ok(crate::storage::Settings::default()),
    }
}

/// The output table of `job` for date `ds` (its `output.path` rendered, with the
/// job's storage profile); secrets it uses are added to `red`.
pub fn output_table(
    job: &JobSpec,
    job_file: &Path,
    root: &Path,
    profiles: Option<&Path>,
    ds: NaiveDate,
    red: &mut Redactor,
) -> Result<sink::Table> {
    let vars = TemplateVars::new(ds, &job.secrets);
    let out = render(&job.output.path, &vars)
        .and_then(|r| crate::spec::template::confine(&job.output.path, &r.value).map(|_| r))
        .map_err(|e| Error::config(job_file, format!("field `output.path`: {e}")))?;
    red.add(&out);
    let profiles = crate::spec::profiles::locate(profiles, root);
    let storage = storage_settings(job, &profiles, &vars, red)?;
    sink::Table::open(&out.value, root, &storage)
}

/// What a run needs besides the job: profiles file, object-store settings, output table.
struct Env<'a> {
    profiles: &'a Path,
    storage: &'a crate::storage::Settings,
    table: &'a sink::Table,
    /// The run's lock, checked before publishing.
    lock: &'a lock::Lock,
    /// What the run's commit may replace (its fencing token on object stores).
    replaces: &'a sink::Replaces,
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

/// The models of a run, opened and checked before any data is read: the job's
/// model and, for a shadow run or a canary, the challenger, each with its engine.
struct Models {
    bundle: Bundle,
    /// The job's `model:` as rendered (for messages).
    model_dir: crate::spec::template::Rendered,
    second: Option<(Bundle, ModelInfo, crate::spec::template::Rendered)>,
    engine: Engine,
    engine2: Option<Engine>,
}

/// Opens the run's bundles, checks their pins (score columns of a canary, the
/// shadow's score column, the job's `preprocessing:` pin), and loads the models on
/// the device and in the precision asked for; records them in the manifest.
fn open_models(
    opts: &RunOptions,
    job: &JobSpec,
    vars: &TemplateVars,
    redactor: &mut Redactor,
    inference: &crate::spec::job::InferenceSpec,
    threads: usize,
    m: &mut Manifest,
) -> Result<Models> {
    // Model bundles and pins: checked before any data is read.
    let (bundle, info, model_dir) = open_bundle(opts, &job.model, "model", vars, redactor)?;
    m.model = Some(info);
    let second = match (&opts.shadow, &job.rollout) {
        (Some(s), _) => Some(open_bundle(
            opts,
            &s.challenger,
            "--challenger",
            vars,
            redactor,
        )?),
        (None, Some(r)) => Some(open_bundle(
            opts,
            &r.challenger,
            "rollout.challenger",
            vars,
            redactor,
        )?),
        (None, None) => None,
    };
    if let Some((b2, info2, _)) = &second {
        m.challenger = Some(info2.clone());
        if job.rollout.is_some() && b2.spec.score_columns() != bundle.spec.score_columns() {
            return Err(Error::Model(format!(
                "{}: field `rollout.challenger`: model {} {} writes score columns [{}], but the \
                 job's model {} {} writes [{}]; a canary needs the same columns",
                opts.job_file.display(),
                b2.spec.name,
                b2.spec.version,
                b2.spec.score_columns().join(", "),
                bundle.spec.name,
                bundle.spec.version,
                bundle.spec.score_columns().join(", ")
            )));
        }
        if let Some(s) = &opts.shadow {
            for b in [&bundle, b2] {
                if !b.spec.score_columns().contains(&s.score) {
                    return Err(Error::config(
                        &opts.job_file,
                        format!(
                            "field `shadow.score`: model {} {} has no score column `{}` (it has {})",
                            b.spec.name,
                            b.spec.version,
                            s.score,
                            b.spec.score_columns().join(", ")
                        ),
                    ));
                }
            }
        }
    }
    let state = &bundle.state;
    m.preprocessing = Some(PreprocessingInfo {
        name: state.spec.name.clone(),
        version: state.spec.version.clone(),
        state_hash: state.content_hash.clone(),
        path: "polars",
    });
    if let Some(pin) = &job.preprocessing {
        let hash_ok = pin
            .state_hash
            .as_ref()
            .is_none_or(|h| *h == state.content_hash);
        if pin.name != state.spec.name || pin.version != state.spec.version || !hash_ok {
            return Err(Error::Model(format!(
                "{}: field `preprocessing` asks for {} {}{}, but model bundle {} was trained with {} {} ({}); \
                 refusing to score with preprocessing the model was not trained on",
                opts.job_file.display(),
                pin.name,
                pin.version,
                pin.state_hash
                    .as_ref()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default(),
                model_dir.redacted,
                state.spec.name,
                state.spec.version,
                state.content_hash
            )));
        }
    }
    let device = DeviceChoice::parse(&inference.device)
        .map_err(|e| Error::config(&opts.job_file, format!("field `inference.device`: {e}")))?;
    let precision = Precision::parse(&inference.precision)
        .map_err(|e| Error::config(&opts.job_file, format!("field `inference.precision`: {e}")))?;
    m.inference.precision = precision.name().to_string();
    let load = |b: &Bundle| {
        Engine::load(
            &b.model_path,
            b.spec.model_format(),
            device,
            precision,
            threads,
            b.spec.features.len(),
            &b.spec.outputs,
        )
    };
    let engine = load(&bundle)?;
    let engine2 = second.as_ref().map(|(b, _, _)| load(b)).transpose()?;
    m.inference.device = format!("{:?}", engine.device()).to_lowercase();
    Ok(Models {
        bundle,
        model_dir,
        second,
        engine,
        engine2,
    })
}

/// The input of a run, resolved and checked before any row is read: the source
/// (restricted to the shard's rows), its schema, the columns to read, the columns
/// carried to the output, the report's profile and the contract's checker.
struct Input {
    src: crate::source::Resolved,
    schema: Schema,
    /// Keys, then the shadow run's carried columns: written beside the scores.
    carry: Vec<String>,
    /// Every input column the run reads.
    needed: Vec<String>,
    profile: Option<std::sync::Mutex<crate::reports::Profile>>,
    checker: Option<std::sync::Mutex<crate::contract::Checker>>,
}

/// Resolves the job's source and checks it against what the run needs: keys, the
/// models' input columns, report columns and the reference profile's, the
/// contract's schema; records the source and inputs in the manifest.
#[allow(clippy::too_many_arguments)]
fn open_input(
    opts: &RunOptions,
    job: &JobSpec,
    vars: &TemplateVars,
    redactor: &mut Redactor,
    env: &Env<'_>,
    inference: &crate::spec::job::InferenceSpec,
    models: &Models,
    m: &mut Manifest,
) -> Result<Input> {
    let ctx = crate::source::Context {
        root: &opts.root,
        profiles: env.profiles,
        storage: env.storage,
    };
    let mut src = crate::source::resolve(&job.source, &ctx, vars, redactor)?;
    if let Some((index, count)) = opts.shard {
        if job.contract.is_some() || opts.shadow.is_some() {
            return Err(Error::config(
                &opts.job_file,
                "sharded runs do not support `contract:` (its unique keys and quarantine \
                 span the whole date) or shadow runs; run this job unsharded",
            ));
        }
        let (row_start, row_end, total_rows) =
            src.restrict_rows(|total| shard::share(total, index, count, inference.batch_size))?;
        m.shard = Some(ShardInfo {
            index,
            count,
            row_start,
            row_end,
            total_rows,
        });
    }
    m.source = Some(src.description.clone());
    m.inputs = src.inputs.clone();
    let schema = src.schema()?;
    for k in &job.keys {
        if schema.get(k.as_str()).is_none() {
            return Err(Error::DataContract(format!(
                "key column `{k}` (job field `keys`) is not in the input {} (columns: {})",
                src.description,
                schema
                    .iter_names()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let carry: Vec<String> = match &opts.shadow {
        Some(s) => {
            for c in &s.carry {
                if schema.get(c.as_str()).is_none() {
                    return Err(Error::DataContract(format!(
                        "column `{c}` (job field `shadow.segments` or `shadow.labels.column`) \
                         is not in the input {}",
                        src.description
                    )));
                }
            }
            job.keys.iter().chain(&s.carry).cloned().collect()
        }
        None => job.keys.clone(),
    };
    let mut needed: Vec<String> = carry.clone();
    for b in std::iter::once(&models.bundle).chain(models.second.as_ref().map(|s| &s.0)) {
        preprocess::check_input_schema(&b.state.spec, &schema).map_err(|e| {
            e.context(format!(
                "{} (model {} {})",
                src.description, b.spec.name, b.spec.version
            ))
        })?;
        for c in b.state.spec.input_columns() {
            if !needed.contains(&c) {
                needed.push(c);
            }
        }
    }
    let profile = match &job.report {
        Some(r) => {
            let mut cols: Vec<String> = if r.columns.is_empty() {
                needed.clone()
            } else {
                r.columns.clone()
            };
            for chk in &r.checks {
                for c in chk.columns() {
                    if !cols.contains(&c) {
                        cols.push(c);
                    }
                }
            }
            let mut sch = Schema::default();
            for c in &cols {
                let dt = schema.get(c.as_str()).ok_or_else(|| {
                    Error::DataContract(format!(
                        "report column `{c}` (job field `report.columns`) is not in the input {}",
                        src.description
                    ))
                })?;
                sch.insert(c.as_str().into(), dt.clone());
                if !needed.contains(c) {
                    needed.push(c.clone());
                }
            }
            let mut prof = crate::reports::Profile::new(&sch, &r.checks, r.max_exact_distinct);
            if r.drift.is_some() {
                let Some(reference) = models.bundle.reference.clone() else {
                    return Err(Error::config(
                        &opts.job_file,
                        format!(
                            "field `report.drift`: model bundle {} has no reference profile; \
                             create one with `scorch profile --bundle {} --data <training data>`",
                            models.model_dir.redacted, models.model_dir.redacted
                        ),
                    ));
                };
                let counter = crate::reports::drift::DriftCounter::new(reference);
                for c in counter.columns() {
                    if schema.get(c.as_str()).is_none() {
                        return Err(Error::DataContract(format!(
                            "the reference profile has column `{c}`, which is not in the input {}",
                            src.description
                        )));
                    }
                    if !needed.contains(&c) {
                        needed.push(c);
                    }
                }
                prof.drift = Some(counter);
            }
            Some(std::sync::Mutex::new(prof))
        }
        None => None,
    };
    let checker = match &job.contract {
        Some(c) => {
            let file = opts.root.join(c);
            let contract = crate::contract::Contract::load(&file)?;
            contract.check_schema(&file, &schema)?;
            for c in contract.columns_read() {
                if !needed.contains(&c) {
                    needed.push(c);
                }
            }
            m.contract = Some(ContractInfo {
                name: contract.name.clone(),
                file: c.clone(),
                quarantine: None,
            });
            Some(std::sync::Mutex::new(crate::contract::Checker::new(
                contract, file,
            )))
        }
        None => None,
    };
    Ok(Input {
        src,
        schema,
        carry,
        needed,
        profile,
        checker,
    })
}

#[allow(clippy::too_many_arguments)]
fn execute(
    opts: &RunOptions,
    job: &JobSpec,
    vars: &TemplateVars,
    redactor: &mut Redactor,
    env: &Env<'_>,
    inference: &crate::spec::job::InferenceSpec,
    threads: usize,
    t0: Instant,
    m: &mut Manifest,
) -> Result<String> {
    let models = open_models(opts, job, vars, redactor, inference, threads, m)?;

    let Input {
        src,
        schema,
        carry,
        needed,
        profile,
        checker,
    } = open_input(opts, job, vars, redactor, env, inference, &models, m)?;
    let Models {
        bundle,
        second,
        engine,
        engine2,
        ..
    } = models;
    let state = &bundle.state;

    // The fused preprocessing path, unless a step or type needs the Polars path (or
    // SCORCH_PREPROCESS_PATH=polars asks for it).
    let compile = |state: &preprocess::state::FittedState| -> Result<_> {
        if std::env::var(PREPROCESS_PATH_ENV).is_ok_and(|v| v == "polars") {
            return Ok(None);
        }
        let derived =
            preprocess::with_derived(DataFrame::empty_with_schema(&schema).lazy(), &state.spec)?
                .collect_schema()?;
        Ok(preprocess::fused::Compiled::new(state, &derived))
    };
    let fused = compile(state)?;
    let fused2 = second
        .as_ref()
        .map(|(b, _, _)| compile(&b.state))
        .transpose()?
        .flatten();
    m.preprocessing.as_mut().expect("set above").path =
        if fused.is_some() { "fused" } else { "polars" };

    // Output: written chunk by chunk into the staging folder.
    let partition = format!("ds={}", m.ds);
    let staged = env.table.stage(&partition, &m.run_id)?;
    let score_columns = bundle.spec.score_columns();
    let score_columns2 = second
        .as_ref()
        .map(|(b, _, _)| b.spec.score_columns())
        .unwrap_or_default();
    let mut out_schema = Schema::default();
    for k in &carry {
        out_schema.insert(
            sink::file_column(k).into(),
            schema.get(k.as_str()).expect("checked").clone(),
        );
    }
    let shadow_names = |prefix: &str, cols: &[String]| -> Vec<String> {
        cols.iter().map(|c| format!("{prefix}{c}")).collect()
    };
    let out_scores: Vec<String> = if opts.shadow.is_some() {
        let mut v = shadow_names(CHAMPION_PREFIX, &score_columns);
        v.extend(shadow_names(CHALLENGER_PREFIX, &score_columns2));
        v
    } else {
        score_columns.clone()
    };
    for c in &out_scores {
        out_schema.insert(c.as_str().into(), DataType::Float32);
    }
    let model_columns: &[&str] = if opts.shadow.is_some() {
        &[
            "champion_model",
            "champion_version",
            "challenger_model",
            "challenger_version",
        ]
    } else {
        &["model_name", "model_version"]
    };
    for c in model_columns {
        out_schema.insert((*c).into(), DataType::String);
    }
    out_schema.insert("run_id".into(), DataType::String);
    out_schema.insert("scored_at".into(), scored_at_dtype());
    let mut meta = vec![
        ("scorch.version", env!("CARGO_PKG_VERSION").to_string()),
        ("scorch.job", job.name.clone()),
        ("scorch.run_id", m.run_id.clone()),
        ("scorch.ds", m.ds.clone()),
        ("scorch.model_name", bundle.spec.name.clone()),
        ("scorch.model_version", bundle.spec.version.clone()),
        ("scorch.model_sha256", bundle.spec.model_sha256.clone()),
        ("scorch.preprocessing_name", state.spec.name.clone()),
        ("scorch.preprocessing_version", state.spec.version.clone()),
        (
            "scorch.preprocessing_state_hash",
            state.content_hash.clone(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect::<Vec<_>>();
    let mut models = vec![(bundle.spec.name.clone(), bundle.spec.version.clone())];
    if let Some((b2, _, _)) = &second {
        models.push((b2.spec.name.clone(), b2.spec.version.clone()));
        meta.push(("scorch.challenger_model_name".into(), b2.spec.name.clone()));
        meta.push((
            "scorch.challenger_model_version".into(),
            b2.spec.version.clone(),
        ));
        meta.push((
            "scorch.challenger_model_sha256".into(),
            b2.spec.model_sha256.clone(),
        ));
    }
    if let Some(r) = &job.rollout {
        meta.push(("scorch.rollout_fraction".into(), r.fraction.to_string()));
        meta.push(("scorch.rollout_salt".into(), r.salt.clone()));
    }
    let constants = Constants {
        models,
        run_id: m.run_id.clone(),
        scored_at: Utc::now().timestamp_micros(),
    };
    let split = job.rollout.as_ref().map(|r| rollout::Split {
        keys: job.keys.clone(),
        fraction: r.fraction,
        salt: r.salt.clone(),
    });
    let to_challenger = std::sync::atomic::AtomicU64::new(0);
    // Scores written as null (`inference.invalid_scores: null`).
    let null_scores = std::sync::atomic::AtomicU64::new(0);
    // Names of failed `fail` checks: the run publishes, then exits 5.
    let mut gate: Vec<String> = Vec::new();
    let mut history: Option<DataFrame> = None;
    let quarantine_tmp = checker
        .as_ref()
        .map(|_| env.table.quarantine().tmp_file(&partition, &m.run_id))
        .transpose()?;
    let mut quarantine_schema = Schema::default();
    for c in &needed {
        quarantine_schema.insert(
            sink::file_column(c).into(),
            schema.get(c.as_str()).expect("checked").clone(),
        );
    }
    quarantine_schema.insert(crate::contract::REASON_COLUMN.into(), DataType::String);
    let result = (|| -> Result<()> {
        // Chunks are whole multiples of the inference batch, so the model sees the same
        // batches whatever the source's own chunking: scores do not depend on it.
        let batch = inference.batch_size;
        let chunk_rows = inference.chunk_rows.div_ceil(batch) * batch;
        let model_name = format!("{} {}", bundle.spec.name, bundle.spec.version);
        let model_name2 = second
            .as_ref()
            .map(|(b2, _, _)| format!("{} {}", b2.spec.name, b2.spec.version))
            .unwrap_or_default();
        let mut scorers = vec![pipeline::Scorer {
            model: &model_name,
            state,
            fused: fused.as_ref(),
            engine: &engine,
            score_columns: &score_columns,
        }];
        if let (Some((b2, _, _)), Some(e2)) = (&second, &engine2) {
            scorers.push(pipeline::Scorer {
                model: &model_name2,
                state: &b2.state,
                fused: fused2.as_ref(),
                engine: e2,
                score_columns: &score_columns2,
            });
        }
        let route = |df: &DataFrame| split.as_ref().expect("with a split").route(df);
        let plan = pipeline::Plan {
            source: &src,
            columns: &needed,
            keys: &carry,
            chunk_rows,
            batch_size: batch,
            scorers: &scorers,
            route: split.as_ref().map(|_| &route as &pipeline::RouteFn<'_>),
            contract: checker.as_ref(),
            profile: profile.as_ref(),
            invalid_scores: inference.invalid_scores,
        };
        let file_name = |i: usize| staged.data_file_name(i);
        let frame = |keys: &DataFrame, scores: pipeline::ChunkScores| {
            if let Some(r) = &scores.route {
                let n = r.iter().filter(|&&x| x == rollout::CHALLENGER).count();
                to_challenger.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
            let (f, nulls) =
                output_frame(keys, &carry, &out_scores, scores, &constants, model_columns)?;
            null_scores.fetch_add(nulls, std::sync::atomic::Ordering::Relaxed);
            if let Some(s) = &opts.shadow {
                s.capture.lock().expect("capture lock").push(f.clone());
            }
            Ok(f)
        };
        let output = pipeline::Output {
            dir: staged.dir(),
            file_name: &file_name,
            schema: &out_schema,
            parquet: ParquetOptions {
                zstd_level: job.output.zstd_level,
                row_group_size: job.output.row_group_size,
                metadata: meta,
            },
            max_file_bytes: job.output.max_file_mb.saturating_mul(1 << 20),
            frame: &frame,
            quarantine: quarantine_tmp.as_deref().map(|p| (p, &quarantine_schema)),
        };
        let bar = progress::Bar::new(
            opts.progress,
            if opts.progress {
                src.total_rows()
            } else {
                None
            },
        );
        let done = pipeline::run(&plan, &output, &|rows| bar.set(rows));
        bar.finish();
        let done = done?;
        if opts.shard.is_none() {
            // Shards are judged together by `scorch commit`.
            check_row_count(
                &job.output,
                env.table,
                &partition,
                done.rows_read,
                done.rows_written,
            )?;
        }
        m.rows.read = done.rows_read;
        m.rows.scored = done.rows_scored;
        m.rows.written = done.rows_written;
        m.rows.quarantined = done.rows_quarantined;
        m.rows.null_scores = null_scores.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(r) = &job.rollout {
            let ch = to_challenger.load(std::sync::atomic::Ordering::Relaxed);
            m.rollout = Some(RolloutInfo {
                fraction: r.fraction,
                salt: r.salt.clone(),
                rows_champion: done.rows_scored - ch,
                rows_challenger: ch,
            });
        }
        if let (Some(profile), Some(spec)) = (&profile, &job.report) {
            let profile = profile.lock().expect("profile lock");
            if opts.shard.is_some() {
                // A shard's statistics are merged and judged by `scorch commit`.
                shard::write_profile(&staged.dir().join(shard::PROFILE_FILE), &profile)?;
            } else {
                let r = write_report(
                    &profile,
                    spec,
                    env.table,
                    (&m.run_id, &job.name, &m.ds),
                    done.rows_read,
                    redactor,
                )?;
                m.checks = r.checks;
                m.warnings.extend(r.warnings);
                m.report = Some(r.json);
                m.report_html = Some(r.html);
                gate = r.gate;
                history = Some(r.history);
            }
        }
        if let Some(checker) = &checker {
            // Quarantined rows are kept for inspection even when the contract fails the run.
            if done.rows_quarantined > 0
                && let Some(tmp) = &quarantine_tmp
            {
                let at = env.table.quarantine().publish(tmp, &partition, &m.run_id)?;
                if let Some(c) = m.contract.as_mut() {
                    c.quarantine = Some(redactor.redact(&at));
                }
            }
            checker.lock().expect("contract lock").finish(opts.ds)?;
        }
        let sec = done.seconds;
        for (name, secs) in [
            ("read", sec.read),
            ("preprocess", sec.preprocess),
            ("tensorize", sec.tensorize),
            ("infer", sec.infer),
            ("write", sec.write),
            ("checks", sec.contract),
        ] {
            if name != "checks" || checker.is_some() || profile.is_some() {
                m.stages.insert(name, secs);
            }
        }
        tracing::info!(
            rows = m.rows.read,
            read_s = sec.read,
            preprocess_s = sec.preprocess,
            tensorize_s = sec.tensorize,
            infer_s = sec.infer,
            write_s = sec.write,
            threads,
            "scored"
        );
        m.output = Some(OutputInfo {
            table: redactor.redact(&env.table.location()),
            partition: redactor.redact(&staged.target()),
            files: done
                .files
                .iter()
                .map(|f| OutputFile {
                    path: f.name.clone(),
                    bytes: f.bytes,
                    rows: f.rows,
                })
                .collect(),
            columns: out_schema.iter_names().map(|c| c.to_string()).collect(),
        });
        let mut staged_manifest = m.clone();
        staged_manifest.status = if gate.is_empty() {
            "succeeded"
        } else {
            "checks_failed"
        };
        staged_manifest.finished_at = now();
        staged_manifest
            .stages
            .insert("total", t0.elapsed().as_secs_f64());
        staged_manifest.compute_throughput();
        write_manifest(
            &staged.dir().join(sink::PARTITION_MANIFEST),
            &staged_manifest,
        )
    })();
    if let Some(tmp) = &quarantine_tmp {
        let _ = std::fs::remove_file(tmp);
    }
    if let Err(e) = result {
        staged.abandon();
        return Err(e);
    }
    let target = publish_staged(staged, opts.shard, env.lock, env.replaces)?;
    tracing::info!(partition = %redactor.redact(&target), rows = m.rows.written, "published");
    if let Some(mut h) = history {
        env.table.history().append(&partition, &m.run_id, &mut h)?;
    }
    if !gate.is_empty() {
        return Err(Error::QualityGate(format!(
            "{} check(s) of severity fail did not hold: {}; the output was published to {} \
             and the report written to {}",
            gate.len(),
            gate.join(", "),
            redactor.redact(&target),
            m.report.clone().unwrap_or_default()
        )));
    }
    Ok(target)
}

/// Publishes a staged partition (or shard, `shard`) inside the lock's publish
/// guard, which a takeover must also take: a run whose lock was taken over
/// publishes nothing and exits 6; on object stores the manifest PUT is also
/// conditional on `replaces`. Returns where the partition is.
fn publish_staged(
    staged: sink::Staged,
    shard: Option<(usize, usize)>,
    lock: &lock::Lock,
    replaces: &sink::Replaces,
) -> Result<String> {
    #[cfg(feature = "test-hooks")]
    if let Some(ms) = std::env::var(PAUSE_BEFORE_PUBLISH_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    // Fenced: the lock is checked, and the files swapped, inside the publish guard
    // that a takeover must also take (a run whose lock was taken exits 6 here).
    let guard = match lock.publish_guard() {
        Ok(g) => g,
        Err(e) => {
            staged.abandon();
            return Err(e);
        }
    };
    #[cfg(feature = "test-hooks")]
    if let Some((ms, mark)) = std::env::var(PAUSE_IN_PUBLISH_ENV)
        .ok()
        .and_then(|v| {
            v.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .and_then(|(ms, mark)| ms.parse::<u64>().ok().map(|ms| (ms, mark)))
    {
        let _ = std::fs::write(&mark, b"");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    let target = match shard {
        Some((index, count)) => staged.publish_shard(&shard::dir_name(index, count), replaces)?,
        None => staged.publish(replaces)?,
    };
    drop(guard);
    Ok(target)
}

/// Refuses to replace a partition with nothing (unless `output.allow_empty`) or with
/// fewer rows than `output.min_rows_ratio` of the partition it replaces: exit 3,
/// before anything is published or added to the metrics history.
pub(crate) fn check_row_count(
    spec: &crate::spec::job::OutputSpec,
    table: &sink::Table,
    partition: &str,
    read: u64,
    rows: u64,
) -> Result<()> {
    if rows > 0 && spec.min_rows_ratio.is_none() {
        return Ok(());
    }
    let previous = match table.partition_manifest(partition)? {
        Some(bytes) => Some(
            PublishedManifest::parse(&bytes, &format!("partition {partition}"))?
                .rows
                .written(),
        ),
        None => None,
    };
    let replaces = match previous {
        Some(n) => format!("the partition {partition} it would replace holds {n} rows"),
        None => format!("there is no partition {partition} yet"),
    };
    if rows == 0 && !spec.allow_empty {
        return Err(Error::DataContract(format!(
            "the run read {read} rows and would write none, and {replaces}; nothing was published. If an empty \
             partition is right for this date, set `output.allow_empty: true` in the job"
        )));
    }
    if let (Some(ratio), Some(prev)) = (spec.min_rows_ratio, previous)
        && (rows as f64) < ratio * prev as f64
    {
        return Err(Error::DataContract(format!(
            "the run would write {rows} rows, fewer than `output.min_rows_ratio` {ratio} of the \
             {prev} rows of partition {partition} it would replace; nothing was published"
        )));
    }
    Ok(())
}

/// What [`write_report`] wrote and found.
pub(crate) struct ReportOutcome {
    /// The run's rows of the metrics history: appended by the caller once the
    /// partition is published (a run that publishes nothing must not teach the
    /// anomaly baselines).
    pub history: DataFrame,
    /// Every check's result.
    pub checks: Vec<crate::reports::CheckResult>,
    /// `warn` checks and drift, as manifest warnings.
    pub warnings: Vec<String>,
    /// The failed `fail` checks and drift: the quality gate.
    pub gate: Vec<String>,
    /// Where `report.json` and `report.html` were written (redacted).
    pub json: String,
    pub html: String,
}

/// Assembles the report of a finished run (or of a commit of shards) from its
/// profile and writes it: `<run id>.report.json` and `.report.html` beside the run
/// manifests; returns the run's rows of the table's metrics history.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_report(
    profile: &crate::reports::Profile,
    spec: &crate::spec::job::ReportSpec,
    table: &sink::Table,
    (run_id, job_name, ds): (&str, &str, &str),
    rows_read: u64,
    redactor: &Redactor,
) -> Result<ReportOutcome> {
    let history = if spec.anomalies.is_empty() {
        None
    } else {
        Some(table.history().read()?)
    };
    let report = crate::reports::Report::assemble(
        profile,
        spec,
        (run_id, job_name, ds),
        rows_read,
        history.as_ref(),
    )?;
    let (mut gate, mut warnings) = (Vec::new(), Vec::new());
    for c in &report.checks {
        match c.status {
            "fail" => gate.push(c.name.clone()),
            "warn" => warnings.push(format!("check {} is {:?}", c.name, c.value)),
            _ => {}
        }
    }
    for d in &report.drift {
        match d.status {
            "fail" => gate.push(format!("drift({}) {}", d.column, d.reasons.join(", "))),
            "warn" => warnings.push(format!("drift of {}: {}", d.column, d.reasons.join(", "))),
            _ => {}
        }
    }
    // The report holds names and numbers, no paths: written as serialized.
    let text = serde_json::to_string_pretty(&report).expect("report serializes");
    let json = table.run_log().write_file(
        &format!("{run_id}.report.json"),
        format!("{text}\n").as_bytes(),
    )?;
    let histograms = profile
        .drift
        .as_ref()
        .map(|d| d.histograms())
        .unwrap_or_default();
    let page = crate::reports::html::render(&report, &histograms);
    let html = table
        .run_log()
        .write_file(&format!("{run_id}.report.html"), page.as_bytes())?;
    let history = crate::reports::history::frame(&report, &crate::reports::history::rows(&report))?;
    Ok(ReportOutcome {
        history,
        checks: report.checks,
        warnings,
        gate,
        json: redactor.redact(&json),
        html: redactor.redact(&html),
    })
}

fn scored_at_dtype() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

/// Values every output row of a run shares.
struct Constants {
    /// Name and version of each scorer: the job's model, then the challenger.
    models: Vec<(String, String)>,
    run_id: String,
    scored_at: i64,
}

/// Carried columns, scores and the run's model and constant columns for one chunk.
///
/// `score_columns` names the score columns in output order: one scorer's (plain and
/// canary runs: scores merged by the split) or every scorer's (shadow runs).
/// `model_columns` names the model columns: `model_name`, `model_version` (the
/// scorer of each row), or a name and version column per scorer (shadow runs).
fn output_frame(
    raw: &DataFrame,
    carry: &[String],
    score_columns: &[String],
    scores: pipeline::ChunkScores,
    c: &Constants,
    model_columns: &[&str],
) -> Result<(DataFrame, u64)> {
    let n = raw.height();
    let mut columns: Vec<Column> = Vec::with_capacity(carry.len() + score_columns.len() + 6);
    for k in carry {
        let mut c = raw.column(k)?.clone();
        c.rename(sink::file_column(k).into());
        columns.push(c);
    }
    let text =
        |name: &str, v: &str| Column::new_scalar(name.into(), Scalar::from(PlSmallStr::from(v)), n);
    let shadow = model_columns.len() > 2;
    let route = scores.route.clone();
    let values: Vec<Vec<f32>> = if shadow {
        scores.by_scorer.into_iter().flatten().collect()
    } else {
        scores.into_merged()
    };
    let mut nulls = 0u64;
    for (name, v) in score_columns.iter().zip(values) {
        if v.iter().all(|x| x.is_finite()) {
            columns.push(Column::new(name.into(), v));
        } else {
            // Only with `inference.invalid_scores: null` (else the run failed).
            let v: Vec<Option<f32>> = v.into_iter().map(|x| x.is_finite().then_some(x)).collect();
            nulls += v.iter().filter(|x| x.is_none()).count() as u64;
            columns.push(Column::new(name.into(), v));
        }
    }
    if shadow {
        for (i, (name, version)) in c.models.iter().enumerate() {
            columns.push(text(model_columns[2 * i], name));
            columns.push(text(model_columns[2 * i + 1], version));
        }
    } else if let Some(route) = route {
        let pick = |f: &dyn Fn(&(String, String)) -> &str| -> Vec<&str> {
            route.iter().map(|&r| f(&c.models[r as usize])).collect()
        };
        columns.push(Column::new("model_name".into(), pick(&|m| &m.0)));
        columns.push(Column::new("model_version".into(), pick(&|m| &m.1)));
    } else {
        columns.push(text("model_name", &c.models[0].0));
        columns.push(text("model_version", &c.models[0].1));
    }
    columns.push(text("run_id", &c.run_id));
    columns.push(Column::new_scalar(
        "scored_at".into(),
        Scalar::new(
            scored_at_dtype(),
            AnyValue::DatetimeOwned(
                c.scored_at,
                TimeUnit::Microseconds,
                Some(std::sync::Arc::new(TimeZone::UTC)),
            ),
        ),
        n,
    ));
    Ok((DataFrame::new(n, columns)?, nulls))
}

/// Opens the bundle a job field names (a folder or a registry reference), before
/// any data is read; returns it, its manifest entry and the rendered reference.
fn open_bundle(
    opts: &RunOptions,
    reference: &str,
    field: &str,
    vars: &TemplateVars,
    redactor: &mut Redactor,
) -> Result<(Bundle, ModelInfo, crate::spec::template::Rendered)> {
    let model_dir = render(reference, vars)
        .map_err(|e| Error::config(&opts.job_file, format!("field `{field}`: {e}")))?;
    redactor.add(&model_dir);
    let bundle_dir = crate::registry::bundle_dir(&opts.root, &model_dir.value)?;
    let bundle = Bundle::open(&bundle_dir)?;
    let info = ModelInfo {
        name: bundle.spec.name.clone(),
        version: bundle.spec.version.clone(),
        bundle: redactor.redact(
            &bundle_dir
                .strip_prefix(&opts.root)
                .unwrap_or(&bundle_dir)
                .to_string_lossy(),
        ),
        sha256: bundle.spec.model_sha256.clone(),
        format: bundle.spec.model_format().name().into(),
    };
    Ok((bundle, info, model_dir))
}
