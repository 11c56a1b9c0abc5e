//! Judging a shadow comparison against its `gate:` rules (the rules' fields and
//! checks are [`crate::spec::gate`]).

use serde::Serialize;

use crate::spec::gate::{GateRule, MetricKind, kind};

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
