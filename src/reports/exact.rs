//! Drift between two full datasets (`scorch drift`), every statistic computed
//! exactly from all values rather than from a reference profile:
//!
//! - numeric columns: two-sample KS statistic and p-value (`scipy.stats.ks_2samp`),
//!   Wasserstein-1 (`scipy.stats.wasserstein_distance`, and divided by
//!   `max(reference std, 0.001)`), PSI and Jensen–Shannon distance over bins —
//!   `quantile` binning: the reference's quantiles `1/B … (B−1)/B` (numpy's default
//!   linear interpolation), the same bins `scorch profile` writes; `evidently`
//!   binning: `numpy.histogram_bin_edges(reference ∪ current, "sturges")` with
//!   Evidently's replacement of empty shares, so PSI equals Evidently's `psi` test;
//! - other columns: PSI, Jensen–Shannon and chi-square over the reference's
//!   categories, an "other" bin for new ones, and nulls (as in run reports).
//!
//! Nulls, NaN and ±inf are left out of the numeric statistics (scipy would return
//! NaN); a statistic that does not fit an f64 is null.
//! Columns are processed in parallel; values are sorted with a radix sort.

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

use super::drift::{category_table, count_categories};
use crate::stats::divergence::{Chi2, chi2_contingency, js_distance, js_distance_weights, psi};
use crate::stats::divergence::{bin_sorted, quantile_edges};
use crate::stats::ks::{self, radix_sort};
use crate::stats::mean_std;

/// How numeric columns are binned for PSI and Jensen–Shannon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Binning {
    /// The reference's quantiles (as `scorch profile`; PSI shares floored at 1e-4).
    Quantile,
    /// numpy's Sturges bins over both samples, empty shares replaced as Evidently does.
    Evidently,
}

/// The drift of one column between two datasets.
#[derive(Debug, Clone, Serialize)]
pub struct ExactDrift {
    pub column: String,
    /// Non-null (and, for numeric columns, non-NaN) values on each side.
    pub reference_values: u64,
    pub current_values: u64,
    pub psi: Option<f64>,
    pub js_distance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_statistic: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ks_p_value: Option<f64>,
    /// Wasserstein-1 distance in the column's units.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein_distance: Option<f64>,
    /// `wasserstein_distance / max(reference std, 0.001)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasserstein: Option<f64>,
    /// The bin edges used for PSI (numeric columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edges: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chi2: Option<Chi2>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_categories: Option<u64>,
}

/// Evidently's PSI on sorted samples (numeric columns with more than 20 distinct
/// reference values): Sturges bins over both, shares of each sample, zero shares
/// replaced by `min(nonzero share)/1e6` (if that minimum is at most 1e-4) or 1e-4.
fn evidently_psi(r: &[f64], c: &[f64]) -> (f64, f64, Vec<f64>) {
    let n = r.len() + c.len();
    let lo = r[0].min(c[0]);
    let hi = r[r.len() - 1].max(c[c.len() - 1]);
    // numpy: width = ptp / (log2(size) + 1); bins = ceil((last - first) / width).
    let width = (hi - lo) / ((n as f64).log2() + 1.0);
    let (lo, hi) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    // Samples spanning more than f64 (−MAX … MAX) make `width` infinite: Sturges'
    // count of bins is then taken directly (numpy would return NaN edges).
    let sturges = ((n as f64).log2() + 1.0).ceil();
    let ratio = ((hi - lo) / width).ceil();
    let nbins = if width == 0.0 {
        1
    } else if ratio.is_finite() && ratio >= 1.0 {
        ratio as usize
    } else {
        sturges as usize
    }
    .max(1);
    // numpy.linspace(lo, hi, nbins + 1); where `hi − lo` overflows, the step as a
    // difference of quotients.
    let step = match (hi - lo) / nbins as f64 {
        s if s.is_finite() => s,
        _ => hi / nbins as f64 - lo / nbins as f64,
    };
    let mut edges: Vec<f64> = (0..=nbins).map(|i| lo + i as f64 * step).collect();
    edges[nbins] = hi;
    let hist = |x: &[f64]| -> Vec<f64> {
        // np.histogram: [e_i, e_{i+1}), the last bin closed.
        let inner = &edges[1..nbins];
        let mut h = bin_sorted(x, inner);
        // Values equal to the last edge belong to the last bin already.
        let len = x.len() as f64;
        h.iter_mut().map(|v| *v as f64 / len).collect()
    };
    let fill = |mut p: Vec<f64>| {
        let m = p
            .iter()
            .cloned()
            .filter(|&v| v != 0.0)
            .fold(f64::INFINITY, f64::min);
        let z = if m <= 1e-4 { m / 1e6 } else { 1e-4 };
        p.iter_mut().filter(|v| **v == 0.0).for_each(|v| *v = z);
        p
    };
    let (rp, cp) = (fill(hist(r)), fill(hist(c)));
    let psi: f64 = rp
        .iter()
        .zip(&cp)
        .map(|(&a, &b)| (a - b) * (a / b).ln())
        .sum();
    let js = js_distance_weights(&rp, &cp);
    (psi, js, edges)
}

