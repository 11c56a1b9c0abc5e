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
//! NaN counts as null. Given the edges and counts, the index is exact (tests compare
//! it with numpy on the same rows within 1e-9).

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// Layout version of `reference.profile.json`.
pub const PROFILE_VERSION: u32 = 1;

/// Shares below this are raised to it in the PSI formula.
pub const EPSILON: f64 = 1e-4;

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
}

impl ReferenceProfile {
    /// Profiles `columns` of `lf` with `bins` quantile bins per numeric column.
    pub fn build(lf: LazyFrame, columns: &[String], bins: usize, data: &str) -> PolarsResult<Self> {
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
                let mut edges: Vec<f64> = Vec::with_capacity(bins.saturating_sub(1));
                for i in 1..bins {
                    if let Some(q) =
                        clean.quantile(i as f64 / bins as f64, QuantileMethod::Linear)?
                        && edges.last().is_none_or(|&l| q > l)
                    {
                        edges.push(q);
                    }
                }
                let mut counts = vec![0u64; edges.len() + 1];
                let nulls = count_numeric(&clean, &edges, &mut counts);
                out.push(ColumnRef::Numeric {
                    name: c.clone(),
                    edges,
                    counts,
                    nulls,
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
        })
    }
}

/// `x` with NaN as null.
fn nan_as_null(x: &Float64Chunked) -> Float64Chunked {
    x.iter().map(|v| v.filter(|x| !x.is_nan())).collect()
}

/// Counts non-null values of `x` into `counts` by `edges`; returns the nulls (and NaN).
fn count_numeric(x: &Float64Chunked, edges: &[f64], counts: &mut [u64]) -> u64 {
    let mut nulls = 0;
    for v in x.iter() {
        match v {
            Some(v) if !v.is_nan() => counts[edges.partition_point(|&e| e <= v)] += 1,
            _ => nulls += 1,
        }
    }
    nulls
}

fn count_categories(s: &Series, into: &mut BTreeMap<String, u64>) -> PolarsResult<u64> {
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
#[derive(Debug, Clone)]
pub struct DriftCounter {
    reference: ReferenceProfile,
    /// Per column: bin counts (numeric) or category counts.
    numeric: Vec<Vec<u64>>,
    categories: Vec<BTreeMap<String, u64>>,
    nulls: Vec<u64>,
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
    /// `pass`, `warn` or `fail` against the job's thresholds; `no_data` when the run
    /// read no rows (the statistics are then null).
    pub status: &'static str,
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
        DriftCounter {
            reference,
            numeric,
            categories: vec![BTreeMap::new(); n],
            nulls: vec![0; n],
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
                ColumnRef::Numeric { edges, .. } => {
                    let x = s.cast(&DataType::Float64)?;
                    self.nulls[i] += count_numeric(x.f64()?, edges, &mut self.numeric[i]);
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
                let seen = &self.categories[i];
                let mut r: Vec<u64> = categories.values().copied().collect();
                let mut cur: Vec<u64> = categories
                    .keys()
                    .map(|k| seen.get(k).copied().unwrap_or(0))
                    .collect();
                let unseen = seen.iter().filter(|(k, _)| !categories.contains_key(*k));
                let (mut new, mut other) = (0u64, 0u64);
                for (_, v) in unseen {
                    new += 1;
                    other += v;
                }
                r.extend([0, *nulls]);
                cur.extend([other, self.nulls[i]]);
                (r, cur, Some(new))
            }
        }
    }

    /// PSI per column, judged against `warn` and `fail` thresholds.
    pub fn results(&self, warn: f64, fail: f64) -> Vec<ColumnDrift> {
        self.reference
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (r, cur, new) = self.table(i);
                if cur.iter().sum::<u64>() == 0 {
                    // No rows: there is no distribution to compare.
                    return ColumnDrift {
                        column: c.name().to_string(),
                        psi: f64::NAN,
                        js_distance: f64::NAN,
                        chi2: None,
                        new_categories: new,
                        status: "no_data",
                    };
                }
                let p = psi(&r, &cur);
                let chi2 = new.map(|_| chi2_contingency(&r, &cur));
                ColumnDrift {
                    column: c.name().to_string(),
                    psi: p,
                    js_distance: js_distance(&r, &cur),
                    chi2,
                    new_categories: new,
                    status: if p >= fail {
                        "fail"
                    } else if p >= warn {
                        "warn"
                    } else {
                        "pass"
                    },
                }
            })
            .collect()
    }
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

