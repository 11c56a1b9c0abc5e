//! `scorch evaluate`: realized performance once the labels arrive.
//!
//! For each date, the published partition's scores (Parquet or Delta) are joined
//! by key to the job's `labels:`; the realized AUC, log loss, Brier score and, at
//! each threshold, precision, recall, F1 and accuracy are computed and written to
//! the table's metrics history (`realized_*`) beside the estimates the scoring run
//! wrote (`estimated_*`, `report.performance`), with the estimation error
//! (`estimation_error_*` = estimated − realized). A record of the whole call goes
//! to `_runs/<id>.evaluation.json`. Dates not scored yet, or without labels yet,
//! are reported and skipped: evaluation can run every day, like any job, and
//! fill in what has arrived.

use std::path::PathBuf;

use chrono::NaiveDate;
use polars::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::spec::job::JobSpec;
use crate::spec::template::{Redactor, TemplateVars};
use crate::stats::calibration::Realized;

mod realized;

use realized::RealizedCounter;

/// What `scorch evaluate` evaluates.
#[derive(Debug, Clone)]
pub struct EvaluateOptions {
    pub job_file: PathBuf,
    /// The project folder (relative paths of the job resolve from here).
    pub root: PathBuf,
    pub dates: Vec<NaiveDate>,
    /// `profiles.yaml` (default: the project's).
    pub profiles: Option<PathBuf>,
}

/// One metric's estimate (from the scoring run) against its realized value.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// `auc`, `precision`, `recall`, `f1` or `accuracy`.
    pub metric: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    pub estimated: f64,
    pub std_error: f64,
    pub realized: f64,
    /// estimated − realized.
    pub error: f64,
    /// |error| / std_error: within 1.96 is inside the 95 % band.
    pub z: f64,
}

/// One date's evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct DateEvaluation {
    pub ds: String,
    /// `evaluated`, `no_labels` (none arrived yet) or `not_scored` (no partition).
    pub status: &'static str,
    /// The run that wrote the partition.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Rows of the partition.
    pub rows: u64,
    /// Rows with a label.
    pub labelled_rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realized: Option<Realized>,
    /// The scoring run's estimates against the realized values (when the run
    /// estimated performance).
    pub comparisons: Vec<Comparison>,
    /// How the labels were joined (dates that were read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinStats>,
}

/// How a date's scores and labels were joined and counted.
#[derive(Debug, Clone, Serialize)]
pub struct JoinStats {
    /// 1: in memory; more: hash partitions joined one by one (past the budget).
    pub partitions: usize,
    /// Bytes of partition files and spilled scores written to `$TMPDIR`.
    pub spill_bytes: u64,
}

/// The result of `scorch evaluate`.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub evaluation_id: String,
    pub job: String,
    pub table: String,
    pub score: String,
    pub thresholds: Vec<f64>,
    pub dates: Vec<DateEvaluation>,
    /// Where the record was written.
    pub record: String,
}

impl std::fmt::Display for Evaluation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "evaluated {} on {} (score {})",
            self.job, self.table, self.score
        )?;
        for d in &self.dates {
            match d.status {
                "evaluated" => {
                    let r = d.realized.as_ref().expect("evaluated dates have metrics");
                    let auc = r.auc.map_or("n/a".into(), |v| format!("{v:.4}"));
                    write!(
                        f,
                        "  {}: {} of {} rows labelled, realized AUC {auc}",
                        d.ds, d.labelled_rows, d.rows
                    )?;
                    if let Some(c) = d.comparisons.iter().find(|c| c.metric == "auc") {
                        write!(
                            f,
                            ", estimated {:.4} ± {:.4} ({:+.4}, {:.2} SE)",
                            c.estimated, c.std_error, c.error, c.z
                        )?;
                    }
                    writeln!(f)?;
                }
                "no_labels" => writeln!(f, "  {}: no labels yet ({} rows)", d.ds, d.rows)?,
                _ => writeln!(f, "  {}: not scored (no published partition)", d.ds)?,
            }
        }
        write!(f, "  record: {}", self.record)
    }
}

