//! The comparison of a shadow run: the champion's and the challenger's scores of the
//! same rows, overall and per segment, and with labels each model's quality and the
//! difference with a bootstrap confidence interval.
//!
//! Confidence intervals come from a Poisson bootstrap: every resample gives each row
//! a Poisson(1) weight (the large-sample limit of drawing n rows with replacement),
//! the same weights for both models, so the interval is of the paired difference.
//! Resample `b` draws its weights from a generator seeded by `seed` and `b`, so the
//! intervals are the same in every run. The interval is the 2.5th–97.5th percentile
//! (numpy's linear method) of the resampled differences.

#[cfg(test)]
use rayon::prelude::*;
use serde::Serialize;

#[cfg(test)]
use super::metrics;
use crate::stats::divergence::quantile_linear;
#[cfg(test)]
use crate::stats::divergence::{bin_sorted, quantile_edges};

/// Top-k shares reported.
pub const TOP_K: [(f64, &str); 3] = [
    (0.01, "jaccard_top_1pct"),
    (0.05, "jaccard_top_5pct"),
    (0.10, "jaccard_top_10pct"),
];
/// Bins of the PSI between the two score distributions (the champion's deciles).
pub const PSI_BINS: usize = 10;
/// Seed of the bootstrap.
pub const BOOTSTRAP_SEED: u64 = 0x5C0_2C4;

/// Agreement at one threshold.
#[derive(Debug, Clone, Serialize)]
pub struct AtThreshold {
    pub threshold: f64,
    /// Share of rows both models put on the same side (`>=` is positive).
    pub agreement: Option<f64>,
    pub champion_positive_rate: Option<f64>,
    pub challenger_positive_rate: Option<f64>,
}

/// Overlap of the two models' top-k rows.
#[derive(Debug, Clone, Serialize)]
pub struct TopK {
    /// Share of rows, e.g. 0.01.
    pub k: f64,
    pub jaccard: Option<f64>,
}

/// One model's quality on the labelled rows.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Quality {
    pub auc: Option<f64>,
    pub log_loss: Option<f64>,
    pub brier: Option<f64>,
    /// Accuracy at each threshold, in the order of `thresholds`.
    pub accuracy: Vec<Option<f64>>,
}

/// A difference challenger − champion with its bootstrap interval.
#[derive(Debug, Clone, Serialize)]
pub struct Delta {
    /// `auc`, `log_loss`, `brier`, `accuracy@<threshold>`.
    pub metric: String,
    pub delta: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Share of resamples in which the challenger is better.
    pub p_challenger_better: Option<f64>,
}

/// Metrics with labels.
#[derive(Debug, Clone, Serialize)]
pub struct Labelled {
    pub positives: u64,
    pub champion: Quality,
    pub challenger: Quality,
    pub deltas: Vec<Delta>,
}

/// The comparison of one set of rows (all rows, or one segment).
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub rows: u64,
    pub labelled_rows: u64,
    pub champion_mean: Option<f64>,
    pub challenger_mean: Option<f64>,
    pub mean_abs_diff: Option<f64>,
    pub max_abs_diff: Option<f64>,
    pub pearson: Option<f64>,
    pub spearman: Option<f64>,
    pub agreement: Vec<AtThreshold>,
    pub top_k: Vec<TopK>,
    /// PSI of the challenger's scores over the champion's deciles.
    pub psi: Option<f64>,
    /// Two-sample Kolmogorov–Smirnov statistic between the two score distributions.
    pub ks: Option<f64>,
    pub ks_p_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labelled: Option<Labelled>,
}

/// The comparison's inputs, row-aligned (the in-memory form [`section`] takes:
/// the reference the streamed comparison is tested against).
#[cfg(test)]
pub struct Rows<'a> {
    pub champion: &'a [f64],
    pub challenger: &'a [f64],
    /// `Some(true/false)` for labelled rows.
    pub labels: &'a [Option<bool>],
    /// Each row's place in the input (its bootstrap weights' key).
    pub ids: &'a [u64],
}