/// PSI of two count vectors over the same bins (shares floored at [`EPSILON`]).
pub fn psi(reference: &[u64], current: &[u64]) -> f64 {
    let rt = reference.iter().sum::<u64>().max(1) as f64;
    let ct = current.iter().sum::<u64>().max(1) as f64;
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| {
            let r = (r as f64 / rt).max(EPSILON);
            let c = (c as f64 / ct).max(EPSILON);
            (c - r) * (c / r).ln()
        })
        .sum()
}

/// Jensen-Shannon distance of two count vectors over the same bins.
pub fn js_distance(p: &[u64], q: &[u64]) -> f64 {
    let ps = p.iter().sum::<u64>() as f64;
    let qs = q.iter().sum::<u64>() as f64;
    if ps == 0.0 || qs == 0.0 {
        return f64::NAN;
    }
    let rel = |x: f64, y: f64| if x > 0.0 { x * (x / y).ln() } else { 0.0 };
    let mut js = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a as f64 / ps, b as f64 / qs);
        let m = (a + b) / 2.0;
        js += rel(a, m) + rel(b, m);
    }
    (js / 2.0).max(0.0).sqrt()
}

/// A chi-square test result.
#[derive(Debug, Clone, Serialize)]
pub struct Chi2 {
    pub statistic: f64,
    pub p_value: f64,
    pub dof: u64,
}

/// Pearson's chi-square test of independence on the 2 × k table (`a`, `b`), with
/// Yates' continuity correction when there is one degree of freedom, as scipy's
/// `chi2_contingency(..., correction=True)`. Columns empty in both rows are dropped.
pub fn chi2_contingency(a: &[u64], b: &[u64]) -> Chi2 {
    let cols: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter(|(x, y)| **x + **y > 0)
        .map(|(&x, &y)| (x as f64, y as f64))
        .collect();
    let dof = cols.len().saturating_sub(1) as u64;
    let ra: f64 = cols.iter().map(|c| c.0).sum();
    let rb: f64 = cols.iter().map(|c| c.1).sum();
    let n = ra + rb;
    if dof == 0 || ra == 0.0 || rb == 0.0 {
        return Chi2 {
            statistic: 0.0,
            p_value: 1.0,
            dof,
        };
    }
    let mut stat = 0.0;
    for &(x, y) in &cols {
        let t = x + y;
        for (o, e) in [(x, ra * t / n), (y, rb * t / n)] {
            let o = if dof == 1 {
                // scipy: observed + 0.5 * sign(expected - observed), capped at expected.
                let d = e - o;
                o + (0.5f64).min(d.abs()) * d.signum()
            } else {
                o
            };
            stat += (o - e) * (o - e) / e;
        }
    }
    Chi2 {
        statistic: stat,
        p_value: gamma_q(dof as f64 / 2.0, stat / 2.0),
        dof,
    }
}

/// The regularized upper incomplete gamma function Q(a, x) (the chi-square survival
/// function is Q(dof/2, x/2)): a series for x < a + 1, Lentz's continued fraction
/// otherwise (Numerical Recipes 6.2), to about 1e-15 relative.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let ln_pre = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut sum, mut term, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        1.0 - sum * ln_pre.exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        ln_pre.exp() * h
    }
}

/// ln Γ(a) for a > 0 (Lanczos, g = 7, n = 9; about 1e-15 relative).
fn ln_gamma(a: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if a < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * a).sin()).ln() - ln_gamma(1.0 - a);
    }
    let a = a - 1.0;
    let mut x = G[0];
    for (i, g) in G.iter().enumerate().skip(1) {
        x += g / (a + i as f64);
    }
    let t = a + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (a + 0.5) * t.ln() - t + x.ln()
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
            let got = gamma_q(k / 2.0, x / 2.0);
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
            }],
            scores: vec![],
        };
        let mut d = DriftCounter::new(reference);
        let empty = DataFrame::new(0, vec![Column::new("x".into(), Vec::<f64>::new())]).unwrap();
        d.update(&empty, false).unwrap();
        let r = &d.results(0.1, 0.25)[0];
        assert_eq!(r.status, "no_data");
        assert!(r.psi.is_nan());
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
        let nulls = count_numeric(&x, &edges, &mut counts);
        assert_eq!(counts, [1, 1, 1, 1]);
        assert_eq!(nulls, 2);
    }
}
