//! The run plan: everything a run needs, resolved and checked before it writes
//! anything — the job and its overrides, the output table and the partition (or
//! shard) it would replace, the lock it would take, the models opened and probed,
//! the preprocessing pin, the inputs listed with their schema, the report and
//! contract settings, the output layout. [`RunPlan::execute`] runs it;
//! `scorch run --dry-run` prints it ([`RunPlan::describe`]).

use std::time::Instant;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use super::input::{Input, open_input};
use super::models::{Models, open_models};
use super::output::Layout;
use super::{PREPROCESS_PATH_ENV, RunOptions, shard};
use crate::error::{Error, Result};
use crate::infer::available_cores;
use crate::preprocess;
use crate::sink;
use crate::sink::manifest::*;
use crate::spec::inference::{DeviceChoice, Precision};
use crate::spec::job::InferenceSpec;

/// What a run resolves before it opens models or data: the job with its
/// overrides applied, the rendered templates and their secrets, the output table
/// and the names of what the run would lock and replace.
pub(crate) struct Setup {
    pub opts: RunOptions,
    /// The job, its templates, profiles, storage, secrets and output table.
    pub ctx: super::JobContext,
    /// The output's Delta log, when the job writes `output.format: delta`.
    pub delta: Option<sink::delta::DeltaLog>,
    /// The job's `inference:` with the command line's overrides.
    pub inference: InferenceSpec,
    /// Worker threads (`inference.threads`, 0 resolved to the cores).
    pub threads: usize,
    /// The partition the run writes: `ds=<date>`.
    pub partition: String,
    /// The lock the run takes: the partition, or the partition's shard.
    pub lock_name: String,
    /// What the run's publish replaces (the fencing token is read from it under
    /// the lock): the partition, or the shard's folder.
    pub replaces: String,
    /// When the run started (the manifest's `total` seconds count from here).
    pub t0: Instant,
}

impl Setup {
    /// Loads the job, applies the overrides (checked like the job's own fields),
    /// renders and confines the output path and opens the output table; starts the
    /// run's manifest. Reads the job and profiles files only.
    pub fn resolve(opts: &RunOptions, run_id: String) -> Result<(Setup, Manifest)> {
        let t0 = Instant::now();
        let (mut job, job_sha256) = super::context::load(&opts.job_file)?;
        let table_of = match &opts.shadow {
            Some(s) => {
                // A shadow run writes nothing of the production run's: no report, no canary.
                job.report = None;
                job.rollout = None;
                super::TableOf::Shadow(&s.table)
            }
            None => super::TableOf::Output,
        };
        let ctx = super::JobContext::with_job(
            job,
            job_sha256,
            &opts.job_file,
            &opts.root,
            opts.profiles.as_deref(),
            opts.ds,
            table_of,
        )?;
        // Shadow runs write their comparison table as Parquet, whatever the job's format.
        let delta = if ctx.job.output.format == crate::spec::job::OutputFormat::Delta
            && opts.shadow.is_none()
        {
            if opts.shard.is_some() {
                return Err(Error::usage(format!(
                    "{}: a Delta output (`output.format: delta`) is written by one run per date; \
                     run it without --shard",
                    opts.job_file.display()
                )));
            }
            Some(
                sink::delta::DeltaLog::open(&ctx.table)
                    .map_err(|e| e.redacted(|m| ctx.redactor.redact(m)))?,
            )
        } else {
            None
        };
        let job = &ctx.job;
        let inference = overridden(&job.inference, opts)?;
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
            sha256: ctx.job_sha256.clone(),
        };
        let inference_info = InferenceInfo {
            device: inference.device.clone(),
            threads,
            batch_size: inference.batch_size,
            chunk_rows: inference.chunk_rows.div_ceil(inference.batch_size) * inference.batch_size,
            precision: inference.precision.clone(),
        };
        let m = Manifest::start(run_id, kind, job_info, opts.ds, inference_info);
        let partition = format!("ds={}", m.ds);
        let (lock_name, replaces) = match opts.shard {
            Some((i, n)) => (
                format!("ds={}.{}", m.ds, shard::dir_name(i, n)),
                format!("{}/ds={}/{}", sink::SHARDS_DIR, m.ds, shard::dir_name(i, n)),
            ),
            None => (partition.clone(), partition.clone()),
        };
        let setup = Setup {
            opts: opts.clone(),
            ctx,
            delta,
            inference,
            threads,
            partition,
            lock_name,
            replaces,
            t0,
        };
        Ok((setup, m))
    }

    /// Records the run's `total` seconds, its throughput and its end time.
    pub fn finish(&self, m: &mut Manifest) {
        m.stages.insert("total", self.t0.elapsed().as_secs_f64());
        m.compute_throughput();
        m.finished_at = super::now();
    }

    /// Ends a run that failed after its output table was known: the manifest,
    /// with `status: failed` and the error, is written to the table's run log.
    pub fn fail(&self, mut m: Manifest, e: Error) -> Error {
        self.finish(&mut m);
        m.record_failure(&e, &self.ctx.redactor);
        if let Err(w) = self
            .ctx
            .table
            .run_log()
            .write_manifest(&m.run_id, &super::manifest_bytes(&m))
        {
            tracing::warn!(error = %self.ctx.redactor.redact(&w.to_string()), "could not write the failed run's manifest");
        }
        crate::observe::run_finished(&m, &self.ctx.location);
        e
    }
}

