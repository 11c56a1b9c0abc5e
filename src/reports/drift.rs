//! Reference profiles and drift (Population Stability Index).
//!
//! `scorch profile` reads the training data once and writes a reference profile
//! into the model bundle: per input column, the bin edges and bin counts (numeric
//! columns: edges at the reference's quantiles `1/B … (B-1)/B`, linear
//! interpolation, duplicates dropped; categorical columns: the categories seen) and
//! the null count. A run counts its own values into the same bins, chunk by chunk
//! (counts merge exactly), and computes for each column
//!
//! `PSI = Σ_i (c_i − r_i) · ln(c_i / r_i)`
//!
//! over the bins plus a null bin (and, for categorical columns, an "other" bin for
//! categories the reference never saw), where `r_i` and `c_i` are the reference's
//! and the run's shares of rows in bin `i`, each floored at `epsilon` (1e-4) so an
//! empty bin does not make the index infinite. A numeric value `x` falls in bin
//! `k` = the number of edges `<= x` (numpy's `searchsorted(edges, x, side="right")`);
//! NaN, +inf and −inf count as null (in the reference profile too: its edges,
//! sketch, mean and standard deviation are always finite). Given the edges and counts, the index is exact (tests compare
//! it with numpy on the same rows within 1e-9).
//!
//! For the Kolmogorov–Smirnov statistic and the Wasserstein-1 distance the profile
//! also keeps a finer **quantile sketch** of each numeric column (`--sketch`, 1000 by
//! default): the reference values at ranks `⌊k(n−1)/Q⌋`, k = 0..=Q, of its sorted
//! non-null values (duplicates dropped; so the minimum and maximum are points), with
//! the reference rows in each interval `(p_{k−1}, p_k]` (and how many of them are
//! below `p_k`), and the exact mean and
//! standard deviation. A run counts its values into the same intervals (plus the
//! sums of distances below the minimum and above the maximum), so both CDFs are
//! known exactly at every point. From them:
//!
//! - `ks_statistic` = the largest `|F − G|` at the points and just below them (the
//!   sketch also counts, per interval, the rows strictly below its right point), a
//!   lower bound of the true statistic;
//!   between two points each CDF can rise by at most its interval's mass, so the
//!   true statistic lies in `[ks_statistic, ks_statistic + ks_error]`, with `ks_error`
//!   computed from the counts and reported. `ks_p_value` is scipy's `ks_2samp`
//!   p-value for that statistic and the two sample sizes.
//! - `wasserstein` = `∫ |F − G| dx / max(σ_ref, 0.001)` (Evidently's normalisation),
//!   exact outside the reference's range and, inside each interval, with both CDFs
//!   taken as linear; `wasserstein_error` bounds the difference from the exact value
//!   (the integral of the largest and smallest differences the counts allow).
//!
//! `scorch drift` computes all statistics exactly from two full datasets instead
//! (`drift_exact`), equal to scipy's within 1e-9.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::stats::divergence::{Chi2, chi2_contingency, js_distance, psi};
use crate::stats::mean_std;

/// Layout version of `reference.profile.json` (2: numeric columns carry a `sketch`).
pub const PROFILE_VERSION: u32 = 4;

/// Default points of the quantile sketch per numeric column.
pub const DEFAULT_SKETCH: usize = 1000;

/// A quantile sketch of a numeric reference column (see the module docs).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Sketch {
    /// Reference values at evenly spaced ranks, increasing, first = min, last = max.
    pub points: Vec<f64>,
    /// Reference rows `<= points[0]`, then in each `(points[k-1], points[k]]`.
    pub counts: Vec<u64>,
    /// Of those, the rows strictly below `points[k]` (so the CDF just below each
    /// point is known too: exact statistics for discrete data).
    pub inside: Vec<u64>,
    /// Mean of the non-null values.
    pub mean: f64,
    /// Population standard deviation (ddof 0) of the non-null values.
    pub std: f64,
}

