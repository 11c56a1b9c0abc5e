//! A classifier's performance estimated from its scores alone (CBPE), in the
//! scoring pass.
//!
//! `scorch profile --labels` calibrates one score column on labelled rows and
//! stores the map and the performance realized on those rows
//! ([`ReferencePerformance`]) in the bundle's reference profile. Every run with
//! `report.performance` then counts its scores through that map
//! ([`PerformanceCounter`], mergeable across chunks and shards) and reports the
//! expected confusion matrix, precision, recall, F1, accuracy and ROC AUC, each
//! with a standard error ([`PerformanceReport`]). The statistics are
//! `crate::stats::calibration`'s.

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::stats::calibration::{AtThreshold, Estimate, Expected, Isotonic, Realized, RealizedAt};

/// What `scorch profile --labels` stores: the calibration of one score column
/// and the performance realized on the rows it was fitted on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReferencePerformance {
    /// The calibrated score column.
    pub score: String,
    /// The label column the map was fitted to.
    pub label: String,
    /// The labelled rows (path or glob).
    pub data: String,
    /// Score → probability of the positive class.
    pub calibration: Isotonic,
    /// Performance realized on the labelled rows, at the profile's thresholds.
    pub realized: Realized,
    /// The reliability diagram: mean score and positive rate of the labelled rows
    /// in ten bins of equal counts.
    pub reliability: Vec<ReliabilityBin>,
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReliabilityBin {
    pub rows: u64,
    pub mean_score: f64,
    pub positive_rate: f64,
}

impl ReferencePerformance {
    /// Fits the map and measures the reference on `(score, label)` rows; rows with a
    /// NaN score are left out. Err when fewer than two labelled rows of each class remain.
    pub fn fit(
        score: &str,
        label: &str,
        data: &str,
        scores: &[f64],
        labels: &[bool],
        thresholds: &[f64],
    ) -> Result<ReferencePerformance, String> {
        let realized = crate::stats::calibration::realized(scores, labels, thresholds);
        let negatives = realized.rows - realized.positives;
        if realized.positives < 2 || negatives < 2 {
            return Err(format!(
                "calibration needs at least 2 labelled rows of each class: {} positive and \
                 {negatives} negative rows with a score",
                realized.positives
            ));
        }
        let calibration = Isotonic::fit(scores, labels).ok_or("no row has a score")?;
        Ok(ReferencePerformance {
            score: score.to_string(),
            label: label.to_string(),
            data: data.to_string(),
            calibration,
            realized,
            reliability: reliability(scores, labels, 10),
        })
    }

    /// The reference's realized value of a metric (`auc`, `precision`, `recall`,
    /// `f1`, `accuracy`) at a threshold; None when it was not measured there.
    pub fn value(&self, metric: &str, threshold: f64) -> Option<f64> {
        if metric == "auc" {
            return self.realized.auc;
        }
        let at = self.realized.at.iter().find(|a| a.threshold == threshold)?;
        at_metric(at, metric)
    }

    /// The thresholds the reference was measured at.
    pub fn thresholds(&self) -> Vec<f64> {
        self.realized.at.iter().map(|a| a.threshold).collect()
    }
}

fn at_metric(at: &RealizedAt, metric: &str) -> Option<f64> {
    match metric {
        "precision" => at.precision,
        "recall" => at.recall,
        "f1" => at.f1,
        "accuracy" => at.accuracy,
        _ => None,
    }
}

/// The reliability diagram of `(score, label)` rows: `bins` bins of equal row counts
/// by score (NaN scores left out), each with its mean score and positive rate.
pub fn reliability(scores: &[f64], labels: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    let mut rows: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .filter(|(s, _)| s.is_finite())
        .map(|(s, l)| (*s, *l))
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = rows.len();
    (0..bins)
        .filter_map(|b| {
            let part = &rows[b * n / bins..(b + 1) * n / bins];
            (!part.is_empty()).then(|| ReliabilityBin {
                rows: part.len() as u64,
                mean_score: part.iter().map(|r| r.0).sum::<f64>() / part.len() as f64,
                positive_rate: part.iter().filter(|r| r.1).count() as f64 / part.len() as f64,
            })
        })
        .collect()
}

/// A run's counts of one score column through the reference's calibration map.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerformanceCounter {
    pub reference: ReferencePerformance,
    pub expected: Expected,
}

impl PerformanceCounter {
    /// Empty counts at `thresholds` (empty: the reference's).
    pub fn new(reference: ReferencePerformance, thresholds: &[f64]) -> Self {
        let thresholds = if thresholds.is_empty() {
            reference.thresholds()
        } else {
            thresholds.to_vec()
        };
        let expected = Expected::new(&reference.calibration, &thresholds);
        PerformanceCounter {
            reference,
            expected,
        }
    }

    /// Counts a chunk of scores (a frame holding the score column).
    pub fn update(&mut self, scores: &DataFrame) -> PolarsResult<()> {
        let s = scores
            .column(self.reference.score.as_str())?
            .as_materialized_series()
            .cast(&DataType::Float64)?;
        let map = &self.reference.calibration;
        self.expected
            .add(map, s.f64()?.iter().map(|v| v.unwrap_or(f64::NAN)));
        Ok(())
    }

    /// Adds another shard's counts; refuses counts made with another map or thresholds.
    pub fn merge_checked(&mut self, other: &PerformanceCounter) -> Result<(), String> {
        if self.reference != other.reference {
            return Err("the shards' calibration maps differ".into());
        }
        if self.expected.thresholds != other.expected.thresholds {
            return Err("the shards' performance thresholds differ".into());
        }
        self.expected.merge(&other.expected);
        Ok(())
    }