fn sorted_values(s: &Series) -> PolarsResult<Vec<f64>> {
    let x = s.cast(&DataType::Float64)?;
    let x = x.f64()?;
    let mut v: Vec<f64> = if x.null_count() == 0 {
        x.into_no_null_iter().filter(|v| v.is_finite()).collect()
    } else {
        x.iter().flatten().filter(|v| v.is_finite()).collect()
    };
    radix_sort(&mut v);
    Ok(v)
}

fn numeric(
    name: &str,
    r: &Series,
    c: &Series,
    bins: usize,
    binning: Binning,
) -> PolarsResult<ExactDrift> {
    let (r, c) = rayon::join(|| sorted_values(r), || sorted_values(c));
    let (r, c) = (r?, c?);
    let mut d = ExactDrift {
        column: name.to_string(),
        reference_values: r.len() as u64,
        current_values: c.len() as u64,
        psi: None,
        js_distance: None,
        ks_statistic: None,
        ks_p_value: None,
        wasserstein_distance: None,
        wasserstein: None,
        edges: None,
        chi2: None,
        new_categories: None,
    };
    if r.is_empty() || c.is_empty() {
        return Ok(d);
    }
    let k = ks::ks_2samp(&r, &c).expect("non-empty");
    d.ks_statistic = Some(k.statistic);
    d.ks_p_value = Some(k.p_value);
    let w = ks::wasserstein(&r, &c).expect("non-empty");
    // Infinite only where the values span more than f64 (−MAX … MAX): null.
    d.wasserstein_distance = Some(w).filter(|w| w.is_finite());
    d.wasserstein = d
        .wasserstein_distance
        .map(|w| w / mean_std(&r).1.max(0.001));
    match binning {
        Binning::Quantile => {
            let edges = quantile_edges(&r, bins);
            let (rc, cc) = (bin_sorted(&r, &edges), bin_sorted(&c, &edges));
            d.psi = Some(psi(&rc, &cc));
            d.js_distance = Some(js_distance(&rc, &cc));
            d.edges = Some(edges);
        }
        Binning::Evidently => {
            let (p, js, edges) = evidently_psi(&r, &c);
            d.psi = Some(p);
            d.js_distance = Some(js);
            d.edges = Some(edges);
        }
    }
    Ok(d)
}

fn categorical(name: &str, r: &Series, c: &Series) -> PolarsResult<ExactDrift> {
    let count = |s: &Series| -> PolarsResult<(BTreeMap<String, u64>, u64)> {
        let mut m = BTreeMap::new();
        let nulls = count_categories(s, &mut m)?;
        Ok((m, nulls))
    };
    let (rm, rn) = count(r)?;
    let (cm, cn) = count(c)?;
    let (rv, cv, new) = category_table(&rm, rn, &cm, cn);
    let (rt, ct) = (rv.iter().sum::<u64>(), cv.iter().sum::<u64>());
    let both = rt > 0 && ct > 0;
    Ok(ExactDrift {
        column: name.to_string(),
        reference_values: rt - rn,
        current_values: ct - cn,
        psi: both.then(|| psi(&rv, &cv)),
        js_distance: both.then(|| js_distance(&rv, &cv)),
        ks_statistic: None,
        ks_p_value: None,
        wasserstein_distance: None,
        wasserstein: None,
        edges: None,
        chi2: both.then(|| chi2_contingency(&rv, &cv)),
        new_categories: Some(new),
    })
}

