//! `scorch validate`: checks jobs, model bundles and preprocessing specs without
//! reading any data, and reports every problem with its file and field.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::{Error, ExitCode};
use crate::model::Bundle;
use crate::spec::bundle::BUNDLE_FILE;
use crate::spec::job::{DeltaSource, JobSpec, SourceSpec};
use crate::spec::template::{TemplateVars, render};

/// The YAML files scorch reads, for [`json_schema`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// A job file (`jobs/*.yaml`).
    Job,
    /// A model bundle's `bundle.yaml`.
    Bundle,
    /// A preprocessing spec (`preprocess/*.yaml`).
    Preprocessing,
    /// A data contract (`schemas/*.yaml`).
    Contract,
    /// The connection profiles (`profiles.yaml`).
    Profiles,
}

impl SchemaKind {
    /// Every kind, in the order `scorch schema` documents them.
    pub const ALL: [SchemaKind; 5] = [
        SchemaKind::Job,
        SchemaKind::Bundle,
        SchemaKind::Preprocessing,
        SchemaKind::Contract,
        SchemaKind::Profiles,
    ];

    /// The kind's name (`job`, …), as `scorch schema` takes it.
    pub fn name(self) -> &'static str {
        match self {
            SchemaKind::Job => "job",
            SchemaKind::Bundle => "bundle",
            SchemaKind::Preprocessing => "preprocessing",
            SchemaKind::Contract => "contract",
            SchemaKind::Profiles => "profiles",
        }
    }
}

/// The JSON Schema (draft 7, which editors' YAML plugins read) of one kind of YAML
/// file, generated from the structs scorch deserializes it into: their doc
/// comments are the descriptions, `deny_unknown_fields` is
/// `additionalProperties: false`, serde's defaults are the defaults. The schema
/// checks shape and types; `scorch validate` also checks what a schema cannot say
/// (templates, bounds across fields, files that must exist).
pub fn json_schema(kind: SchemaKind) -> serde_json::Value {
    use schemars::generate::SchemaSettings;
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = match kind {
        SchemaKind::Job => generator.into_root_schema_for::<JobSpec>(),
        SchemaKind::Bundle => generator.into_root_schema_for::<crate::spec::bundle::BundleSpec>(),
        SchemaKind::Preprocessing => {
            generator.into_root_schema_for::<crate::preprocess::spec::PreprocessSpec>()
        }
        SchemaKind::Contract => generator.into_root_schema_for::<crate::contract::Contract>(),
        SchemaKind::Profiles => generator.into_root_schema_for::<crate::spec::profiles::Profiles>(),
    };
    schema.insert(
        "title".into(),
        format!("scorch {} file", kind.name()).into(),
    );
    schema.to_value()
}

/// The result of validating one file.
#[derive(Debug)]
pub struct Checked {
    pub file: PathBuf,
    pub kind: &'static str,
    pub errors: Vec<Error>,
}

/// What a YAML file is, judged by where it lives.
fn kind_of(path: &Path) -> &'static str {
    if path.file_name().is_some_and(|n| n == BUNDLE_FILE) {
        "bundle"
    } else if path
        .file_name()
        .is_some_and(|n| n == crate::spec::profiles::PROFILES_FILE)
    {
        "profiles"
    } else if path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "preprocess")
    {
        "preprocess"
    } else if path
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == "schemas")
    {
        "contract"
    } else {
        "job"
    }
}

/// Expands folders into their `*.yaml` / `*.yml` files (recursively), sorted.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out).map_err(|e| Error::io("list", p, e))?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(Error::usage(format!("{} does not exist", p.display())));
        }
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
    Ok(())
}

/// Validates one file; `root` is the project folder jobs' paths resolve against,
/// `profiles` the connection profiles file.
pub fn check_file(path: &Path, root: &Path, profiles: &Path) -> Checked {
    let kind = kind_of(path);
    let errors = match kind {
        "bundle" => Bundle::open(path.parent().unwrap_or(Path::new(".")))
            .and_then(|b| b.check_model_file(None))
            .err()
            .into_iter()
            .collect(),
        "preprocess" => crate::preprocess::load_spec(path)
            .err()
            .into_iter()
            .collect(),
        "contract" => crate::contract::Contract::load(path)
            .err()
            .into_iter()
            .collect(),
        "profiles" => crate::spec::profiles::load(path)
            .err()
            .into_iter()
            .collect(),
        _ => check_job(path, root, profiles),
    };
    Checked {
        file: path.to_path_buf(),
        kind,
        errors,
    }
}

