//! `bundle.yaml`: the descriptor of a model bundle, `models/<name>/<version>/` with `bundle.yaml`, the model file
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

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::is_hash;
use crate::error::Problems;

/// Name of the bundle descriptor inside a bundle folder.
pub const BUNDLE_FILE: &str = "bundle.yaml";

/// A bundle's file must lie inside its folder: a relative path without `..`, so
/// that a copied or registered bundle carries everything it names.
pub fn inside_bundle(path: &str) -> Result<(), String> {
    use std::path::Component;
    let p = Path::new(path);
    if path.trim().is_empty() {
        return Err("must name a file inside the bundle folder".into());
    }
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "`{path}` is outside the bundle folder (an absolute path or `..`): a bundle must \
             hold its own files, so that a copied or registered bundle is whole; copy the \
             file into the bundle"
        ));
    }
    Ok(())
}

/// The bundle descriptor.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleSpec {
    /// Model name.
    pub name: String,
    /// Model version; bundles are immutable, a new model is a new version.
    pub version: String,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Serialization format of the model file: `torchscript` (`torch.jit.trace` /
    /// `script` + `save`) or `aoti` (a `.pt2` package from
    /// `torch._inductor.aoti_compile_and_package`). When absent, inferred from
    /// `model_file`'s extension: `.pt2` is `aoti`; `.pt`, `.pth`, `.ts`, `.jit`
    /// and `.torchscript` are `torchscript`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ModelFormat>,
    /// The model file, relative to the bundle folder.
    pub model_file: String,
    /// Hex SHA-256 of the model file.
    pub model_sha256: String,
    /// The model's input columns, in order; must equal the preprocessing state's features.
    pub features: Vec<String>,
    /// The model's outputs, in the order the model returns them (a tuple when more than one).
    pub outputs: Vec<OutputSpec>,
    /// The preprocessing the model was trained with.
    pub preprocessing: PreprocessingPin,
    /// A profile of the training data for drift reports (`scorch profile` writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_profile: Option<ProfilePin>,
}

/// The reference profile a bundle carries.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePin {
    /// The profile file, relative to the bundle folder.
    pub file: String,
    /// Its hex SHA-256.
    pub sha256: String,
}

/// Supported model formats.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModelFormat {
    /// A TorchScript archive (`torch.jit.trace` / `torch.jit.script` + `save`).
    Torchscript,
    /// An AOTInductor package (`torch.export` + `torch._inductor.aoti_compile_and_package`).
    Aoti,
}

impl ModelFormat {
    /// The name used in `bundle.yaml` and the manifest.
    pub fn name(self) -> &'static str {
        match self {
            Self::Torchscript => "torchscript",
            Self::Aoti => "aoti",
        }
    }

    /// The format a model file's extension implies, if it implies one.
    pub fn from_file_name(file: &str) -> Option<Self> {
        let ext = Path::new(file).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "pt2" => Some(Self::Aoti),
            "pt" | "pth" | "ts" | "jit" | "torchscript" => Some(Self::Torchscript),
            _ => None,
        }
    }
}

/// One model output.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Score column name (or prefix, for vector outputs: `<name>_0`, `<name>_1`, …).
    pub name: String,
    /// Per-row shape: `[]` or `[1]` for a scalar, `[k]` for a vector of k scores.
    #[serde(default)]
    pub shape: Vec<i64>,
}

impl OutputSpec {
    /// Number of score columns this output produces.
    pub fn width(&self) -> usize {
        self.shape.iter().product::<i64>().max(1) as usize
    }
    /// The score column names.
    pub fn columns(&self) -> Vec<String> {
        if self.shape.len() <= 1 && self.width() == 1 {
            vec![self.name.clone()]
        } else {
            (0..self.width())
                .map(|i| format!("{}_{i}", self.name))
                .collect()
        }
    }
}

/// The preprocessing a bundle pins.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreprocessingPin {
    /// Spec name.
    pub name: String,
    /// Spec version.
    pub version: String,
    /// The fitted state file, relative to the bundle folder.
    pub state_file: String,
    /// The state's content hash (`sha256:<hex>`).
    pub state_hash: String,
}

impl BundleSpec {
    /// Pure checks of the descriptor.
    pub fn validate(&self) -> Problems {
        let mut p = Problems::new();
        if !crate::spec::is_simple_name(&self.name) {
            p.push("name", "must be 1-128 letters, digits, `_`, `-` or `.`");
        }
        if self.version.trim().is_empty() {
            p.push("version", "must not be empty");
        }
        if self.model_sha256.len() != 64
            || !self.model_sha256.bytes().all(|b| b.is_ascii_hexdigit())
        {
            p.push("model_sha256", "must be 64 hex digits");
        }
        if self.format.is_none() && ModelFormat::from_file_name(&self.model_file).is_none() {
            p.push(
                "format",
                format!(
                    "cannot tell the format of `{}` from its name: set `format: torchscript` \
                     or `format: aoti`",
                    self.model_file
                ),
            );
        }
        if self.features.is_empty() {
            p.push("features", "must list the model's input columns");
        }
        if self.outputs.is_empty() {
            p.push("outputs", "must list at least one output");
        }
        let mut cols = std::collections::BTreeSet::new();
        for (i, o) in self.outputs.iter().enumerate() {
            if o.shape.len() > 1 || o.shape.iter().any(|&d| d < 1) {
                p.push(
                    format!("outputs[{i}].shape"),
                    "must be [] (scalar) or [k] with k >= 1",
                );
            }
            for c in o.columns() {
                if super::RESERVED_COLUMNS.contains(&c.as_str()) || !cols.insert(c.clone()) {
                    p.push(
                        format!("outputs[{i}].name"),
                        format!("score column `{c}` clashes with another column"),
                    );
                }
            }
        }
        if !is_hash(&self.preprocessing.state_hash) {
            p.push(
                "preprocessing.state_hash",
                "must look like `sha256:<64 hex digits>`",
            );
        }
        for (field, path) in self.files() {
            if let Err(e) = inside_bundle(path) {
                p.push(field, e);
            }
        }
        p
    }

    /// The bundle's files, each with the field that names it.
    pub fn files(&self) -> Vec<(&'static str, &str)> {
        let mut f = vec![
            ("model_file", self.model_file.as_str()),
            (
                "preprocessing.state_file",
                self.preprocessing.state_file.as_str(),
            ),
        ];
        if let Some(r) = &self.reference_profile {
            f.push(("reference_profile.file", r.file.as_str()));
        }
        f
    }

    /// The model file's format: as declared, or inferred from its extension
    /// (`validate` refuses a bundle where neither says).
    pub fn model_format(&self) -> ModelFormat {
        self.format
            .or_else(|| ModelFormat::from_file_name(&self.model_file))
            .unwrap_or(ModelFormat::Torchscript)
    }

    /// All score column names, in output order.
    pub fn score_columns(&self) -> Vec<String> {
        self.outputs.iter().flat_map(|o| o.columns()).collect()
    }
}
