//! The bad-input corpus: every case under `tests/corpus/<case>/case.yaml` is a bad
//! (or merely unusual) input with the exit code and message fragments scorch must
//! give. Each case runs in its own project: the example data of one day (300 rows),
//! a copy of the example bundle in `bundle/`, the standard job in `jobs/case.yaml`
//! (or the case's own `job:`, or the standard one plus `job_extra:`), then the
//! case's `setup:` Python (the test venv: torch, polars, pyarrow) to break things.
//! A failing case must publish nothing; a passing one must write `rows:` rows.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What is wrong with the input (for the README table).
    what: String,
    /// Replaces the standard job.
    #[serde(default)]
    job: Option<String>,
    /// Appended to the standard job.
    #[serde(default)]
    job_extra: Option<String>,
    /// Python run in the project folder before scorch (`DATA` is the day's folder).
    #[serde(default)]
    setup: Option<String>,
    /// scorch's arguments; default `run jobs/case.yaml --date 2026-11-28`.
    #[serde(default)]
    command: Option<Vec<String>>,
    /// Extra environment for scorch.
    #[serde(default)]
    env: BTreeMap<String, String>,
    exit: i32,
    /// Fragments stderr must contain.
    #[serde(default)]
    stderr: Vec<String>,
    /// Fragments stdout (the closing summary) must contain.
    #[serde(default)]
    stdout: Vec<String>,
    /// Rows the published partition must hold (exit 0).
    #[serde(default)]
    rows: Option<u64>,
    /// Fragments the run manifest must contain (exit 0).
    #[serde(default)]
    manifest: Vec<String>,
}

const STANDARD_JOB: &str = "name: case\nsource:\n  parquet:\n    path: data/churn/features/ds={{ ds }}/*.parquet\n\
                            keys: [customer_id]\nmodel: bundle\noutput:\n  path: output/case\n";

/// Runs one case; what it tests, or how it failed.
fn run_case(base: &Path, dir: &Path) -> Result<String, String> {
    let case: Case = serde_saphyr::from_str(
        &std::fs::read_to_string(dir.join("case.yaml")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("case.yaml: {e}"))?;
    // The project is a folder of its own temp folder, so a path escaping the
    // project (`../outside`) is still caught and cleaned up.
    let root = tempfile::Builder::new()
        .prefix("scorch-case-")
        .tempdir()
        .unwrap();
    let project = root.path().join("project");
    let p = project.as_path();
    copy_dir(&base.join("data"), &p.join("data"));
    copy_dir(&example_bundle(), &p.join("bundle"));
    for d in ["jobs", "schemas", "output"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    let job = match (&case.job, &case.job_extra) {
        (Some(j), _) => j.clone(),
        (None, Some(extra)) => format!("{STANDARD_JOB}{extra}"),
        (None, None) => STANDARD_JOB.to_string(),
    };
    std::fs::write(p.join("jobs/case.yaml"), job).unwrap();
    if let Some(setup) = &case.setup {
        // A file, not `-c`: torch.jit.script reads the classes' source.
        let script = format!("DATA = \"data/churn/features/ds={LAST_DAY}\"\n{setup}");
        std::fs::write(p.join("setup.py"), script).unwrap();
        let o = std::process::Command::new(python())
            .current_dir(p)
            .arg("setup.py")
            .output()
            .unwrap();
        if !o.status.success() {
            return Err(format!("setup failed: {}", stderr(&o)));
        }
    }
    let args: Vec<String> = case.command.clone().unwrap_or_else(|| {
        ["run", "jobs/case.yaml", "--date", LAST_DAY]
            .map(String::from)
            .to_vec()
    });
    let o = std::process::Command::new(bin())
        .current_dir(p)
        .args(&args)
        .envs(&case.env)
        .output()
        .unwrap();
    let err = stderr(&o);
    if o.status.code() != Some(case.exit) {
        return Err(format!(
            "exit {:?}, expected {}; stderr:\n{err}",
            o.status.code(),
            case.exit
        ));
    }
    for f in &case.stderr {
        if !err.contains(f.as_str()) {
            return Err(format!("stderr lacks {f:?}:\n{err}"));
        }
    }
    let out = stdout(&o);
    for f in &case.stdout {
        if !out.contains(f.as_str()) {
            return Err(format!("stdout lacks {f:?}:\n{out}"));
        }
    }
    let part = p.join(format!("output/case/ds={LAST_DAY}"));
    if case.exit == 0 {
        let m = std::fs::read_to_string(part.join("_manifest.json"))
            .map_err(|e| format!("no published partition: {e}"))?;
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        if let Some(rows) = case.rows
            && v["rows"]["written"] != rows
        {
            return Err(format!(
                "{} rows written, expected {rows}",
                v["rows"]["written"]
            ));
        }
        for f in &case.manifest {
            if !m.contains(f.as_str()) {
                return Err(format!("the manifest lacks {f:?}:\n{m}"));
            }
        }
    } else if case.exit != 5 && part.join("_manifest.json").exists() {
        return Err("a failed run published a partition".into());
    }
    // Never anything outside the project (the path-escape case).
    if root.path().join("outside").exists() {
        return Err("something was written outside the project".into());
    }
    Ok(case.what)
}

#[test]
fn every_bad_input_gets_its_exit_code_and_message() {
    let base = Project::new(1, 300);
    let corpus = repo().join("tests/corpus");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("case.yaml").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let name = c.file_name().unwrap().to_string_lossy().to_string();
        match run_case(base.path(), c) {
            Ok(what) => println!("ok    {name}: {what}"),
            Err(e) => {
                println!("FAIL  {name}: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
