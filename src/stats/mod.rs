//! Statistics: pure functions and mergeable sketches over `f64` values and counts,
//! with no knowledge of jobs, reports or Polars frames. Each accepts any input
//! (±inf, NaN, empty, huge) without panicking; the property tests of
//! `crate::reports` and `crate::shadow` drive them with arbitrary values.
//!
//! - [`sketch`]: HyperLogLog, DDSketch;
//! - [`ks`]: two-sample Kolmogorov–Smirnov (scipy's exact and asymptotic p-values),
//!   Wasserstein-1, radix sort of floats;
//! - [`divergence`]: PSI, Jensen–Shannon, chi-square, quantile bins;
//! - [`calibration`]: isotonic calibration and performance estimated without
//!   labels (CBPE), mergeable across chunks and shards.

pub mod calibration;
pub mod divergence;
pub mod ks;
pub mod pca;
pub mod sketch;

/// Mean and sum of squared deviations of non-empty finite values. The mean is
/// finite whatever the values (`Σ x/n` where `Σ x` overflows); the sum of squares
/// may overflow to +inf for values near `f64::MAX`.
pub fn moments(vals: &[f64]) -> (f64, f64) {
    let n = vals.len() as f64;
    let mut mean = vals.iter().sum::<f64>() / n;
    if !mean.is_finite() {
        mean = vals.iter().map(|v| v / n).sum::<f64>();
    }
    let m2 = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>();
    (mean, m2)
}

/// Mean and population standard deviation (ddof 0) of non-empty finite values;
/// both finite (values near `f64::MAX` are scaled down for the deviation).
pub fn mean_std(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let (mean, m2) = moments(x);
    let sd = (m2 / n).sqrt();
    if sd.is_finite() {
        return (mean, sd);
    }
    let scale = x.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let (m, s) = (mean / scale, x.iter().map(|v| v / scale));
    let var = s.map(|v| (v - m) * (v - m)).sum::<f64>() / n;
    (mean, (var.sqrt() * scale).min(f64::MAX))
}