/// Evaluates every date of `opts`.
pub fn evaluate(opts: &EvaluateOptions) -> Result<Evaluation> {
    if opts.dates.is_empty() {
        return Err(Error::usage("no dates: give --date, or --from and --to"));
    }
    let mut ctx = crate::run::JobContext::open(
        &opts.job_file,
        &opts.root,
        opts.profiles.as_deref(),
        opts.dates[0],
    )?;
    let labels = ctx.job.labels().cloned().ok_or_else(|| {
        Error::config(
            &opts.job_file,
            "`scorch evaluate` needs the job's `labels:` (the label column, and the \
             labels table's path unless the input holds it)",
        )
    })?;
    let bundle = crate::model::Bundle::open_with(&ctx.model_dir()?, true)?;
    let calibration = bundle
        .reference
        .as_ref()
        .and_then(|r| r.performance.as_ref());
    let score = calibration
        .map(|c| c.score.clone())
        .unwrap_or_else(|| bundle.spec.score_columns()[0].clone());
    let thresholds: Vec<f64> = match ctx.job.report.as_ref().and_then(|r| r.performance.as_ref()) {
        Some(p) if !p.thresholds.is_empty() => p.thresholds.clone(),
        _ => calibration
            .map(|c| c.thresholds())
            .unwrap_or_else(|| vec![0.5]),
    };
    let evaluation_id = format!("{}-evaluate", crate::run::new_run_id());
    let history = ctx.table.history().read()?;
    let mut out = Vec::new();
    for &ds in &opts.dates {
        out.push(evaluate_date(
            &mut ctx,
            &labels,
            &score,
            &thresholds,
            &history,
            &evaluation_id,
            ds,
        )?);
    }
    let mut e = Evaluation {
        evaluation_id: evaluation_id.clone(),
        job: ctx.job.name.clone(),
        table: ctx.location.clone(),
        score,
        thresholds,
        dates: out,
        record: String::new(),
    };
    let text = serde_json::to_string_pretty(&e).expect("evaluation serializes");
    let record = ctx.table.run_log().write_file(
        &format!("{evaluation_id}.evaluation.json"),
        format!("{text}\n").as_bytes(),
    )?;
    e.record = ctx.redactor.redact(&record);
    Ok(e)
}

/// The run that published `ds`'s partition of the context's table, if any. An
/// unreadable manifest fails naming the partition (it is not "not scored").
fn published_run(ctx: &crate::run::JobContext, ds_text: &str) -> Result<Option<String>> {
    let partition = format!("ds={ds_text}");
    if ctx.job.output.format == crate::spec::job::OutputFormat::Delta {
        return crate::sink::delta::DeltaLog::open(&ctx.table)?.partition_run_id(ds_text);
    }
    match ctx.table.partition_manifest(&partition)? {
        None => Ok(None),
        Some(b) => Ok(Some(
            crate::sink::manifest::PublishedManifest::parse(
                &b,
                &format!("partition {partition} of {}", ctx.location),
            )?
            .run_id,
        )),
    }
}

