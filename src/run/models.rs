//! The models of a run, opened and checked before any data is read: the job's
//! model and, for a shadow run or a canary, the challenger, each with its engine;
//! and the checks of a job against its bundles, which `scorch validate` shares.

use std::path::Path;

use super::plan::Setup;
use crate::error::{Error, Result};
use crate::infer::Engine;
use crate::model::Bundle;
use crate::sink::manifest::*;
use crate::spec::inference::{DeviceChoice, Precision};
use crate::spec::job::{JobSpec, PreprocessingPin};
use crate::spec::template::{Redactor, Rendered, TemplateVars, render};

/// The opened models of a run.
pub(crate) struct Models {
    pub bundle: Bundle,
    /// The job's `model:` as rendered (for messages).
    pub model_dir: Rendered,
    /// The challenger (shadow run or canary): bundle, manifest entry, reference.
    pub second: Option<(Bundle, ModelInfo, Rendered)>,
    pub engine: Engine,
    pub engine2: Option<Engine>,
}

/// Opens the run's bundles, checks their pins (score columns of a canary, the
/// shadow's score column, the job's `preprocessing:` pin), and loads the models on
/// the device and in the precision asked for; records them in the manifest.
pub(crate) fn open_models(s: &mut Setup, m: &mut Manifest) -> Result<Models> {
    let opts = &s.opts;
    let job = &s.ctx.job;
    let (bundle, info, model_dir) = open_bundle(
        &opts.job_file,
        &opts.root,
        &job.model,
        "model",
        &s.ctx.vars,
        &mut s.ctx.redactor,
    )?;
    m.model = Some(info);
    let challenger = match (&opts.shadow, &job.rollout) {
        (Some(sh), _) => Some((sh.challenger.as_str(), "--challenger")),
        (None, Some(r)) => Some((r.challenger.as_str(), "rollout.challenger")),
        (None, None) => None,
    };
    let second = challenger
        .map(|(reference, field)| {
            open_bundle(
                &opts.job_file,
                &opts.root,
                reference,
                field,
                &s.ctx.vars,
                &mut s.ctx.redactor,
            )
        })
        .transpose()?;
    if let Some((b2, info2, _)) = &second {
        m.challenger = Some(info2.clone());
        if job.rollout.is_some() {
            check_canary(&opts.job_file, &bundle, b2)?;
        }
        if let Some(sh) = &opts.shadow {
            for b in [&bundle, b2] {
                if !b.spec.score_columns().contains(&sh.score) {
                    return Err(Error::config(
                        &opts.job_file,
                        format!(
                            "field `shadow.score`: model {} {} has no score column `{}` (it has {})",
                            b.spec.name,
                            b.spec.version,
                            sh.score,
                            b.spec.score_columns().join(", ")
                        ),
                    ));
                }
            }
        }
    }
    let state = &bundle.state;
    m.preprocessing = Some(PreprocessingInfo {
        name: state.spec.name.clone(),
        version: state.spec.version.clone(),
        state_hash: state.content_hash.clone(),
        path: "polars",
    });
    if let Some(pin) = &job.preprocessing {
        check_pin(&opts.job_file, pin, &bundle, &model_dir.redacted)?;
    }
    let inference = &s.inference;
    let device = DeviceChoice::parse(&inference.device)
        .map_err(|e| Error::config(&opts.job_file, format!("field `inference.device`: {e}")))?;
    let precision = Precision::parse(&inference.precision)
        .map_err(|e| Error::config(&opts.job_file, format!("field `inference.precision`: {e}")))?;
    m.inference.precision = precision.name().to_string();
    let load = |b: &Bundle| {
        Engine::load(
            &b.model_path,
            b.spec.model_format(),
            device,
            precision,
            s.threads,
            b.spec.features.len(),
            &b.spec.outputs,
        )
    };
    let engine = load(&bundle)?;
    let engine2 = second.as_ref().map(|(b, _, _)| load(b)).transpose()?;
    m.inference.device = format!("{:?}", engine.device()).to_lowercase();
    Ok(Models {
        bundle,
        model_dir,
        second,
        engine,
        engine2,
    })
}

/// The job's `preprocessing:` pin against the bundle's fitted state: a model is
/// never scored with preprocessing it was not trained on (exit 4).
pub(crate) fn check_pin(
    job_file: &Path,
    pin: &PreprocessingPin,
    bundle: &Bundle,
    shown: &str,
) -> Result<()> {
    let state = &bundle.state;
    let hash_ok = pin
        .state_hash
        .as_ref()
        .is_none_or(|h| *h == state.content_hash);
    if pin.name != state.spec.name || pin.version != state.spec.version || !hash_ok {
        return Err(Error::Model(format!(
            "{}: field `preprocessing` asks for {} {}{}, but model bundle {} was trained with {} {} ({}); \
             refusing to score with preprocessing the model was not trained on",
            job_file.display(),
            pin.name,
            pin.version,
            pin.state_hash
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default(),
            shown,
            state.spec.name,
            state.spec.version,
            state.content_hash
        )));
    }
    Ok(())
}

/// A canary's challenger writes the job's model's score columns (exit 4).
pub(crate) fn check_canary(job_file: &Path, model: &Bundle, challenger: &Bundle) -> Result<()> {
    if challenger.spec.score_columns() != model.spec.score_columns() {
        return Err(Error::Model(format!(
            "{}: field `rollout.challenger`: model {} {} writes score columns [{}], but the \
             job's model {} {} writes [{}]; a canary needs the same columns",
            job_file.display(),
            challenger.spec.name,
            challenger.spec.version,
            challenger.spec.score_columns().join(", "),
            model.spec.name,
            model.spec.version,
            model.spec.score_columns().join(", ")
        )));
    }
    Ok(())
}