/// Checks a warehouse source (`source.KIND`): its profile, and that its SQL file
/// reads, its placeholders parse in the profile's parameter style and every
/// `{{ params.NAME }}` has a value.
fn warehouse_query(
    kind: &str,
    profile: Result<crate::source::bind::Style, Error>,
    query: &str,
    params: &std::collections::BTreeMap<String, String>,
    (path, root, vars): (&Path, &Path, &TemplateVars),
    errors: &mut Vec<Error>,
) {
    let field = |name: &str, t: &str| {
        render(t, vars).map_err(|e| Error::config(path, format!("field `{name}`: {e}")))
    };
    let style = match profile {
        Ok(s) => s,
        Err(e) => {
            errors.push(e.context(format!("{}: field `source.{kind}.profile`", path.display())));
            crate::source::bind::Style::Dollar
        }
    };
    match field(&format!("source.{kind}.query"), query) {
        Ok(q) => {
            let f = root.join(&q.value);
            match std::fs::read_to_string(&f) {
                Ok(text) => match crate::source::bind::rewrite_with(&text, style) {
                    Ok((_, placeholders)) => {
                        let mut seen = std::collections::BTreeSet::new();
                        for ph in placeholders {
                            if let crate::source::bind::Placeholder::Param(n) = ph
                                && !params.contains_key(&n)
                                && seen.insert(n.clone())
                            {
                                errors.push(Error::config(
                                    &f,
                                    format!("uses `{{{{ params.{n} }}}}`, but the job's `source.{kind}.params` has no `{n}`"),
                                ));
                            }
                        }
                    }
                    Err(e) => errors.push(Error::config(&f, e)),
                },
                Err(e) => errors.push(Error::config(
                    path,
                    format!(
                        "field `source.{kind}.query`: cannot read {}: {e}",
                        f.display()
                    ),
                )),
            }
        }
        Err(e) => errors.push(e),
    }
    for (k, v) in params {
        if let Err(e) = field(&format!("source.{kind}.params.{k}"), v) {
            errors.push(e);
        }
    }
}

/// The job's source: its templates render, Delta's version and timestamp parse
/// (with the run's parsers), warehouse queries and profiles, the SQL file.
fn check_source(
    job: &JobSpec,
    (path, root, vars): (&Path, &Path, &TemplateVars),
    profiles: &Path,
    errors: &mut Vec<Error>,
) {
    let field = |name: &str, t: &str| {
        render(t, vars).map_err(|e| Error::config(path, format!("field `{name}`: {e}")))
    };
    match &job.source {
        SourceSpec::Parquet(p) => {
            if let Err(e) = field("source.parquet.path", &p.path) {
                errors.push(e);
            }
        }
        SourceSpec::Delta(d) => {
            if let Err(e) = field("source.delta.path", &d.path) {
                errors.push(e);
            }
            // The run's own parsers (`DeltaSource::parse_*`), so both say the same.
            type Parse = fn(&str) -> std::result::Result<(), String>;
            let parsed: [(&str, Option<&String>, Parse); 2] = [
                ("source.delta.version", d.version.as_ref(), |t| {
                    DeltaSource::parse_version(t).map(drop)
                }),
                ("source.delta.timestamp", d.timestamp.as_ref(), |t| {
                    DeltaSource::parse_timestamp(t).map(drop)
                }),
            ];
            for (name, text, parse) in parsed {
                let Some(text) = text else { continue };
                match field(name, text).map(|r| parse(&r.value)) {
                    Ok(Ok(())) => {}
                    Ok(Err(m)) => errors.push(Error::config(path, format!("field `{name}`: {m}"))),
                    Err(e) => errors.push(e),
                }
            }
            for (k, v) in &d.filters {
                if let Err(e) = field(&format!("source.delta.filters.{k}"), v) {
                    errors.push(e);
                }
            }
        }
        SourceSpec::Postgres(pg) => warehouse_query(
            "postgres",
            crate::spec::profiles::postgres(profiles, &pg.profile)
                .map(|_| crate::source::bind::Style::Dollar),
            &pg.query,
            &pg.params,
            (path, root, vars),
            errors,
        ),
        SourceSpec::Adbc(a) => warehouse_query(
            "adbc",
            crate::spec::profiles::adbc(profiles, &a.profile)
                .map(|p| crate::source::adbc::param_style(&p)),
            &a.query,
            &a.params,
            (path, root, vars),
            errors,
        ),
        SourceSpec::Sql(s) => match field("source.sql.query", &s.query) {
            Ok(q) => {
                let f = root.join(&q.value);
                match std::fs::read_to_string(&f) {
                    Ok(text) if text.trim().is_empty() => errors.push(Error::config(
                        path,
                        format!("field `source.sql.query`: {} is empty", f.display()),
                    )),
                    Ok(text) => {
                        if let Err(e) = render(&text, vars) {
                            errors.push(Error::config(&f, e));
                        }
                    }
                    Err(e) => errors.push(Error::config(
                        path,
                        format!("field `source.sql.query`: cannot read {}: {e}", f.display()),
                    )),
                }
            }
            Err(e) => errors.push(e),
        },
    }
}