    /// The estimates.
    pub fn report(&self) -> PerformanceReport {
        let map = &self.reference.calibration;
        let auc = self.expected.auc(map);
        let at = self.expected.at_thresholds(map);
        let r = &self.reference;
        PerformanceReport {
            score: r.score.clone(),
            rows: self.expected.all.n as u64,
            missing: self.expected.missing,
            expected_positives: self.expected.all.p,
            estimated_auc: auc,
            reference_auc: r.realized.auc,
            at: at
                .into_iter()
                .map(|a| {
                    let t = a.threshold;
                    ThresholdReport {
                        reference_precision: r.value("precision", t),
                        reference_recall: r.value("recall", t),
                        reference_f1: r.value("f1", t),
                        reference_accuracy: r.value("accuracy", t),
                        estimated: a,
                    }
                })
                .collect(),
            calibration_rows: r.realized.rows,
        }
    }
}

/// Estimated performance of one run, beside the reference's realized performance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PerformanceReport {
    /// The score column.
    pub score: String,
    /// Rows counted (a score that is not NaN).
    pub rows: u64,
    /// Rows left out: NaN or null scores.
    pub missing: u64,
    /// Σ calibrated probability: the expected number of positives.
    pub expected_positives: f64,
    /// Expected ROC AUC and its standard error.
    pub estimated_auc: Estimate,
    /// The AUC realized on the calibration rows.
    pub reference_auc: Option<f64>,
    /// Per threshold.
    pub at: Vec<ThresholdReport>,
    /// Labelled rows the calibration was fitted on.
    pub calibration_rows: u64,
}

/// Estimated and reference performance at one threshold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdReport {
    #[serde(flatten)]
    pub estimated: AtThreshold,
    pub reference_precision: Option<f64>,
    pub reference_recall: Option<f64>,
    pub reference_f1: Option<f64>,
    pub reference_accuracy: Option<f64>,
}

impl PerformanceReport {
    /// An estimate by metric name (`estimated_auc`, `estimated_f1`, …) at `threshold`
    /// (default: the first), and the reference's value of the same metric.
    pub fn get(&self, metric: &str, threshold: Option<f64>) -> Option<(Estimate, Option<f64>)> {
        let m = metric.strip_prefix("estimated_")?;
        if m == "auc" {
            return Some((self.estimated_auc, self.reference_auc));
        }
        let at = match threshold {
            Some(t) => self.at.iter().find(|a| a.estimated.threshold == t)?,
            None => self.at.first()?,
        };
        let e = &at.estimated;
        Some(match m {
            "precision" => (e.precision, at.reference_precision),
            "recall" => (e.recall, at.reference_recall),
            "f1" => (e.f1, at.reference_f1),
            "accuracy" => (e.accuracy, at.reference_accuracy),
            _ => return None,
        })
    }

    /// The metrics history rows: `estimated_auc` and `estimated_auc_se`, and per
    /// threshold `estimated_<m>@<t>` and `estimated_<m>_se@<t>`.
    pub fn history_rows(&self) -> Vec<(String, f64)> {
        let mut out = vec![
            ("estimated_auc".to_string(), self.estimated_auc.value),
            ("estimated_auc_se".to_string(), self.estimated_auc.std_error),
            ("expected_positives".to_string(), self.expected_positives),
        ];
        for a in &self.at {
            let e = &a.estimated;
            let t = e.threshold;
            for (m, v) in [
                ("precision", e.precision),
                ("recall", e.recall),
                ("f1", e.f1),
                ("accuracy", e.accuracy),
            ] {
                out.push((format!("estimated_{m}@{t}"), v.value));
                out.push((format!("estimated_{m}_se@{t}"), v.std_error));
            }
        }
        out.retain(|(_, v)| v.is_finite());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, seed: u64) -> (Vec<f64>, Vec<bool>) {
        let mut x = seed;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let s = next();
                (s, next() < s)
            })
            .unzip()
    }

    #[test]
    fn shards_merge_to_the_whole_and_checks_find_their_metric() {
        let (s, l) = rows(20_000, 3);
        let r = ReferencePerformance::fit("p", "y", "d", &s, &l, &[0.5]).unwrap();
        assert_eq!(r.reliability.len(), 10);
        // Scores that are their own probabilities: each bin's rate near its mean score.
        for b in &r.reliability {
            assert!((b.mean_score - b.positive_rate).abs() < 0.05, "{b:?}");
        }
        let (run, _) = rows(9_000, 11);
        let frame = |v: &[f64]| df!("p" => v).unwrap();
        let mut whole = PerformanceCounter::new(r.clone(), &[]);
        whole.update(&frame(&run)).unwrap();
        let mut a = PerformanceCounter::new(r.clone(), &[]);
        let mut b = PerformanceCounter::new(r.clone(), &[]);
        a.update(&frame(&run[..4000])).unwrap();
        b.update(&frame(&run[4000..])).unwrap();
        a.merge_checked(&b).unwrap();
        let (x, y) = (a.report(), whole.report());
        assert!((x.estimated_auc.value - y.estimated_auc.value).abs() < 1e-12);
        assert_eq!(x.rows, 9000);
        let (f1, reference) = x.get("estimated_f1", None).unwrap();
        assert!((f1.value - y.at[0].estimated.f1.value).abs() < 1e-12);
        assert_eq!(reference, r.realized.at[0].f1);
        assert!(x.get("estimated_f1", Some(0.7)).is_none());
        // Another threshold list is refused.
        let other = PerformanceCounter::new(r, &[0.3]);
        assert!(a.merge_checked(&other).is_err());
    }

    #[test]
    fn one_class_is_refused() {
        let s = vec![0.1, 0.2, 0.3];
        assert!(ReferencePerformance::fit("p", "y", "d", &s, &[true; 3], &[0.5]).is_err());
    }
}
