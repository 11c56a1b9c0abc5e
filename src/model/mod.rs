//! Model bundles: `models/<name>/<version>/` with `bundle.yaml`, the model file
//! (TorchScript, or an AOTInductor `.pt2` package) and the fitted preprocessing
//! state the model was trained with.
//!
//! ```yaml
//! name: churn
//! version: 1.0.0
//! format: torchscript            # or aoti; inferred from model_file's extension when absent
//! model_file: model.pt
//! model_sha256: 3f2a…            # verified before the model is loaded
//! features: [age, tenure_months, …, "plan=basic", "plan=__unknown__"]
//! outputs:
//!   - name: churn_probability
//!     shape: []                   # per row: [] or [1] is one column, [k] is k columns
//! preprocessing:
//!   name: churn_features
//!   version: 1.0.0
//!   state_file: preprocess.state.json
//!   state_hash: sha256:…
//! ```

pub mod create;
pub mod profile;

use std::path::{Path, PathBuf};

use crate::error::{Error, Kind, LayerError, Result};
use crate::preprocess::state::FittedState;

/// The errors of opening a bundle's files (exit 4), with the library error as
/// the source.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file of the bundle could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The reference profile is not valid JSON of a profile.
    #[error("{} is not a reference profile: {source}", .path.display())]
    Profile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl LayerError for BundleError {
    fn kind(&self) -> Kind {
        Kind::Model
    }
}
use crate::spec::bundle::{BUNDLE_FILE, BundleSpec, ModelFormat, ProfilePin};
use crate::storage::sha256_file;

/// A bundle whose files have been checked: model hash verified, state loaded and pinned.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: BundleSpec,
    pub model_path: PathBuf,
    pub state: FittedState,
    /// The training data's profile, when the bundle carries one (hash verified).
    pub reference: Option<crate::reports::drift::ReferenceProfile>,
}

/// Every file `spec` names resolves inside the bundle folder `dir` (no symlink out
/// of it): exit 4 naming the field otherwise.
fn confined(dir: &Path, file: &Path, spec: &BundleSpec) -> Result<()> {
    let Ok(base) = dir.canonicalize() else {
        return Ok(()); // reading the files reports a missing folder
    };
    for (field, rel) in spec.files() {
        let Ok(real) = dir.join(rel).canonicalize() else {
            continue; // a missing file is reported where it is read
        };
        if !real.starts_with(&base) {
            return Err(Error::Model(format!(
                "{}: `{field}` ({rel}) resolves to {}, outside the bundle folder {} (a \
                 symbolic link?): a bundle must hold its own files, so that a copied or \
                 registered bundle is whole; copy the file into the bundle",
                file.display(),
                real.display(),
                base.display()
            )));
        }
    }
    Ok(())
}

impl Bundle {
    /// For an AOTInductor package, checks it against `device` (`None`: the device
    /// kind it was compiled for) and this machine from its metadata, without
    /// loading it; TorchScript files need no such check.
    pub fn check_model_file(&self, device: Option<tch::Device>) -> Result<()> {
        match self.spec.model_format() {
            ModelFormat::Torchscript => Ok(()),
            ModelFormat::Aoti => crate::infer::aoti::check_package(&self.model_path, device),
        }
    }

