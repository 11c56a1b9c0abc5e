//! Multivariate drift in a run: the mean PCA reconstruction error of the model's
//! feature matrix (NannyML's data reconstruction drift), judged against a band
//! from the reference's own chunk-to-chunk spread.
//!
//! [`ReferenceReconstruction`] is fitted by `scorch profile` on the same feature
//! matrix the model is given and stored in the reference profile;
//! [`ReconstructionCounter`] accumulates a run's errors chunk by chunk (bounded
//! memory: three numbers) and merges across shards; [`MultivariateDrift`] is the
//! verdict in the report.

use serde::{Deserialize, Serialize};

use crate::stats::pca::{ErrorSums, Pca};

/// The share of the standardized variance the kept components explain (NannyML's default).
pub const VARIANCE: f64 = 0.65;
/// Reference rows the PCA is fitted on at most (an even stride through the rows).
pub const MAX_FIT_ROWS: usize = 200_000;
/// Reference chunks whose mean errors give the band.
pub const REFERENCE_CHUNKS: usize = 20;

/// The PCA of the reference feature matrix and its chunk-to-chunk spread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceReconstruction {
    /// The model's features, in the matrix's order.
    pub features: Vec<String>,
    pub pca: Pca,
    /// Reference rows the errors were measured on.
    pub rows: u64,
    /// Rows per reference chunk, and each chunk's mean error.
    pub chunk_rows: u64,
    pub chunk_means: Vec<f64>,
}

impl ReferenceReconstruction {
    /// Fits on a row-major matrix (`features.len()` columns, every value finite).
    /// Err (with the reason) when the reference cannot give a useful measure: fewer
    /// than two features, too few rows, or no correlation to lose (every component
    /// kept, so every error would be zero).
    pub fn fit(matrix: &[f32], features: &[String]) -> Result<Self, String> {
        let d = features.len();
        if d < 2 {
            return Err(format!(
                "{d} feature(s): multivariate drift needs at least two"
            ));
        }
        let n = matrix.len() / d;
        if n < 2 * REFERENCE_CHUNKS.max(d) {
            return Err(format!(
                "{n} rows: multivariate drift needs at least {} for {d} features",
                2 * REFERENCE_CHUNKS.max(d)
            ));
        }
        let stride = n.div_ceil(MAX_FIT_ROWS);
        let sample: std::borrow::Cow<'_, [f32]> = if stride == 1 {
            matrix.into()
        } else {
            matrix
                .chunks_exact(d)
                .step_by(stride)
                .flatten()
                .copied()
                .collect::<Vec<f32>>()
                .into()
        };
        let pca = Pca::fit(&sample, d, VARIANCE).ok_or("no rows to fit on")?;
        if pca.components.len() >= d {
            return Err(format!(
                "the {d} features are uncorrelated enough that every principal component is \
                 needed for {:.0} % of their variance, so nothing is left to reconstruct",
                VARIANCE * 100.0
            ));
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !(finite(&pca.mean)
            && finite(&pca.scale)
            && finite(&pca.explained)
            && pca.components.iter().all(|c| finite(c)))
        {
            return Err(
                "the features' values are too large for a PCA in f64 (non-finite variance)".into(),
            );
        }
        let per = n / REFERENCE_CHUNKS;
        let chunk_means: Vec<f64> = (0..REFERENCE_CHUNKS)
            .map(|c| {
                let mut s = ErrorSums::default();
                pca.add_rows(&matrix[c * per * d..(c + 1) * per * d], &mut s);
                s.mean()
            })
            .collect();
        if !finite(&chunk_means) {
            return Err("the reference's reconstruction errors are not finite".into());
        }
        Ok(ReferenceReconstruction {
            features: features.to_vec(),
            pca,
            rows: n as u64,
            chunk_rows: per as u64,
            chunk_means,
        })
    }

    /// The mean of the reference chunks' mean errors.
    pub fn mean(&self) -> f64 {
        crate::stats::mean_std(&self.chunk_means).0
    }

    /// The band of a run of `rows` rows: the chunks' mean ± `sigmas` times their
    /// standard deviation, scaled from a chunk's rows to the run's (the spread of a
    /// mean shrinks as 1/√rows), and at least `min_width` times the mean either side.
    pub fn band(&self, rows: f64, sigmas: f64, min_width: f64) -> (f64, f64) {
        let (m, sd) = crate::stats::mean_std(&self.chunk_means);
        let half = (sigmas * sd * (self.chunk_rows as f64 / rows.max(1.0)).sqrt())
            .max(min_width * m.abs());
        (m - half, m + half)
    }
}

/// A run's reconstruction errors, summed chunk by chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionCounter {
    pub reference: ReferenceReconstruction,
    pub sums: ErrorSums,
}

impl ReconstructionCounter {
    pub fn new(reference: ReferenceReconstruction) -> Self {
        ReconstructionCounter {
            reference,
            sums: ErrorSums::default(),
        }
    }

    /// The errors of a row-major feature matrix's rows.
    pub fn errors_of(pca: &Pca, matrix: &[f32]) -> ErrorSums {
        let mut s = ErrorSums::default();
        pca.add_rows(matrix, &mut s);
        s
    }

    /// Adds another part's sums (another chunk or shard of the same run); refuses
    /// sums against another reference.
    pub fn merge_checked(&mut self, other: &ReconstructionCounter) -> Result<(), String> {
        if self.reference != other.reference {
            return Err("the multivariate drift references differ".into());
        }
        self.sums.merge(&other.sums);
        Ok(())
    }