/// The job's model: the bundle opens, its model file suits the device, and the
/// job's report, pin and drift settings hold against it (the run plan's checks).
fn check_model(
    job: &JobSpec,
    (path, root, vars): (&Path, &Path, &TemplateVars),
    errors: &mut Vec<Error>,
) {
    let field = |name: &str, t: &str| {
        render(t, vars).map_err(|e| Error::config(path, format!("field `{name}`: {e}")))
    };
    match field("model", &job.model) {
        Ok(m) => match crate::registry::bundle_dir(root, &m.value).and_then(|d| Bundle::open(&d)) {
            Ok(b) => {
                // An AOTInductor package against the job's device and this machine.
                let device =
                    match crate::spec::inference::DeviceChoice::parse(&job.inference.device) {
                        Ok(crate::spec::inference::DeviceChoice::Cpu) => Some(tch::Device::Cpu),
                        Ok(crate::spec::inference::DeviceChoice::Cuda(n)) => {
                            Some(tch::Device::Cuda(n))
                        }
                        _ => None,
                    };
                if let Err(e) = b.check_model_file(device) {
                    errors.push(e.context(format!("{}: field `model`", path.display())));
                }
                // The same checks of the job against its bundle as a run's plan.
                if crate::run::models::wants_drift(job)
                    && let Err(e) = crate::run::models::require_reference(path, &b, &m.value)
                {
                    errors.push(e);
                }
                if let Some(r) = &job.report
                    && r.drift.as_ref().is_some_and(|d| d.multivariate.is_some())
                    && let Err(e) = crate::run::models::reconstruction_counter(path, &b, &m.value)
                {
                    errors.push(e);
                }
                if let Some(r) = &job.report
                    && let Some(perf) = &r.performance
                    && let Err(e) =
                        crate::run::models::performance_counter(path, &b, &m.value, perf, &r.checks)
                {
                    errors.push(e);
                }
                if let Some(pin) = &job.preprocessing
                    && let Err(e) = crate::run::models::check_pin(path, pin, &b, &m.value)
                {
                    errors.push(e);
                }
            }
            Err(e) => errors.push(e.context(format!("{}: field `model`", path.display()))),
        },
        Err(e) => errors.push(e),
    }
}

fn check_job(path: &Path, root: &Path, profiles: &Path) -> Vec<Error> {
    let job = match JobSpec::load(path) {
        Ok(j) => j,
        Err(e) => return vec![e],
    };
    let mut errors = Vec::new();
    // Render with a fixed date; unset environment variables are reported.
    let vars = TemplateVars::new(
        NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid"),
        &job.secrets,
    );
    let field = |name: &str, t: &str| {
        render(t, &vars).map_err(|e| Error::config(path, format!("field `{name}`: {e}")))
    };
    if let Err(e) = crate::run::context::output_path(path, &job.output.path, "output.path", &vars) {
        errors.push(e);
    }
    check_source(&job, (path, root, &vars), profiles, &mut errors);
    if let Some(c) = &job.contract
        && let Err(e) = crate::contract::Contract::load(&root.join(c))
    {
        errors.push(e.context(format!("{}: field `contract`", path.display())));
    }
    if let Some(name) = &job.storage_profile
        && let Err(e) = crate::spec::profiles::storage(profiles, name)
    {
        errors.push(e.context(format!("{}: field `storage_profile`", path.display())));
    }
    check_model(&job, (path, root, &vars), &mut errors);
    if let Some(r) = &job.rollout {
        // The canary's challenger opens and writes the same score columns.
        let job_model = field("model", &job.model)
            .ok()
            .and_then(|m| crate::registry::bundle_dir(root, &m.value).ok())
            .and_then(|d| Bundle::open(&d).ok());
        match field("rollout.challenger", &r.challenger)
            .and_then(|c| crate::registry::bundle_dir(root, &c.value))
            .and_then(|d| Bundle::open(&d))
        {
            Ok(c) => {
                if let Some(b) = job_model
                    && let Err(e) = crate::run::models::check_canary(path, &b, &c)
                {
                    errors.push(e);
                }
            }
            Err(e) => {
                errors.push(e.context(format!("{}: field `rollout.challenger`", path.display())))
            }
        }
    }
    errors
}

/// The exit code for a set of results: 2 if any config problem, else 4 if any
/// bundle problem, else the first other code, else 0.
pub fn exit_code(results: &[Checked]) -> ExitCode {
    let codes: Vec<ExitCode> = results
        .iter()
        .flat_map(|c| c.errors.iter().map(Error::exit_code))
        .collect();
    if codes.contains(&ExitCode::Config) {
        ExitCode::Config
    } else if codes.contains(&ExitCode::Model) {
        ExitCode::Model
    } else {
        codes.first().copied().unwrap_or(ExitCode::Ok)
    }
}