    /// Reads `bundle.yaml`, verifies the model file's SHA-256 and loads and pins the
    /// preprocessing state. Every failure is a bundle error (exit 4). The model itself
    /// is not loaded here (see `crate::infer::Engine::load`).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, true)
    }

    /// Opens a bundle; `with_profile: false` skips its reference profile (for
    /// `scorch profile`, which replaces it, even when it is outdated or damaged).
    pub fn open_with(dir: &Path, with_profile: bool) -> Result<Self> {
        let file = dir.join(BUNDLE_FILE);
        if !file.is_file() {
            return Err(Error::Model(format!(
                "{} not found: a model bundle is a folder with {BUNDLE_FILE}, the model file and its preprocessing state",
                file.display()
            )));
        }
        let spec: BundleSpec =
            crate::spec::load_yaml(&file).map_err(|e| e.into_kind(Kind::Model))?;
        spec.validate()
            .into_result(&file)
            .map_err(|e| Error::Model(e.to_string()))?;
        confined(dir, &file, &spec)?;
        let model_path = dir.join(&spec.model_file);
        let actual = sha256_file(&model_path).map_err(|e| {
            Error::Model(format!(
                "cannot read model file {}: {e}",
                model_path.display()
            ))
        })?;
        if !actual.eq_ignore_ascii_case(&spec.model_sha256) {
            return Err(Error::Model(format!(
                "model file {} has sha256 {actual}, but {} says {}: the file was changed or replaced; \
                 refusing to load it",
                model_path.display(),
                file.display(),
                spec.model_sha256
            )));
        }
        let state_path = dir.join(&spec.preprocessing.state_file);
        let state = FittedState::load(&state_path)?;
        let pin = &spec.preprocessing;
        if state.content_hash != pin.state_hash
            || state.spec.name != pin.name
            || state.spec.version != pin.version
        {
            return Err(Error::Model(format!(
                "{} pins preprocessing {} {} ({}), but {} is {} {} ({})",
                file.display(),
                pin.name,
                pin.version,
                pin.state_hash,
                state_path.display(),
                state.spec.name,
                state.spec.version,
                state.content_hash
            )));
        }
        if state.feature_names != spec.features {
            return Err(Error::Model(format!(
                "{}: `features` ({} columns) differ from the preprocessing state's output ({} columns); \
                 first difference at position {}",
                file.display(),
                spec.features.len(),
                state.feature_names.len(),
                spec.features
                    .iter()
                    .zip(&state.feature_names)
                    .position(|(a, b)| a != b)
                    .unwrap_or(spec.features.len().min(state.feature_names.len()))
            )));
        }
        let reference = match &spec.reference_profile {
            _ if !with_profile => None,
            None => None,
            Some(pin) => {
                let path = dir.join(&pin.file);
                let actual = sha256_file(&path).map_err(|e| {
                    Error::Model(format!(
                        "cannot read reference profile {}: {e}",
                        path.display()
                    ))
                })?;
                if !actual.eq_ignore_ascii_case(&pin.sha256) {
                    return Err(Error::Model(format!(
                        "reference profile {} has sha256 {actual}, but {} says {}",
                        path.display(),
                        file.display(),
                        pin.sha256
                    )));
                }
                let text = std::fs::read_to_string(&path).map_err(|source| BundleError::Read {
                    path: path.clone(),
                    source,
                })?;
                // The version first: a newer layout's fields would otherwise read
                // as unknown fields.
                #[derive(serde::Deserialize)]
                struct Version {
                    profile_version: u32,
                }
                if let Ok(v) = serde_json::from_str::<Version>(&text)
                    && v.profile_version > crate::reports::drift::PROFILE_VERSION
                {
                    return Err(Error::Model(format!(
                        "{} has profile_version {}; this scorch reads up to {}: upgrade scorch \
                         or rerun `scorch profile` with this one",
                        path.display(),
                        v.profile_version,
                        crate::reports::drift::PROFILE_VERSION
                    )));
                }
                let profile: crate::reports::drift::ReferenceProfile = serde_json::from_str(&text)
                    .map_err(|source| BundleError::Profile {
                        path: path.clone(),
                        source,
                    })?;
                Some(profile)
            }
        };
        Ok(Bundle {
            dir: dir.to_path_buf(),
            spec,
            model_path,
            state,
            reference,
        })
    }
}

/// Labelled rows `scorch profile --labels` calibrates a score column on.
pub struct Calibration {
    /// The label column: booleans or 0/1 numbers; null and NaN rows are left out.
    pub label: String,
    /// The rows scored (with the label column unless `labels` is given), and what they are.
    pub rows: polars::prelude::LazyFrame,
    pub rows_name: String,
    /// A labels table joined to `rows` on `on`, and what it is.
    pub labels: Option<(polars::prelude::LazyFrame, String)>,
    pub on: Vec<String>,
    /// The score column calibrated; None: the model's first.
    pub score: Option<String>,
    /// Thresholds the reference performance is measured at.
    pub thresholds: Vec<f64>,
}

