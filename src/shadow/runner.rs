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
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, SecondsFormat, Utc};
use polars::prelude::*;
use serde::Serialize;

use super::compare::{self, Rows, Section};
use super::gate::{self, RuleResult};
use crate::error::{Error, Result};
use crate::run::{CHALLENGER_PREFIX, CHAMPION_PREFIX, RunOptions, ShadowTarget};
use crate::spec::job::{JobSpec, ShadowSpec};
use crate::spec::template::{Redactor, TemplateVars, render};

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
    let job = JobSpec::load(&opts.job_file)?;
    let spec = job.shadow.clone().unwrap_or_default();
    let table_path = spec
        .output
        .clone()
        .unwrap_or_else(|| format!("{}_shadow", job.output.path.trim_end_matches('/')));
    let first = TemplateVars::new(opts.dates[0], &job.secrets);
    let mut redactor = Redactor::default();
    // The compared score column: the job's model's first unless the job names one.
    let champion_dir = {
        let r = render(&job.model, &first)
            .map_err(|e| Error::config(&opts.job_file, format!("field `model`: {e}")))?;
        crate::registry::bundle_dir(&opts.root, &r.value)?
    };
    let champion = crate::model::Bundle::open_with(&champion_dir, false)?;
    let challenger = challenger_location(opts)?;
    let score = spec
        .score
        .clone()
        .unwrap_or_else(|| champion.spec.score_columns()[0].clone());
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
    let profiles = crate::spec::profiles::locate(opts.profiles.as_deref(), &opts.root);
    let storage = crate::run::storage_settings(&job, &profiles, &first, &mut redactor)?;

    let champion_col = format!("{CHAMPION_PREFIX}{score}");
    let challenger_col = format!("{CHALLENGER_PREFIX}{score}");
    let mut frames: Vec<DataFrame> = Vec::new();
    let mut runs = Vec::new();
    let mut models: Option<(ModelRef, ModelRef)> = None;
    for &ds in &opts.dates {
        let capture = Arc::new(Mutex::new(Vec::new()));
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
            shadow: Some(ShadowTarget {
                challenger: challenger.clone(),
                table: table_path.clone(),
                carry: carry.clone(),
                score: score.clone(),
                capture: capture.clone(),
            }),
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
        let parts = std::mem::take(&mut *capture.lock().expect("capture lock"));
        // As written: an input `ds` is `input_ds` (the date is the `ds` added below).
        let mut keep: Vec<&str> = job
            .keys
            .iter()
            .map(|k| crate::sink::file_column(k))
            .collect();
        keep.extend(carry.iter().map(|k| crate::sink::file_column(k)));
        keep.push(&champion_col);
        keep.push(&challenger_col);
        let mut day = match concat(parts)? {
            None => DataFrame::empty(),
            Some(df) => df.select(keep.iter().copied())?,
        };
        let ds_text = ds.format("%Y-%m-%d").to_string();
        if day.width() > 0 {
            day.with_column(Column::new_scalar(
                "ds".into(),
                Scalar::from(PlSmallStr::from(ds_text.as_str())),
                day.height(),
            ))?;
        }
        if let Some(l) = job.labels()
            && l.path.is_some()
            && day.height() > 0
        {
            day = crate::source::labels::join_labels(
                day,
                l,
                &crate::source::labels::labels_source(&job, l),
                &job,
                ds,
                &crate::source::Context {
                    root: &opts.root,
                    profiles: &profiles,
                    storage: &storage,
                },
                &mut redactor,
            )?;
        }
        let labelled = match job.labels() {
            Some(l) if day.height() > 0 => {
                (day.height() - day.column(&l.column)?.null_count()) as u64
            }
            _ => 0,
        };
        runs.push(DateRun {
            ds: ds_text,
            run_id: m.run_id.clone(),
            partition: run.partition.clone(),
            rows: m.rows.written,
            labelled_rows: labelled,
        });
        if day.height() > 0 {
            frames.push(day);
        }
    }
    let (champion_ref, challenger_ref) =
        models.ok_or_else(|| Error::Internal("the shadow runs recorded no models".into()))?;
    let mut all = concat(frames)?;
    if let Some(df) = all.as_mut() {
        df.rechunk_mut();
    }

    let label_col = job.labels().map(|l| l.column.clone());
    let (overall, segments, disagreements) = match &all {
        Some(df) => analyse(
            df,
            &spec,
            &job.keys,
            &champion_col,
            &challenger_col,
            label_col.as_deref(),
        )?,
        None => {
            let empty = Rows {
                champion: &[],
                challenger: &[],
                labels: &[],
            };
            (
                compare::section(&empty, &spec.thresholds, 0),
                vec![],
                vec![],
            )
        }
    };
    let results: Vec<RuleResult> = spec
        .gate
        .iter()
        .map(|r| gate::judge(r, |m| overall.value(m, &spec.thresholds)))
        .collect();
    let passed = results.iter().all(|r| r.passed);
    let shadow_id = format!("shadow-{}", crate::run::new_run_id());
    let table = crate::sink::Table::open(
        &render(&table_path, &first)
            .map_err(|e| Error::config(&opts.job_file, format!("field `shadow.output`: {e}")))?
            .value,
        &opts.root,
        &storage,
    )?;
    let mut cmp = Comparison {
        report_version: REPORT_VERSION,
        scorch_version: env!("CARGO_PKG_VERSION"),
        shadow_id: shadow_id.clone(),
        job: job.name.clone(),
        created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        champion: champion_ref,
        challenger: challenger_ref,
        score,
        table: redactor.redact(&table.location()),
        runs,
        thresholds: spec.thresholds.clone(),
        bootstrap: Bootstrap {
            method: "poisson",
            resamples: spec.bootstrap,
            seed: compare::BOOTSTRAP_SEED,
            confidence: 0.95,
        },
        key_columns: job.keys.clone(),
        segment_columns: spec.segments.clone(),
        label_column: label_col,
        overall,
        segments,
        disagreements,
        gate: results,
        passed,
        promoted: None,
    };
    if opts.promote_if_pass {
        if spec.gate.is_empty() {
            return Err(Error::config(
                &opts.job_file,
                "`--promote-if-pass` needs promotion rules: add `shadow.gate` to the job",
            ));
        }
        if passed {
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
    }
    let text = serde_json::to_string_pretty(&cmp).expect("comparison serializes");
    let report_json = table.run_log().write_file(
        &format!("{shadow_id}.report.json"),
        format!("{text}\n").as_bytes(),
    )?;
    let report_html = table.run_log().write_file(
        &format!("{shadow_id}.report.html"),
        super::html::render(&cmp, all.as_ref()).as_bytes(),
    )?;
    let mut long = metrics_frame(&cmp)?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut long)?;
    let metrics_parquet = table
        .run_log()
        .write_file(&format!("{shadow_id}.metrics.parquet"), &buf)?;
    let summary = ShadowSummary {
        comparison: cmp,
        report_json: redactor.redact(&report_json),
        report_html: redactor.redact(&report_html),
        metrics_parquet: redactor.redact(&metrics_parquet),
    };
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