/// The job's `inference:` with the run's overrides; each override passes the same
/// check as the job's field (crate::spec::limits).
fn overridden(spec: &InferenceSpec, opts: &RunOptions) -> Result<InferenceSpec> {
    use crate::spec::limits;
    let mut inference = spec.clone();
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
    Ok(inference)
}

/// The compiled (fused) preprocessing of each model, where its steps and types
/// allow it; `None` runs the Polars path.
pub(crate) struct Prepared {
    pub fused: Option<preprocess::fused::Compiled>,
    pub fused2: Option<preprocess::fused::Compiled>,
}

/// A run, resolved and checked: what [`RunPlan::execute`] runs. Building it
/// writes nothing.
pub struct RunPlan {
    pub(crate) setup: Setup,
    /// The run's manifest so far: job, model, preprocessing, source and inputs.
    pub(crate) manifest: Manifest,
    pub(crate) models: Models,
    pub(crate) input: Input,
    pub(crate) prepared: Prepared,
    pub(crate) layout: Layout,
}

impl RunPlan {
    /// Resolves everything the run of `opts` needs — job and overrides, output
    /// table and lock target, models (opened and probed), preprocessing pin,
    /// inputs (listed, schema checked), report and contract settings — and writes
    /// nothing. Fails with the error, and so the exit code, the run would give.
    pub fn build(opts: &RunOptions) -> Result<RunPlan> {
        let (setup, m) = Setup::resolve(opts, super::new_run_id())?;
        RunPlan::assemble(setup, m).map_err(|(e, _, _)| e)
    }

    /// The steps of [`RunPlan::build`] after the output table is known; on
    /// failure the setup and manifest come back so the run can record it.
    pub(crate) fn assemble(
        mut setup: Setup,
        mut m: Manifest,
    ) -> std::result::Result<RunPlan, (Error, Box<Setup>, Box<Manifest>)> {
        let parts = (|| {
            let models = open_models(&mut setup, &mut m)?;
            let input = open_input(&mut setup, &models, &mut m)?;
            let prepared = prepare(&models, &input.schema)?;
            m.preprocessing.as_mut().expect("set by open_models").path = if prepared.fused.is_some()
            {
                "fused"
            } else {
                "polars"
            };
            let mut layout = Layout::new(&setup, &models, &input, &m);
            if setup.delta.is_some() {
                layout.delta = Some(
                    sink::delta::table_schema(&layout.schema)
                        .map_err(|e| Error::config(&setup.opts.job_file, e))?,
                );
            }
            Ok((models, input, prepared, layout))
        })();
        match parts {
            Ok((models, input, prepared, layout)) => Ok(RunPlan {
                setup,
                manifest: m,
                models,
                input,
                prepared,
                layout,
            }),
            Err(e) => Err((e, Box::new(setup), Box::new(m))),
        }
    }

