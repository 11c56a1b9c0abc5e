//! The input of a run, resolved and checked before any row is read.

use std::sync::Mutex;

use polars::prelude::*;

use super::models::{Models, performance_counter, reconstruction_counter, require_reference};
use super::plan::Setup;
use super::shard;
use crate::error::{Error, Result};
use crate::preprocess;
use crate::sink::manifest::*;

/// The source (restricted to the shard's rows), its schema, the columns to read,
/// the columns carried to the output, the report's profile and the contract's
/// checker.
pub(crate) struct Input {
    pub src: crate::source::Resolved,
    pub schema: Schema,
    /// Keys, then the shadow run's carried columns: written beside the scores.
    pub carry: Vec<String>,
    /// Every input column the run reads.
    pub needed: Vec<String>,
    pub profile: Option<Mutex<crate::reports::Profile>>,
    pub checker: Option<Mutex<crate::contract::Checker>>,
    /// The exact uniqueness check of the job's keys (unless `output.on_duplicate_keys: off`).
    pub key_check: Option<Mutex<crate::reports::keys::KeyCheck>>,
}

/// Adds `c` to `needed` unless it is there.
fn need(needed: &mut Vec<String>, c: String) {
    if !needed.contains(&c) {
        needed.push(c);
    }
}

/// Resolves the job's source and checks it against what the run needs: keys, the
/// models' input columns, report columns and the reference profile's, the
/// contract's schema; records the source and inputs in the manifest.
pub(crate) fn open_input(s: &mut Setup, models: &Models, m: &mut Manifest) -> Result<Input> {
    let ctx = crate::source::Context {
        root: &s.opts.root,
        profiles: &s.ctx.profiles,
        storage: &s.ctx.storage,
    };
    let mut src =
        crate::source::resolve(&s.ctx.job.source, &ctx, &s.ctx.vars, &mut s.ctx.redactor)?;
    let (opts, job) = (&s.opts, &s.ctx.job);
    if let Some((index, count)) = opts.shard {
        if job.contract.is_some() || opts.shadow.is_some() {
            return Err(Error::config(
                &opts.job_file,
                "sharded runs do not support `contract:` (its unique keys and quarantine \
                 span the whole date) or shadow runs; run this job unsharded",
            ));
        }
        let batch = s.inference.batch_size;
        let (row_start, row_end, total_rows) =
            src.restrict_rows(|total| shard::share(total, index, count, batch))?;
        m.shard = Some(ShardInfo {
            index,
            count,
            row_start,
            row_end,
            total_rows,
        });
    }
    m.source = Some(src.description.clone());
    m.source_version = src.version;
    m.inputs = src.inputs.clone();
    let schema = src.schema()?;
    let missing = |what: String| {
        Error::DataContract(format!("{what} is not in the input {}", src.description))
    };
    for k in &job.keys {
        if schema.get(k.as_str()).is_none() {
            return Err(Error::DataContract(format!(
                "key column `{k}` (job field `keys`) is not in the input {} (columns: {})",
                src.description,
                schema
                    .iter_names()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let carry: Vec<String> = match &opts.shadow {
        Some(sh) => {
            for c in &sh.carry {
                if schema.get(c.as_str()).is_none() {
                    return Err(missing(format!(
                        "column `{c}` (job field `shadow.segments` or `shadow.labels.column`)"
                    )));
                }
            }
            job.keys.iter().chain(&sh.carry).cloned().collect()
        }
        None => job.keys.clone(),
    };
    let mut needed: Vec<String> = carry.clone();
    for b in std::iter::once(&models.bundle).chain(models.second.as_ref().map(|s| &s.0)) {
        preprocess::check_input_schema(&b.state.spec, &schema).map_err(|e| {
            e.context(format!(
                "{} (model {} {})",
                src.description, b.spec.name, b.spec.version
            ))
        })?;
        for c in b.state.spec.input_columns() {
            need(&mut needed, c);
        }
    }
    let profile = match &job.report {
        Some(r) => Some(Mutex::new(report_profile(
            r,
            &opts.job_file,
            models,
            &schema,
            &src.description,
            &mut needed,
        )?)),
        None => None,
    };
    let checker = match &job.contract {
        Some(c) => {
            let file = opts.root.join(c);
            let contract = crate::contract::Contract::load(&file)?;
            contract.check_schema(&file, &schema)?;
            for c in contract.columns_read() {
                need(&mut needed, c);
            }
            m.contract = Some(ContractInfo {
                name: contract.name.clone(),
                file: c.clone(),
                quarantine: None,
            });
            Some(Mutex::new(crate::contract::Checker::new(contract, file)))
        }
        None => None,
    };
    let key_check = match job.output.on_duplicate_keys {
        crate::spec::job::OnDuplicateKeys::Off => None,
        _ if job.keys.is_empty() => None,
        _ => Some(Mutex::new(crate::reports::keys::KeyCheck::new(
            &job.keys,
            &schema,
            job.output.keys_memory_mb << 20,
        )?)),
    };
    Ok(Input {
        src,
        schema,
        carry,
        needed,
        profile,
        checker,
        key_check,
    })
}

/// The report's counters (`report:`): its columns and the checks' (each in the
/// input), drift against the reference profile, multivariate drift, performance
/// estimates; the columns they read are added to `needed`.
fn report_profile(
    r: &crate::spec::job::ReportSpec,
    job_file: &std::path::Path,
    models: &Models,
    schema: &Schema,
    description: &str,
    needed: &mut Vec<String>,
) -> Result<crate::reports::Profile> {
    let missing =
        |what: String| Error::DataContract(format!("{what} is not in the input {description}"));
    let mut cols: Vec<String> = if r.columns.is_empty() {
        needed.clone()
    } else {
        r.columns.clone()
    };
    for chk in &r.checks {
        for c in chk.columns() {
            need(&mut cols, c);
        }
    }
    let mut sch = Schema::default();
    for c in &cols {
        let dt = schema
            .get(c.as_str())
            .ok_or_else(|| missing(format!("report column `{c}` (job field `report.columns`)")))?;
        sch.insert(c.as_str().into(), dt.clone());
        need(needed, c.clone());
    }
    let mut prof = crate::reports::Profile::new(&sch, &r.checks, r.memory_budget_mb << 20);
    let dir = &models.model_dir.redacted;
    if r.drift.is_some() {
        let reference = require_reference(job_file, &models.bundle, dir)?;
        let counter = crate::reports::drift::DriftCounter::new(reference.clone());
        for c in counter.columns() {
            if schema.get(c.as_str()).is_none() {
                return Err(missing(format!(
                    "the reference profile has column `{c}`, which"
                )));
            }
            need(needed, c);
        }
        prof.drift = Some(counter);
        if r.drift.as_ref().is_some_and(|d| d.multivariate.is_some()) {
            prof.reconstruction = Some(reconstruction_counter(job_file, &models.bundle, dir)?);
        }
    }
    if let Some(perf) = &r.performance {
        prof.performance = Some(performance_counter(
            job_file,
            &models.bundle,
            dir,
            perf,
            &r.checks,
        )?);
    }
    Ok(prof)
}
