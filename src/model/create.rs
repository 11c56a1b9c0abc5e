//! Making and checking bundles: `scorch bundle create` and `scorch bundle check`,
//! and the Python package's `scorch.save_bundle`, which calls [`create`] after
//! exporting the model.
//!
//! [`create`] probes the model for its outputs' shapes ([`crate::infer::probe_shapes`]),
//! hashes it, copies the model file and the fitted state into the bundle folder
//! when they live elsewhere, writes `bundle.yaml` atomically and then opens the
//! result the way a run does ([`check`]). Nothing is left half-written: the
//! descriptor is the last file written, and a bundle whose check fails is removed
//! again (`bundle.yaml` only; the copied files are harmless).

use std::fmt;
use std::path::{Path, PathBuf};

use super::Bundle;
use crate::error::{Error, Result};
use crate::preprocess::state::FittedState;
use crate::spec::bundle::{BUNDLE_FILE, BundleSpec, ModelFormat, OutputSpec, PreprocessingPin};
use crate::spec::inference::{DeviceChoice, Precision};

/// One requested output: its name and, when given, the per-row shape it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputArg {
    /// The score column (or prefix) name.
    pub name: String,
    /// `None`: as the probe finds it.
    pub shape: Option<Vec<i64>>,
}

impl OutputArg {
    /// Parses `NAME`, `NAME:K`, `NAME:[K]` or `NAME:[]` (a scalar).
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        let (name, shape) = match s.split_once(':') {
            None => (s, None),
            Some((n, sh)) => {
                let inner = sh.trim().trim_start_matches('[').trim_end_matches(']');
                let dims = inner
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(|d| match d.parse::<i64>() {
                        Ok(k) if k >= 1 => Ok(k),
                        _ => Err(format!(
                            "{s:?}: the shape after `:` is K (k scores per row, k >= 1) or [] \
                             (one score per row), not {sh:?}"
                        )),
                    })
                    .collect::<std::result::Result<Vec<i64>, String>>()?;
                if dims.len() > 1 {
                    return Err(format!(
                        "{s:?}: an output has one score per row ([]) or k per row (K); \
                         scorch writes no deeper shapes"
                    ));
                }
                (n, Some(dims))
            }
        };
        let name = name.trim();
        if !crate::spec::is_simple_name(name) {
            return Err(format!(
                "{s:?}: an output name is 1-128 letters, digits, `_`, `-` or `.`"
            ));
        }
        Ok(Self {
            name: name.to_string(),
            shape,
        })
    }
}

/// What to make a bundle from.
#[derive(Debug, Clone)]
pub struct NewBundle {
    /// The bundle folder (created if missing).
    pub dir: PathBuf,
    /// The model file; copied into `dir` when it is elsewhere.
    pub model: PathBuf,
    /// The fitted preprocessing state; copied into `dir` when it is elsewhere.
    pub state: PathBuf,
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    /// `None`: from the model file's extension.
    pub format: Option<ModelFormat>,
    /// Empty: one name per output the probe finds (`score`, or `score_0`, `score_1`, …).
    pub outputs: Vec<OutputArg>,
    /// Replace an existing `bundle.yaml` in `dir`.
    pub force: bool,
}

/// A bundle that opened, loaded and ran on a probe, for printing.
#[derive(Debug, Clone)]
pub struct Checked {
    pub dir: PathBuf,
    pub spec: BundleSpec,
    /// Why the model was not run here (an AOTInductor package for another device),
    /// when it was not.
    pub not_run: Option<String>,
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.spec;
        writeln!(f, "ok  {}: {} {}", self.dir.display(), s.name, s.version)?;
        writeln!(
            f,
            "  model:         {} ({}, sha256 {}…)",
            s.model_file,
            s.model_format().name(),
            &s.model_sha256[..12.min(s.model_sha256.len())]
        )?;
        writeln!(f, "  features:      {}", s.features.len())?;
        let outs: Vec<String> = s
            .outputs
            .iter()
            .map(|o| format!("{} {:?}", o.name, o.shape))
            .collect();
        writeln!(f, "  outputs:       {}", outs.join(", "))?;
        writeln!(
            f,
            "  preprocessing: {} {} ({})",
            s.preprocessing.name, s.preprocessing.version, s.preprocessing.state_hash
        )?;
        let profile = match &s.reference_profile {
            Some(p) => p.file.as_str(),
            None => "none (drift reports need one: scorch profile)",
        };
        write!(f, "  reference:     {profile}")?;
        match &self.not_run {
            Some(why) => write!(f, "\n  not run here:  {why}"),
            None => write!(f, "\n  probe:         ran on 2 rows on the cpu"),
        }
    }
}

