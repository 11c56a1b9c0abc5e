//! `report:` settings that are more than plain values: quality checks and anomaly
//! checks (what they are and their pure checks; `crate::reports` computes them).

use serde::{Deserialize, Serialize};

/// Default of `report.memory_budget_mb`.
pub const DEFAULT_MEMORY_BUDGET_MB: usize = 256;

/// How bad a failed check is.
#[derive(
    Debug, Clone, Copy, Default, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Flagged in the summary and the report; the run exits 0.
    Warn,
    /// The run writes its output, report and manifest, then exits 5.
    #[default]
    Fail,
}

/// A quality check (Deequ style): a column metric within bounds, or the share of
/// rows satisfying a Polars SQL predicate.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// Shown in the report; default: made from the check.
    #[serde(default)]
    pub name: Option<String>,
    /// The column a metric check is about.
    #[serde(default)]
    pub column: Option<String>,
    /// One of the column metrics: `count`, `completeness`, `approx_distinct`,
    /// `distinctness`, `distinct`, `uniqueness`, `unique_value_ratio`, `non_finite`,
    /// `min`, `max`, `mean`, `stddev`, `p01`, `p05`, `p25`, `p50`, `p75`, `p95`, `p99`;
    /// or, without `column`, an estimated performance metric (`report.performance`):
    /// `estimated_auc`, `estimated_precision`, `estimated_recall`, `estimated_f1`,
    /// `estimated_accuracy`.
    #[serde(default)]
    pub metric: Option<String>,
    /// For `estimated_precision`, `estimated_recall`, `estimated_f1` and
    /// `estimated_accuracy`: the decision threshold (one of
    /// `report.performance.thresholds`). Default: the first of them.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// For estimated performance metrics: the value minus the reference performance
    /// (measured on the labelled rows `scorch profile --labels` calibrated on) must
    /// be at least this, e.g. `-0.02`.
    #[serde(default)]
    pub min_change: Option<f64>,
    /// For estimated performance metrics: the value minus the reference performance
    /// must be at most this.
    #[serde(default)]
    pub max_change: Option<f64>,
    /// A Polars SQL predicate over the input columns; the check's value is its
    /// compliance: the fraction of rows where it is true (null counts as false).
    #[serde(default)]
    pub sql: Option<String>,
    /// The value must be at least this.
    #[serde(default)]
    pub min: Option<f64>,
    /// The value must be at most this.
    #[serde(default)]
    pub max: Option<f64>,
    /// For `sql` checks: the fraction of rows that must comply (default 1: all).
    #[serde(default)]
    pub mostly: Option<f64>,
    /// `fail` (default) or `warn`.
    #[serde(default)]
    pub severity: Severity,
}

/// Every column metric, by name (checks and the metrics history use these).
pub const METRICS: &[&str] = &[
    "count",
    "completeness",
    "approx_distinct",
    "distinctness",
    "distinct",
    "uniqueness",
    "unique_value_ratio",
    "non_finite",
    "min",
    "max",
    "mean",
    "stddev",
    "p01",
    "p05",
    "p25",
    "p50",
    "p75",
    "p95",
    "p99",
];

/// The estimated performance metrics checks can bound (`report.performance`).
pub const PERFORMANCE_METRICS: &[&str] = &[
    "estimated_auc",
    "estimated_precision",
    "estimated_recall",
    "estimated_f1",
    "estimated_accuracy",
];

impl CheckSpec {
    /// Whether the check bounds an estimated performance metric.
    pub fn is_performance(&self) -> bool {
        self.column.is_none()
            && self
                .metric
                .as_deref()
                .is_some_and(|m| PERFORMANCE_METRICS.contains(&m))
    }