impl Sketch {
    /// The sketch of sorted, NaN-free values with `q` intervals.
    pub fn from_sorted(x: &[f64], q: usize) -> Option<Sketch> {
        if x.is_empty() {
            return None;
        }
        let n = x.len();
        let mut points: Vec<f64> = Vec::with_capacity(q + 1);
        for k in 0..=q {
            let v = x[((k as u128 * (n as u128 - 1)) / q as u128) as usize];
            if points.last().is_none_or(|&l| v > l) {
                points.push(v);
            }
        }
        let mut counts = vec![0u64; points.len()];
        let mut inside = vec![0u64; points.len()];
        let mut j = 0;
        for &v in x {
            while points[j] < v {
                j += 1;
            }
            counts[j] += 1;
            if v < points[j] {
                inside[j] += 1;
            }
        }
        let (mean, std) = mean_std(x);
        Some(Sketch {
            points,
            counts,
            inside,
            mean,
            std,
        })
    }
}

/// A run's values of one numeric column in the cells of a reference [`Sketch`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SketchCounts {
    /// Rows `<= points[0]`, in each `(points[k-1], points[k]]`, then `> points[last]`.
    pub counts: Vec<u64>,
    /// Of those, the rows strictly below `points[k]` (`k < points.len()`).
    pub inside: Vec<u64>,
    /// `Σ (points[0] − x)` over values below the reference's minimum.
    pub below: f64,
    /// `Σ (x − points[last])` over values above the reference's maximum.
    pub above: f64,
}

impl SketchCounts {
    fn new(sketch: &Sketch) -> Self {
        SketchCounts {
            counts: vec![0; sketch.points.len() + 1],
            inside: vec![0; sketch.points.len()],
            below: 0.0,
            above: 0.0,
        }
    }

    fn add(&mut self, points: &[f64], v: f64) {
        let k = points.partition_point(|&p| p < v);
        self.counts[k] += 1;
        if k < points.len() && v < points[k] {
            self.inside[k] += 1;
        }
        if v < points[0] {
            self.below += points[0] - v;
        } else if k == points.len() {
            self.above += v - points[k - 1];
        }
    }

    /// Adds another run's (or shard's) counts of the same sketch.
    pub fn merge(&mut self, other: &SketchCounts) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        for (a, b) in self.inside.iter_mut().zip(&other.inside) {
            *a += b;
        }
        self.below += other.below;
        self.above += other.above;
    }
}

/// KS and Wasserstein estimates from a sketch and a run's counts in it, with the
/// bounds of their errors (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SketchDrift {
    pub ks: crate::stats::ks::Ks,
    pub ks_error: f64,
    pub wasserstein: f64,
    pub wasserstein_error: f64,
}

/// Compares a run's counts with the reference sketch; `None` when either side is empty.
pub fn sketch_drift(reference: &Sketch, run: &SketchCounts) -> Option<SketchDrift> {
    let rn: u64 = reference.counts.iter().sum();
    let cn: u64 = run.counts.iter().sum();
    if rn == 0 || cn == 0 {
        return None;
    }
    let (rnf, cnf) = (rn as f64, cn as f64);
    let pts = &reference.points;
    // CDFs at each point (f, g) and just below it (fm, gm).
    let n = pts.len();
    let (mut f, mut g) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut fm, mut gm) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut fr, mut gr) = (0u64, 0u64);
    for k in 0..n {
        fm.push((fr + reference.inside[k]) as f64 / rnf);
        gm.push((gr + run.inside[k]) as f64 / cnf);
        fr += reference.counts[k];
        gr += run.counts[k];
        f.push(fr as f64 / rnf);
        g.push(gr as f64 / cnf);
    }
    let mut d_lo: f64 = 0.0;
    for k in 0..n {
        d_lo = d_lo.max((f[k] - g[k]).abs()).max((fm[k] - gm[k]).abs());
    }
    // Upper bound: inside (p_{k-1}, p_k) each CDF stays between its value at p_{k-1}
    // and just below p_k. Below the reference's minimum F = 0; above its maximum F = 1.
    let mut d_hi = d_lo.max(gm[0]).max(1.0 - g[n - 1]);
    let mut w = (run.below + run.above) / cnf;
    let mut w_err = 0.0;
    for k in 1..n {
        let (f0, f1, g0, g1) = (f[k - 1], fm[k], g[k - 1], gm[k]);
        let hi = (f1 - g0).max(g1 - f0).max(0.0);
        let lo = (f0 - g1).max(g0 - f1).max(0.0);
        d_hi = d_hi.max(hi);
        let width = pts[k] - pts[k - 1];
        // ∫_0^1 |a + b t| dt with both CDFs linear in the interval.
        let a = f0 - g0;
        let b = (f1 - g1) - a;
        let mid = if a * (a + b) >= 0.0 {
            (a + b / 2.0).abs()
        } else {
            (a * a + (a + b) * (a + b)) / (2.0 * b.abs())
        };
        w += width * mid;
        w_err += width * (hi - mid).max(mid - lo).max(0.0);
    }
    let norm = reference.std.max(0.001);
    Some(SketchDrift {
        ks: crate::stats::ks::ks_from_statistic(d_lo, rn, cn),
        ks_error: d_hi - d_lo,
        wasserstein: w / norm,
        wasserstein_error: w_err / norm,
    })
}