/// Evaluates one date: its published rows joined to their labels, realized
/// metrics appended to the table's metrics history.
fn evaluate_date(
    ctx: &mut crate::run::JobContext,
    labels: &crate::spec::job::LabelsSpec,
    score: &str,
    thresholds: &[f64],
    history: &DataFrame,
    evaluation_id: &str,
    ds: NaiveDate,
) -> Result<DateEvaluation> {
    let ds_text = ds.format("%Y-%m-%d").to_string();
    let partition = format!("ds={ds_text}");
    let Some(run_id) = published_run(ctx, &ds_text)? else {
        return Ok(DateEvaluation {
            ds: ds_text,
            status: "not_scored",
            run_id: None,
            rows: 0,
            labelled_rows: 0,
            realized: None,
            comparisons: vec![],
            join: None,
        });
    };
    let table_path = ctx.table_path.clone();
    let src = if ctx.job.output.format == crate::spec::job::OutputFormat::Delta {
        crate::spec::job::SourceSpec::Delta(crate::spec::job::DeltaSource {
            path: table_path,
            version: None,
            timestamp: None,
            filters: [("ds".to_string(), ds_text.clone())].into(),
        })
    } else {
        crate::spec::job::SourceSpec::Parquet(crate::spec::job::ParquetSource {
            path: format!("{}/{partition}/*.parquet", table_path.trim_end_matches('/')),
            hive_partitioning: false,
        })
    };
    let budget = ctx.memory_budget();
    let crate::run::JobContext {
        job,
        root,
        profiles,
        storage,
        redactor,
        table,
        ..
    } = ctx;
    let src_ctx = crate::source::Context {
        root,
        profiles,
        storage,
    };
    let vars = TemplateVars::new(ds, &job.secrets);
    let scored = crate::source::resolve(&src, &src_ctx, &vars, redactor)?;
    let mut cols: Vec<String> = job
        .keys
        .iter()
        .map(|k| crate::sink::file_column(k).to_string())
        .collect();
    cols.push(score.to_string());
    let day = DateRows {
        job,
        labels,
        labels_source: &crate::source::labels::labels_source(job, labels),
        scored: &scored,
        columns: &cols,
        score,
        ds,
        ds_text: &ds_text,
    };
    let Joined {
        rows,
        labelled,
        counter,
        partitions,
        file_bytes,
    } = realized_of(&day, thresholds, budget, &src_ctx, redactor)?;
    let join = Some(JoinStats {
        partitions,
        spill_bytes: file_bytes + counter.spill_bytes(),
    });
    if labelled == 0 {
        return Ok(DateEvaluation {
            ds: ds_text,
            status: "no_labels",
            run_id: Some(run_id),
            rows,
            labelled_rows: 0,
            realized: None,
            comparisons: vec![],
            join,
        });
    }
    let r = counter
        .finish()
        .map_err(|e| Error::io("reading spilled scores of", std::env::temp_dir(), e))?;
    let comparisons = compare(history, &ds_text, &run_id, score, &r);
    let mut metrics = history_rows(&r, &comparisons);
    metrics.push(("labelled_rows".into(), labelled as f64));
    let n = metrics.len();
    let mut frame = df!(
        "run_id" => vec![evaluation_id; n],
        "job" => vec![job.name.as_str(); n],
        "column" => vec![score; n],
        "metric" => metrics.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
        "value" => metrics.iter().map(|m| m.1).collect::<Vec<_>>(),
    )?;
    table
        .history()
        .append(&partition, evaluation_id, &mut frame)?;
    Ok(DateEvaluation {
        ds: ds_text,
        status: "evaluated",
        run_id: Some(run_id),
        rows,
        labelled_rows: labelled,
        realized: Some(r),
        comparisons,
        join,
    })
}

/// One date's scored rows and where its labels come from.
struct DateRows<'a> {
    job: &'a JobSpec,
    labels: &'a crate::spec::job::LabelsSpec,
    labels_source: &'a crate::spec::job::SourceSpec,
    scored: &'a crate::source::Resolved,
    /// The keys and the score column.
    columns: &'a [String],
    score: &'a str,
    ds: NaiveDate,
    ds_text: &'a str,
}

/// The date's scored rows joined to its labels ([`labels::joined_chunks`]: in
/// memory within `budget`, else a Grace hash join), counted: the partition's rows,
/// the labelled ones, and their realized performance.
fn realized_of(
    d: &DateRows<'_>,
    thresholds: &[f64],
    budget: usize,
    ctx: &crate::source::Context<'_>,
    redactor: &mut Redactor,
) -> Result<Joined> {
    use crate::source::labels;
    let mut counter = RealizedCounter::new(thresholds, budget / 2, None);
    let mut labelled = 0u64;
    let mut feed = |joined: DataFrame| -> Result<()> {
        let l = labels::labels_of(&joined, &d.labels.column, &d.job.keys)?;
        let s = joined.column(d.score)?.cast(&DataType::Float64)?;
        let (scores, flags): (Vec<f64>, Vec<bool>) = s
            .f64()?
            .iter()
            .zip(&l)
            .filter_map(|(s, l)| Some((s.unwrap_or(f64::NAN), (*l)?)))
            .unzip();
        labelled += flags.len() as u64;
        counter
            .add(&scores, &flags)
            .map_err(|e| Error::io("spilling scores to", std::env::temp_dir(), e))
    };
    let stats = labels::joined_chunks(
        &labels::ScoredDate {
            job: d.job,
            labels: Some((d.labels, d.labels_source)),
            scored: d.scored,
            columns: d.columns,
            ds: d.ds,
            ds_text: d.ds_text,
        },
        budget,
        0,
        ctx,
        redactor,
        &mut feed,
    )?;
    Ok(Joined {
        rows: stats.rows,
        labelled,
        counter,
        partitions: stats.partitions,
        file_bytes: stats.file_bytes,
    })
}

