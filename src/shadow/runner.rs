//! `scorch shadow`: score the job's input for each date with the job's model and a
//! challenger, write both scores to the shadow table, compare them, judge the
//! promotion rules and, when asked and every rule holds, promote the challenger.
//!
//! Each date is one shadow run (the same engine as `scorch run`: every input row is
//! read once and scored by both models; preprocessing is applied once when both pin
//! the same state). Its partition lands in the shadow table (`<table>/ds=<date>/`,
//! with a manifest), never in the production table. The comparison of all dates is
//! written beside the runs' manifests: `<table>/_runs/<shadow id>.report.json`,
//! `.report.html` and `.metrics.parquet` (one row per segment and metric).

use std::path::PathBuf;

use chrono::{NaiveDate, SecondsFormat, Utc};
use polars::prelude::*;
use serde::Serialize;

use super::compare::{self, Section};
use super::gate::{self, RuleResult};
use super::{feed, stream};
use crate::error::{Error, Result};
use crate::run::{
    CHALLENGER_PREFIX, CHAMPION_PREFIX, JobContext, RunOptions, ShadowTarget, TableOf,
};
use crate::spec::job::JobSpec;
use crate::spec::template::TemplateVars;

/// Version of the comparison report layout.
pub const REPORT_VERSION: u32 = 1;
/// At most this many values of each segment column are reported (the most frequent).
pub const MAX_SEGMENT_VALUES: usize = 100;

/// What to compare.
#[derive(Debug, Clone)]
pub struct ShadowOptions {
    pub job_file: PathBuf,
    pub root: PathBuf,
    /// The challenger: `<name>@<version>`, `<name>@<alias>` or a bundle folder.
    pub challenger: String,
    /// The dates scored, in order.
    pub dates: Vec<NaiveDate>,
    /// Point `alias` at the challenger when every gate rule holds.
    pub promote_if_pass: bool,
    /// The alias `--promote-if-pass` moves.
    pub alias: String,
    /// The registry the challenger is looked up in and promoted in (default:
    /// `$SCORCH_REGISTRY`, else `<root>/models`).
    pub registry: Option<PathBuf>,
    pub threads: Option<usize>,
    pub batch_size: Option<usize>,
    pub device: Option<String>,
    pub precision: Option<String>,
    pub profiles: Option<PathBuf>,
}

/// A model as the report names it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// One date's shadow run.
#[derive(Debug, Clone, Serialize)]
pub struct DateRun {
    pub ds: String,
    pub run_id: String,
    pub partition: String,
    pub rows: u64,
    pub labelled_rows: u64,
}

/// The comparison of one value of one segment column.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentSection {
    pub column: String,
    pub value: String,
    #[serde(flatten)]
    pub section: Section,
}

/// A row the two models disagree on most.
#[derive(Debug, Clone, Serialize)]
pub struct Disagreement {
    pub ds: String,
    /// Key values as text, in the order of `key_columns`.
    pub key: Vec<String>,
    /// Segment values as text, in the order of `segment_columns`.
    pub segments: Vec<Option<String>>,
    pub champion: f64,
    pub challenger: f64,
    pub abs_diff: f64,
    pub label: Option<bool>,
}

/// The shadow comparison report (`<shadow id>.report.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub report_version: u32,
    pub scorch_version: &'static str,
    pub shadow_id: String,
    pub job: String,
    pub created_at: String,
    pub champion: ModelRef,
    pub challenger: ModelRef,
    /// The compared score column.
    pub score: String,
    /// The shadow table.
    pub table: String,
    pub runs: Vec<DateRun>,
    pub thresholds: Vec<f64>,
    pub bootstrap: Bootstrap,
    /// `report.memory_budget_mb`: what the comparison's sorts, counts and label
    /// joins hold in memory (past it they spill to `$TMPDIR`).
    pub memory_budget_mb: usize,
    /// Bytes written to spill files (sorted runs, counts, join partitions).
    pub spill_bytes: u64,
    pub key_columns: Vec<String>,
    pub segment_columns: Vec<String>,
    /// The label column, when labels were joined.
    pub label_column: Option<String>,
    pub overall: Section,
    pub segments: Vec<SegmentSection>,
    pub disagreements: Vec<Disagreement>,
    pub gate: Vec<RuleResult>,
    /// Every rule held (`true` without rules).
    pub passed: bool,
    /// The alias moved to the challenger, when `--promote-if-pass` promoted it.
    pub promoted: Option<String>,
}