/// The reference distribution of one column.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnRef {
    Numeric {
        name: String,
        /// Inner bin edges, increasing; `edges.len() + 1` bins.
        edges: Vec<f64>,
        counts: Vec<u64>,
        nulls: u64,
        /// The finer sketch for KS and Wasserstein (profiles from scorch 0.1 lack it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sketch: Option<Sketch>,
    },
    Categorical {
        name: String,
        /// Category → rows.
        categories: BTreeMap<String, u64>,
        nulls: u64,
    },
}

impl ColumnRef {
    pub fn name(&self) -> &str {
        match self {
            ColumnRef::Numeric { name, .. } | ColumnRef::Categorical { name, .. } => name,
        }
    }
}

/// A reference profile (what the model was trained on).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReferenceProfile {
    pub profile_version: u32,
    /// Rows profiled.
    pub rows: u64,
    /// What was profiled (path or glob).
    pub data: String,
    /// Quantile bins per numeric column.
    pub bins: usize,
    pub columns: Vec<ColumnRef>,
    /// Which of `columns` are the model's score columns (the model run on the
    /// profiled data), as opposed to input columns.
    #[serde(default)]
    pub scores: Vec<String>,
    /// One score column's calibration and the performance realized on labelled
    /// rows (`scorch profile --labels`), for performance estimated without labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performance: Option<super::performance::ReferencePerformance>,
    /// The PCA of the model's standardized feature matrix on the profiled rows, for
    /// multivariate drift (absent when the features cannot give one: the profile
    /// command says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<super::multivariate::ReferenceReconstruction>,
}