/// Opens the bundle in `dir` as a run does (every hash and pin), then loads the
/// model on the CPU and runs it on a probe against its declared outputs. An
/// AOTInductor package compiled for CUDA is checked from its metadata only, on a
/// machine without CUDA. Errors are model errors (exit 4).
pub fn check(dir: &Path) -> Result<Checked> {
    let bundle = Bundle::open(dir)?;
    let format = bundle.spec.model_format();
    let mut not_run = None;
    if format == ModelFormat::Aoti {
        let meta = crate::infer::aoti::read_metadata(&bundle.model_path)?;
        if crate::infer::aoti::device_key(&meta) == "cuda" {
            bundle.check_model_file(None)?;
            not_run = Some("an AOTInductor package compiled for cuda (metadata checked)".into());
        }
    }
    if not_run.is_none() {
        bundle.check_model_file(Some(tch::Device::Cpu))?;
        crate::infer::Engine::load(
            &bundle.model_path,
            format,
            DeviceChoice::Cpu,
            Precision::F32,
            1,
            bundle.spec.features.len(),
            &bundle.spec.outputs,
        )?;
    }
    Ok(Checked {
        dir: dir.to_path_buf(),
        spec: bundle.spec,
        not_run,
    })
}

/// Makes a bundle (see the module docs) and returns its check.
pub fn create(new: &NewBundle) -> Result<Checked> {
    // The name and version first: they are the flags most often mistyped.
    if !crate::spec::is_simple_name(&new.name) {
        return Err(Error::usage(format!(
            "--name {:?}: a model name is 1-128 letters, digits, `_`, `-` or `.`",
            new.name
        )));
    }
    if new.version.trim().is_empty() || new.version.contains(['/', '\\']) {
        return Err(Error::usage(format!(
            "--version {:?}: a version is a non-empty name without `/` (e.g. 1.0.0)",
            new.version
        )));
    }
    super::refuse_registered(&new.dir)?;
    let descriptor = new.dir.join(BUNDLE_FILE);
    if descriptor.exists() && !new.force {
        return Err(Error::usage(format!(
            "{} exists: pass --force to replace it, or choose another folder",
            descriptor.display()
        )));
    }
    let format = match new.format {
        Some(f) => f,
        None => model_format_of(&new.model)?,
    };
    for (what, path) in [("--model", &new.model), ("--state", &new.state)] {
        if !path.is_file() {
            return Err(Error::usage(format!(
                "{what}: {} is not a file",
                path.display()
            )));
        }
    }
    let state = FittedState::load(&new.state)?;
    let shapes = crate::infer::probe_shapes(&new.model, format, state.feature_names.len())?;
    let outputs = name_outputs(&new.model, &new.outputs, &shapes)?;
    std::fs::create_dir_all(&new.dir).map_err(|e| Error::io("create", &new.dir, e))?;
    let model_file = place(&new.model, &new.dir)?;
    let state_file = place(&new.state, &new.dir)?;
    let placed = new.dir.join(&model_file);
    let model_sha256 =
        crate::storage::sha256_file(&placed).map_err(|e| Error::io("hash", &placed, e))?;
    let spec = BundleSpec {
        name: new.name.clone(),
        version: new.version.clone(),
        description: new.description.clone().filter(|d| !d.trim().is_empty()),
        format: Some(format),
        model_file,
        model_sha256,
        features: state.feature_names.clone(),
        outputs,
        preprocessing: PreprocessingPin {
            name: state.spec.name.clone(),
            version: state.spec.version.clone(),
            state_file,
            state_hash: state.content_hash.clone(),
        },
        reference_profile: None,
    };
    spec.validate()
        .into_result(&descriptor)
        .map_err(|e| e.into_kind(crate::error::Kind::Config))?;
    let text = super::bundle_yaml(&spec, "Written by scorch bundle create.");
    crate::storage::write_file_atomic(&descriptor, text.as_bytes())?;
    check(&new.dir).inspect_err(|_| {
        let _ = std::fs::remove_file(&descriptor);
    })
}