/// Profiles `data` (a Parquet path or glob) for the bundle in `dir`: every input column
/// of its preprocessing and every score column of its model (run on the same rows),
/// `bins` quantile bins per numeric column; with `calibration`, one score column's
/// calibration map and reference performance on labelled rows. The data is read
/// into memory once. The bundle gets the profile through [`replace_profile`]; a
/// registered bundle (one in a registry: immutable) is refused before anything is
/// read. Returns the profile.
pub fn write_reference_profile(
    dir: &Path,
    lf: polars::prelude::LazyFrame,
    data: &str,
    bins: usize,
    sketch: usize,
    calibration: Option<Calibration>,
) -> Result<(crate::reports::drift::ReferenceProfile, PathBuf)> {
    refuse_registered(dir)?;
    let bundle = Bundle::open_with(dir, false)?;
    let names = bundle.spec.score_columns();
    let calibrated = match calibration.as_ref().map(|c| c.score.as_ref()) {
        Some(Some(s)) if !names.contains(s) => {
            return Err(Error::usage(format!(
                "--score {s}: model {} {} has score columns {}",
                bundle.spec.name,
                bundle.spec.version,
                names.join(", ")
            )));
        }
        Some(s) => Some(s.cloned().unwrap_or_else(|| names[0].clone())),
        None => None,
    };
    let columns = bundle.state.spec.input_columns();
    let mut profile =
        crate::reports::drift::ReferenceProfile::build(lf.clone(), &columns, bins, sketch, data)?;
    // The model's scores on the same rows, for score drift.
    let engine = crate::infer::Engine::load(
        &bundle.model_path,
        bundle.spec.model_format(),
        crate::spec::inference::DeviceChoice::Cpu,
        crate::spec::inference::Precision::F32,
        crate::infer::available_cores(),
        bundle.spec.features.len(),
        &bundle.spec.outputs,
    )?;
    let score = |lf: polars::prelude::LazyFrame, what: &str| -> Result<Vec<Vec<f32>>> {
        let matrix = to_matrix(&bundle.state, lf, what)?;
        engine.score(&matrix, 4096)
    };
    let input = lf.collect()?;
    let matrix = to_matrix(
        &bundle.state,
        polars::prelude::IntoLazy::lazy(input.clone()),
        data,
    )?;
    // The PCA of the same matrix the model is given, for multivariate drift.
    match crate::reports::multivariate::ReferenceReconstruction::fit(
        &matrix,
        &bundle.state.feature_names,
    ) {
        Ok(r) => profile.reconstruction = Some(r),
        Err(why) => tracing::warn!("no multivariate drift reference: {why}"),
    }
    let scores = engine.score(&matrix, 4096)?;
    drop(matrix);
    let cols: Vec<polars::prelude::Column> = names
        .iter()
        .zip(scores)
        .map(|(n, v)| polars::prelude::Column::new(n.as_str().into(), v))
        .collect();
    let scored = polars::prelude::DataFrame::new(input.height(), cols)?;
    let score_profile = crate::reports::drift::ReferenceProfile::build(
        polars::prelude::IntoLazy::lazy(scored),
        &names,
        bins,
        sketch,
        data,
    )?;
    profile.columns.extend(score_profile.columns);
    profile.scores = names.clone();
    if let (Some(c), Some(column)) = (calibration, calibrated) {
        let (rows, labels) = labelled_rows(&c)?;
        let k = names
            .iter()
            .position(|n| *n == column)
            .expect("a score column");
        let scores: Vec<f64> = score(polars::prelude::IntoLazy::lazy(rows), &c.rows_name)?
            .swap_remove(k)
            .into_iter()
            .map(f64::from)
            .collect();
        let what = match &c.labels {
            Some((_, l)) => format!("{} joined to {l}", c.rows_name),
            None => c.rows_name.clone(),
        };
        let perf = crate::reports::performance::ReferencePerformance::fit(
            &column,
            &c.label,
            &what,
            &scores,
            &labels,
            &c.thresholds,
        )
        .map_err(|e| Error::DataContract(format!("{what}: {e}")))?;
        profile.performance = Some(perf);
    }
    // Compact: the sketches hold thousands of numbers.
    let text = format!(
        "{}\n",
        serde_json::to_string(&profile).expect("profile serializes")
    );
    let path = replace_profile(dir, &bundle.spec, text.as_bytes())?;
    Ok((profile, path))
}