impl ReferenceProfile {
    /// Profiles `columns` of `lf` with `bins` quantile bins and a `sketch`-point
    /// quantile sketch per numeric column.
    pub fn build(
        lf: LazyFrame,
        columns: &[String],
        bins: usize,
        sketch: usize,
        data: &str,
    ) -> PolarsResult<Self> {
        let df = lf
            .select(columns.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
            .collect()?;
        let rows = df.height() as u64;
        let mut out = Vec::with_capacity(columns.len());
        for c in columns {
            let s = df.column(c.as_str())?.as_materialized_series().clone();
            if s.dtype().is_primitive_numeric() {
                let x = s.cast(&DataType::Float64)?;
                let x = x.f64()?;
                let clean = nan_as_null(x);
                let mut values: Vec<f64> = clean.iter().flatten().collect();
                crate::stats::ks::radix_sort(&mut values);
                let edges = crate::stats::divergence::quantile_edges(&values, bins);
                let mut counts = vec![0u64; edges.len() + 1];
                let nulls = count_numeric(&clean, &edges, &mut counts, None);
                out.push(ColumnRef::Numeric {
                    name: c.clone(),
                    edges,
                    counts,
                    nulls,
                    sketch: Sketch::from_sorted(&values, sketch),
                });
            } else {
                let mut categories = BTreeMap::new();
                let nulls = count_categories(&s, &mut categories)?;
                out.push(ColumnRef::Categorical {
                    name: c.clone(),
                    categories,
                    nulls,
                });
            }
        }
        Ok(ReferenceProfile {
            profile_version: PROFILE_VERSION,
            rows,
            data: data.to_string(),
            bins,
            columns: out,
            scores: vec![],
            performance: None,
            reconstruction: None,
        })
    }
}

/// `x` with NaN and ±inf as null.
fn nan_as_null(x: &Float64Chunked) -> Float64Chunked {
    x.iter().map(|v| v.filter(|x| x.is_finite())).collect()
}

/// Counts non-null values of `x` into `counts` by `edges` (and into the sketch's
/// cells, when given); returns the nulls (and NaN, ±inf).
fn count_numeric(
    x: &Float64Chunked,
    edges: &[f64],
    counts: &mut [u64],
    mut fine: Option<(&Sketch, &mut SketchCounts)>,
) -> u64 {
    let mut nulls = 0;
    for v in x.iter() {
        match v {
            Some(v) if v.is_finite() => {
                counts[edges.partition_point(|&e| e <= v)] += 1;
                if let Some((s, c)) = &mut fine {
                    c.add(&s.points, v);
                }
            }
            _ => nulls += 1,
        }
    }
    nulls
}

/// The reference's and a run's counts over the reference's categories, then an
/// "other" bin (categories the reference never saw), then nulls; and how many
/// categories are new.
pub(crate) fn category_table(
    reference: &BTreeMap<String, u64>,
    reference_nulls: u64,
    run: &BTreeMap<String, u64>,
    run_nulls: u64,
) -> (Vec<u64>, Vec<u64>, u64) {
    let mut r: Vec<u64> = reference.values().copied().collect();
    let mut cur: Vec<u64> = reference
        .keys()
        .map(|k| run.get(k).copied().unwrap_or(0))
        .collect();
    let (mut new, mut other) = (0u64, 0u64);
    for (_, v) in run.iter().filter(|(k, _)| !reference.contains_key(*k)) {
        new += 1;
        other += v;
    }
    r.extend([0, reference_nulls]);
    cur.extend([other, run_nulls]);
    (r, cur, new)
}

/// Counts the values of `s` (as strings) into `into`; returns the nulls.
pub(crate) fn count_categories(s: &Series, into: &mut BTreeMap<String, u64>) -> PolarsResult<u64> {
    let s = s.cast(&DataType::String)?;
    let mut nulls = 0;
    for v in s.str()?.iter() {
        match v {
            Some(v) => *into.entry(v.to_string()).or_insert(0) += 1,
            None => nulls += 1,
        }
    }
    Ok(nulls)
}

/// A run's counts in the reference's bins.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftCounter {
    reference: ReferenceProfile,
    /// Per column: bin counts (numeric) or category counts.
    numeric: Vec<Vec<u64>>,
    categories: Vec<BTreeMap<String, u64>>,
    nulls: Vec<u64>,
    /// Per column: counts in the reference sketch (numeric columns that have one).
    fine: Vec<Option<SketchCounts>>,
}