/// `report.drift` needs the bundle's reference profile (exit 2).
pub(crate) fn require_reference<'b>(
    job_file: &Path,
    bundle: &'b Bundle,
    shown: &str,
) -> Result<&'b crate::reports::drift::ReferenceProfile> {
    bundle.reference.as_ref().ok_or_else(|| {
        Error::config(
            job_file,
            format!(
                "field `report.drift`: model bundle {shown} has no reference profile; \
                 create one with `scorch profile --bundle {shown} --data <training data>`"
            ),
        )
    })
}

/// `report.drift.multivariate` needs the bundle's reference profile with a PCA of
/// the model's features (exit 2).
pub(crate) fn reconstruction_counter(
    job_file: &Path,
    bundle: &Bundle,
    shown: &str,
) -> Result<crate::reports::multivariate::ReconstructionCounter> {
    let reference = require_reference(job_file, bundle, shown)?;
    let r = reference.reconstruction.as_ref().ok_or_else(|| {
        Error::config(
            job_file,
            format!(
                "field `report.drift.multivariate`: the reference profile of model bundle \
                 {shown} has no PCA of the model's features (profile version {}, or features \
                 that cannot give one: `scorch profile` says why); create one with \
                 `scorch profile --bundle {shown} --data <training data>`",
                reference.profile_version
            ),
        )
    })?;
    if r.features != bundle.state.feature_names {
        return Err(Error::config(
            job_file,
            format!(
                "field `report.drift.multivariate`: the reference profile of model bundle \
                 {shown} was fitted on other features than the bundle's preprocessing makes; \
                 profile it again with `scorch profile --bundle {shown} --data <training data>`"
            ),
        ));
    }
    Ok(crate::reports::multivariate::ReconstructionCounter::new(
        r.clone(),
    ))
}

/// `report.performance` needs the bundle's calibration (`scorch profile --labels`),
/// and every performance check's threshold among the thresholds counted (exit 2).
pub(crate) fn performance_counter(
    job_file: &Path,
    bundle: &Bundle,
    shown: &str,
    spec: &crate::spec::report::PerformanceSpec,
    checks: &[crate::spec::report::CheckSpec],
) -> Result<crate::reports::performance::PerformanceCounter> {
    let reference = bundle
        .reference
        .as_ref()
        .and_then(|r| r.performance.as_ref())
        .ok_or_else(|| {
            Error::config(
                job_file,
                format!(
                    "field `report.performance`: model bundle {shown} has no calibration; \
                     create one with `scorch profile --bundle {shown} --data <training data> \
                     --labels <label column> --calibration-data <labelled validation rows>`"
                ),
            )
        })?;
    let counter =
        crate::reports::performance::PerformanceCounter::new(reference.clone(), &spec.thresholds);
    let counted = &counter.expected.thresholds;
    for c in checks.iter().filter(|c| c.is_performance()) {
        if let Some(t) = c.threshold
            && !counted.contains(&t)
        {
            return Err(Error::config(
                job_file,
                format!(
                    "field `report.checks`: check {} is at threshold {t}, which is not among \
                     the thresholds counted ({}); add it to `report.performance.thresholds`",
                    c.label(),
                    fmt_list(counted)
                ),
            ));
        }
        if (c.min_change.is_some() || c.max_change.is_some())
            && c.metric.as_deref() != Some("estimated_auc")
        {
            let t = c.threshold.or(counted.first().copied()).unwrap_or(f64::NAN);
            if !reference.thresholds().contains(&t) {
                return Err(Error::config(
                    job_file,
                    format!(
                        "field `report.checks`: check {} compares with the reference at \
                         threshold {t}, but the reference was measured at {}; profile again \
                         with `--thresholds` listing it, or bound it with `min`/`max`",
                        c.label(),
                        fmt_list(&reference.thresholds())
                    ),
                ));
            }
        }
    }
    if counted.is_empty() {
        return Err(Error::config(
            job_file,
            "field `report.performance.thresholds`: no threshold (the reference profile lists \
             none): list one or more",
        ));
    }
    Ok(counter)
}

fn fmt_list(v: &[f64]) -> String {
    v.iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `job` asks for drift (and so needs a reference profile).
pub(crate) fn wants_drift(job: &JobSpec) -> bool {
    job.report.as_ref().is_some_and(|r| r.drift.is_some())
}

/// Opens the bundle a job field names (a folder or a registry reference), before
/// any data is read; returns it, its manifest entry and the rendered reference.
pub(crate) fn open_bundle(
    job_file: &Path,
    root: &Path,
    reference: &str,
    field: &str,
    vars: &TemplateVars,
    redactor: &mut Redactor,
) -> Result<(Bundle, ModelInfo, Rendered)> {
    let model_dir = render(reference, vars)
        .map_err(|e| Error::config(job_file, format!("field `{field}`: {e}")))?;
    redactor.add(&model_dir);
    let bundle_dir = crate::registry::bundle_dir(root, &model_dir.value)?;
    let bundle = Bundle::open(&bundle_dir)?;
    let info = ModelInfo {
        name: bundle.spec.name.clone(),
        version: bundle.spec.version.clone(),
        bundle: redactor.redact(
            &bundle_dir
                .strip_prefix(root)
                .unwrap_or(&bundle_dir)
                .to_string_lossy(),
        ),
        sha256: bundle.spec.model_sha256.clone(),
        format: bundle.spec.model_format().name().into(),
    };
    Ok((bundle, info, model_dir))
}