/// The format a model file's name implies, or a usage error saying how to set it.
fn model_format_of(model: &Path) -> Result<ModelFormat> {
    let name = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    ModelFormat::from_file_name(&name).ok_or_else(|| {
        Error::usage(format!(
            "cannot tell the format of {} from its name: pass --format torchscript or \
             --format aoti (or name it .pt / .pt2)",
            model.display()
        ))
    })
}

/// The bundle's outputs from the requested names and the probed shapes.
fn name_outputs(model: &Path, asked: &[OutputArg], shapes: &[Vec<i64>]) -> Result<Vec<OutputSpec>> {
    if asked.is_empty() {
        let name = |i: usize| match shapes.len() {
            1 => "score".to_string(),
            _ => format!("score_{i}"),
        };
        return Ok(shapes
            .iter()
            .enumerate()
            .map(|(i, s)| OutputSpec {
                name: name(i),
                shape: s.clone(),
            })
            .collect());
    }
    if asked.len() != shapes.len() {
        return Err(Error::usage(format!(
            "{} returns {} output(s) (per-row shapes {shapes:?}), but {} --output name(s) were \
             given: name each output, in the order the model returns them",
            model.display(),
            shapes.len(),
            asked.len()
        )));
    }
    asked
        .iter()
        .zip(shapes)
        .map(|(a, probed)| {
            let scalar = |s: &[i64]| s.is_empty() || s == [1];
            match &a.shape {
                Some(want) if want != probed && !(scalar(want) && scalar(probed)) => {
                    Err(Error::Model(format!(
                        "--output {}:{want:?}: {} returns per-row shape {probed:?} for it",
                        a.name,
                        model.display()
                    )))
                }
                Some(want) => Ok(OutputSpec {
                    name: a.name.clone(),
                    shape: want.clone(),
                }),
                None => Ok(OutputSpec {
                    name: a.name.clone(),
                    shape: probed.clone(),
                }),
            }
        })
        .collect()
}

/// `file`'s name inside `dir`: the file itself when it is already there, else a
/// copy (refusing to overwrite a different file of that name).
fn place(file: &Path, dir: &Path) -> Result<String> {
    let name = file
        .file_name()
        .ok_or_else(|| Error::usage(format!("{} is not a file", file.display())))?
        .to_string_lossy()
        .into_owned();
    let target = dir.join(&name);
    let same = match (file.canonicalize(), target.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        let bytes = std::fs::read(file).map_err(|e| Error::io("read", file, e))?;
        crate::storage::write_file_atomic(&target, &bytes)?;
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_flags_parse_names_and_shapes() {
        let p = |s: &str| OutputArg::parse(s);
        assert_eq!(p("score").unwrap().shape, None);
        assert_eq!(p("score:[]").unwrap().shape, Some(vec![]));
        assert_eq!(p("probs:3").unwrap().shape, Some(vec![3]));
        assert_eq!(p("probs:[3]").unwrap().shape, Some(vec![3]));
        for bad in ["", "a b", "x:0", "x:-1", "x:2,3", "x:abc", ":3"] {
            assert!(p(bad).is_err(), "{bad:?} parsed");
        }
    }
}