/// The drift of one column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnDrift {
    pub column: String,
    pub psi: f64,
    /// Jensen-Shannon distance (natural log) between the binned distributions, as
    /// `scipy.spatial.distance.jensenshannon` over the same bins (no flooring).
    pub js_distance: f64,
    /// Chi-square test of the reference and run category counts (categorical
    /// columns), as `scipy.stats.chi2_contingency` on the 2 × k table of the
    /// categories, the "other" bin and nulls, columns empty on both sides dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2: Option<Chi2>,
    /// Categories of this run the reference never saw (categorical columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_categories: Option<u64>,
    /// Two-sample Kolmogorov–Smirnov statistic from the reference sketch (numeric
    /// columns); the exact statistic lies in `[ks_statistic, ks_statistic + ks_error]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_statistic: Option<f64>,
    /// scipy `ks_2samp`'s p-value for `ks_statistic` and the two sample sizes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_p_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_error: Option<f64>,
    /// Wasserstein-1 distance divided by `max(reference std, 0.001)`; within
    /// `wasserstein_error` of the exact value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein_error: Option<f64>,
    /// `pass`, `warn` or `fail` against the job's thresholds (the worst verdict over
    /// the judged statistics); `no_data` when the run read no rows (the statistics
    /// are then null).
    pub status: &'static str,
    /// The thresholds reached, e.g. `psi 0.31 >= 0.25`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl DriftCounter {
    pub fn new(reference: ReferenceProfile) -> Self {
        let n = reference.columns.len();
        let numeric = reference
            .columns
            .iter()
            .map(|c| match c {
                ColumnRef::Numeric { counts, .. } => vec![0; counts.len()],
                ColumnRef::Categorical { .. } => vec![],
            })
            .collect();
        let fine = reference
            .columns
            .iter()
            .map(|c| match c {
                ColumnRef::Numeric {
                    sketch: Some(s), ..
                } => Some(SketchCounts::new(s)),
                _ => None,
            })
            .collect();
        DriftCounter {
            reference,
            numeric,
            categories: vec![BTreeMap::new(); n],
            nulls: vec![0; n],
            fine,
        }
    }

    /// The input columns the counter reads.
    pub fn columns(&self) -> Vec<String> {
        self.reference
            .columns
            .iter()
            .map(|c| c.name().to_string())
            .filter(|n| !self.reference.scores.contains(n))
            .collect()
    }

    /// Counts a chunk of input rows (`scores: false`) or of scores (`scores: true`).
    pub fn update(&mut self, df: &DataFrame, scores: bool) -> PolarsResult<()> {
        for (i, c) in self.reference.columns.iter().enumerate() {
            if self.reference.scores.iter().any(|s| s == c.name()) != scores {
                continue;
            }
            let s = df.column(c.name())?.as_materialized_series();
            match c {
                ColumnRef::Numeric { edges, sketch, .. } => {
                    let x = s.cast(&DataType::Float64)?;
                    let fine = sketch.as_ref().zip(self.fine[i].as_mut());
                    self.nulls[i] += count_numeric(x.f64()?, edges, &mut self.numeric[i], fine);
                }
                ColumnRef::Categorical { .. } => {
                    self.nulls[i] += count_categories(s, &mut self.categories[i])?;
                }
            }
        }
        Ok(())
    }

    /// Column `i`'s reference and run counts over the same bins — the value bins
    /// (numeric) or the reference's categories then "other" (categorical), then
    /// nulls — and, for categorical columns, how many categories are new.
    fn table(&self, i: usize) -> (Vec<u64>, Vec<u64>, Option<u64>) {
        match &self.reference.columns[i] {
            ColumnRef::Numeric { counts, nulls, .. } => {
                let mut r = counts.clone();
                r.push(*nulls);
                let mut cur = self.numeric[i].clone();
                cur.push(self.nulls[i]);
                (r, cur, None)
            }
            ColumnRef::Categorical {
                categories, nulls, ..
            } => {
                let (r, cur, new) =
                    category_table(categories, *nulls, &self.categories[i], self.nulls[i]);
                (r, cur, Some(new))
            }
        }
    }

    /// Adds the counts of another counter over the same reference (another shard of
    /// the same run); exact.
    pub fn merge(&mut self, other: &DriftCounter) {
        for (a, b) in self.numeric.iter_mut().zip(&other.numeric) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (a, b) in self.categories.iter_mut().zip(&other.categories) {
            for (k, v) in b {
                *a.entry(k.clone()).or_insert(0) += v;
            }
        }
        for (a, b) in self.nulls.iter_mut().zip(&other.nulls) {
            *a += b;
        }
        for (a, b) in self.fine.iter_mut().zip(&other.fine) {
            if let (Some(a), Some(b)) = (a, b) {
                a.merge(b);
            }
        }
    }

    /// [`merge`](Self::merge), after checking that both count against the same
    /// reference profile.
    pub fn merge_checked(&mut self, other: &DriftCounter) -> Result<(), String> {
        if self.reference != other.reference {
            return Err(
                "the drift statistics count against different reference profiles \
                        (another model version?)"
                    .into(),
            );
        }
        self.merge(other);
        Ok(())
    }

    /// The drift of every column, judged against the job's thresholds.
    pub fn results(&self, spec: &crate::spec::job::DriftSpec) -> Vec<ColumnDrift> {
        self.reference
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (r, cur, new) = self.table(i);
                let mut d = ColumnDrift {
                    column: c.name().to_string(),
                    psi: f64::NAN,
                    js_distance: f64::NAN,
                    chi2: None,
                    new_categories: new,
                    ks_statistic: None,
                    ks_p_value: None,
                    ks_error: None,
                    wasserstein: None,
                    wasserstein_error: None,
                    status: "no_data",
                    reasons: vec![],
                };
                if cur.iter().sum::<u64>() == 0 {
                    // No rows: there is no distribution to compare.
                    return d;
                }
                d.psi = psi(&r, &cur);
                d.js_distance = js_distance(&r, &cur);
                d.chi2 = new.map(|_| chi2_contingency(&r, &cur));
                if let (
                    ColumnRef::Numeric {
                        sketch: Some(s), ..
                    },
                    Some(counts),
                ) = (c, &self.fine[i])
                    && let Some(sd) = sketch_drift(s, counts)
                {
                    let finite = |v: f64| Some(v).filter(|v| v.is_finite());
                    d.ks_statistic = finite(sd.ks.statistic);
                    d.ks_p_value = finite(sd.ks.p_value);
                    d.ks_error = finite(sd.ks_error);
                    // Infinite where the reference spans more than f64 (−MAX … MAX).
                    d.wasserstein = finite(sd.wasserstein);
                    d.wasserstein_error = finite(sd.wasserstein_error);
                }
                judge(&mut d, spec);
                d
            })
            .collect()
    }
}

