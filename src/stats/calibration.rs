//! Calibration, and a classifier's performance estimated without labels
//! (confidence-based performance estimation, CBPE).
//!
//! [`Isotonic`] maps a score to the probability of the positive class, fitted on
//! validation scores and labels by isotonic regression (pool adjacent
//! violators): a non-decreasing step function. Given that map, a run's
//! [`Expected`] accumulates, row by row and mergeably (across chunks and
//! shards), what each calibrated probability `p` says about the unseen label: a
//! positive with probability `p`. From it come the expected confusion matrix at
//! each threshold, expected precision, recall, F1, accuracy and ROC AUC, each with
//! a standard error that counts the labels' own randomness (a sum of Bernoulli
//! variables, shrinking as the row count grows) and the calibration map's error
//! (each block's value estimated from its fitting rows).
//!
//! The estimate holds while calibration holds: when only the inputs move (covariate
//! shift), not when the relation between inputs and label changes (concept drift).

use serde::{Deserialize, Serialize};

/// A non-decreasing step function from score to probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    /// The highest score of each block, ascending.
    pub edges: Vec<f64>,
    /// The probability of each block (the mean label of its rows), non-decreasing, in [0, 1].
    pub values: Vec<f64>,
    /// The fitting rows of each block: the precision of its value.
    pub counts: Vec<f64>,
}

impl Isotonic {
    /// Fits the map to `(score, label)` pairs; rows with a non-finite score are
    /// left out. `None` when no row is left.
    pub fn fit(scores: &[f64], labels: &[bool]) -> Option<Isotonic> {
        let mut rows: Vec<(f64, bool)> = scores
            .iter()
            .zip(labels)
            .filter(|(s, _)| s.is_finite())
            .map(|(s, l)| (*s, *l))
            .collect();
        if rows.is_empty() {
            return None;
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks: (positives, rows, highest score). Equal scores start as one block.
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        let mut i = 0;
        while i < rows.len() {
            let s = rows[i].0;
            let (mut pos, mut n) = (0.0, 0.0);
            while i < rows.len() && rows[i].0 == s {
                pos += f64::from(u8::from(rows[i].1));
                n += 1.0;
                i += 1;
            }
            blocks.push((pos, n, s));
            // Pool while the previous block's mean is above this one's.
            while blocks.len() > 1 {
                let (p2, n2, s2) = blocks[blocks.len() - 1];
                let (p1, n1, _) = blocks[blocks.len() - 2];
                if p1 / n1 > p2 / n2 {
                    blocks.pop();
                    let last = blocks.last_mut().expect("two blocks");
                    *last = (p1 + p2, n1 + n2, s2);
                } else {
                    break;
                }
            }
        }
        Some(Isotonic {
            edges: blocks.iter().map(|b| b.2).collect(),
            values: blocks.iter().map(|b| b.0 / b.1).collect(),
            counts: blocks.iter().map(|b| b.1).collect(),
        })
    }

    /// The block a score falls in: the first whose highest score is at or above
    /// it (the last for scores above them all). `None` for NaN.
    pub fn block(&self, score: f64) -> Option<usize> {
        if score.is_nan() {
            return None;
        }
        Some(
            self.edges
                .partition_point(|e| *e < score)
                .min(self.edges.len() - 1),
        )
    }

    /// The variance of each block's value as an estimate (a binomial proportion
    /// from its fitting rows).
    fn value_variances(&self) -> Vec<f64> {
        self.values
            .iter()
            .zip(&self.counts)
            .map(|(v, c)| v * (1.0 - v) / c.max(1.0))
            .collect()
    }

    /// The calibrated probability of a score (NaN for NaN).
    pub fn apply(&self, score: f64) -> f64 {
        self.block(score).map_or(f64::NAN, |b| self.values[b])
    }
}

/// Sums over rows: count, Σp and Σp(1−p).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sums {
    pub n: f64,
    pub p: f64,
    pub var: f64,
}

impl Sums {
    fn add(&mut self, p: f64) {
        self.n += 1.0;
        self.p += p;
        self.var += p * (1.0 - p);
    }
    fn merge(&mut self, o: &Sums) {
        self.n += o.n;
        self.p += o.p;
        self.var += o.var;
    }
    fn minus(&self, o: &Sums) -> Sums {
        Sums {
            n: self.n - o.n,
            p: self.p - o.p,
            var: self.var - o.var,
        }
    }
}