#[cfg(test)]
/// The mean; finite for any finite values (see [`crate::stats::moments`]).
fn mean(x: &[f64]) -> Option<f64> {
    (!x.is_empty()).then(|| crate::stats::moments(x).0)
}

#[cfg(test)]
/// The finite values, sorted (the score distributions' PSI and KS leave out NaN
/// and ±inf, as `scorch drift` does).
fn sorted(x: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    crate::stats::ks::radix_sort(&mut v);
    v
}

#[cfg(test)]
fn accuracy(y: &[bool], p: &[f64], t: f64) -> Option<f64> {
    (!y.is_empty())
        .then(|| y.iter().zip(p).filter(|(y, p)| (**p >= t) == **y).count() as f64 / y.len() as f64)
}

#[cfg(test)]
fn quality(y: &[bool], p: &[f64], thresholds: &[f64]) -> Quality {
    Quality {
        auc: metrics::auc(y, p),
        log_loss: metrics::log_loss(y, p),
        brier: metrics::brier(y, p),
        accuracy: thresholds.iter().map(|&t| accuracy(y, p, t)).collect(),
    }
}

#[cfg(test)]
/// Compares the rows. `bootstrap`: resamples (0: no intervals).
pub fn section(rows: &Rows<'_>, thresholds: &[f64], bootstrap: usize) -> Section {
    let (a, b) = (rows.champion, rows.challenger);
    let n = a.len();
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| (x - y).abs()).collect();
    let (sa, sb) = (sorted(a), sorted(b));
    let psi = (!sa.is_empty() && !sb.is_empty()).then(|| {
        let edges = quantile_edges(&sa, PSI_BINS);
        crate::stats::divergence::psi(&bin_sorted(&sa, &edges), &bin_sorted(&sb, &edges))
    });
    let ks = crate::stats::ks::ks_2samp(&sa, &sb);
    let positive_rate =
        |x: &[f64], t: f64| mean(&x.iter().map(|&v| f64::from(v >= t)).collect::<Vec<_>>());
    let mut s = Section {
        rows: n as u64,
        labelled_rows: rows.labels.iter().filter(|l| l.is_some()).count() as u64,
        champion_mean: mean(a),
        challenger_mean: mean(b),
        mean_abs_diff: mean(&diffs),
        max_abs_diff: diffs.iter().cloned().reduce(f64::max),
        pearson: metrics::pearson(a, b),
        spearman: metrics::spearman(a, b),
        agreement: thresholds
            .iter()
            .map(|&t| AtThreshold {
                threshold: t,
                agreement: metrics::agreement(a, b, t),
                champion_positive_rate: positive_rate(a, t),
                challenger_positive_rate: positive_rate(b, t),
            })
            .collect(),
        top_k: TOP_K
            .iter()
            .map(|&(k, _)| TopK {
                k,
                jaccard: metrics::top_k_jaccard(a, b, k),
            })
            .collect(),
        psi,
        ks: ks.as_ref().map(|k| k.statistic),
        ks_p_value: ks.as_ref().map(|k| k.p_value),
        labelled: None,
    };
    if s.labelled_rows > 0 {
        let mut y = Vec::new();
        let (mut la, mut lb, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            if let Some(l) = rows.labels[i] {
                y.push(l);
                la.push(a[i]);
                lb.push(b[i]);
                ids.push(rows.ids[i]);
            }
        }
        let qa = quality(&y, &la, thresholds);
        let qb = quality(&y, &lb, thresholds);
        let names = metric_names(thresholds);
        let point = |q: &Quality| {
            let mut v = vec![q.auc, q.log_loss, q.brier];
            v.extend(q.accuracy.iter().cloned());
            v
        };
        let (pa, pb) = (point(&qa), point(&qb));
        let boot = bootstrap_deltas(&y, &la, &lb, &ids, thresholds, bootstrap);
        let deltas = names
            .iter()
            .enumerate()
            .map(|(m, name)| {
                let greater = !matches!(name.as_str(), "log_loss" | "brier");
                let (ci_low, ci_high, better) = match &boot {
                    Some(d) => interval(&d[m], greater),
                    None => (None, None, None),
                };
                Delta {
                    metric: name.clone(),
                    delta: pa[m].zip(pb[m]).map(|(x, y)| y - x),
                    ci_low,
                    ci_high,
                    p_challenger_better: better,
                }
            })
            .collect();
        s.labelled = Some(Labelled {
            positives: y.iter().filter(|&&l| l).count() as u64,
            champion: qa,
            challenger: qb,
            deltas,
        });
    }
    s
}