/// Sets `d.status` and `d.reasons` from the thresholds in `spec`.
pub fn judge(d: &mut ColumnDrift, spec: &crate::spec::job::DriftSpec) {
    let mut status = "pass";
    let mut check = |name: &str, value: Option<f64>, warn: Option<f64>, fail: Option<f64>| {
        let Some(v) = value.filter(|v| !v.is_nan()) else {
            return;
        };
        if let Some(t) = fail.filter(|&t| v >= t) {
            status = "fail";
            d.reasons.push(format!("{name} {v:.3} >= {t}"));
        } else if let Some(t) = warn.filter(|&t| v >= t) {
            if status == "pass" {
                status = "warn";
            }
            d.reasons.push(format!("{name} {v:.3} >= {t}"));
        }
    };
    check("psi", Some(d.psi), Some(spec.psi_warn), Some(spec.psi_fail));
    check("ks", d.ks_statistic, spec.ks_warn, spec.ks_fail);
    check(
        "wasserstein",
        d.wasserstein,
        spec.wasserstein_warn,
        spec.wasserstein_fail,
    );
    check("js", Some(d.js_distance), spec.js_warn, spec.js_fail);
    d.status = status;
}

/// Reference and run shares per bin of one column, for charts.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub column: String,
    pub labels: Vec<String>,
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
}