/// The calibration rows that have a label, and their labels (exit 3 for a label
/// that is not a boolean or 0/1, naming the column and row).
fn labelled_rows(c: &Calibration) -> Result<(polars::prelude::DataFrame, Vec<bool>)> {
    use polars::prelude::*;
    let rows = match &c.labels {
        None => c.rows.clone(),
        Some((labels, name)) => {
            let schema = c
                .rows
                .clone()
                .collect_schema()
                .map_err(|e| Error::from(e).context(c.rows_name.clone()))?;
            let lschema = labels
                .clone()
                .collect_schema()
                .map_err(|e| Error::from(e).context(name.clone()))?;
            let mut lf = labels.clone();
            let mut keep: Vec<Expr> = vec![col(c.label.as_str())];
            for k in c.on.iter().chain([&c.label]) {
                if lschema.get(k.as_str()).is_none() {
                    return Err(Error::DataContract(format!(
                        "labels {name}: no column `{k}`"
                    )));
                }
            }
            for k in &c.on {
                let dt = schema.get(k.as_str()).ok_or_else(|| {
                    Error::DataContract(format!("{}: no column `{k}` (--labels-on)", c.rows_name))
                })?;
                // Strict: a key of another type is an error, not a null that joins nothing.
                lf = lf.with_column(col(k.as_str()).strict_cast(dt.clone()));
                keep.push(col(k.as_str()));
            }
            let on: Vec<Expr> = c.on.iter().map(|k| col(k.as_str())).collect();
            let labels = lf.select(keep).collect().map_err(|e| {
                Error::DataContract(format!(
                    "labels {name}: the --labels-on columns do not read as the types of {}: {e}",
                    c.rows_name
                ))
            })?;
            let dup = labels
                .clone()
                .lazy()
                .group_by(on.clone())
                .agg([len().alias("__n")])
                .filter(col("__n").gt(lit(1)))
                .collect()?;
            if dup.height() > 0 {
                return Err(Error::DataContract(format!(
                    "labels {name}: {} key(s) have more than one label; --labels-on must \
                     identify one row",
                    dup.height()
                )));
            }
            let rows = c.rows.clone();
            let rows = if schema.get(c.label.as_str()).is_some() {
                rows.drop(by_name([c.label.as_str()], true, false))
            } else {
                rows
            };
            rows.join(
                labels.lazy(),
                on.clone(),
                on,
                JoinArgs::new(JoinType::Inner),
            )
        }
    };
    let df = rows
        .filter(col(c.label.as_str()).is_not_null())
        .collect()
        .map_err(|e| Error::from(e).context(c.rows_name.clone()))?;
    if df.column(c.label.as_str()).is_err() {
        return Err(Error::DataContract(format!(
            "{}: no label column `{}`",
            c.rows_name, c.label
        )));
    }
    // The same reading of labels as `scorch evaluate` and shadow runs: booleans or
    // numbers 0/1; null and NaN are unlabelled; anything else names its row.
    let parsed = crate::source::labels::labels_of(&df, &c.label, &c.on)
        .map_err(|e| e.context(c.rows_name.clone()))?;
    let mask: BooleanChunked = parsed.iter().map(|v| Some(v.is_some())).collect();
    let df = df.filter(&mask)?;
    let labels: Vec<bool> = parsed.into_iter().flatten().collect();
    Ok((df, labels))
}

/// The row-major `f32` matrix a model trained on `state` is given for `lf`: the
/// state applied, then each feature as `f32`, as a run's tensorizing makes it (the run's
/// fused path gives the same values: `tests/it/engine.rs`). A null, NaN or
/// infinite feature is a data error (exit 3) naming the column and row. `data`
/// names the rows in messages.
pub fn to_matrix(
    state: &FittedState,
    lf: polars::prelude::LazyFrame,
    data: &str,
) -> Result<Vec<f32>> {
    let features = crate::preprocess::apply(lf, state, &[])?
        .collect()
        .map_err(|e| Error::from(e).context(format!("preprocessing {data}")))?;
    let none = polars::prelude::DataFrame::empty();
    crate::infer::tensorize::to_row_major(&features, &state.feature_names, &none, &[], 0)
        .map_err(|e| e.context(data))
}

/// A bundle folder inside a registry (`<registry>/<name>/<version>/` beside the
/// model's `_audit.jsonl` or `_aliases/`) is immutable.
fn refuse_registered(dir: &Path) -> Result<()> {
    let model = dir.parent().unwrap_or(dir);
    if model.join("_audit.jsonl").is_file() || model.join("_aliases").is_dir() {
        return Err(Error::usage(format!(
            "{} is a registered model version, and registered versions are immutable: \
             profile a copy of the bundle with a new version in bundle.yaml, then \
             `scorch model register` it",
            dir.display()
        )));
    }
    Ok(())
}