/// How the confidence intervals were computed.
#[derive(Debug, Clone, Serialize)]
pub struct Bootstrap {
    pub method: &'static str,
    pub resamples: usize,
    pub seed: u64,
    pub confidence: f64,
}

/// Where a finished shadow comparison went.
#[derive(Debug)]
pub struct ShadowSummary {
    pub comparison: Comparison,
    pub report_json: String,
    pub report_html: String,
    pub metrics_parquet: String,
}

impl std::fmt::Display for ShadowSummary {
    /// The closing summary `scorch shadow` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fmt = |v: Option<f64>| v.map_or("–".into(), |x| format!("{x:.4}"));
        let c = &self.comparison;
        let o = &c.overall;
        writeln!(
            f,
            "scorch: shadow {} of job {}: {} {} vs {} {} over {} date(s), {} rows ({} labelled)\n  \
             agreement at {}: {}; mean |diff| {}; Spearman {}; PSI {}",
            c.shadow_id,
            c.job,
            c.champion.name,
            c.champion.version,
            c.challenger.name,
            c.challenger.version,
            c.runs.len(),
            o.rows,
            o.labelled_rows,
            c.thresholds[0],
            fmt(o.agreement[0].agreement),
            fmt(o.mean_abs_diff),
            fmt(o.spearman),
            fmt(o.psi)
        )?;
        if let Some(l) = &o.labelled {
            for d in &l.deltas {
                writeln!(
                    f,
                    "  {} challenger − champion: {} (95% interval {} to {})",
                    d.metric,
                    fmt(d.delta),
                    fmt(d.ci_low),
                    fmt(d.ci_high)
                )?;
            }
        }
        for r in &c.gate {
            writeln!(
                f,
                "  rule {}: {}",
                r.rule,
                if r.passed { "pass" } else { "FAIL" }
            )?;
        }
        if let Some(a) = &c.promoted {
            writeln!(
                f,
                "  promoted {}@{} to alias {a}",
                c.challenger.name, c.challenger.version
            )?;
        }
        write!(
            f,
            "  report: {}\n  html:   {}\n  metrics: {}",
            self.report_json, self.report_html, self.metrics_parquet
        )
    }
}