impl DriftCounter {
    /// Per column, the shares of rows per bin (null bin last), reference and run.
    pub fn histograms(&self) -> Vec<Histogram> {
        let shares = |v: &[u64]| {
            let t = v.iter().sum::<u64>().max(1) as f64;
            v.iter().map(|&x| x as f64 / t).collect::<Vec<f64>>()
        };
        // Short labels: the chart has little room per bin.
        let fmt = |x: f64| {
            if x.abs() >= 1e5 || (x != 0.0 && x.abs() < 1e-2) {
                format!("{x:.1e}")
            } else if x.abs() >= 100.0 {
                format!("{x:.0}")
            } else if x.abs() >= 1.0 {
                format!("{x:.1}")
            } else {
                format!("{x:.2}")
            }
        };
        self.reference
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut labels: Vec<String> = match c {
                    ColumnRef::Numeric { edges, .. } => (0..=edges.len())
                        .map(
                            |k| match (k.checked_sub(1).map(|j| edges[j]), edges.get(k)) {
                                (None, Some(hi)) => format!("< {}", fmt(*hi)),
                                (Some(lo), Some(_)) => format!("{}+", fmt(lo)),
                                (Some(lo), None) => format!(">= {}", fmt(lo)),
                                (None, None) => "all".to_string(),
                            },
                        )
                        .collect(),
                    ColumnRef::Categorical { categories, .. } => categories
                        .keys()
                        .cloned()
                        .chain(std::iter::once("other".to_string()))
                        .collect(),
                };
                labels.push("null".into());
                let (r, cur, _) = self.table(i);
                Histogram {
                    column: c.name().to_string(),
                    labels,
                    reference: shares(&r),
                    current: shares(&cur),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_equal_shares_and_grows_with_shift() {
        assert_eq!(psi(&[10, 20, 30], &[1, 2, 3]), 0.0);
        let small = psi(&[100, 100, 100], &[90, 100, 110]);
        let large = psi(&[100, 100, 100], &[10, 100, 190]);
        assert!(small > 0.0 && large > small);
        // An empty bin is floored, not infinite.
        assert!(psi(&[100, 0], &[50, 50]).is_finite());
    }

    #[test]
    fn chi_square_survival_matches_known_values() {
        // scipy.stats.chi2.sf(x, k) (scipy 1.17.1) for a few (x, k).
        for (x, k, want) in [
            (3.841458820694124, 1.0, 0.04999999999999989),
            (18.307038053275146, 10.0, 0.05000000000000005),
            (0.5, 3.0, 0.9188914116546758),
            (250.0, 4.0, 6.509689997375721e-53),
        ] {
            let got = crate::stats::divergence::gamma_q(k / 2.0, x / 2.0);
            assert!(
                (got / want - 1.0).abs() < 1e-9,
                "x={x} k={k}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn an_empty_run_has_no_drift_verdict() {
        let reference = ReferenceProfile {
            profile_version: PROFILE_VERSION,
            rows: 3,
            data: "t".into(),
            bins: 2,
            columns: vec![ColumnRef::Numeric {
                name: "x".into(),
                edges: vec![1.0],
                counts: vec![1, 2],
                nulls: 0,
                sketch: None,
            }],
            scores: vec![],
            performance: None,
            reconstruction: None,
        };
        let mut d = DriftCounter::new(reference);
        let empty = DataFrame::new(0, vec![Column::new("x".into(), Vec::<f64>::new())]).unwrap();
        d.update(&empty, false).unwrap();
        let r = &d.results(&Default::default())[0];
        assert_eq!(r.status, "no_data");
        assert!(r.psi.is_nan());
    }

    #[test]
    fn shard_counters_merge_to_the_whole_runs_results() {
        let reference: Vec<f64> = (0..5000).map(|i| (i as f64 * 0.7).sin() * 3.0).collect();
        let current: Vec<Option<f64>> = (0..4000)
            .map(|i| (i % 17 != 0).then(|| (i as f64 * 0.3).cos() * 3.5 + 0.2))
            .collect();
        let df = |v: Vec<Option<f64>>| {
            DataFrame::new(v.len(), vec![Column::new("x".into(), v)]).unwrap()
        };
        let profile = ReferenceProfile::build(
            df(reference.iter().map(|&x| Some(x)).collect()).lazy(),
            &["x".to_string()],
            10,
            200,
            "t",
        )
        .unwrap();
        let mut whole = DriftCounter::new(profile.clone());
        whole.update(&df(current.clone()), false).unwrap();
        let mut a = DriftCounter::new(profile.clone());
        let mut b = DriftCounter::new(profile);
        a.update(&df(current[..1234].to_vec()), false).unwrap();
        b.update(&df(current[1234..].to_vec()), false).unwrap();
        a.merge(&b);
        let spec = crate::spec::job::DriftSpec::default();
        let (w, m) = (&whole.results(&spec)[0], &a.results(&spec)[0]);
        assert_eq!(w.psi, m.psi);
        assert_eq!(w.ks_statistic, m.ks_statistic);
        assert_eq!(w.ks_p_value, m.ks_p_value);
        assert_eq!(w.ks_error, m.ks_error);
        assert!((w.wasserstein.unwrap() - m.wasserstein.unwrap()).abs() < 1e-12);
        // The exact KS statistic lies within the reported bound.
        let mut r = reference.clone();
        let mut c: Vec<f64> = current.iter().flatten().copied().collect();
        r.sort_by(f64::total_cmp);
        c.sort_by(f64::total_cmp);
        let exact = crate::stats::ks::ks_statistic(&r, &c);
        let (lo, err) = (w.ks_statistic.unwrap(), w.ks_error.unwrap());
        assert!(
            lo <= exact + 1e-12 && exact <= lo + err + 1e-12,
            "{exact} vs {lo}+{err}"
        );
        let ew = crate::stats::ks::wasserstein(&r, &c).unwrap() / mean_std(&r).1.max(0.001);
        assert!((ew - w.wasserstein.unwrap()).abs() <= w.wasserstein_error.unwrap() + 1e-12);
    }

    #[test]
    fn bins_follow_searchsorted_right() {
        let edges = [1.0, 2.0, 3.0];
        let x: Float64Chunked = [
            Some(0.5),
            Some(1.0),
            Some(2.5),
            Some(3.0),
            None,
            Some(f64::NAN),
        ]
        .into_iter()
        .collect();
        let mut counts = vec![0; 4];
        let nulls = count_numeric(&x, &edges, &mut counts, None);
        assert_eq!(counts, [1, 1, 1, 1]);
        assert_eq!(nulls, 2);
    }
}