/// What a run's scores say about its unseen labels, mergeable across chunks and shards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    /// The decision thresholds: a score at or above one is a predicted positive.
    pub thresholds: Vec<f64>,
    /// Rows of each calibration block (for the expected AUC).
    pub blocks: Vec<f64>,
    /// All rows with a score.
    pub all: Sums,
    /// Rows at or above each threshold.
    pub above: Vec<Sums>,
    /// Rows at or above each threshold, by calibration block (for the map's error).
    pub above_blocks: Vec<Vec<f64>>,
    /// Rows whose score is NaN (left out).
    pub missing: u64,
}

/// An estimate and its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub std_error: f64,
}

/// Expected performance at one threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtThreshold {
    pub threshold: f64,
    /// Expected true positives, false positives, false negatives, true negatives.
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
    pub tn: f64,
    pub precision: Estimate,
    pub recall: Estimate,
    pub f1: Estimate,
    pub accuracy: Estimate,
}

impl Expected {
    /// Empty sums for a calibration map and thresholds.
    pub fn new(map: &Isotonic, thresholds: &[f64]) -> Expected {
        Expected {
            thresholds: thresholds.to_vec(),
            blocks: vec![0.0; map.values.len()],
            all: Sums::default(),
            above: vec![Sums::default(); thresholds.len()],
            above_blocks: vec![vec![0.0; map.values.len()]; thresholds.len()],
            missing: 0,
        }
    }

    /// Adds rows' scores.
    pub fn add(&mut self, map: &Isotonic, scores: impl IntoIterator<Item = f64>) {
        for s in scores {
            let Some(b) = map.block(s) else {
                self.missing += 1;
                continue;
            };
            let p = map.values[b];
            self.blocks[b] += 1.0;
            self.all.add(p);
            for ((t, above), by_block) in self
                .thresholds
                .iter()
                .zip(&mut self.above)
                .zip(&mut self.above_blocks)
            {
                if s >= *t {
                    above.add(p);
                    by_block[b] += 1.0;
                }
            }
        }
    }

    /// Adds another run part's sums (same map and thresholds).
    pub fn merge(&mut self, o: &Expected) {
        for (a, b) in self.blocks.iter_mut().zip(&o.blocks) {
            *a += b;
        }
        self.all.merge(&o.all);
        for (a, b) in self.above.iter_mut().zip(&o.above) {
            a.merge(b);
        }
        for (a, b) in self.above_blocks.iter_mut().zip(&o.above_blocks) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        self.missing += o.missing;
    }

    /// Expected metrics at each threshold. Their standard errors count two
    /// sources: the run's labels are random (a sum of Bernoulli variables), and
    /// the map's block values are estimates from finitely many fitting rows, an
    /// error shared by every row of a block.
    pub fn at_thresholds(&self, map: &Isotonic) -> Vec<AtThreshold> {
        let var_v = map.value_variances();
        self.thresholds
            .iter()
            .zip(&self.above)
            .zip(&self.above_blocks)
            .map(|((t, above), by_block)| {
                let below = self.all.minus(above);
                let tp = above.p;
                let fp = above.n - above.p;
                let fn_ = below.p;
                let tn = below.n - below.p;
                let m = above.n;
                // TP = A (over predicted positives), FN = B (over predicted negatives).
                let (mut ma, mut mb, mut mc) = (0.0, 0.0, 0.0);
                for ((a_k, n_k), v) in by_block.iter().zip(&self.blocks).zip(&var_v) {
                    let b_k = n_k - a_k;
                    ma += a_k * a_k * v;
                    mb += b_k * b_k * v;
                    mc += a_k * b_k * v;
                }
                let (a, b) = (tp, fn_);
                let (va, vb, cab) = (above.var.max(0.0) + ma, below.var.max(0.0) + mb, mc);
                // The delta method: var(g·(A, B)) = gA² vA + gB² vB + 2 gA gB cov.
                let delta = |ga: f64, gb: f64| {
                    (ga * ga * va + gb * gb * vb + 2.0 * ga * gb * cab)
                        .max(0.0)
                        .sqrt()
                };
                let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { f64::NAN };
                let precision = Estimate {
                    value: ratio(a, m),
                    std_error: ratio(va.sqrt(), m),
                };
                let s2 = (a + b) * (a + b);
                let recall = Estimate {
                    value: ratio(a, a + b),
                    std_error: ratio(delta(b, -a), s2),
                };
                let d = m + a + b;
                let f1 = Estimate {
                    value: ratio(2.0 * a, d),
                    std_error: ratio(delta(2.0 * (m + b), -2.0 * a), d * d),
                };
                // TP + TN = A + (below rows − B).
                let accuracy = Estimate {
                    value: ratio(tp + tn, self.all.n),
                    std_error: ratio(delta(1.0, -1.0), self.all.n),
                };
                AtThreshold {
                    threshold: *t,
                    tp,
                    fp,
                    fn_,
                    tn,
                    precision,
                    recall,
                    f1,
                    accuracy,
                }
            })
            .collect()
    }