/// The frames stacked into one; `None` without frames.
fn concat(frames: Vec<DataFrame>) -> Result<Option<DataFrame>> {
    let mut it = frames.into_iter();
    let Some(mut df) = it.next() else {
        return Ok(None);
    };
    for f in it {
        df.vstack_mut_owned(f)?;
    }
    Ok(Some(df))
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

fn text_values(df: &DataFrame, column: &str) -> Result<Vec<Option<String>>> {
    let c = df.column(column)?.cast(&DataType::String)?;
    Ok(c.str()?.iter().map(|v| v.map(str::to_string)).collect())
}

type Analysis = (Section, Vec<SegmentSection>, Vec<Disagreement>);

/// Overall and per-segment comparison and the most disagreeing rows.
fn analyse(
    df: &DataFrame,
    spec: &ShadowSpec,
    keys: &[String],
    champion_col: &str,
    challenger_col: &str,
    label_col: Option<&str>,
) -> Result<Analysis> {
    let floats = |c: &str| -> Result<Vec<f64>> {
        let s = df.column(c)?.cast(&DataType::Float64)?;
        Ok(s.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    };
    let a = floats(champion_col)?;
    let b = floats(challenger_col)?;
    let labels = match label_col {
        Some(l) => crate::source::labels::labels_of(df, l, keys)?,
        None => vec![None; df.height()],
    };
    let rows = Rows {
        champion: &a,
        challenger: &b,
        labels: &labels,
    };
    let overall = compare::section(&rows, &spec.thresholds, spec.bootstrap);
    let mut segments = Vec::new();
    let mut seg_values = Vec::new();
    for column in &spec.segments {
        let values = text_values(df, column)?;
        for (value, idx) in compare::segment_groups(&values, MAX_SEGMENT_VALUES) {
            let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            let (sa, sb) = (pick(&a), pick(&b));
            let sl: Vec<Option<bool>> = idx.iter().map(|&i| labels[i]).collect();
            let section = compare::section(
                &Rows {
                    champion: &sa,
                    challenger: &sb,
                    labels: &sl,
                },
                &spec.thresholds,
                spec.bootstrap,
            );
            segments.push(SegmentSection {
                column: column.clone(),
                value,
                section,
            });
        }
        seg_values.push(values);
    }
    // The rows that disagree most (ties by row order).
    let mut order: Vec<usize> = (0..a.len()).collect();
    order.sort_by(|&i, &j| {
        let (di, dj) = ((a[i] - b[i]).abs(), (a[j] - b[j]).abs());
        dj.total_cmp(&di).then(i.cmp(&j))
    });
    order.truncate(spec.top_disagreements);
    let key_values: Vec<Vec<Option<String>>> = keys
        .iter()
        .map(|k| text_values(df, k))
        .collect::<Result<_>>()?;
    let ds_values = text_values(df, "ds")?;
    let disagreements = order
        .into_iter()
        .map(|i| Disagreement {
            ds: ds_values[i].clone().unwrap_or_default(),
            key: key_values
                .iter()
                .map(|v| v[i].clone().unwrap_or_else(|| "null".into()))
                .collect(),
            segments: seg_values.iter().map(|v| v[i].clone()).collect(),
            champion: a[i],
            challenger: b[i],
            abs_diff: (a[i] - b[i]).abs(),
            label: labels[i],
        })
        .collect();
    Ok((overall, segments, disagreements))
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