/// Runs the shadow comparison. Exit 5 (after writing everything) when a gate rule fails.
pub fn shadow(opts: &ShadowOptions) -> Result<ShadowSummary> {
    if opts.dates.is_empty() {
        return Err(Error::usage(
            "no dates to score: give --date or --from and --to",
        ));
    }
    let (job, job_sha256) = crate::run::context::load(&opts.job_file)?;
    let spec = job.shadow.clone().unwrap_or_default();
    if opts.promote_if_pass && spec.gate.is_empty() {
        return Err(Error::config(
            &opts.job_file,
            "`--promote-if-pass` needs promotion rules: add `shadow.gate` to the job",
        ));
    }
    let table_path = crate::run::context::shadow_table(&job);
    let mut ctx = JobContext::with_job(
        job,
        job_sha256,
        &opts.job_file,
        &opts.root,
        opts.profiles.as_deref(),
        opts.dates[0],
        TableOf::Shadow(&table_path),
    )?;
    // Every date's shadow partition, rendered and confined before any is scored.
    let bases = opts
        .dates
        .iter()
        .map(|&ds| ctx.table_path_for(ds))
        .collect::<Result<Vec<_>>>()?;
    // The compared score column: the job's model's first unless the job names one.
    let champion = crate::model::Bundle::open_with(&ctx.model_dir()?, false)?;
    let target = ShadowTarget {
        challenger: challenger_location(opts)?,
        table: table_path,
        carry: carried(&ctx.job, &spec),
        score: spec
            .score
            .clone()
            .unwrap_or_else(|| champion.spec.score_columns()[0].clone()),
    };
    let (mut runs, (champion_ref, challenger_ref)) = score_dates(opts, &target)?;
    let compared = compare_dates(&mut ctx, opts, &spec, &target, &bases, &mut runs)?;
    let overall = compared.overall;
    let results: Vec<RuleResult> = spec
        .gate
        .iter()
        .map(|r| gate::judge(r, |m| overall.value(m, &spec.thresholds)))
        .collect();
    let passed = results.iter().all(|r| r.passed);
    let shadow_id = format!("shadow-{}", crate::run::new_run_id());
    let mut cmp = Comparison {
        report_version: REPORT_VERSION,
        scorch_version: env!("CARGO_PKG_VERSION"),
        shadow_id: shadow_id.clone(),
        job: ctx.job.name.clone(),
        created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        champion: champion_ref,
        challenger: challenger_ref,
        score: target.score,
        table: ctx.location.clone(),
        runs,
        thresholds: spec.thresholds.clone(),
        bootstrap: Bootstrap {
            method: "poisson",
            resamples: spec.bootstrap,
            seed: compare::BOOTSTRAP_SEED,
            confidence: 0.95,
        },
        memory_budget_mb: ctx.memory_budget() >> 20,
        spill_bytes: compared.spill_bytes,
        key_columns: ctx.job.keys.clone(),
        segment_columns: spec.segments.clone(),
        label_column: ctx.job.labels().map(|l| l.column.clone()),
        overall,
        segments: compared.segments,
        disagreements: compared.disagreements,
        gate: results,
        passed,
        promoted: None,
    };
    if opts.promote_if_pass && passed {
        let reg = crate::registry::Registry::open(&registry_root(opts))?;
        let why = format!(
            "scorch shadow {shadow_id}: {} rule(s) passed over {} date(s)",
            cmp.gate.len(),
            cmp.runs.len()
        );
        reg.promote(
            &cmp.challenger.name,
            &cmp.challenger.version,
            &opts.alias,
            &why,
            &crate::registry::who(),
        )?;
        cmp.promoted = Some(opts.alias.clone());
    }
    let summary = write_comparison(&ctx, cmp, compared.histogram.as_ref())?;
    let failed: Vec<String> = summary
        .comparison
        .gate
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("`{}` ({})", r.rule, r.why))
        .collect();
    if !failed.is_empty() {
        return Err(Error::QualityGate(format!(
            "{} of {} promotion rule(s) failed{}: {}; the report is {}",
            failed.len(),
            summary.comparison.gate.len(),
            if opts.promote_if_pass {
                ", so the challenger was not promoted"
            } else {
                ""
            },
            failed.join("; "),
            summary.report_html
        )));
    }
    Ok(summary)
}

/// Input columns the shadow table carries after the keys: the segments, and the
/// label when the input holds it.
fn carried(job: &JobSpec, spec: &crate::spec::job::ShadowSpec) -> Vec<String> {
    let label_in_input = job.labels().filter(|l| l.path.is_none());
    let mut carry: Vec<String> = Vec::new();
    for c in spec
        .segments
        .iter()
        .chain(label_in_input.map(|l| &l.column))
    {
        if !job.keys.contains(c) && !carry.contains(c) {
            carry.push(c.clone());
        }
    }
    carry
}

/// Each date is one shadow run: its partition lands in the shadow table. Returns
/// the runs and the two models they scored with.
fn score_dates(
    opts: &ShadowOptions,
    target: &ShadowTarget,
) -> Result<(Vec<DateRun>, (ModelRef, ModelRef))> {
    let mut runs = Vec::new();
    let mut models: Option<(ModelRef, ModelRef)> = None;
    for &ds in &opts.dates {
        let run = crate::run::run(&RunOptions {
            job_file: opts.job_file.clone(),
            root: opts.root.clone(),
            ds,
            threads: opts.threads,
            batch_size: opts.batch_size,
            device: opts.device.clone(),
            precision: opts.precision.clone(),
            progress: false,
            profiles: opts.profiles.clone(),
            shadow: Some(target.clone()),
            shard: None,
            wait_lock: None,
        })?;
        let m = &run.manifest;
        let model_ref = |i: &crate::sink::manifest::ModelInfo| ModelRef {
            name: i.name.clone(),
            version: i.version.clone(),
            sha256: i.sha256.clone(),
        };
        if let (Some(a), Some(b)) = (&m.model, &m.challenger) {
            models = Some((model_ref(a), model_ref(b)));
        }
        runs.push(DateRun {
            ds: ds.format("%Y-%m-%d").to_string(),
            run_id: m.run_id.clone(),
            partition: run.partition.clone(),
            rows: m.rows.written,
            labelled_rows: 0,
        });
    }
    let models =
        models.ok_or_else(|| Error::Internal("the shadow runs recorded no models".into()))?;
    Ok((runs, models))
}