    /// Expected ROC AUC: the chance that a positive outscores a negative (ties
    /// count half), with the positives and negatives each block is expected to
    /// hold; its standard error by Hanley and McNeil's formula on the expected
    /// counts.
    pub fn auc(&self, map: &Isotonic) -> Estimate {
        let (auc, pos, neg) = self.auc_with(&map.values);
        if !(pos > 0.0 && neg > 0.0) {
            return Estimate {
                value: f64::NAN,
                std_error: f64::NAN,
            };
        }
        let q1 = auc / (2.0 - auc);
        let q2 = 2.0 * auc * auc / (1.0 + auc);
        let labels =
            (auc * (1.0 - auc) + (pos - 1.0) * (q1 - auc * auc) + (neg - 1.0) * (q2 - auc * auc))
                / (pos * neg);
        // The map's error: Σ (∂AUC/∂v_k)² var(v_k), the gradient by central differences.
        let mut values = map.values.clone();
        let mut from_map = 0.0;
        for (k, var) in map.value_variances().into_iter().enumerate() {
            if var <= 0.0 || self.blocks[k] == 0.0 {
                continue;
            }
            let h = 1e-4;
            let v = values[k];
            values[k] = (v + h).min(1.0);
            let up = self.auc_with(&values).0;
            values[k] = (v - h).max(0.0);
            let down = self.auc_with(&values).0;
            let step = (v + h).min(1.0) - (v - h).max(0.0);
            values[k] = v;
            let g = (up - down) / step;
            if g.is_finite() {
                from_map += g * g * var;
            }
        }
        Estimate {
            value: auc,
            std_error: (labels.max(0.0) + from_map).sqrt(),
        }
    }

    /// The expected AUC with block values `values`, and the expected positives and negatives.
    fn auc_with(&self, values: &[f64]) -> (f64, f64, f64) {
        let (mut neg_below, mut sum) = (0.0, 0.0);
        let (mut pos, mut neg) = (0.0, 0.0);
        for (n, v) in self.blocks.iter().zip(values) {
            let (p_k, n_k) = (n * v, n * (1.0 - v));
            sum += p_k * (neg_below + 0.5 * n_k);
            neg_below += n_k;
            pos += p_k;
            neg += n_k;
        }
        (sum / (pos * neg), pos, neg)
    }
}

/// Realized performance at one threshold (a score at or above it is a predicted positive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealizedAt {
    pub threshold: f64,
    pub tp: u64,
    pub fp: u64,
    pub fn_: u64,
    pub tn: u64,
    /// Null where undefined (no predicted positive, no positive).
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub accuracy: Option<f64>,
}

impl RealizedAt {
    /// The figures at `threshold` of the counts `[tp, fp, fn, tn]`.
    pub fn from_counts(threshold: f64, [tp, fp, fn_, tn]: [u64; 4]) -> Self {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        RealizedAt {
            threshold,
            tp,
            fp,
            fn_,
            tn,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
            accuracy: ratio(tp + tn, tp + fp + fn_ + tn),
        }
    }
}

/// A classifier's realized performance on labelled rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Realized {
    /// Rows with a label and a score that is not NaN.
    pub rows: u64,
    pub positives: u64,
    /// ROC AUC (ties count half); null without both classes.
    pub auc: Option<f64>,
    /// Log loss of the score read as a probability (clipped to [ε, 1 − ε], ε = f64::EPSILON);
    /// null when a score lies outside [0, 1].
    pub log_loss: Option<f64>,
    /// Mean squared error of the score read as a probability; null as log loss.
    pub brier: Option<f64>,
    pub at: Vec<RealizedAt>,
}

