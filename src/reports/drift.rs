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
    /// Categories of this run the reference never saw (categorical columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_categories: Option<u64>,
    /// `pass`, `warn` or `fail` against the job's thresholds.
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
            .collect()
    }

    pub fn update(&mut self, df: &DataFrame) -> PolarsResult<()> {
        for (i, c) in self.reference.columns.iter().enumerate() {
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

    /// PSI per column, judged against `warn` and `fail` thresholds.
    pub fn results(&self, warn: f64, fail: f64) -> Vec<ColumnDrift> {
        self.reference
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (r, cur, new) = match c {
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
                        let mut r: Vec<u64> = categories.values().copied().collect();
                        let mut cur: Vec<u64> = categories
                            .keys()
                            .map(|k| self.categories[i].get(k).copied().unwrap_or(0))
                            .collect();
                        let other: u64 = self.categories[i]
                            .iter()
                            .filter(|(k, _)| !categories.contains_key(*k))
                            .map(|(_, v)| v)
                            .sum();
                        let new = self.categories[i]
                            .keys()
                            .filter(|k| !categories.contains_key(*k))
                            .count() as u64;
                        r.push(0);
                        cur.push(other);
                        r.push(*nulls);
                        cur.push(self.nulls[i]);
                        (r, cur, Some(new))
                    }
                };
                let p = psi(&r, &cur);
                ColumnDrift {
                    column: c.name().to_string(),
                    psi: p,
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