    /// What the plan would do, for `scorch run --dry-run`: reads the inputs'
    /// Parquet footers and the partition's current manifest, nothing else.
    pub fn describe(&self) -> Result<DryRun> {
        let s = &self.setup;
        let m = &self.manifest;
        let rows = self.input.src.input_rows()?;
        let inputs: Vec<PlannedInput> = m
            .inputs
            .iter()
            .zip(rows)
            .map(|(f, rows)| PlannedInput {
                path: f.path.clone(),
                bytes: f.bytes,
                rows,
            })
            .collect();
        // Inputs known to hold no rows: the run would refuse to publish nothing, and
        // so does its plan, with the run's message and exit code.
        let total: Option<u64> = inputs.iter().map(|i| i.rows).sum();
        if total == Some(0) {
            super::checks::check_row_count(
                &s.ctx.job.output,
                &s.ctx.table,
                s.delta.as_ref(),
                &s.partition,
                0,
                0,
            )
            .map_err(|e| e.context("dry run: the inputs' Parquet footers hold 0 rows"))?;
        }
        let current = super::checks::published_rows(&s.ctx.table, s.delta.as_ref(), &s.partition)?;
        let model = |role: &'static str, i: &ModelInfo| PlannedModel {
            role,
            name: i.name.clone(),
            version: i.version.clone(),
            format: i.format.clone(),
            bundle: i.bundle.clone(),
            sha256: i.sha256.clone(),
        };
        let mut models = vec![model(
            "model",
            m.model.as_ref().expect("set by open_models"),
        )];
        if let Some(c) = &m.challenger {
            models.push(model(
                if s.opts.shadow.is_some() {
                    "challenger"
                } else {
                    "canary"
                },
                c,
            ));
        }
        let p = m.preprocessing.as_ref().expect("set by open_models");
        Ok(DryRun {
            job: m.job.name.clone(),
            job_file: m.job.file.clone(),
            ds: m.ds.clone(),
            kind: m.kind,
            source: m.source.clone().unwrap_or_default(),
            rows: total,
            bytes: inputs.iter().map(|i| i.bytes).sum(),
            inputs,
            shard: m.shard.clone(),
            models,
            device: m.inference.device.clone(),
            precision: m.inference.precision.clone(),
            threads: m.inference.threads,
            batch_size: m.inference.batch_size,
            preprocessing: format!(
                "{} {} ({}), {} path",
                p.name, p.version, p.state_hash, p.path
            ),
            table: s.ctx.location.clone(),
            partition: s.partition.clone(),
            replaces_rows: current,
            lock: s.lock_name.clone(),
            columns: self.layout.column_names(),
            report: s.ctx.job.report.as_ref().map(|r| {
                let mut v = vec![format!("{} check(s)", r.checks.len())];
                if r.drift.is_some() {
                    v.push("drift against the model's reference profile".into());
                }
                if !r.anomalies.is_empty() {
                    v.push(format!("{} anomaly rule(s)", r.anomalies.len()));
                }
                v.join(", ")
            }),
            contract: m
                .contract
                .as_ref()
                .map(|c| format!("{} ({})", c.name, c.file)),
        })
    }

    /// The run's logical date.
    pub fn ds(&self) -> NaiveDate {
        self.setup.opts.ds
    }
}

/// Compiles each model's preprocessing for the fused path, unless a step or type
/// needs the Polars path (or SCORCH_PREPROCESS_PATH=polars asks for it).
fn prepare(models: &Models, schema: &Schema) -> Result<Prepared> {
    let compile = |state: &preprocess::state::FittedState| -> Result<_> {
        if std::env::var(PREPROCESS_PATH_ENV).is_ok_and(|v| v == "polars") {
            return Ok(None);
        }
        let derived =
            preprocess::with_derived(DataFrame::empty_with_schema(schema).lazy(), &state.spec)?
                .collect_schema()?;
        Ok(preprocess::fused::Compiled::new(state, &derived))
    };
    Ok(Prepared {
        fused: compile(&models.bundle.state)?,
        fused2: models
            .second
            .as_ref()
            .map(|(b, _, _)| compile(&b.state))
            .transpose()?
            .flatten(),
    })
}

