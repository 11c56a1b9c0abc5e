//! The metrics history: every run appends its metrics, one row per run × column ×
//! metric, to `<table>/_metrics/ds=<date>/<run id>.parquet`, a Parquet table users
//! chart over time (`read_parquet('<table>/_metrics/*/*.parquet')`). Anomaly checks
//! (Deequ's OnlineNormal idea) compare a run's metric with the mean ± k·σ of the same
//! metric over the previous runs.
//!
//! Columns: `run_id`, `job`, `column` (empty for dataset metrics), `metric`,
//! `value` (Float64); `ds` is the folder (`ds=<date>`), as in every hive-partitioned
//! table: pyarrow, DuckDB (`hive_partitioning`), Polars and Spark read it from there.

use polars::prelude::*;

use super::{CheckResult, Report};
use crate::spec::report::AnomalySpec;
use crate::spec::report::Severity;

/// Folder of a table holding the metrics history.
pub const HISTORY_DIR: &str = "_metrics";

/// One metric of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub column: String,
    pub metric: String,
    pub value: f64,
}

/// The rows a report adds to the history: `row_count`; per column `completeness`,
/// `approx_distinct`, `distinctness`, `min`, `max`, `mean`, `stddev`; per drifted
/// column `psi`, `js_distance`, `ks_statistic`, `wasserstein`; with estimated
/// performance, on the score column, `estimated_auc`, `estimated_auc_se`,
/// `expected_positives` and per threshold `estimated_<metric>@<t>` and
/// `estimated_<metric>_se@<t>`; with multivariate drift, dataset-wide,
/// `reconstruction_error` and its band `reconstruction_lower` and
/// `reconstruction_upper`. Missing values are left out.
pub fn rows(r: &Report) -> Vec<MetricRow> {
    let mut out = vec![MetricRow {
        column: String::new(),
        metric: "row_count".into(),
        value: r.rows as f64,
    }];
    let mut push = |column: &str, metric: &str, v: Option<f64>| {
        if let Some(value) = v.filter(|v| v.is_finite()) {
            out.push(MetricRow {
                column: column.to_string(),
                metric: metric.to_string(),
                value,
            });
        }
    };
    for c in &r.columns {
        for m in super::METRICS.iter().filter(|m| **m != "count") {
            push(&c.name, m, c.get(m));
        }
    }
    for d in &r.drift {
        push(&d.column, "psi", Some(d.psi));
        push(&d.column, "js_distance", Some(d.js_distance));
        push(&d.column, "ks_statistic", d.ks_statistic);
        push(&d.column, "wasserstein", d.wasserstein);
    }
    if let Some(p) = &r.performance {
        for (metric, value) in p.history_rows() {
            push(&p.score, &metric, Some(value));
        }
    }
    if let Some(m) = &r.multivariate {
        push("", "reconstruction_error", m.mean_error);
        push("", "reconstruction_lower", Some(m.lower));
        push("", "reconstruction_upper", Some(m.upper));
    }
    out
}

/// The history rows of one run as a frame (without `ds`: the file's folder names it).
pub fn frame(r: &Report, metrics: &[MetricRow]) -> PolarsResult<DataFrame> {
    let n = metrics.len();
    df!(
        "run_id" => vec![r.run_id.as_str(); n],
        "job" => vec![r.job.as_str(); n],
        "column" => metrics.iter().map(|m| m.column.as_str()).collect::<Vec<_>>(),
        "metric" => metrics.iter().map(|m| m.metric.as_str()).collect::<Vec<_>>(),
        "value" => metrics.iter().map(|m| m.value).collect::<Vec<_>>(),
    )
}

impl AnomalySpec {
    /// Judges `value` against `history` (the metric's values of the previous runs,
    /// oldest first): |value − mean| ≤ sigmas · σ (population σ of the last
    /// `window` values).
    pub fn judge(&self, value: Option<f64>, history: &[f64]) -> CheckResult {
        let name = match self.column.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => format!("anomaly({}({c}))", self.metric),
            None => format!("anomaly({})", self.metric),
        };
        let recent = &history[history.len().saturating_sub(self.window)..];
        if recent.len() < self.min_history {
            return CheckResult {
                name,
                severity: self.severity,
                value,
                min: None,
                max: None,
                status: "pass",
            };
        }
        let (mean, sd) = crate::stats::mean_std(recent);
        let (lo, hi) = (mean - self.sigmas * sd, mean + self.sigmas * sd);
        let ok = value.is_some_and(|v| v >= lo && v <= hi);
        // Bounds past f64 (a history near ±MAX) are no bound: shown as null.
        let (lo, hi) = (
            Some(lo).filter(|x| x.is_finite()),
            Some(hi).filter(|x| x.is_finite()),
        );
        CheckResult {
            name,
            severity: self.severity,
            value,
            min: lo,
            max: hi,
            status: match (ok, self.severity) {
                (true, _) => "pass",
                (false, Severity::Warn) => "warn",
                (false, Severity::Fail) => "fail",
            },
        }
    }
}

/// The values of `metric` of `column` in `history` (all runs of the table), latest
/// run per date, for dates before `ds`, oldest first.
pub fn series(history: &DataFrame, column: &str, metric: &str, ds: &str) -> PolarsResult<Vec<f64>> {
    if history.height() == 0 {
        return Ok(vec![]);
    }
    let before = chrono::NaiveDate::parse_from_str(ds, "%Y-%m-%d")
        .map_err(|e| polars_err!(ComputeError: "ds {ds}: {e}"))?;
    let out = history
        .clone()
        .lazy()
        .filter(
            col("column")
                .eq(lit(column))
                .and(col("metric").eq(lit(metric)))
                .and(col("ds").lt(lit(before))),
        )
        .sort(["ds", "run_id"], Default::default())
        .group_by_stable([col("ds")])
        .agg([col("value").last()])
        .sort(["ds"], Default::default())
        .collect()?;
    // Histories written before non-finite values were kept out may hold some.
    Ok(out
        .column("value")?
        .f64()?
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomalies_are_judged_against_mean_and_sigma_of_the_window() {
        let spec = AnomalySpec {
            metric: "row_count".into(),
            column: None,
            window: 4,
            sigmas: 2.0,
            min_history: 3,
            severity: Severity::Fail,
        };
        // Only the last 4 values count: mean 100, σ = sqrt(2).
        let h = [1e9, 99.0, 101.0, 99.0, 101.0];
        assert_eq!(spec.judge(Some(102.0), &h).status, "pass");
        assert_eq!(spec.judge(Some(103.0), &h).status, "fail");
        assert_eq!(
            spec.judge(Some(103.0), &h[..2]).status,
            "pass",
            "too little history"
        );
    }
}