    /// The verdict: outside the band is `severity`'s status.
    pub fn result(&self, spec: &crate::spec::job::MultivariateSpec) -> MultivariateDrift {
        let r = &self.reference;
        let mean_error = self.sums.mean();
        let (lower, upper) = r.band(self.sums.n, spec.sigmas, spec.min_width);
        let status = if self.sums.n == 0.0 {
            "no_data"
        } else if mean_error >= lower && mean_error <= upper {
            "pass"
        } else {
            match spec.severity {
                crate::spec::report::Severity::Warn => "warn",
                crate::spec::report::Severity::Fail => "fail",
            }
        };
        MultivariateDrift {
            rows: self.sums.n as u64,
            mean_error: Some(mean_error).filter(|v| v.is_finite()),
            lower,
            upper,
            reference_error: r.mean(),
            features: r.features.len(),
            components: r.pca.components.len(),
            explained: r.pca.explained.iter().sum(),
            status,
        }
    }
}

/// Multivariate drift in the report.
#[derive(Debug, Clone, Serialize)]
pub struct MultivariateDrift {
    /// Rows measured.
    pub rows: u64,
    /// The run's mean reconstruction error (null without rows).
    pub mean_error: Option<f64>,
    /// The band it is judged against.
    pub lower: f64,
    pub upper: f64,
    /// The reference's mean error.
    pub reference_error: f64,
    /// Features of the matrix, principal components kept and the share of the
    /// standardized variance they explain.
    pub features: usize,
    pub components: usize,
    pub explained: f64,
    /// `pass`, `warn`, `fail` or `no_data`.
    pub status: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any finite matrix: a refusal, or a reference whose every number is
        /// finite (so its JSON reads back the same) and whose band is finite.
        #[test]
        fn any_finite_matrix_gives_a_finite_reference_or_a_reason(
            vals in prop::collection::vec(
                prop_oneof![
                    -1e6f32..1e6f32,
                    Just(0.0f32),
                    Just(f32::MAX),
                    Just(-f32::MAX),
                    Just(1e-38f32),
                    Just(1.0f32),
                ],
                0..400,
            ),
            d in 1usize..5,
            correlated in prop::collection::vec(
                (
                    -1e6f32..1e6f32,
                    prop_oneof![-1.0f32..1.0, Just(f32::MAX), Just(0.0f32), Just(1e-38f32)],
                ),
                40..200,
            ),
        ) {
            // Two columns moving together and one of any values: usually a PCA.
            let rows: Vec<f32> = correlated.iter().flat_map(|(x, e)| [*x, *x + e.min(1.0), *e]).collect();
            if let Ok(r) = ReferenceReconstruction::fit(&rows, &names(3)) {
                prop_assert!(r.pca.components.len() < 3);
                prop_assert!(r.chunk_means.iter().all(|m| m.is_finite() && *m >= 0.0));
            }
            let n = vals.len() / d * d;
            match ReferenceReconstruction::fit(&vals[..n], &names(d)) {
                Err(why) => prop_assert!(!why.is_empty()),
                Ok(r) => {
                    let text = serde_json::to_string(&r).unwrap();
                    let back: ReferenceReconstruction = serde_json::from_str(&text).unwrap();
                    prop_assert_eq!(&back, &r);
                    let (lo, hi) = r.band(1000.0, 3.0, 0.0);
                    prop_assert!(lo.is_finite() && hi.is_finite() && lo <= hi);
                    let mut c = ReconstructionCounter::new(r);
                    c.sums = ReconstructionCounter::errors_of(&c.reference.pca, &vals[..n]);
                    prop_assert!(c.sums.mean().is_finite());
                }
            }
        }
    }

    fn names(d: usize) -> Vec<String> {
        (0..d).map(|i| format!("f{i}")).collect()
    }

    #[test]
    fn refuses_what_cannot_measure_anything() {
        assert!(ReferenceReconstruction::fit(&[1.0; 100], &names(1)).is_err());
        assert!(ReferenceReconstruction::fit(&[1.0; 20], &names(2)).is_err());
        // Two independent features: both components are needed for 65 %.
        let m: Vec<f32> = (0..2000)
            .flat_map(|i| [(i % 7) as f32, ((i * 13) % 11) as f32])
            .collect();
        let e = ReferenceReconstruction::fit(&m, &names(2)).unwrap_err();
        assert!(e.contains("every principal component"), "{e}");
    }

    #[test]
    fn the_band_narrows_with_rows_and_keeps_its_floor() {
        let m: Vec<f32> = (0..20_000)
            .flat_map(|i| {
                let x = ((i * 7919) % 1000) as f32 / 100.0;
                let n = ((i * 104_729) % 997) as f32 / 997.0;
                [x, x + n, ((i * 31) % 17) as f32]
            })
            .collect();
        let r = ReferenceReconstruction::fit(&m, &names(3)).unwrap();
        assert_eq!(r.chunk_means.len(), REFERENCE_CHUNKS);
        let (lo1, hi1) = r.band(1000.0, 3.0, 0.0);
        let (lo2, hi2) = r.band(100_000.0, 3.0, 0.0);
        assert!(hi2 - lo2 < hi1 - lo1);
        assert!(((hi1 - lo1) / (hi2 - lo2) - 10.0).abs() < 1e-9);
        let (lo3, hi3) = r.band(1e12, 3.0, 0.05);
        assert!((hi3 - lo3 - 0.1 * r.mean()).abs() < 1e-12);
    }
}