/// One input of a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedInput {
    /// Path or URL (secrets redacted).
    pub path: String,
    pub bytes: u64,
    /// Rows, from the Parquet footer (`None`: not a Parquet file, e.g. a query).
    pub rows: Option<u64>,
}

/// One model of a dry run.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedModel {
    /// `model`, `challenger` (shadow runs) or `canary` (`rollout:`).
    pub role: &'static str,
    pub name: String,
    pub version: String,
    pub format: String,
    pub bundle: String,
    pub sha256: String,
}

/// What `scorch run --dry-run` prints: the plan of the run, nothing written.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub job: String,
    pub job_file: String,
    pub ds: String,
    /// `run`, `shard` or `shadow`.
    pub kind: &'static str,
    pub source: String,
    pub inputs: Vec<PlannedInput>,
    /// Rows of all inputs (`None` if one is not known before the run: a query).
    pub rows: Option<u64>,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    pub models: Vec<PlannedModel>,
    /// The device the model was loaded on (`auto` resolved).
    pub device: String,
    pub precision: String,
    pub threads: usize,
    pub batch_size: usize,
    pub preprocessing: String,
    /// The output table (secrets redacted).
    pub table: String,
    /// The partition the run would replace.
    pub partition: String,
    /// The rows of that partition now (`None`: there is none yet).
    pub replaces_rows: Option<u64>,
    /// The lock the run would take in the table's `_locks/`.
    pub lock: String,
    /// The output's columns, in order.
    pub columns: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
}

/// Bytes as the largest unit that keeps a number ≥ 1 (KiB, MiB, GiB).
fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

impl std::fmt::Display for DryRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows = |r: Option<u64>| r.map_or("rows unknown".to_string(), |n| format!("{n} rows"));
        writeln!(
            f,
            "scorch: dry run of job {} ({}) ds={}: the plan; nothing was written",
            self.job, self.job_file, self.ds
        )?;
        writeln!(f, "  source: {}", self.source)?;
        writeln!(
            f,
            "  inputs: {} file(s), {}, {}",
            self.inputs.len(),
            human_bytes(self.bytes),
            rows(self.rows)
        )?;
        for i in &self.inputs {
            writeln!(
                f,
                "    {}  {}  {}",
                i.path,
                human_bytes(i.bytes),
                rows(i.rows)
            )?;
        }
        if let Some(s) = &self.shard {
            writeln!(
                f,
                "  shard: {}/{}: rows {}..{} of {}",
                s.index, s.count, s.row_start, s.row_end, s.total_rows
            )?;
        }
        for m in &self.models {
            writeln!(
                f,
                "  {}: {} {} ({}, bundle {}, sha256 {})",
                m.role, m.name, m.version, m.format, m.bundle, m.sha256
            )?;
        }
        writeln!(
            f,
            "  inference: device {}, precision {}, {} thread(s), batch {}",
            self.device, self.precision, self.threads, self.batch_size
        )?;
        writeln!(f, "  preprocessing: {}", self.preprocessing)?;
        writeln!(f, "  output: {}", self.table)?;
        writeln!(
            f,
            "  partition: {} ({})",
            self.partition,
            match self.replaces_rows {
                Some(n) => format!("would replace its {n} rows"),
                None => "new: there is no such partition yet".into(),
            }
        )?;
        writeln!(f, "  columns: {}", self.columns.join(", "))?;
        if let Some(r) = &self.report {
            writeln!(f, "  report: {r}")?;
        }
        if let Some(c) = &self.contract {
            writeln!(f, "  contract: {c}")?;
        }
        write!(f, "  lock: {}/{}.lock", super::lock::LOCKS_DIR, self.lock)
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_read_in_the_largest_whole_unit() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 + 512 * 1024), "5.5 MiB");
        assert_eq!(human_bytes(u64::MAX), "17179869184.0 GiB");
    }
}