/// The name of a reference profile file: its content's hash in it, so a new profile
/// never overwrites the file the current `bundle.yaml` pins.
fn profile_file_name(sha: &str) -> String {
    format!("reference.profile.{}.json", &sha[..12])
}

/// `bundle.yaml` text for `spec`: one `key: <JSON>` line per field (YAML reads JSON
/// flow style), the same layout `python/train_churn.py` writes.
fn bundle_yaml(spec: &BundleSpec, header: &str) -> String {
    let mut out = format!("# {header}\n");
    let v = serde_json::to_value(spec).expect("bundle spec serializes");
    for (k, v) in v.as_object().expect("a struct") {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out
}

/// Gives the bundle in `dir` a new reference profile (`profile`: its JSON bytes)
/// through staged files, validated before anything is replaced: the profile is
/// written under a content-addressed name, a staged `bundle.yaml` pinning it is
/// checked to open as a bundle with every hash, then renamed over `bundle.yaml`
/// (the one commit point); the previous profile file is removed last. A crash at
/// any moment leaves a bundle that opens: the old one or the new one.
pub fn replace_profile(dir: &Path, spec: &BundleSpec, profile: &[u8]) -> Result<PathBuf> {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(profile));
    let name = profile_file_name(&sha);
    let path = dir.join(&name);
    crate::storage::write_file_atomic(&path, profile)?;
    let mut new = spec.clone();
    let previous = spec.reference_profile.as_ref().map(|p| p.file.clone());
    new.reference_profile = Some(ProfilePin {
        file: name.clone(),
        sha256: sha,
    });
    let staged = dir.join(format!(".{BUNDLE_FILE}.{}.tmp", std::process::id()));
    crate::storage::write_file_atomic(
        &staged,
        bundle_yaml(
            &new,
            "Written by scorch profile (reference_profile) from the bundle's previous bundle.yaml.",
        )
        .as_bytes(),
    )?;
    // Validate the staged descriptor as the bundle it will be.
    let check = (|| -> Result<()> {
        let parsed: BundleSpec = crate::spec::load_yaml(&staged)?;
        parsed.validate().into_result(&staged)?;
        if serde_json::to_value(&parsed).ok() != serde_json::to_value(&new).ok() {
            return Err(Error::Internal(
                "the staged bundle.yaml does not read back".into(),
            ));
        }
        Ok(())
    })();
    if let Err(e) = check {
        let _ = std::fs::remove_file(&staged);
        if previous.as_deref() != Some(name.as_str()) {
            let _ = std::fs::remove_file(&path);
        }
        return Err(e);
    }
    let file = dir.join(BUNDLE_FILE);
    std::fs::rename(&staged, &file).map_err(|e| Error::io("replace", &file, e))?;
    Bundle::open(dir)?;
    if let Some(old) = previous.filter(|o| *o != name && !o.contains('/')) {
        let _ = std::fs::remove_file(dir.join(old));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(format: Option<ModelFormat>, model_file: &str) -> BundleSpec {
        let yaml = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/churn/1.0.0/bundle.yaml"),
        )
        .unwrap();
        let mut s: BundleSpec = serde_saphyr::from_str(&yaml).unwrap();
        s.format = format;
        s.model_file = model_file.to_string();
        s
    }

    #[test]
    fn the_format_is_declared_or_told_by_the_file_name() {
        assert_eq!(spec(None, "model.pt2").model_format(), ModelFormat::Aoti);
        assert_eq!(
            spec(None, "nested/Model.PT").model_format(),
            ModelFormat::Torchscript
        );
        // Declared wins over the name.
        assert_eq!(
            spec(Some(ModelFormat::Torchscript), "model.pt2").model_format(),
            ModelFormat::Torchscript
        );
        assert!(spec(None, "model.pt2").validate().is_empty());
        assert!(
            spec(Some(ModelFormat::Aoti), "model.bin")
                .validate()
                .is_empty()
        );
        let p = spec(None, "model.bin").validate();
        let text = format!("{p:?}");
        assert!(
            text.contains("format") && text.contains("model.bin"),
            "{text}"
        );
    }
}