/// Realized performance of `scores` against `labels` at `thresholds`; rows whose
/// score is NaN are left out.
pub fn realized(scores: &[f64], labels: &[bool], thresholds: &[f64]) -> Realized {
    let rows: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .filter(|(s, _)| !s.is_nan())
        .map(|(s, l)| (*s, *l))
        .collect();
    let n = rows.len() as u64;
    let positives = rows.iter().filter(|r| r.1).count() as u64;
    let probabilities = rows.iter().all(|r| (0.0..=1.0).contains(&r.0));
    let (s, y): (Vec<f64>, Vec<bool>) = rows.iter().copied().unzip();
    let (ll, br) = if probabilities {
        (log_loss(&y, &s), brier(&y, &s))
    } else {
        (None, None)
    };
    let at = thresholds
        .iter()
        .map(|t| {
            let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
            for (s, l) in &rows {
                match (*s >= *t, *l) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    (false, false) => tn += 1,
                }
            }
            RealizedAt::from_counts(*t, [tp, fp, fn_, tn])
        })
        .collect();
    let auc = realized_auc(scores, labels);
    Realized {
        rows: n,
        positives,
        auc: auc.is_finite().then_some(auc),
        log_loss: ll,
        brier: br,
        at,
    }
}

/// Area under the ROC curve of `scores` for `labels` (true = positive; ties count
/// half; rows whose score is NaN are left out); None without both classes or for
/// slices of different lengths.
pub fn auc(labels: &[bool], scores: &[f64]) -> Option<f64> {
    if labels.len() != scores.len() {
        return None;
    }
    Some(realized_auc(scores, labels)).filter(|v| v.is_finite())
}

/// Mean negative log-likelihood of `labels` under probabilities `p`, each clipped
/// to [ε, 1 − ε] with ε = `f64::EPSILON` (scikit-learn's `log_loss` for float64).
/// None when empty or of different lengths.
pub fn log_loss(labels: &[bool], p: &[f64]) -> Option<f64> {
    if labels.is_empty() || labels.len() != p.len() {
        return None;
    }
    let eps = f64::EPSILON;
    let s: f64 = labels
        .iter()
        .zip(p)
        .map(|(&y, &q)| {
            let q = q.clamp(eps, 1.0 - eps);
            if y { -q.ln() } else { -(1.0 - q).ln() }
        })
        .sum();
    Some(s / labels.len() as f64)
}

/// Mean squared difference between `p` and the 0/1 labels; None as [`log_loss`].
pub fn brier(labels: &[bool], p: &[f64]) -> Option<f64> {
    if labels.is_empty() || labels.len() != p.len() {
        return None;
    }
    let s: f64 = labels
        .iter()
        .zip(p)
        .map(|(&y, &q)| (q - if y { 1.0 } else { 0.0 }).powi(2))
        .sum();
    Some(s / labels.len() as f64)
}

