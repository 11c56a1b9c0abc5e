//! Promotion rules, in the style of MLflow's `MetricThreshold`: a threshold on the
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
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum GateRule {
    Short(String),
    Full(MetricThreshold),
}

/// A rule on one metric of the comparison report.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
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

/// The outcome of one rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    /// The rule as written (short form) or summarised.
    pub rule: String,
    pub metric: String,
    /// The challenger's value (or the pair's).
    pub value: Option<f64>,
    /// The champion's value, for labelled metrics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    pub passed: bool,
    /// Why it failed (empty when it passed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub why: String,
}

/// Judges a rule. `value(metric)` gives `(value, champion value)`; a metric that is
/// not available (no labels, too few rows) fails the rule.
pub fn judge(rule: &GateRule, value: impl Fn(&str) -> Option<(f64, Option<f64>)>) -> RuleResult {
    let text = match rule {
        GateRule::Short(s) => s.clone(),
        GateRule::Full(m) => {
            let mut parts = vec![m.metric.clone()];
            if let Some(t) = m.threshold {
                parts.push(format!("threshold {t}"));
            }
            if let Some(a) = m.min_absolute_change {
                parts.push(format!("min_absolute_change {a}"));
            }
            if let Some(r) = m.min_relative_change {
                parts.push(format!("min_relative_change {r}"));
            }
            parts.join(", ")
        }
    };
    let fail = |metric: &str, v: Option<f64>, b: Option<f64>, why: String| RuleResult {
        rule: text.clone(),
        metric: metric.to_string(),
        value: v,
        baseline: b,
        passed: false,
        why,
    };
    let m = match rule.threshold() {
        Ok(m) => m,
        Err(e) => return fail("", None, None, e),
    };
    let greater = m.greater_is_better.unwrap_or(match kind(&m.metric) {
        Some(
            MetricKind::Pair { greater_is_better }
            | MetricKind::PerModel { greater_is_better }
            | MetricKind::Delta { greater_is_better },
        ) => greater_is_better,
        None => true,
    });
    let Some((v, base)) = value(&m.metric) else {
        return fail(
            &m.metric,
            None,
            None,
            format!(
                "`{}` is not available (no labels, or too few rows)",
                m.metric
            ),
        );
    };
    let sign = if greater { 1.0 } else { -1.0 };
    let mut why = Vec::new();
    if let Some(t) = m.threshold
        && sign * (v - t) < 0.0
    {
        why.push(format!(
            "{} = {v:.6} is {} the threshold {t}",
            m.metric,
            if greater { "below" } else { "above" }
        ));
    }
    if m.min_absolute_change.is_some() || m.min_relative_change.is_some() {
        match base {
            None => why.push(format!("no champion value of {} to compare with", m.metric)),
            Some(b) => {
                let change = sign * (v - b);
                if let Some(a) = m.min_absolute_change
                    && change < a
                {
                    why.push(format!(
                        "{}: challenger {v:.6} vs champion {b:.6}, an improvement of {change:.6} < {a}",
                        m.metric
                    ));
                }
                if let Some(r) = m.min_relative_change {
                    let rel = if b == 0.0 { f64::NAN } else { change / b.abs() };
                    if rel.is_nan() || rel < r {
                        why.push(format!(
                            "{}: relative improvement {rel:.6} < {r} (challenger {v:.6}, champion {b:.6})",
                            m.metric
                        ));
                    }
                }
            }
        }
    }
    RuleResult {
        rule: text,
        metric: m.metric,
        value: Some(v),
        baseline: base,
        passed: why.is_empty(),
        why: why.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(y: &str) -> GateRule {
        crate::spec::parse_yaml::<GateRule>(std::path::Path::new("j.yaml"), y).unwrap()
    }

    #[test]
    fn metric_names_are_classified() {
        assert_eq!(
            kind("agreement"),
            Some(MetricKind::Pair {
                greater_is_better: true
            })
        );
        assert_eq!(
            kind("agreement@0.3"),
            Some(MetricKind::Pair {
                greater_is_better: true
            })
        );
        assert_eq!(
            kind("psi"),
            Some(MetricKind::Pair {
                greater_is_better: false
            })
        );
        assert_eq!(
            kind("log_loss"),
            Some(MetricKind::PerModel {
                greater_is_better: false
            })
        );
        assert_eq!(
            kind("accuracy@0.3"),
            Some(MetricKind::PerModel {
                greater_is_better: true
            })
        );
        assert_eq!(
            kind("auc_delta_ci_low"),
            Some(MetricKind::Delta {
                greater_is_better: true
            })
        );
        assert_eq!(
            kind("accuracy@0.3_delta"),
            Some(MetricKind::Delta {
                greater_is_better: true
            })
        );
        assert_eq!(kind("psi@0.3"), None);
        assert_eq!(kind("accuracy@x_delta"), None);
        assert_eq!(kind("auc@0.3"), None);
        assert_eq!(kind("nope"), None);
        assert_eq!(kind("agreement@x"), None);
    }

    #[test]
    fn short_and_full_forms_judge_like_mlflow() {
        let values = |m: &str| match m {
            "agreement" => Some((0.96, None)),
            "auc" => Some((0.80, Some(0.81))),
            "log_loss" => Some((0.50, Some(0.52))),
            _ => None,
        };
        assert!(judge(&rule("agreement >= 0.95"), values).passed);
        assert!(!judge(&rule("agreement >= 0.97"), values).passed);
        let r = judge(&rule("{metric: auc, min_absolute_change: 0}"), values);
        assert!(!r.passed && r.why.contains("improvement"), "{r:?}");
        assert_eq!(r.baseline, Some(0.81));
        // Lower is better for log loss: 0.52 → 0.50 is an improvement of 0.02 (3.8%).
        assert!(
            judge(
                &rule("{metric: log_loss, min_absolute_change: 0.01}"),
                values
            )
            .passed
        );
        assert!(
            judge(
                &rule("{metric: log_loss, min_relative_change: 0.03}"),
                values
            )
            .passed
        );
        assert!(
            !judge(
                &rule("{metric: log_loss, min_relative_change: 0.05}"),
                values
            )
            .passed
        );
        assert!(!judge(&rule("{metric: log_loss, threshold: 0.4}"), values).passed);
        let missing = judge(&rule("brier <= 0.2"), values);
        assert!(!missing.passed && missing.why.contains("not available"));
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        for (y, needle) in [
            ("agreement > 0.9", "operator"),
            ("agreement >= x", "not a number"),
            ("bogus >= 1", "unknown metric"),
            ("{metric: agreement}", "sets none"),
            ("{metric: psi, min_absolute_change: 0}", "no champion value"),
        ] {
            let e = rule(y).validate().unwrap_err();
            assert!(e.contains(needle), "{y}: {e}");
        }
        assert!(
            rule("{metric: auc, min_relative_change: 0.01}")
                .validate()
                .is_ok()
        );
    }
}