/// What the comparison of every date's published rows found.
struct Compared {
    overall: Section,
    segments: Vec<SegmentSection>,
    disagreements: Vec<Disagreement>,
    histogram: Option<stream::ScoreHistogram>,
    /// Bytes the sorts and the label joins spilled.
    spill_bytes: u64,
}

/// Reads every date's published rows back chunk by chunk (`bases`: each date's
/// shadow table), joins them to their labels and compares them in bounded memory;
/// records each run's labelled rows.
fn compare_dates(
    ctx: &mut JobContext,
    opts: &ShadowOptions,
    spec: &crate::spec::job::ShadowSpec,
    target: &ShadowTarget,
    bases: &[String],
    runs: &mut [DateRun],
) -> Result<Compared> {
    let budget = ctx.memory_budget();
    let JobContext {
        job,
        root,
        profiles,
        storage,
        redactor,
        ..
    } = ctx;
    let file = |c: &str| crate::sink::file_column(c).to_string();
    let columns = feed::Columns {
        champion: format!("{CHAMPION_PREFIX}{}", target.score),
        challenger: format!("{CHALLENGER_PREFIX}{}", target.score),
        label: job.labels().map(|l| l.column.clone()),
        keys: job.keys.iter().map(|k| file(k)).collect(),
        key_names: job.keys.clone(),
        segments: spec.segments.iter().map(|k| file(k)).collect(),
    };
    let mut read: Vec<String> = columns.keys.clone();
    read.extend(target.carry.iter().map(|k| file(k)));
    read.push(columns.champion.clone());
    read.push(columns.challenger.clone());
    let src = crate::source::Context {
        root,
        profiles,
        storage,
    };
    let mut resolved = Vec::new();
    for (&ds, base) in opts.dates.iter().zip(bases) {
        let vars = TemplateVars::new(ds, &job.secrets);
        let day = crate::spec::job::SourceSpec::Parquet(crate::spec::job::ParquetSource {
            path: format!(
                "{}/ds={}/*.parquet",
                base.trim_end_matches('/'),
                ds.format("%Y-%m-%d")
            ),
            hive_partitioning: false,
        });
        resolved.push(crate::source::resolve(&day, &src, &vars, redactor)?);
    }
    // Segment values first (exact counts), then one pass over the rows.
    let values = if columns.segments.is_empty() {
        vec![]
    } else {
        let mut counts = feed::SegmentCounts::new(columns.segments.clone(), budget);
        for r in &resolved {
            for b in r.batches(&columns.segments, 1 << 18)? {
                counts.add(&b?)?;
            }
        }
        counts.top(MAX_SEGMENT_VALUES)?
    };
    let mut cmp = stream::Comparison::new(
        stream::Settings {
            thresholds: spec.thresholds.clone(),
            bootstrap: spec.bootstrap,
            // At least 1 MiB: a budget of 0 would write a run file per row.
            budget: (budget / 2).max(1 << 20),
        },
        &values.iter().map(Vec::len).collect::<Vec<_>>(),
    );
    let mut feeder = feed::Feeder::new(&columns, &values, spec.top_disagreements);
    let labels_join = job
        .labels()
        .filter(|l| l.path.is_some())
        .map(|l| (l, crate::source::labels::labels_source(job, l)));
    let (mut next_row, mut join_bytes) = (0u64, 0u64);
    for ((&ds, r), run) in opts.dates.iter().zip(&resolved).zip(runs.iter_mut()) {
        let mut labelled = 0u64;
        let stats = crate::source::labels::joined_chunks(
            &crate::source::labels::ScoredDate {
                job,
                labels: labels_join.as_ref().map(|(l, s)| (*l, s)),
                scored: r,
                columns: &read,
                ds,
                ds_text: &run.ds,
            },
            budget / 2,
            next_row,
            &src,
            redactor,
            &mut |df| {
                labelled += feeder.add(&df, &mut cmp)?;
                Ok(())
            },
        )?;
        next_row += stats.rows;
        join_bytes += stats.file_bytes;
        run.labelled_rows = labelled;
    }
    let disagreements = feeder.finish();
    let (mut sections, histogram, sort_bytes) = cmp
        .finish()
        .map_err(|e| Error::io("reading spilled shadow rows in", std::env::temp_dir(), e))?;
    let overall = sections[0].pop().expect("one overall section");
    let mut segments = Vec::new();
    for ((column, vals), secs) in spec.segments.iter().zip(&values).zip(sections.drain(1..)) {
        for (value, section) in vals.iter().zip(secs) {
            segments.push(SegmentSection {
                column: column.clone(),
                value: value.clone(),
                section,
            });
        }
    }
    Ok(Compared {
        overall,
        segments,
        disagreements,
        histogram,
        spill_bytes: sort_bytes + join_bytes,
    })
}

