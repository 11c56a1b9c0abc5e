//! Multivariate drift by PCA reconstruction error (NannyML's data reconstruction
//! drift): the reference feature matrix is standardized and its principal
//! components kept up to a share of the variance; a row's error is the Euclidean
//! distance between its standardized values and their projection on those
//! components. A change in the correlations between features raises the mean
//! error even when every marginal distribution stays the same.
//!
//! [`Pca::fit`] works on the reference; [`ErrorSums`] accumulate a run's errors,
//! mergeable across chunks and shards; [`Pca::threshold`] is the band from the
//! reference's own chunk-to-chunk spread.

use serde::{Deserialize, Serialize};

/// A fitted standardization and principal components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pca {
    /// Per feature: mean and standard deviation (1 for a constant feature).
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    /// The kept components, each a unit vector of the features' length.
    pub components: Vec<Vec<f64>>,
    /// The share of the variance each kept component explains.
    pub explained: Vec<f64>,
}

/// Sums of a run's reconstruction errors: count, Σe, Σe².
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorSums {
    pub n: f64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl ErrorSums {
    pub fn add(&mut self, e: f64) {
        self.n += 1.0;
        self.sum += e;
        self.sum_sq += e * e;
    }
    pub fn merge(&mut self, o: &ErrorSums) {
        self.n += o.n;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
    }
    /// The mean error (NaN without rows).
    pub fn mean(&self) -> f64 {
        if self.n > 0.0 {
            self.sum / self.n
        } else {
            f64::NAN
        }
    }
}

impl Pca {
    /// Fits on `rows` (row-major, `d` features each), keeping the fewest components
    /// that explain at least `variance` (0 to 1) of the standardized variance.
    /// `None` without rows or features.
    pub fn fit(rows: &[f32], d: usize, variance: f64) -> Option<Pca> {
        if d == 0 || rows.len() < d {
            return None;
        }
        let n = (rows.len() / d) as f64;
        let mut mean = vec![0.0; d];
        for r in rows.chunks_exact(d) {
            for (m, x) in mean.iter_mut().zip(r) {
                *m += f64::from(*x);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0.0; d];
        for r in rows.chunks_exact(d) {
            for ((v, m), x) in var.iter_mut().zip(&mean).zip(r) {
                let c = f64::from(*x) - m;
                *v += c * c;
            }
        }
        let scale: Vec<f64> = var
            .iter()
            .map(|v| {
                let s = (v / n).sqrt();
                if s > 0.0 && s.is_finite() { s } else { 1.0 }
            })
            .collect();
        // The correlation matrix of the standardized features.
        let mut cov = vec![0.0; d * d];
        let mut z = vec![0.0; d];
        for r in rows.chunks_exact(d) {
            for j in 0..d {
                z[j] = (f64::from(r[j]) - mean[j]) / scale[j];
            }
            for i in 0..d {
                let zi = z[i];
                for j in i..d {
                    cov[i * d + j] += zi * z[j];
                }
            }
        }
        for i in 0..d {
            for j in i..d {
                let v = cov[i * d + j] / n;
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
        }
        let (values, vectors) = jacobi_eigen(&cov, d);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
        let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
        let mut components = Vec::new();
        let mut explained = Vec::new();
        let mut acc = 0.0;
        for k in order {
            if total <= 0.0 || (acc >= variance && !components.is_empty()) {
                break;
            }
            let share = values[k].max(0.0) / total;
            acc += share;
            explained.push(share);
            components.push((0..d).map(|i| vectors[i * d + k]).collect());
        }
        Some(Pca {
            mean,
            scale,
            components,
            explained,
        })
    }

    /// The reconstruction error of one row: |z − Σ (z·c) c| for standardized z.
    pub fn error(&self, row: &[f32]) -> f64 {
        let z: Vec<f64> = row
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .map(|((x, m), s)| (f64::from(*x) - m) / s)
            .collect();
        let mut rest = z.clone();
        for c in &self.components {
            let dot: f64 = z.iter().zip(c).map(|(a, b)| a * b).sum();
            for (r, ci) in rest.iter_mut().zip(c) {
                *r -= dot * ci;
            }
        }
        rest.iter().map(|r| r * r).sum::<f64>().sqrt()
    }

    /// Adds every row of a row-major matrix to `sums`.
    pub fn add_rows(&self, rows: &[f32], sums: &mut ErrorSums) {
        let d = self.mean.len();
        for r in rows.chunks_exact(d) {
            sums.add(self.error(r));
        }
    }

    /// The band of a run's mean error from the reference's own variation: the
    /// mean errors of `chunks` equal chunks of `rows`, their mean ± `sigmas`
    /// standard deviations, scaled to a run of `run_rows` rows (a chunk mean's
    /// spread shrinks as 1/√rows). Returns (lower, upper).
    pub fn threshold(&self, rows: &[f32], chunks: usize, sigmas: f64, run_rows: f64) -> (f64, f64) {
        let d = self.mean.len();
        let n = rows.len() / d.max(1);
        let chunks = chunks.clamp(2, n.max(2));
        let per = n / chunks;
        if per == 0 {
            return (f64::NAN, f64::NAN);
        }
        let means: Vec<f64> = (0..chunks)
            .map(|c| {
                let mut s = ErrorSums::default();
                self.add_rows(&rows[c * per * d..(c + 1) * per * d], &mut s);
                s.mean()
            })
            .collect();
        let (m, sd) = crate::stats::mean_std(&means);
        let sd = sd * (per as f64 / run_rows.max(1.0)).sqrt();
        (m - sigmas * sd, m + sigmas * sd)
    }
}

/// Eigenvalues and eigenvectors (column k of the row-major result) of a
/// symmetric `d`×`d` matrix, by cyclic Jacobi rotations.
pub fn jacobi_eigen(a: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        v[i * d + i] = 1.0;
    }
    let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..d)
            .flat_map(|i| (0..d).filter(move |j| *j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * d + j] * a[i * d + j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-14 * norm.max(1e-300) {
            break;
        }
        for p in 0..d {
            for q in p + 1..d {
                let apq = a[p * d + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * d + q] - a[p * d + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..d {
                    let (akp, akq) = (a[k * d + p], a[k * d + q]);
                    a[k * d + p] = c * akp - s * akq;
                    a[k * d + q] = s * akp + c * akq;
                }
                for k in 0..d {
                    let (apk, aqk) = (a[p * d + k], a[q * d + k]);
                    a[p * d + k] = c * apk - s * aqk;
                    a[q * d + k] = s * apk + c * aqk;
                }
                for k in 0..d {
                    let (vkp, vkq) = (v[k * d + p], v[k * d + q]);
                    v[k * d + p] = c * vkp - s * vkq;
                    v[k * d + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..d).map(|i| a[i * d + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Normal draws (Box–Muller over xorshift).
    struct Rng(u64);
    impl Rng {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }
        fn normal(&mut self) -> f64 {
            (-2.0 * self.uniform().ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
        }
    }

    /// `n` rows of (x, y, w): y = sign·0.9·x + noise, w independent.
    fn rows(n: usize, sign: f64, seed: u64) -> Vec<f32> {
        let mut r = Rng(seed);
        let mut out = Vec::with_capacity(3 * n);
        for _ in 0..n {
            let x = r.normal();
            let y = sign * 0.9 * x + 0.436 * r.normal();
            out.extend([x as f32, y as f32, (5.0 + 2.0 * r.normal()) as f32]);
        }
        out
    }

    #[test]
    fn eigenvectors_diagonalize_a_symmetric_matrix() {
        let a = [4.0, 1.0, 0.5, 1.0, 3.0, 0.2, 0.5, 0.2, 1.0];
        let (vals, v) = jacobi_eigen(&a, 3);
        for k in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|j| a[i * 3 + j] * v[j * 3 + k]).sum();
                assert!((av - vals[k] * v[i * 3 + k]).abs() < 1e-10);
            }
        }
        assert!((vals.iter().sum::<f64>() - 8.0).abs() < 1e-10);
    }

    #[test]
    fn a_flipped_correlation_fires_while_the_marginals_stay() {
        let reference = rows(50_000, 1.0, 7);
        let pca = Pca::fit(&reference, 3, 0.65).unwrap();
        assert_eq!(pca.components.len(), 2, "{:?}", pca.explained);
        let (lo, hi) = pca.threshold(&reference, 10, 3.0, 10_000.0);
        let mean = |data: &[f32]| {
            let mut s = ErrorSums::default();
            pca.add_rows(data, &mut s);
            s.mean()
        };
        // Same relation, new rows: inside the band.
        let same = mean(&rows(10_000, 1.0, 99));
        assert!(same > lo && same < hi, "{lo} < {same} < {hi}");
        // The correlation flipped: each column's distribution is unchanged.
        let flipped = rows(10_000, -1.0, 99);
        let m = mean(&flipped);
        assert!(m > hi + 10.0 * (hi - lo), "{m} vs band {lo}..{hi}");
        // Merging chunk sums gives the whole's.
        let (mut a, mut b, mut all) = (
            ErrorSums::default(),
            ErrorSums::default(),
            ErrorSums::default(),
        );
        pca.add_rows(&flipped[..3 * 4000], &mut a);
        pca.add_rows(&flipped[3 * 4000..], &mut b);
        pca.add_rows(&flipped, &mut all);
        a.merge(&b);
        assert!((a.mean() - all.mean()).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn errors_are_finite_and_non_negative_for_any_finite_values(
            vals in prop::collection::vec(
                prop_oneof![-1e30f32..1e30f32, Just(0.0f32), Just(f32::MAX), Just(-f32::MAX), Just(1e-38f32)],
                8..64,
            ),
        ) {
            let d = 4;
            let n = vals.len() / d * d;
            if let Some(p) = Pca::fit(&vals[..n], d, 0.65) {
                for r in vals[..n].chunks_exact(d) {
                    let e = p.error(r);
                    prop_assert!(e.is_finite() && e >= 0.0, "{e}");
                }
            }
        }
    }
}