/// The quality metrics ([`super::ColumnMetrics`]) of `columns` of a frame, in parallel.
pub fn quality(df: &DataFrame, columns: &[String]) -> PolarsResult<Vec<super::ColumnMetrics>> {
    columns
        .par_iter()
        .map(|name| {
            let c = df.column(name)?;
            let mut st = super::ColumnStats::new(name, c.dtype());
            st.update(c)?;
            // Summarized once, in place (unresolved, `metrics` would copy the counts).
            st.resolve().map_err(|e| PolarsError::IO {
                error: std::sync::Arc::new(e),
                msg: Some("counting exact value frequencies".into()),
            })?;
            Ok(st.metrics())
        })
        .collect()
}

/// The drift of `columns` between two frames (see the module docs).
pub fn drift_exact(
    reference: &DataFrame,
    current: &DataFrame,
    columns: &[String],
    bins: usize,
    binning: Binning,
) -> PolarsResult<Vec<ExactDrift>> {
    columns
        .par_iter()
        .map(|name| {
            let r = reference.column(name)?.as_materialized_series();
            let c = current.column(name)?.as_materialized_series();
            if r.dtype().is_primitive_numeric() && c.dtype().is_primitive_numeric() {
                numeric(name, r, c, bins, binning)
            } else {
                categorical(name, r, c)
            }
        })
        .collect()
}

/// One side of `scorch drift`: what the user named and the rows read.
pub struct Dataset<'a> {
    pub name: &'a str,
    pub frame: &'a DataFrame,
}

/// `scorch drift`'s JSON: exact drift of `columns` (default: every column both
/// sides have; a named column missing from either side is a data error naming it)
/// and both sides' column metrics, with the time taken. Returns the number of
/// columns compared and the document.
pub fn drift_document(
    reference: Dataset,
    current: Dataset,
    columns: &[String],
    bins: usize,
    binning: Binning,
    read_seconds: f64,
) -> crate::error::Result<(usize, serde_json::Value)> {
    let started = std::time::Instant::now();
    let (r, c) = (reference.frame, current.frame);
    let columns: Vec<String> = if columns.is_empty() {
        r.get_column_names()
            .into_iter()
            .filter(|n| c.column(n.as_str()).is_ok())
            .map(|n| n.to_string())
            .collect()
    } else {
        for n in columns {
            for side in [&reference, &current] {
                if side.frame.column(n.as_str()).is_err() {
                    return Err(crate::error::Error::DataContract(format!(
                        "column `{n}` (from --columns) is not in {}",
                        side.name
                    )));
                }
            }
        }
        columns.to_vec()
    };
    let out = drift_exact(r, c, &columns, bins, binning)?;
    let drift_s = started.elapsed().as_secs_f64();
    let (q_ref, q_cur) = rayon::join(|| quality(r, &columns), || quality(c, &columns));
    let (q_ref, q_cur) = (q_ref?, q_cur?);
    let doc = serde_json::json!({
        "reference": reference.name,
        "current": current.name,
        "reference_rows": r.height(),
        "current_rows": c.height(),
        "binning": binning,
        "bins": bins,
        "read_seconds": read_seconds,
        "compute_seconds": started.elapsed().as_secs_f64(),
        "drift_seconds": drift_s,
        "columns": out,
        "quality": {"reference": q_ref, "current": q_cur},
    });
    Ok((columns.len(), doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_edges_follow_numpy_linear() {
        let x: Vec<f64> = (0..11).map(|i| i as f64).collect();
        assert_eq!(quantile_edges(&x, 4), vec![2.5, 5.0, 7.5]);
        // Constant data: one edge.
        assert_eq!(quantile_edges(&[3.0; 5], 10), vec![3.0]);
    }

    #[test]
    fn bins_count_like_searchsorted_right() {
        let x = [0.5, 1.0, 2.5, 3.0, 3.0];
        assert_eq!(bin_sorted(&x, &[1.0, 2.0, 3.0]), vec![1, 1, 1, 2]);
    }
}
