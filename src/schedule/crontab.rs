//! `scorch crontab`: the scheduled jobs of a folder (and their scheduled
//! evaluations) as crontab lines for system cron, each under `flock -n` (no
//! overlapping runs) with the logical date in `$DS`.

use std::path::Path;

use crate::error::{Error, Result};

/// The crontab text for the jobs with a `schedule:` in `jobs`, run from
/// `project_dir` by the scorch binary `exe`.
pub fn render(jobs: &Path, project_dir: &Path, exe: &Path) -> Result<String> {
    let root =
        std::path::absolute(project_dir).map_err(|e| Error::io("resolve", project_dir, e))?;
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let mut out = format!(
        "# scorch: scheduled jobs of {} (install with `crontab -e` or into /etc/cron.d).\n\
         # Each line runs under flock -n (no overlapping runs) with the job's logical date in $DS.\n",
        jobs.display()
    );
    for j in super::daemon::scheduled_jobs(jobs)? {
        let job = std::path::absolute(&j.file).map_err(|e| Error::io("resolve", &j.file, e))?;
        let lock = std::env::temp_dir().join(format!("scorch-{}.lock", j.name));
        let what = match j.evaluate {
            None => format!("run {} --date \"$DS\" --no-progress", quote(&job)),
            Some(w) => format!("evaluate {} --date \"$DS\" --window {w}", quote(&job)),
        };
        let command = format!(
            "cd {} && flock -n {} {} --quiet {what}",
            quote(&root),
            quote(&lock),
            quote(exe),
        );
        let field = if j.evaluate.is_some() {
            "evaluate.schedule"
        } else {
            "schedule"
        };
        let line = j
            .schedule
            .crontab_line(&command)
            .map_err(|e| Error::config(&j.file, format!("field `{field}`: {e}")))?;
        out.push_str(&format!("\n# {}\n{line}\n", j.name));
    }
    Ok(out)
}
