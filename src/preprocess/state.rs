//! The fitted state of a preprocessing spec: the spec itself plus every value
//! learned from the training data, sealed by a content hash.
//!
//! The hash is `sha256:` + the SHA-256 of the canonical JSON of
//! `{format_version, spec, fitted, feature_names}` (serde_json's field order,
//! shortest round-trip floats). Provenance (`fitted_on`) is informational and not
//! hashed, so refitting on the same rows gives the same hash, however they are split
//! into files or batches (fitting works on one chunk). Loading a state
//! whose stored hash does not match its content is a model-bundle error (exit 4).

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::preprocess::spec::{PreprocessSpec, Scalar};

/// Version of the state file layout.
pub const STATE_FORMAT_VERSION: u32 = 1;

/// The errors of reading a fitted state (exit 4: it belongs to a bundle), with
/// the I/O or JSON error as the source.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read preprocessing state {}: {source}", .path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("preprocessing state {} is not valid: {source}", .path.display())]
    Invalid {
        path: std::path::PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

impl crate::error::LayerError for StateError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Model
    }
}

/// A fitted preprocessing state (`preprocess.state.json` in a model bundle).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FittedState {
    /// Layout version of this file.
    pub format_version: u32,
    /// The spec that was fitted, verbatim.
    pub spec: PreprocessSpec,
    /// Learned values, one entry per feature of the spec, one per step within it.
    pub fitted: Vec<Vec<FittedStep>>,
    /// The model's input columns, in order, after one-hot expansion.
    pub feature_names: Vec<String>,
    /// Where and when it was fitted (not covered by the hash).
    pub fitted_on: Provenance,
    /// `sha256:<hex>` over the fields above except `fitted_on`.
    pub content_hash: String,
}

/// What the state was fitted on.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The data path or glob as given to `scorch preprocess fit`.
    pub data: String,
    /// Rows used.
    pub rows: u64,
    /// When, RFC 3339 UTC.
    pub fitted_at: String,
}

/// The learned value of one step (`none` for steps that learn nothing).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum FittedStep {
    None,
    FillValue { value: Scalar },
    Standardize { mean: f64, std: f64 },
    MinMax { min: f64, max: f64 },
    Vocabulary { categories: Vec<String> },
    Boundaries { boundaries: Vec<f64> },
}

#[derive(Serialize)]
struct Hashed<'a> {
    format_version: u32,
    spec: &'a PreprocessSpec,
    fitted: &'a [Vec<FittedStep>],
    feature_names: &'a [String],
}

impl FittedState {
    /// The hash the content should carry.
    pub fn compute_hash(&self) -> String {
        let canonical = serde_json::to_vec(&Hashed {
            format_version: self.format_version,
            spec: &self.spec,
            fitted: &self.fitted,
            feature_names: &self.feature_names,
        })
        .expect("state serializes");
        format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
    }

    /// Sets `content_hash` from the content.
    pub fn seal(mut self) -> Self {
        self.content_hash = self.compute_hash();
        self
    }

    /// Reads a state file and verifies its hash and shape.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| StateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses a state's JSON and verifies its hash and shape; `path` names where
    /// it came from in messages.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let state: FittedState =
            serde_json::from_str(text).map_err(|source| StateError::Invalid {
                path: path.to_path_buf(),
                source,
            })?;
        if state.format_version != STATE_FORMAT_VERSION {
            return Err(Error::Model(format!(
                "preprocessing state {} has format_version {}, this scorch reads {STATE_FORMAT_VERSION}",
                path.display(),
                state.format_version
            )));
        }
        let actual = state.compute_hash();
        if actual != state.content_hash {
            return Err(Error::Model(format!(
                "preprocessing state {} was modified after fitting: content hash is {actual}, file says {}",
                path.display(),
                state.content_hash
            )));
        }
        if state.fitted.len() != state.spec.features.len()
            || state
                .fitted
                .iter()
                .zip(&state.spec.features)
                .any(|(f, s)| f.len() != s.steps.len())
        {
            return Err(Error::Model(format!(
                "preprocessing state {}: fitted values do not line up with the spec's features and steps",
                path.display()
            )));
        }
        Ok(state)
    }

    /// The state as the pretty JSON [`save`](Self::save) writes.
    pub fn to_json(&self) -> String {
        let text = serde_json::to_string_pretty(self).expect("state serializes");
        format!("{text}\n")
    }

    /// Writes the state as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::storage::write_file_atomic(path, self.to_json().as_bytes())
    }
}
