//! Statistics that compare two models' scores of the same rows (and, with labels,
//! each model's quality), defined as scipy / scikit-learn define them:
//!
//! | function | equals |
//! |---|---|
//! | [`pearson`] | `scipy.stats.pearsonr(a, b).statistic` |
//! | [`spearman`] | `scipy.stats.spearmanr(a, b).statistic` (ties get average ranks) |
//! | [`auc`] | `sklearn.metrics.roc_auc_score(y, s)` = Mann–Whitney U / (n₁ n₀), ties counted ½ |
//! | [`log_loss`] | `sklearn.metrics.log_loss(y, p)`, p clipped to [ε, 1−ε], ε = f64 machine epsilon |
//! | [`brier`] | `sklearn.metrics.brier_score_loss(y, p)` |
//! | [`agreement`] | share of rows on the same side of a threshold (`>=` is positive) |
//! | [`top_k_jaccard`] | Jaccard index of the two top-⌈k·n⌉ row sets (ties broken by row order) |
//!
//! Inputs are aligned slices without NaN; `None` where the statistic is undefined
//! (empty input, a constant side for correlations, one class only for AUC).

/// Pearson's correlation coefficient.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len();
    if n < 2 || b.len() != n {
        return None;
    }
    // Correlation does not change with scale: dividing by the largest magnitude
    // keeps every sum finite, whatever the values (±f64::MAX included).
    let scaled = |v: &[f64]| {
        let m = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        if m > 0.0 && m.is_finite() {
            v.iter().map(|x| x / m).collect()
        } else {
            v.to_vec()
        }
    };
    let (a, b): (Vec<f64>, Vec<f64>) = (scaled(a), scaled(b));
    let ma = a.iter().sum::<f64>() / n as f64;
    let mb = b.iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(&b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        return None;
    }
    Some((sab / (saa.sqrt() * sbb.sqrt())).clamp(-1.0, 1.0)).filter(|r| r.is_finite())
}

/// Ranks 1..=n, ties given the average of the ranks they span.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's rank correlation: Pearson's on average ranks.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    // scipy propagates NaN: no rank correlation with a NaN score.
    if a.len() != b.len() || a.iter().chain(b).any(|v| v.is_nan()) {
        return None;
    }
    pearson(&average_ranks(a), &average_ranks(b))
}

// AUC, log loss and Brier score: the same functions as the realized performance
// of `scorch evaluate` and `scorch profile --labels`.
pub use crate::stats::calibration::{auc, brier, log_loss};

/// Share of rows both models put on the same side of `threshold`.
pub fn agreement(a: &[f64], b: &[f64], threshold: f64) -> Option<f64> {
    if a.is_empty() || a.len() != b.len() {
        return None;
    }
    let same = a
        .iter()
        .zip(b)
        .filter(|(x, y)| (**x >= threshold) == (**y >= threshold))
        .count();
    Some(same as f64 / a.len() as f64)
}

/// Jaccard index of the rows each model ranks in its top `ceil(k·n)` (highest scores;
/// equal scores ordered by row).
pub fn top_k_jaccard(a: &[f64], b: &[f64], k: f64) -> Option<f64> {
    let n = a.len();
    if n == 0 || b.len() != n || !(0.0..=1.0).contains(&k) {
        return None;
    }
    let m = ((k * n as f64).ceil() as usize).clamp(1, n);
    let top = |x: &[f64]| {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|&i, &j| x[j].total_cmp(&x[i]).then(i.cmp(&j)));
        let mut set = vec![false; n];
        for &i in &idx[..m] {
            set[i] = true;
        }
        set
    };
    let (ta, tb) = (top(a), top(b));
    let inter = ta.iter().zip(&tb).filter(|(x, y)| **x && **y).count();
    let union = 2 * m - inter;
    Some(inter as f64 / union as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cases_by_hand() {
        assert_eq!(
            average_ranks(&[10.0, 20.0, 10.0, 5.0]),
            vec![2.5, 4.0, 2.5, 1.0]
        );
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]).unwrap() - 1.0).abs() < 1e-15);
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), None);
        // One positive ranked above both negatives, one tie: (1 + 0.5) / 2.
        assert_eq!(auc(&[true, false, false], &[0.9, 0.9, 0.1]), Some(0.75));
        assert_eq!(auc(&[true, true], &[0.1, 0.2]), None);
        assert_eq!(agreement(&[0.2, 0.7], &[0.6, 0.8], 0.5), Some(0.5));
        assert_eq!(
            top_k_jaccard(&[4.0, 3.0, 2.0, 1.0], &[1.0, 3.0, 2.0, 4.0], 0.5),
            Some(1.0 / 3.0)
        );
        assert!((brier(&[true, false], &[0.8, 0.4]).unwrap() - 0.1).abs() < 1e-15);
    }

    use proptest::prelude::*;

    /// Finite values, the extreme ones drawn often (scores are finite by the time
    /// they are compared: non-finite scores fail the run or become null).
    fn score() -> impl Strategy<Value = f64> {
        prop_oneof![
            Just(f64::MAX),
            Just(-f64::MAX),
            Just(5e-324),
            Just(-0.0),
            Just(0.5),
            proptest::num::f64::NORMAL,
            0.0..1.0f64,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn comparison_metrics_take_any_finite_scores(
            rows in proptest::collection::vec((score(), score(), any::<bool>()), 0..200),
            k in 0.0..1.0f64,
        ) {
            let a: Vec<f64> = rows.iter().map(|r| r.0).collect();
            let b: Vec<f64> = rows.iter().map(|r| r.1).collect();
            let y: Vec<bool> = rows.iter().map(|r| r.2).collect();
            let unit = |v: Option<f64>| v.is_none_or(|x| (-1.0..=1.0).contains(&x));
            prop_assert!(unit(pearson(&a, &b)));
            prop_assert!(unit(spearman(&a, &b)));
            prop_assert!(auc(&y, &a).is_none_or(|x| (0.0..=1.0).contains(&x)));
            prop_assert!(log_loss(&y, &a).is_none_or(|x| x >= 0.0 && x.is_finite()));
            prop_assert!(brier(&y, &a).is_none_or(|x| x >= 0.0));
            prop_assert!(agreement(&a, &b, 0.5).is_none_or(|x| (0.0..=1.0).contains(&x)));
            prop_assert!(top_k_jaccard(&a, &b, k).is_none_or(|x| (0.0..=1.0).contains(&x)));
        }

        #[test]
        fn canary_buckets_take_any_key(salt in ".{0,20}", key in prop_oneof![Just(String::new()), ".{0,50}", "x{5000}"]) {
            let b = crate::run::rollout::bucket(&salt, &key);
            prop_assert!((0.0..1.0).contains(&b));
        }
    }
}