/// A date's rows joined and counted ([`realized_of`]).
struct Joined {
    rows: u64,
    labelled: u64,
    counter: RealizedCounter,
    partitions: usize,
    /// Bytes of the partition files.
    file_bytes: u64,
}

/// The scoring run's estimates for `ds` (its `estimated_*` history rows) against
/// the realized values.
fn compare(
    history: &DataFrame,
    ds: &str,
    run_id: &str,
    score: &str,
    r: &Realized,
) -> Vec<Comparison> {
    let estimates = estimates_of(history, ds, run_id, score).unwrap_or_default();
    let get = |m: &str| estimates.iter().find(|(k, _)| k == m).map(|(_, v)| *v);
    let mut out = Vec::new();
    let mut push = |metric: &str, threshold: Option<f64>, real: Option<f64>| {
        let suffix = threshold.map(|t| format!("@{t}")).unwrap_or_default();
        let (Some(est), Some(se), Some(real)) = (
            get(&format!("estimated_{metric}{suffix}")),
            get(&format!("estimated_{metric}_se{suffix}")),
            real,
        ) else {
            return;
        };
        let error = est - real;
        out.push(Comparison {
            metric: metric.to_string(),
            threshold,
            estimated: est,
            std_error: se,
            realized: real,
            error,
            z: if se > 0.0 {
                error.abs() / se
            } else {
                f64::INFINITY
            },
        });
    };
    push("auc", None, r.auc);
    for a in &r.at {
        let t = Some(a.threshold);
        push("precision", t, a.precision);
        push("recall", t, a.recall);
        push("f1", t, a.f1);
        push("accuracy", t, a.accuracy);
    }
    out
}

/// `(metric, value)` of the run `run_id` for `ds` and `column` in the history.
fn estimates_of(
    history: &DataFrame,
    ds: &str,
    run_id: &str,
    column: &str,
) -> PolarsResult<Vec<(String, f64)>> {
    if history.height() == 0 {
        return Ok(vec![]);
    }
    let day = chrono::NaiveDate::parse_from_str(ds, "%Y-%m-%d")
        .map_err(|e| polars_err!(ComputeError: "ds {ds}: {e}"))?;
    let df = history
        .clone()
        .lazy()
        .filter(
            col("ds")
                .eq(lit(day))
                .and(col("run_id").eq(lit(run_id)))
                .and(col("column").eq(lit(column))),
        )
        .select([col("metric"), col("value")])
        .collect()?;
    let m = df.column("metric")?.str()?.clone();
    let v = df.column("value")?.f64()?.clone();
    Ok(m.iter()
        .zip(v.iter())
        .filter_map(|(m, v)| Some((m?.to_string(), v?)))
        .collect())
}

/// The history rows of an evaluation: `realized_auc`, `realized_log_loss`,
/// `realized_brier`, `label_rate`, per threshold `realized_<m>@<t>`, and per
/// compared metric `estimation_error_<m>[@<t>]`.
fn history_rows(r: &Realized, comparisons: &[Comparison]) -> Vec<(String, f64)> {
    let mut out = vec![
        ("realized_auc".to_string(), r.auc),
        ("realized_log_loss".to_string(), r.log_loss),
        ("realized_brier".to_string(), r.brier),
        (
            "label_rate".to_string(),
            (r.rows > 0).then(|| r.positives as f64 / r.rows as f64),
        ),
    ];
    for a in &r.at {
        let t = a.threshold;
        for (m, v) in [
            ("precision", a.precision),
            ("recall", a.recall),
            ("f1", a.f1),
            ("accuracy", a.accuracy),
        ] {
            out.push((format!("realized_{m}@{t}"), v));
        }
    }
    for c in comparisons {
        let suffix = c.threshold.map(|t| format!("@{t}")).unwrap_or_default();
        out.push((
            format!("estimation_error_{}{suffix}", c.metric),
            Some(c.error),
        ));
    }
    out.into_iter()
        .filter_map(|(m, v)| Some((m, v.filter(|v| v.is_finite())?)))
        .collect()
}