/// Realized ROC AUC of scores and labels (ties count half), for comparisons.
pub fn realized_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut rows: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .filter(|(s, _)| !s.is_nan())
        .map(|(s, l)| (*s, *l))
        .collect();
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut neg_below, mut sum, mut pos, mut neg) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < rows.len() {
        let (mut p_k, mut n_k) = (0.0, 0.0);
        let s = rows[i].0;
        while i < rows.len() && rows[i].0 == s {
            if rows[i].1 {
                p_k += 1.0
            } else {
                n_k += 1.0
            }
            i += 1;
        }
        sum += p_k * (neg_below + 0.5 * n_k);
        neg_below += n_k;
        pos += p_k;
        neg += n_k;
    }
    if pos == 0.0 || neg == 0.0 {
        f64::NAN
    } else {
        sum / (pos * neg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A deterministic generator (xorshift) of uniform values in [0, 1).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Scores whose labels are positive with probability score² (a model that is
    /// informative but not calibrated), `n` rows.
    fn sample(rng: &mut Rng, n: usize) -> (Vec<f64>, Vec<bool>) {
        let scores: Vec<f64> = (0..n)
            .map(|_| (rng.next() * 100.0).round() / 100.0)
            .collect();
        let labels = scores.iter().map(|s| rng.next() < s * s).collect();
        (scores, labels)
    }

    #[test]
    fn isotonic_pools_violators_and_keeps_monotone_data() {
        let m = Isotonic::fit(&[1.0, 2.0, 3.0, 4.0], &[false, true, false, true]).unwrap();
        assert_eq!(m.edges, vec![1.0, 3.0, 4.0]);
        assert_eq!(m.values, vec![0.0, 0.5, 1.0]);
        assert_eq!(m.apply(2.5), 0.5);
        assert_eq!(m.apply(-1e300), 0.0);
        assert_eq!(m.apply(f64::INFINITY), 1.0);
        assert!(m.apply(f64::NAN).is_nan());
        assert!(Isotonic::fit(&[f64::NAN], &[true]).is_none());
        assert!(Isotonic::fit(&[], &[]).is_none());
    }

    /// Over many runs (seeds), how often each estimate sits within `k` standard
    /// errors of the realized value. Returns the share, and the worst |z|.
    fn coverage(seeds: u64, k: f64) -> (f64, f64) {
        let (mut inside, mut total, mut worst) = (0usize, 0usize, 0.0f64);
        for seed in 1..=seeds {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let (rs, rl) = sample(&mut rng, 50_000);
            let map = Isotonic::fit(&rs, &rl).unwrap();
            // A run whose inputs moved (scores skewed high) but whose calibration holds.
            let (mut s, mut l) = (Vec::new(), Vec::new());
            while s.len() < 20_000 {
                let x = (rng.next().sqrt() * 100.0).round() / 100.0;
                s.push(x);
                l.push(rng.next() < x * x);
            }
            // In two parts, merged: as chunks or shards would.
            let mut e = Expected::new(&map, &[0.5, 0.8]);
            let mut e2 = e.clone();
            e.add(&map, s[..7_000].iter().copied());
            e2.add(&map, s[7_000..].iter().copied());
            e.merge(&e2);
            assert_eq!(e.all.n, 20_000.0);
            let mut checks = vec![(e.auc(&map), realized_auc(&s, &l))];
            for at in e.at_thresholds(&map) {
                let (mut tp, mut fp, mut fneg) = (0.0, 0.0, 0.0);
                for (x, y) in s.iter().zip(&l) {
                    match (*x >= at.threshold, *y) {
                        (true, true) => tp += 1.0,
                        (true, false) => fp += 1.0,
                        (false, true) => fneg += 1.0,
                        _ => {}
                    }
                }
                let n = s.len() as f64;
                let tn = n - tp - fp - fneg;
                checks.push((at.precision, tp / (tp + fp)));
                checks.push((at.recall, tp / (tp + fneg)));
                checks.push((at.f1, 2.0 * tp / (2.0 * tp + fp + fneg)));
                checks.push((at.accuracy, (tp + tn) / n));
            }
            for (est, real) in checks {
                assert!(est.std_error > 0.0 && est.std_error < 0.05, "{est:?}");
                let z = (est.value - real).abs() / est.std_error;
                worst = worst.max(z);
                total += 1;
                inside += usize::from(z <= k);
            }
        }
        (inside as f64 / total as f64, worst)
    }

    #[test]
    fn estimates_sit_within_their_band_of_the_realized_values() {
        // 40 runs × 9 estimates. The band counts the run's labels' randomness and
        // the calibration map's error (fitted on 50,000 rows here); a normal band
        // holds 99.7 % at 3 SE (measured: 99.7 %, worst 3.06 SE; without the map's
        // error it was 98.3 %, worst 3.98).
        let (share, worst) = coverage(40, 3.0);
        eprintln!("within 3 SE: {:.1} %, worst |z| {worst:.2}", share * 100.0);
        assert!(share >= 0.98, "{share}");
        assert!(worst < 4.5, "{worst}");
    }

    #[test]
    fn under_concept_drift_the_estimate_misses_and_says_so_by_its_band() {
        // The labels flip their relation to the score: calibration no longer holds,
        // and the realized AUC falls far outside the estimate's band.
        let mut rng = Rng(7);
        let (rs, rl) = sample(&mut rng, 20_000);
        let map = Isotonic::fit(&rs, &rl).unwrap();
        let (s, _) = sample(&mut rng, 20_000);
        let l: Vec<bool> = s
            .iter()
            .map(|x| rng.next() < (1.0 - x) * (1.0 - x))
            .collect();
        let mut e = Expected::new(&map, &[0.5]);
        e.add(&map, s.iter().copied());
        let auc = e.auc(&map);
        assert!((auc.value - realized_auc(&s, &l)).abs() > 10.0 * auc.std_error);
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(-0.0),
            Just(f64::MAX),
            Just(f64::MIN_POSITIVE),
            -1e6f64..1e6,
            0.0f64..1.0,
        ]
    }

    proptest! {
        #[test]
        fn any_scores_give_a_monotone_map_and_mergeable_sums(
            rows in proptest::collection::vec((value(), any::<bool>()), 0..200),
            run in proptest::collection::vec(value(), 0..200),
            cut in 0usize..200,
        ) {
            let (s, l): (Vec<f64>, Vec<bool>) = rows.into_iter().unzip();
            let Some(map) = Isotonic::fit(&s, &l) else {
                prop_assert!(s.iter().all(|x| !x.is_finite()));
                return Ok(());
            };
            prop_assert_eq!(map.edges.len(), map.values.len());
            prop_assert!(map.edges.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(map.values.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(map.values.iter().all(|v| (0.0..=1.0).contains(v)));
            // The fit's weighted mean equals the labels' mean (PAV keeps it).
            let finite: Vec<(f64, bool)> = s.iter().zip(&l).filter(|(x, _)| x.is_finite()).map(|(x, y)| (*x, *y)).collect();
            let mean_fit = finite.iter().map(|(x, _)| map.apply(*x)).sum::<f64>();
            let mean_lab = finite.iter().filter(|(_, y)| *y).count() as f64;
            prop_assert!((mean_fit - mean_lab).abs() <= 1e-9 * finite.len() as f64);

            let th = [0.5, f64::NEG_INFINITY];
            let mut whole = Expected::new(&map, &th);
            whole.add(&map, run.iter().copied());
            let cut = cut.min(run.len());
            let mut a = Expected::new(&map, &th);
            let mut b = Expected::new(&map, &th);
            a.add(&map, run[..cut].iter().copied());
            b.add(&map, run[cut..].iter().copied());
            a.merge(&b);
            prop_assert_eq!(a.blocks.clone(), whole.blocks.clone());
            prop_assert_eq!(a.missing, whole.missing);
            prop_assert!((a.all.p - whole.all.p).abs() <= 1e-9 * (1.0 + whole.all.n));
            for at in whole.at_thresholds(&map) {
                prop_assert!(at.tp >= -1e-9 && at.fp >= -1e-9 && at.fn_ >= -1e-9 && at.tn >= -1e-9);
                for e in [at.precision, at.recall, at.f1, at.accuracy] {
                    prop_assert!(e.value.is_nan() || (-1e-9..=1.0 + 1e-9).contains(&e.value));
                    prop_assert!(e.std_error.is_nan() || e.std_error >= 0.0);
                }
            }
            let auc = whole.auc(&map);
            prop_assert!(auc.value.is_nan() || (0.0..=1.0).contains(&auc.value));
        }

        /// The realized AUC is the share of (positive, negative) pairs ranked right,
        /// ties half, NaN scores left out (±inf and -0.0 are values like any other),
        /// whatever the order of the rows; log loss and Brier stay within their
        /// bounds for any probabilities.
        #[test]
        fn realized_auc_is_the_pairwise_share_and_losses_are_bounded(
            rows in proptest::collection::vec((value(), any::<bool>()), 0..120),
            p in proptest::collection::vec((0.0f64..=1.0, any::<bool>()), 1..120),
        ) {
            let (s, l): (Vec<f64>, Vec<bool>) = rows.iter().copied().unzip();
            let kept: Vec<(f64, bool)> = rows.iter().copied().filter(|(x, _)| !x.is_nan()).collect();
            let (mut right, mut pairs) = (0.0, 0.0);
            for (xp, _) in kept.iter().filter(|r| r.1) {
                for (xn, _) in kept.iter().filter(|r| !r.1) {
                    pairs += 1.0;
                    right += if xp > xn { 1.0 } else if xp == xn { 0.5 } else { 0.0 };
                }
            }
            match auc(&l, &s) {
                None => prop_assert_eq!(pairs, 0.0),
                Some(v) => prop_assert!((v - right / pairs).abs() <= 1e-12, "{} vs {}", v, right / pairs),
            }
            let (mut rs, mut rl) = (s.clone(), l.clone());
            rs.reverse();
            rl.reverse();
            prop_assert_eq!(auc(&rl, &rs).map(f64::to_bits), auc(&l, &s).map(f64::to_bits));
            let (q, y): (Vec<f64>, Vec<bool>) = p.into_iter().unzip();
            let ll = log_loss(&y, &q).unwrap();
            prop_assert!((0.0..=-f64::EPSILON.ln() + 1e-9).contains(&ll), "{}", ll);
            let b = brier(&y, &q).unwrap();
            prop_assert!((0.0..=1.0).contains(&b), "{}", b);
            prop_assert_eq!(log_loss(&y[1..], &q), None);
        }
    }
}
