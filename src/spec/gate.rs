//! `gate:` of a shadow job: promotion rules, in the style of MLflow's `MetricThreshold`: a threshold on the
//! challenger's value and/or a minimum absolute or relative change against the
//! champion, in the metric's better direction.
//!
//! ```yaml
//! gate:
//!   - "agreement >= 0.95"                          # short form: metric, >= or <=, number
//!   - "auc_delta_ci_low >= 0"
//!   - {metric: auc, min_absolute_change: 0}        # challenger − champion ≥ 0
//!   - {metric: log_loss, min_relative_change: 0.01} # at least 1% lower (lower is better)
//! ```

use serde::{Deserialize, Serialize};

/// One rule: the short form `"<metric> >= <number>"` / `"<metric> <= <number>"`, or a
/// [`MetricThreshold`].
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum GateRule {
    Short(String),
    Full(MetricThreshold),
}

/// A rule on one metric of the comparison report.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricThreshold {
    /// The metric: a comparison metric (`agreement`, `agreement@0.3`, `mean_abs_diff`,
    /// `max_abs_diff`, `pearson`, `spearman`, `jaccard_top_1pct`/`5pct`/`10pct`, `psi`,
    /// `ks`), a labelled metric of the challenger (`auc`, `log_loss`, `brier`,
    /// `accuracy`, `accuracy@0.3`), or a difference challenger − champion
    /// (`auc_delta`, … with `_ci_low`/`_ci_high` for its bootstrap interval).
    pub metric: String,
    /// The value must be at least this (at most, when lower is better).
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Challenger − champion must be at least this in the better direction (labelled
    /// metrics only).
    #[serde(default)]
    pub min_absolute_change: Option<f64>,
    /// (Challenger − champion) / |champion| must be at least this in the better
    /// direction (labelled metrics only).
    #[serde(default)]
    pub min_relative_change: Option<f64>,
    /// Whether higher values are better. Default: the metric's own direction.
    #[serde(default)]
    pub greater_is_better: Option<bool>,
}

/// Metrics with a champion value to compare with, and whether higher is better.
const PER_MODEL: &[(&str, bool)] = &[
    ("auc", true),
    ("log_loss", false),
    ("brier", false),
    ("accuracy", true),
];
/// Metrics of the pair, and whether higher is better.
const PAIR: &[(&str, bool)] = &[
    ("agreement", true),
    ("mean_abs_diff", false),
    ("max_abs_diff", false),
    ("pearson", true),
    ("spearman", true),
    ("jaccard_top_1pct", true),
    ("jaccard_top_5pct", true),
    ("jaccard_top_10pct", true),
    ("psi", false),
    ("ks", false),
];

/// The kind of a metric name and its natural direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricKind {
    /// One value for the pair.
    Pair { greater_is_better: bool },
    /// A value per model (the challenger's is judged, the champion's is the baseline).
    PerModel { greater_is_better: bool },
    /// A difference or one end of its interval.
    Delta { greater_is_better: bool },
}

/// Classifies a metric name; `None` when unknown.
pub fn kind(metric: &str) -> Option<MetricKind> {
    let base = metric.split_once('@').map_or(
        metric,
        |(b, t)| {
            if t.parse::<f64>().is_ok() { b } else { "" }
        },
    );
    let lookup = |table: &[(&str, bool)], name: &str| {
        table.iter().find(|(n, _)| *n == name).map(|(_, g)| *g)
    };
    if let Some(g) = lookup(PAIR, base) {
        return (base == "agreement" || base == metric).then_some(MetricKind::Pair {
            greater_is_better: g,
        });
    }
    if let Some(g) = lookup(PER_MODEL, base) {
        return (base == "accuracy" || base == metric).then_some(MetricKind::PerModel {
            greater_is_better: g,
        });
    }
    for suffix in ["_delta_ci_low", "_delta_ci_high", "_delta"] {
        if let Some(b) = metric.strip_suffix(suffix) {
            let b2 = b.split('@').next().unwrap_or(b);
            let threshold_ok = b
                .split_once('@')
                .is_none_or(|(_, t)| t.parse::<f64>().is_ok());
            if let Some(g) = lookup(PER_MODEL, b2)
                && threshold_ok
                && (b2 == "accuracy" || b2 == b)
            {
                return Some(MetricKind::Delta {
                    greater_is_better: g,
                });
            }
        }
    }
    // A thresholded accuracy's difference puts the threshold before the suffix:
    // `accuracy@0.3_delta`.
    None
}

impl GateRule {
    /// The rule in its full form (the short form parsed).
    pub fn threshold(&self) -> std::result::Result<MetricThreshold, String> {
        match self {
            GateRule::Full(m) => Ok(m.clone()),
            GateRule::Short(s) => {
                let parts: Vec<&str> = s.split_whitespace().collect();
                let [metric, op, value] = parts[..] else {
                    return Err(format!(
                        "{s:?}: write `<metric> >= <number>` or `<metric> <= <number>`"
                    ));
                };
                let greater = match op {
                    ">=" => true,
                    "<=" => false,
                    _ => return Err(format!("{s:?}: the operator must be >= or <=")),
                };
                let v: f64 = value
                    .parse()
                    .map_err(|_| format!("{s:?}: {value:?} is not a number"))?;
                Ok(MetricThreshold {
                    metric: metric.to_string(),
                    threshold: Some(v),
                    min_absolute_change: None,
                    min_relative_change: None,
                    greater_is_better: Some(greater),
                })
            }
        }
    }

    /// Pure checks: a known metric, at least one condition, changes only on labelled metrics.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let m = self.threshold()?;
        let Some(k) = kind(&m.metric) else {
            return Err(format!(
                "unknown metric `{}`; use one of {}, {}, or <labelled metric>_delta[_ci_low|_ci_high]",
                m.metric,
                PAIR.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
                PER_MODEL
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        if m.threshold.is_none()
            && m.min_absolute_change.is_none()
            && m.min_relative_change.is_none()
        {
            return Err(format!(
                "rule on `{}` sets none of threshold, min_absolute_change, min_relative_change",
                m.metric
            ));
        }
        if (m.min_absolute_change.is_some() || m.min_relative_change.is_some())
            && !matches!(k, MetricKind::PerModel { .. })
        {
            return Err(format!(
                "`{}` has no champion value to change from; min_absolute_change and \
                 min_relative_change apply to auc, log_loss, brier and accuracy",
                m.metric
            ));
        }
        for v in [m.threshold, m.min_absolute_change, m.min_relative_change]
            .into_iter()
            .flatten()
        {
            if !v.is_finite() {
                return Err(format!("rule on `{}` has a non-finite number", m.metric));
            }
        }
        Ok(())
    }
}