/// Writes the comparison beside the runs' manifests in the shadow table's run
/// log: `<shadow id>.report.json`, `.report.html` and `.metrics.parquet`.
fn write_comparison(
    ctx: &JobContext,
    cmp: Comparison,
    histogram: Option<&stream::ScoreHistogram>,
) -> Result<ShadowSummary> {
    let (table, redactor, shadow_id) = (&ctx.table, &ctx.redactor, &cmp.shadow_id);
    let text = serde_json::to_string_pretty(&cmp).expect("comparison serializes");
    let report_json = table.run_log().write_file(
        &format!("{shadow_id}.report.json"),
        format!("{text}\n").as_bytes(),
    )?;
    let report_html = table.run_log().write_file(
        &format!("{shadow_id}.report.html"),
        super::html::render(&cmp, histogram).as_bytes(),
    )?;
    let mut long = metrics_frame(&cmp)?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut long)?;
    let metrics_parquet = table
        .run_log()
        .write_file(&format!("{shadow_id}.metrics.parquet"), &buf)?;
    Ok(ShadowSummary {
        report_json: redactor.redact(&report_json),
        report_html: redactor.redact(&report_html),
        metrics_parquet: redactor.redact(&metrics_parquet),
        comparison: cmp,
    })
}

/// The challenger as the runs get it: a `name@ref` is looked up in `--registry`
/// when one was given (the registry it would be promoted in); a folder, or a
/// reference without `--registry`, is passed on as it is.
fn challenger_location(opts: &ShadowOptions) -> Result<String> {
    let Some(registry) = &opts.registry else {
        return Ok(opts.challenger.clone());
    };
    match crate::registry::parse_ref(&opts.challenger) {
        Some((name, reference)) if !opts.root.join(&opts.challenger).exists() => {
            let root = crate::registry::located(&opts.root, Some(registry.clone()))
                .expect("a location was given");
            let (dir, _) = crate::registry::Registry::open(&root)?.resolve(name, reference)?;
            Ok(dir.to_string_lossy().into_owned())
        }
        _ => Ok(opts.challenger.clone()),
    }
}

/// The registry a promotion writes to.
fn registry_root(opts: &ShadowOptions) -> PathBuf {
    crate::registry::located(&opts.root, opts.registry.clone())
        .unwrap_or_else(|| crate::registry::default_root(&opts.root))
}

/// The report's metrics as a long table: segment column (null overall), segment
/// value, metric, value and interval.
fn metrics_frame(c: &Comparison) -> Result<DataFrame> {
    let (mut sc, mut sv, mut metric, mut value, mut lo, mut hi) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let sections = std::iter::once((None, None, &c.overall)).chain(
        c.segments
            .iter()
            .map(|s| (Some(s.column.clone()), Some(s.value.clone()), &s.section)),
    );
    for (col_name, val, s) in sections {
        for (m, v, l, h) in s.long_rows() {
            sc.push(col_name.clone());
            sv.push(val.clone());
            metric.push(m);
            value.push(v);
            lo.push(l);
            hi.push(h);
        }
    }
    let n = metric.len();
    let text =
        |name: &str, v: &str| Column::new_scalar(name.into(), Scalar::from(PlSmallStr::from(v)), n);
    Ok(DataFrame::new(
        n,
        vec![
            text("shadow_id", &c.shadow_id),
            text("champion_version", &c.champion.version),
            text("challenger_version", &c.challenger.version),
            Column::new("segment_column".into(), sc),
            Column::new("segment_value".into(), sv),
            Column::new("metric".into(), metric),
            Column::new("value".into(), value),
            Column::new("ci_low".into(), lo),
            Column::new("ci_high".into(), hi),
        ],
    )?)
}
