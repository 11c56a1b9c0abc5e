//! The job context every command that touches a job's table starts from: the job
//! file loaded and checked, its templates' variables for a date, the connection
//! profiles and object-store settings, the redactor of the secrets they use, and
//! the table the command works on — its path rendered **and confined** (no `..`
//! out of the base folder a template's environment value may walk it to).
//!
//! `scorch run` (and its dry run), `evaluate`, `shadow`, `history`, `backfill`,
//! `commit` and `unlock` all build their table through [`JobContext`], so a rule
//! added here holds for every command.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::sink;
use crate::spec::job::JobSpec;
use crate::spec::template::{Redactor, Rendered, TemplateVars, confine, render};

/// Which of a job's tables a command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableOf<'a> {
    /// The production table, `output.path`.
    Output,
    /// A shadow table: the given template (`shadow.output`, or `<output.path>_shadow`).
    Shadow(&'a str),
}

impl TableOf<'_> {
    fn template<'j>(&'j self, job: &'j JobSpec) -> (&'j str, &'static str) {
        match self {
            TableOf::Output => (&job.output.path, "output.path"),
            TableOf::Shadow(t) => (t, "shadow.output"),
        }
    }
}

/// The shadow table of `job`: `shadow.output`, else `<output.path>_shadow`.
pub fn shadow_table(job: &JobSpec) -> String {
    job.shadow
        .as_ref()
        .and_then(|s| s.output.clone())
        .unwrap_or_else(|| format!("{}_shadow", job.output.path.trim_end_matches('/')))
}

/// A job, resolved for one date up to its table: everything a command needs
/// before it reads a row. Building it reads the job and profiles files only.
pub struct JobContext {
    /// The job YAML file.
    pub job_file: PathBuf,
    /// The project folder: relative paths resolve against it.
    pub root: PathBuf,
    /// The job, checked (`JobSpec::validate`).
    pub job: JobSpec,
    /// SHA-256 of the job file's bytes (hex).
    pub job_sha256: String,
    /// The date the templates were rendered for.
    pub ds: NaiveDate,
    /// The templates' variables for `ds`.
    pub vars: TemplateVars,
    /// Every secret the rendered paths and profiles use, for logs and errors.
    pub redactor: Redactor,
    /// The connection profiles file.
    pub profiles: PathBuf,
    /// Object-store settings of the job's `storage_profile`.
    pub storage: crate::storage::Settings,
    /// The field the table's path came from (`output.path` or `shadow.output`).
    pub table_field: &'static str,
    /// The table's path template.
    pub table_template: String,
    /// The table's path, rendered for `ds` and confined. May hold secrets: not
    /// for logs (use [`JobContext::location`]).
    pub table_path: String,
    /// The table.
    pub table: sink::Table,
    /// The table's location, redacted (for logs, reports and lineage).
    pub location: String,
}

impl JobContext {
    /// Loads `job_file` and resolves its production table for `ds`.
    pub fn open(
        job_file: &Path,
        root: &Path,
        profiles: Option<&Path>,
        ds: NaiveDate,
    ) -> Result<JobContext> {
        let (job, sha) = load(job_file)?;
        JobContext::with_job(job, sha, job_file, root, profiles, ds, TableOf::Output)
    }

    /// Resolves `table` of an already loaded (and possibly adjusted) `job`.
    pub fn with_job(
        job: JobSpec,
        job_sha256: String,
        job_file: &Path,
        root: &Path,
        profiles: Option<&Path>,
        ds: NaiveDate,
        table: TableOf<'_>,
    ) -> Result<JobContext> {
        let vars = TemplateVars::new(ds, &job.secrets);
        let (template, field) = table.template(&job);
        let template = template.to_string();
        let mut redactor = Redactor::default();
        let out = output_path(job_file, &template, field, &vars)?;
        redactor.add(&out);
        let profiles = crate::spec::profiles::locate(profiles, root);
        let storage = storage_settings(&job, &profiles, &vars, &mut redactor)?;
        let opened = sink::Table::open(&out.value, root, &storage)?;
        let location = redactor.redact(&opened.location());
        Ok(JobContext {
            job_file: job_file.to_path_buf(),
            root: root.to_path_buf(),
            job,
            job_sha256,
            ds,
            vars,
            redactor,
            profiles,
            storage,
            table_field: field,
            table_template: template,
            table_path: out.value,
            table: opened,
            location,
        })
    }

    /// The table's path rendered for another date, confined like the first.
    pub fn table_path_for(&mut self, ds: NaiveDate) -> Result<String> {
        let vars = TemplateVars::new(ds, &self.job.secrets);
        let out = output_path(
            &self.job_file,
            &self.table_template,
            self.table_field,
            &vars,
        )?;
        self.redactor.add(&out);
        Ok(out.value)
    }

    /// The folder of the job's model bundle (`model` rendered for `ds`: a folder,
    /// or a registry reference `<name>@<version|alias>`).
    pub fn model_dir(&self) -> Result<PathBuf> {
        let r = render(&self.job.model, &self.vars)
            .map_err(|e| Error::config(&self.job_file, format!("field `model`: {e}")))?;
        crate::registry::bundle_dir(&self.root, &r.value)
    }

    /// The job's `report.memory_budget_mb`, in bytes.
    pub fn memory_budget(&self) -> usize {
        self.job
            .report
            .as_ref()
            .map_or(crate::spec::report::DEFAULT_MEMORY_BUDGET_MB, |r| {
                r.memory_budget_mb
            })
            << 20
    }
}

/// Reads and checks a job file; returns it with the SHA-256 of its bytes.
pub fn load(job_file: &Path) -> Result<(JobSpec, String)> {
    use sha2::Digest;
    let bytes = std::fs::read(job_file)
        .map_err(|e| Error::config(job_file, format!("cannot read job file: {e}")))?;
    let job = JobSpec::load(job_file)?;
    Ok((job, hex::encode(sha2::Sha256::digest(&bytes))))
}

/// An output path (`field` of `job_file`) rendered for the run's date and confined:
/// no `..` out of the project or bucket a template may have put in it.
pub fn output_path(
    job_file: &Path,
    template: &str,
    field: &str,
    vars: &TemplateVars,
) -> Result<Rendered> {
    render(template, vars)
        .and_then(|r| confine(template, &r.value).map(|_| r))
        .map_err(|e| Error::config(job_file, format!("field `{field}`: {e}")))
}

/// The object-store settings of a job's `storage_profile` (defaults without one).
pub fn storage_settings(
    job: &JobSpec,
    profiles: &Path,
    vars: &TemplateVars,
    redactor: &mut Redactor,
) -> Result<crate::storage::Settings> {
    match &job.storage_profile {
        Some(name) => {
            let p = crate::spec::profiles::storage(profiles, name)?;
            crate::storage::settings(Some((name, &p)), vars, redactor)
        }
        None => Ok(crate::storage::Settings::default()),
    }
}
