//! `scorch profile`: a bundle's reference profile from its training data (drift
//! reference, PCA for multivariate drift, and with labels the calibration for
//! performance estimated without labels), and optionally its HTML page. The
//! command line and the Python package both call [`profile`] with
//! [`ProfileOptions`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What to profile, and how.
#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// The bundle folder; gets `reference.profile.json` and a `reference_profile`
    /// line in its `bundle.yaml`.
    pub bundle: PathBuf,
    /// The training data: a Parquet file, folder or glob.
    pub data: String,
    /// Quantile bins per numeric column (`spec::limits::BINS`).
    pub bins: usize,
    /// Quantile sketch points per numeric column (`spec::limits::SKETCH`).
    pub sketch: usize,
    /// The label column to calibrate the score on; `None`: no calibration.
    pub labels: Option<String>,
    /// Held-out labelled rows to calibrate on (default: `data`).
    pub calibration_data: Option<String>,
    /// A labels table joined to the calibration rows on `labels_on`.
    pub labels_data: Option<String>,
    /// The columns joining `labels_data` to the calibration rows.
    pub labels_on: Vec<String>,
    /// The score column calibrated (default: the model's first).
    pub score: Option<String>,
    /// Decision thresholds of the reference performance, each in [0, 1], once.
    pub thresholds: Vec<f64>,
    /// Also write the profile's HTML page here.
    pub html: Option<PathBuf>,
}

impl ProfileOptions {
    /// Profile `data` into `bundle` with the defaults (10 bins, the default
    /// sketch, no calibration, threshold 0.5).
    pub fn new(bundle: impl Into<PathBuf>, data: impl Into<String>) -> Self {
        ProfileOptions {
            bundle: bundle.into(),
            data: data.into(),
            bins: 10,
            sketch: crate::reports::drift::DEFAULT_SKETCH,
            labels: None,
            calibration_data: None,
            labels_data: None,
            labels_on: vec![],
            score: None,
            thresholds: vec![0.5],
            html: None,
        }
    }

    /// Pure checks: bounds and the options that need `labels`. Exit 2.
    pub fn validate(&self) -> Result<()> {
        use crate::spec::limits;
        let bad = |field: &str, e: String| Err(Error::usage(format!("`{field}`: {e}")));
        if let Err(e) = limits::BINS.check(self.bins as u64) {
            return bad("bins", e);
        }
        if let Err(e) = limits::SKETCH.check(self.sketch as u64) {
            return bad("sketch", e);
        }
        if let Err(e) = limits::thresholds(&self.thresholds) {
            return bad("thresholds", e);
        }
        if self.labels.is_none()
            && (self.calibration_data.is_some()
                || self.labels_data.is_some()
                || !self.labels_on.is_empty()
                || self.score.is_some())
        {
            return bad(
                "labels",
                "calibration data, a labels table, join columns and a score need the label column"
                    .into(),
            );
        }
        if self.labels_data.is_some() == self.labels_on.is_empty() {
            return bad(
                "labels_on",
                "a labels table and its join columns come together".into(),
            );
        }
        Ok(())
    }
}

/// Profiles the bundle; returns what `scorch profile` prints.
pub fn profile(o: &ProfileOptions) -> Result<String> {
    o.validate()?;
    let here = Path::new(".");
    let lf = crate::source::scan_pattern(here, &o.data)?;
    let calibration = match &o.labels {
        Some(label) => {
            let rows_name = o.calibration_data.clone().unwrap_or_else(|| o.data.clone());
            let labels = match &o.labels_data {
                Some(p) => Some((crate::source::scan_pattern(here, p)?, p.clone())),
                None => None,
            };
            Some(super::Calibration {
                label: label.clone(),
                rows: crate::source::scan_pattern(here, &rows_name)?,
                rows_name,
                labels,
                on: o.labels_on.clone(),
                score: o.score.clone(),
                thresholds: o.thresholds.clone(),
            })
        }
        None => None,
    };
    let (p, path) =
        super::write_reference_profile(&o.bundle, lf, &o.data, o.bins, o.sketch, calibration)?;
    if let Some(html) = &o.html {
        let spec = super::Bundle::open_with(&o.bundle, false)?.spec;
        let page =
            crate::reports::profile_html::render(&p, &format!("{} {}", spec.name, spec.version));
        crate::storage::write_file_atomic(html, page.as_bytes())?;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "profiled {} rows, {} columns into {}",
        p.rows,
        p.columns.len(),
        path.display()
    );
    if let Some(perf) = &p.performance {
        let r = &perf.realized;
        let _ = writeln!(
            out,
            "calibrated {} on {} labelled rows ({} positive): {} blocks; reference AUC {}",
            perf.score,
            r.rows,
            r.positives,
            perf.calibration.values.len(),
            r.auc.map_or("n/a".into(), |v| format!("{v:.4}"))
        );
    }
    if let Some(m) = &p.reconstruction {
        let _ = writeln!(
            out,
            "multivariate drift reference: {} of {} principal components keep {:.1} % of the \
                 standardized variance; mean reconstruction error {:.4}",
            m.pca.components.len(),
            m.features.len(),
            100.0 * m.pca.explained.iter().sum::<f64>(),
            m.mean()
        );
    }
    if let Some(html) = &o.html {
        let _ = writeln!(out, "page: {}", html.display());
    }
    Ok(out)
}
