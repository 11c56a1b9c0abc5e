//! Judging a run's output before it is published: the row-count guards and the
//! report (checks, drift, anomalies) with its quality gate. Shared by runs and by
//! `scorch commit` of shards.

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::sink;
use crate::sink::manifest::PublishedManifest;
use crate::spec::template::Redactor;

/// The rows of the published partition `partition` of `table` (`None`: there is
/// none yet), from its manifest.
pub(crate) fn published_rows(
    table: &sink::Table,
    delta: Option<&sink::delta::DeltaLog>,
    partition: &str,
) -> Result<Option<u64>> {
    if let Some(log) = delta {
        // A Delta table: the rows of the date's live files, from their statistics.
        let ds = partition
            .strip_prefix(&format!("{}=", sink::PARTITION_COLUMN))
            .unwrap_or(partition);
        return log.published_rows(ds);
    }
    match table.partition_manifest(partition)? {
        Some(bytes) => Ok(Some(
            PublishedManifest::parse(&bytes, &format!("partition {partition}"))?
                .rows
                .written(),
        )),
        None => Ok(None),
    }
}

/// Refuses to replace a partition with nothing (unless `output.allow_empty`) or with
/// fewer rows than `output.min_rows_ratio` of the partition it replaces: exit 3,
/// before anything is published or added to the metrics history.
pub(crate) fn check_row_count(
    spec: &crate::spec::job::OutputSpec,
    table: &sink::Table,
    delta: Option<&sink::delta::DeltaLog>,
    partition: &str,
    read: u64,
    rows: u64,
) -> Result<()> {
    if rows > 0 && spec.min_rows_ratio.is_none() {
        return Ok(());
    }
    let previous = published_rows(table, delta, partition)?;
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
pub(crate) fn write_report(
    profile: &mut crate::reports::Profile,
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
    profile
        .resolve()
        .map_err(|e| Error::Internal(format!("reading the report's spilled value counts: {e}")))?;
    profile.discard_spill();
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
            "fail" => gate.push(c.describe()),
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
    if let Some(m) = &report.multivariate {
        let what = || {
            format!(
                "multivariate drift: mean reconstruction error {} outside {:.4}..{:.4}",
                m.mean_error.map_or("null".into(), |v| format!("{v:.4}")),
                m.lower,
                m.upper
            )
        };
        match m.status {
            "fail" => gate.push(what()),
            "warn" => warnings.push(what()),
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
    let reference = profile.performance.as_ref().map(|p| &p.reference);
    let page = crate::reports::html::render(&report, &histograms, reference);
    let html = table
        .run_log()
        .write_file(&format!("{run_id}.report.html"), page.as_bytes())?;
    let history = crate::reports::metrics_history::frame(
        &report,
        &crate::reports::metrics_history::rows(&report),
    )?;
    Ok(ReportOutcome {
        history,
        checks: report.checks,
        warnings,
        gate,
        json: redactor.redact(&json),
        html: redactor.redact(&html),
    })
}