/// Names of the labelled metrics in bootstrap order.
pub(super) fn metric_names(thresholds: &[f64]) -> Vec<String> {
    let mut v: Vec<String> = ["auc", "log_loss", "brier"].map(String::from).to_vec();
    v.extend(thresholds.iter().map(|t| format!("accuracy@{t}")));
    v
}

/// 95% percentile interval of resampled differences (NaN-free ones) and the share in
/// the better direction.
pub(super) fn interval(
    d: &[f64],
    greater_is_better: bool,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    let mut v: Vec<f64> = d.iter().cloned().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (None, None, None);
    }
    v.sort_by(f64::total_cmp);
    let better = v
        .iter()
        .filter(|&&x| if greater_is_better { x > 0.0 } else { x < 0.0 })
        .count() as f64
        / v.len() as f64;
    (
        Some(quantile_linear(&v, 0.025)),
        Some(quantile_linear(&v, 0.975)),
        Some(better),
    )
}

/// splitmix64: a small, well-mixed generator for the bootstrap weights.
pub(super) struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Poisson(1) draws by inversion against the CDF scaled to 32 bits (two draws per
/// 64-bit uniform; the CDF is resolved to 2^-32, so a weight above 11 never occurs,
/// against P(X > 11) < 1e-9).
pub(super) struct Poisson1 {
    /// `cdf[k]` = P(X <= k) · 2^32, for k = 0..=11.
    cdf: [u64; 12],
}

impl Poisson1 {
    pub fn new() -> Self {
        let mut cdf = [1u64 << 32; 12];
        let (mut p, mut acc) = ((-1.0f64).exp(), 0.0);
        for (k, c) in cdf.iter_mut().enumerate().take(11) {
            if k > 0 {
                p /= k as f64;
            }
            acc += p;
            *c = (acc * 4_294_967_296.0) as u64;
        }
        Poisson1 { cdf }
    }

    /// A draw from a uniform 32-bit value: the number of cumulative
    /// probabilities at or below it (`cdf` rises), counted without a branch —
    /// where a loop would stop is random, and mispredicted about half the time.
    #[inline]
    fn draw(&self, u: u32) -> u8 {
        let u = u64::from(u);
        self.cdf.iter().map(|&c| u8::from(u >= c)).sum()
    }

    /// The weight of input row `row` in the resample seeded `seed`: a draw from
    /// splitmix64's output at the row's position of the stream, so any row's weight
    /// is found without drawing the others.
    #[inline]
    pub fn weight(&self, seed: u64, row: u64) -> u8 {
        let mut r = SplitMix(seed.wrapping_add(row.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        self.draw((r.next() >> 32) as u32)
    }
}

#[cfg(test)]
/// One model's rows in ascending score order, for the weighted AUC.
pub struct Ranked {
    /// Row index of each position.
    idx: Vec<u32>,
    /// Label of each position.
    y: Vec<bool>,
    /// End (exclusive) of each group of equal scores.
    ends: Vec<u32>,
}

#[cfg(test)]
impl Ranked {
    pub fn new(p: &[f64], y: &[bool]) -> Self {
        // NaN scores are left out (as the AUC leaves them out).
        let mut idx: Vec<u32> = (0..p.len() as u32)
            .filter(|&i| !p[i as usize].is_nan())
            .collect();
        idx.sort_by(|&i, &j| p[i as usize].total_cmp(&p[j as usize]));
        let mut ends = Vec::new();
        for j in 1..=idx.len() {
            if j == idx.len() || p[idx[j] as usize] != p[idx[j - 1] as usize] {
                ends.push(j as u32);
            }
        }
        Ranked {
            y: idx.iter().map(|&i| y[i as usize]).collect(),
            idx,
            ends,
        }
    }

    /// Weighted AUC (ties count ½), equal to [`metrics::auc`] when every weight is 1.
    pub fn auc(&self, w: &[u8]) -> Option<f64> {
        // Integer sums (twice the numerator, so ties' ½ stays exact).
        let (mut neg_below, mut num2, mut tp, mut tn) = (0u64, 0u64, 0u64, 0u64);
        let mut start = 0usize;
        for &end in &self.ends {
            let (mut gp, mut gn) = (0u64, 0u64);
            for j in start..end as usize {
                let wk = u64::from(w[self.idx[j] as usize]);
                let pos = u64::from(self.y[j]);
                gp += wk * pos;
                gn += wk * (1 - pos);
            }
            num2 += gp * (2 * neg_below + gn);
            neg_below += gn;
            tp += gp;
            tn += gn;
            start = end as usize;
        }
        let (tp, tn) = (tp as f64, tn as f64);
        (tp > 0.0 && tn > 0.0).then(|| num2 as f64 / 2.0 / (tp * tn))
    }
}

#[cfg(test)]
/// Per labelled metric (see [`metric_names`]), the differences challenger − champion
/// in each bootstrap resample. `None` without resamples.
fn bootstrap_deltas(
    y: &[bool],
    a: &[f64],
    b: &[f64],
    ids: &[u64],
    thresholds: &[f64],
    resamples: usize,
) -> Option<Vec<Vec<f64>>> {
    if resamples == 0 || y.is_empty() {
        return None;
    }
    let n = y.len();
    let (ra, rb) = (Ranked::new(a, y), Ranked::new(b, y));
    let eps = f64::EPSILON;
    let ll = |p: &[f64]| -> Vec<f64> {
        p.iter()
            .zip(y)
            .map(|(&q, &l)| {
                let q = q.clamp(eps, 1.0 - eps);
                if l { -q.ln() } else { -(1.0 - q).ln() }
            })
            .collect()
    };
    let br = |p: &[f64]| -> Vec<f64> {
        p.iter()
            .zip(y)
            .map(|(&q, &l)| (q - f64::from(u8::from(l))).powi(2))
            .collect()
    };
    let correct = |p: &[f64], t: f64| -> Vec<bool> {
        p.iter().zip(y).map(|(&q, &l)| (q >= t) == l).collect()
    };
    // Per row, challenger's loss minus champion's: one weighted sum per metric.
    let diff =
        |x: Vec<f64>, z: Vec<f64>| -> Vec<f64> { z.iter().zip(&x).map(|(z, x)| z - x).collect() };
    let dll = diff(ll(a), ll(b));
    let dbr = diff(br(a), br(b));
    let dacc: Vec<Vec<i8>> = thresholds
        .iter()
        .map(|&t| {
            correct(a, t)
                .iter()
                .zip(correct(b, t))
                .map(|(&x, z)| i8::from(z) - i8::from(x))
                .collect()
        })
        .collect();
    // Summed in the challenger's score order (ties: later rows first), the order
    // the streamed comparison sums in, so the sums are the same to the bit.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| b[i].total_cmp(&b[j]).then(ids[j].cmp(&ids[i])));
    let poisson = Poisson1::new();
    let per: Vec<Vec<f64>> = (0..resamples)
        .into_par_iter()
        .map(|r| {
            let seed = BOOTSTRAP_SEED ^ (r as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
            let w: Vec<u8> = ids.iter().map(|&i| poisson.weight(seed, i)).collect();
            let (mut total, mut sll, mut sbr) = (0u64, 0.0, 0.0);
            for &i in &order {
                let k = w[i];
                if k != 0 {
                    total += u64::from(k);
                    sll += dll[i] * f64::from(k);
                    sbr += dbr[i] * f64::from(k);
                }
            }
            let total = total as f64;
            let auc = match (ra.auc(&w), rb.auc(&w)) {
                (Some(x), Some(z)) => z - x,
                _ => f64::NAN,
            };
            let mut d = vec![auc, sll / total, sbr / total];
            for da in &dacc {
                let s: i64 = da
                    .iter()
                    .zip(&w)
                    .map(|(&c, &k)| i64::from(c) * i64::from(k))
                    .sum();
                d.push(s as f64 / total);
            }
            d
        })
        .collect();
    let m = per.first().map_or(0, Vec::len);
    Some((0..m).map(|i| per.iter().map(|d| d[i]).collect()).collect())
}

/// `(metric, value, ci_low, ci_high)`: one row of the metrics Parquet file.
pub type LongRow = (String, Option<f64>, Option<f64>, Option<f64>);

impl Section {
    /// A metric by its gate name (see [`super::gate`]): `(value, champion value)`.
    pub fn value(&self, metric: &str, thresholds: &[f64]) -> Option<(f64, Option<f64>)> {
        let at = |name: &str| -> Option<(String, usize)> {
            match name.split_once('@') {
                None => Some((name.to_string(), 0)),
                Some((base, t)) => {
                    let t: f64 = t.parse().ok()?;
                    let i = thresholds.iter().position(|&x| (x - t).abs() < 1e-12)?;
                    Some((base.to_string(), i))
                }
            }
        };
        let pair = |v: Option<f64>| v.map(|x| (x, None));
        for (k, name) in TOP_K.iter().map(|(k, n)| (*k, *n)) {
            if metric == name {
                return pair(self.top_k.iter().find(|t| t.k == k)?.jaccard);
            }
        }
        match metric {
            "mean_abs_diff" => return pair(self.mean_abs_diff),
            "max_abs_diff" => return pair(self.max_abs_diff),
            "pearson" => return pair(self.pearson),
            "spearman" => return pair(self.spearman),
            "psi" => return pair(self.psi),
            "ks" => return pair(self.ks),
            _ => {}
        }
        for (suffix, part) in [("_delta_ci_low", 1), ("_delta_ci_high", 2), ("_delta", 0)] {
            if let Some(base) = metric.strip_suffix(suffix) {
                let (base, i) = at(base)?;
                let name = if base == "accuracy" {
                    format!("accuracy@{}", thresholds[i])
                } else {
                    base
                };
                let d = self
                    .labelled
                    .as_ref()?
                    .deltas
                    .iter()
                    .find(|d| d.metric == name)?;
                return pair([d.delta, d.ci_low, d.ci_high][part]);
            }
        }
        let (base, i) = at(metric)?;
        if base == "agreement" {
            return pair(self.agreement.get(i)?.agreement);
        }
        let l = self.labelled.as_ref()?;
        let get = |q: &Quality| match base.as_str() {
            "auc" => q.auc,
            "log_loss" => q.log_loss,
            "brier" => q.brier,
            "accuracy" => q.accuracy.get(i).cloned().flatten(),
            _ => None,
        };
        Some((get(&l.challenger)?, get(&l.champion)))
    }

    /// `(metric, value, ci_low, ci_high)` rows for the metrics Parquet file.
    pub fn long_rows(&self) -> Vec<LongRow> {
        let mut v = vec![
            ("rows".to_string(), Some(self.rows as f64), None, None),
            (
                "labelled_rows".into(),
                Some(self.labelled_rows as f64),
                None,
                None,
            ),
            ("champion_mean".into(), self.champion_mean, None, None),
            ("challenger_mean".into(), self.challenger_mean, None, None),
            ("mean_abs_diff".into(), self.mean_abs_diff, None, None),
            ("max_abs_diff".into(), self.max_abs_diff, None, None),
            ("pearson".into(), self.pearson, None, None),
            ("spearman".into(), self.spearman, None, None),
            ("psi".into(), self.psi, None, None),
            ("ks".into(), self.ks, None, None),
            ("ks_p_value".into(), self.ks_p_value, None, None),
        ];
        for a in &self.agreement {
            v.push((
                format!("agreement@{}", a.threshold),
                a.agreement,
                None,
                None,
            ));
        }
        for (t, (_, name)) in self.top_k.iter().zip(TOP_K) {
            v.push((name.to_string(), t.jaccard, None, None));
        }
        if let Some(l) = &self.labelled {
            for (who, q) in [("champion", &l.champion), ("challenger", &l.challenger)] {
                v.push((format!("{who}_auc"), q.auc, None, None));
                v.push((format!("{who}_log_loss"), q.log_loss, None, None));
                v.push((format!("{who}_brier"), q.brier, None, None));
                for (a, t) in q.accuracy.iter().zip(&self.agreement) {
                    v.push((format!("{who}_accuracy@{}", t.threshold), *a, None, None));
                }
            }
            for d in &l.deltas {
                v.push((format!("{}_delta", d.metric), d.delta, d.ci_low, d.ci_high));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_auc_with_unit_weights_is_the_mann_whitney_auc() {
        let p = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.2];
        let y = [false, true, false, true, false, true, true];
        let r = Ranked::new(&p, &y);
        let w = [1u8; 7];
        assert_eq!(r.auc(&w), metrics::auc(&y, &p));
        // A weight of 2 counts a row twice.
        let w2 = [1u8, 2, 1, 1, 1, 1, 1];
        let (p2, y2) = (
            [0.1, 0.4, 0.4, 0.35, 0.8, 0.4, 0.9, 0.2],
            [false, true, true, false, true, false, true, true],
        );
        let got = r.auc(&w2).unwrap();
        assert!((got - metrics::auc(&y2, &p2).unwrap()).abs() < 1e-15);
    }

    #[test]
    fn poisson_weights_have_mean_and_variance_one() {
        let p = Poisson1::new();
        let w: Vec<f64> = (0..200_001u64).map(|i| f64::from(p.weight(7, i))).collect();
        assert_eq!(w.len(), 200_001);
        let m = w.iter().sum::<f64>() / w.len() as f64;
        let v = w.iter().map(|x| (x - m).powi(2)).sum::<f64>() / w.len() as f64;
        assert!((m - 1.0).abs() < 0.01 && (v - 1.0).abs() < 0.02, "{m} {v}");
    }

    #[test]
    fn a_better_challenger_gets_an_interval_above_zero_and_the_gate_values() {
        // Labels from a noisy signal; the challenger sees the signal with less noise.
        let mut r = SplitMix(3);
        let mut u = || (r.next() >> 11) as f64 / (1u64 << 53) as f64;
        let n = 4000;
        let (mut a, mut b, mut y) = (vec![], vec![], vec![]);
        for _ in 0..n {
            let s = u();
            y.push(Some(u() < s));
            a.push((0.5 * s + 0.5 * u()).clamp(0.0, 1.0));
            b.push((0.9 * s + 0.1 * u()).clamp(0.0, 1.0));
        }
        let ids: Vec<u64> = (0..n as u64).collect();
        let rows = Rows {
            champion: &a,
            challenger: &b,
            labels: &y,
            ids: &ids,
        };
        let s = section(&rows, &[0.5], 200);
        let l = s.labelled.as_ref().unwrap();
        let auc = &l.deltas[0];
        assert_eq!(auc.metric, "auc");
        assert!(auc.delta.unwrap() > 0.0);
        assert!(auc.ci_low.unwrap() > 0.0 && auc.ci_low < auc.delta && auc.delta < auc.ci_high);
        assert_eq!(auc.p_challenger_better, Some(1.0));
        // Same seed, same interval.
        let again = section(&rows, &[0.5], 200);
        assert_eq!(again.labelled.unwrap().deltas[0].ci_low, auc.ci_low);
        let th = [0.5];
        assert_eq!(
            s.value("auc", &th),
            Some((l.challenger.auc.unwrap(), l.champion.auc))
        );
        assert_eq!(
            s.value("auc_delta_ci_low", &th),
            Some((auc.ci_low.unwrap(), None))
        );
        assert_eq!(
            s.value("agreement@0.5", &th),
            Some((s.agreement[0].agreement.unwrap(), None))
        );
        assert_eq!(
            s.value("accuracy_delta", &th).unwrap().0,
            l.deltas[3].delta.unwrap()
        );
        assert_eq!(s.value("agreement@0.7", &th), None);
        assert!(s.value("jaccard_top_5pct", &th).is_some());
    }
}