    /// Pure checks of the spec.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.is_performance() {
            let m = self.metric.as_deref().unwrap_or_default();
            if self.sql.is_some() || self.mostly.is_some() {
                return Err(format!("`{m}` takes no `sql` or `mostly`"));
            }
            if self.min.is_none()
                && self.max.is_none()
                && self.min_change.is_none()
                && self.max_change.is_none()
            {
                return Err(format!(
                    "`{m}` needs `min`, `max`, `min_change` or `max_change`"
                ));
            }
            if self.threshold.is_some() && m == "estimated_auc" {
                return Err("`estimated_auc` takes no `threshold`".into());
            }
            if let Some(t) = self.threshold
                && !(0.0..=1.0).contains(&t)
            {
                return Err("`threshold` must be between 0 and 1".into());
            }
            if [self.min, self.max, self.min_change, self.max_change]
                .iter()
                .flatten()
                .any(|v| v.is_nan())
            {
                return Err("a bound is NaN".into());
            }
            for (lo, hi, what) in [
                (self.min, self.max, "min"),
                (self.min_change, self.max_change, "min_change"),
            ] {
                if let (Some(lo), Some(hi)) = (lo, hi)
                    && lo > hi
                {
                    return Err(format!("{what} {lo} is above its upper bound {hi}"));
                }
            }
            return Ok(());
        }
        if self.threshold.is_some() || self.min_change.is_some() || self.max_change.is_some() {
            return Err(format!(
                "`threshold`, `min_change` and `max_change` apply to the estimated \
                 performance metrics ({})",
                PERFORMANCE_METRICS.join(", ")
            ));
        }
        if self.column.is_none() && self.metric.is_some() && self.sql.is_none() {
            return Err(format!(
                "metric {:?} needs a `column` (or is one of the estimated performance \
                 metrics: {})",
                self.metric.as_deref().unwrap_or_default(),
                PERFORMANCE_METRICS.join(", ")
            ));
        }
        match (&self.column, &self.metric, &self.sql) {
            (Some(_), Some(m), None) => {
                if !METRICS.contains(&m.as_str()) {
                    return Err(format!("metric {m:?} is not one of {}", METRICS.join(", ")));
                }
                if self.mostly.is_some() {
                    return Err(
                        "`mostly` applies to `sql` checks; bound a metric with min/max".into(),
                    );
                }
                if self.min.is_none() && self.max.is_none() {
                    return Err("a metric check needs `min`, `max` or both".into());
                }
            }
            (None, None, Some(sql)) => {
                let _ = polars::sql::sql_expr(sql)
                    .map_err(|e| format!("`sql` is not a predicate: {e}"))?;
            }
            _ => return Err("give either `column` and `metric`, or `sql`".into()),
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max)
            && lo > hi
        {
            return Err(format!("min {lo} is above max {hi}"));
        }
        if let Some(m) = self.mostly
            && !(0.0..=1.0).contains(&m)
        {
            return Err("`mostly` must be between 0 and 1".into());
        }
        Ok(())
    }

    /// The name the report shows: `name`, else made from the check.
    pub fn label(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        if self.is_performance() {
            let m = self.metric.as_deref().unwrap_or_default();
            return match self.threshold {
                Some(t) => format!("{m}@{t}"),
                None => m.to_string(),
            };
        }
        match (&self.column, &self.metric, &self.sql) {
            (Some(c), Some(m), _) => format!("{m}({c})"),
            (_, _, Some(sql)) => format!("compliance({sql})"),
            _ => "check".into(),
        }
    }

    /// Columns the check reads.
    pub fn columns(&self) -> Vec<String> {
        match (&self.column, &self.sql) {
            (Some(c), _) => vec![c.clone()],
            (None, Some(sql)) => polars::sql::sql_expr(sql)
                .map(|e| {
                    e.meta()
                        .root_names()
                        .iter()
                        .map(|n| n.to_string())
                        .collect()
                })
                .unwrap_or_default(),
            _ => vec![],
        }
    }
}

/// An anomaly check on the history.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnomalySpec {
    /// The metric (`row_count`, `completeness`, `mean`, … any history metric).
    pub metric: String,
    /// The column; empty or absent for dataset metrics (`row_count`).
    #[serde(default)]
    pub column: Option<String>,
    /// Previous runs (latest run per date, dates before this run's) to compare with.
    #[serde(default = "default_window")]
    pub window: usize,
    /// Allowed distance from the mean, in standard deviations.
    #[serde(default = "default_sigmas")]
    pub sigmas: f64,
    /// With fewer previous runs than this the check passes (not enough history).
    #[serde(default = "default_min_history")]
    pub min_history: usize,
    /// `warn` (default) or `fail`.
    #[serde(default = "default_severity")]
    pub severity: Severity,
}

fn default_window() -> usize {
    14
}
fn default_sigmas() -> f64 {
    3.0
}
fn default_min_history() -> usize {
    5
}
fn default_severity() -> Severity {
    Severity::Warn
}

impl AnomalySpec {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.window < 2 {
            return Err("`window` must be at least 2".into());
        }
        if !(self.sigmas.is_finite() && self.sigmas > 0.0) {
            return Err("`sigmas` must be a positive number".into());
        }
        if self.min_history < 2 || self.min_history > self.window {
            return Err("`min_history` must be between 2 and `window`".into());
        }
        Ok(())
    }
}

/// `report.performance`: the model's performance estimated without labels.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerformanceSpec {
    /// Decision thresholds, each in [0, 1] and listed once: a score at or above one
    /// is a predicted positive; each gets an expected confusion matrix, precision,
    /// recall, F1 and accuracy.
    /// Default: the thresholds the reference profile was measured at
    /// (`scorch profile --thresholds`).
    #[serde(default)]
    pub thresholds: Vec<f64>,
}

impl PerformanceSpec {
    /// Pure checks.
    pub fn validate(&self) -> std::result::Result<(), String> {
        super::limits::thresholds(&self.thresholds).map_err(|e| format!("`thresholds`: {e}"))
    }
}
