//! `scorch init`, `scorch bundle create` / `check` and `scorch schema`: a new
//! project validates clean and runs; bundles made from a model file and a state
//! open as a run opens them; the committed JSON Schemas are current and every job
//! in `jobs/` meets the job schema (checked by Python's `jsonschema`).

use std::path::Path;

use crate::common::*;
use polars::prelude::ChunkAgg;

fn scorch_in(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap()
}

#[test]
fn a_new_project_validates_clean_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let o = scorch_in(tmp.path(), &["init", "proj"]);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("scorch run jobs/score_daily.yaml --date 2026-01-01"));
    let proj = tmp.path().join("proj");
    for f in [
        "README.md",
        "profiles.yaml",
        "jobs/score_daily.yaml",
        "preprocess/features.yaml",
        "models/starter/0.1.0/bundle.yaml",
        ".scorch/schema/job.json",
    ] {
        assert!(proj.join(f).is_file(), "{f} missing");
    }
    let job = std::fs::read_to_string(proj.join("jobs/score_daily.yaml")).unwrap();
    assert!(job.starts_with("# yaml-language-server: $schema=../.scorch/schema/job.json\n"));
    // The schema the line points at is the one `scorch schema job` prints.
    let printed = scorch_in(tmp.path(), &["schema", "job"]);
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(proj.join(".scorch/schema/job.json")).unwrap())
            .unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&printed.stdout).unwrap(),
        written
    );
    let o = scorch_in(
        &proj,
        &[
            "validate",
            "jobs/",
            "preprocess/",
            "models/",
            "profiles.yaml",
        ],
    );
    assert_exit(&o, 0, &[]);
    let out = stdout(&o);
    assert!(out.contains("4 file(s) checked, 0 with problems"), "{out}");
    let o = scorch_in(
        &proj,
        &["run", "jobs/score_daily.yaml", "--date", "2026-01-01"],
    );
    assert_exit(&o, 0, &[]);
    let scores = read_partition(&proj.join("output/scores/ds=2026-01-01"));
    assert_eq!(scores.height(), 1000);
    let s = scores.column("score").unwrap().f32().unwrap();
    assert!(s.into_no_null_iter().all(|v| (0.0..=1.0).contains(&v)));
    assert!(
        s.min().unwrap() < s.max().unwrap(),
        "the starter model's scores vary"
    );
    // A second init over a folder that is not empty is refused, and changes nothing.
    let before = files_under(&proj).len();
    let o = scorch_in(tmp.path(), &["init", "proj"]);
    assert_exit(&o, 2, &["not an empty folder"]);
    assert_eq!(files_under(&proj).len(), before);
    // Nothing staged is left beside it.
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("proj")]);
}

#[test]
fn bundle_create_probes_hashes_and_writes_what_a_run_opens() {
    let p = Project::new(1, 200);
    let src = example_bundle();
    let work = p.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    for f in ["model.pt", "preprocess.state.json"] {
        std::fs::copy(src.join(f), work.join(f)).unwrap();
    }
    let (model, state) = (work.join("model.pt"), work.join("preprocess.state.json"));
    let create_as = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "bundle",
            "create",
            "--model",
            model.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--name",
            name,
            "--version",
            "9.0.0",
        ];
        args.extend_from_slice(extra);
        p.scorch(&args)
    };
    let create = |extra: &[&str]| create_as("churn", extra);
    // A wrong shape, a wrong count and a bad name are refused before anything is written.
    let o = create(&["--output", "churn_probability:3"]);
    assert_exit(&o, 4, &["per-row shape []"]);
    let o = create(&["--output", "a", "--output", "b"]);
    assert_exit(&o, 2, &["returns 1 output(s)"]);
    assert_exit(&create_as("no/slash", &[]), 2, &["--name"]);
    assert!(!work.join("bundle.yaml").exists());
    // Beside the model.
    let o = create(&["--output", "churn_probability"]);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("ok  "), "{}", stdout(&o));
    let made: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(work.join("bundle.yaml")).unwrap())
            .unwrap();
    let committed: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(src.join("bundle.yaml")).unwrap()).unwrap();
    for key in ["model_sha256", "features", "outputs", "preprocessing"] {
        assert_eq!(made[key], committed[key], "{key}");
    }
    // Again without --force: refused; with --out: copied into a new folder.
    assert_exit(&create(&[]), 2, &["--force"]);
    let out = p.path().join("bundles/churn/9.0.0");
    let o = create(&["--out", out.to_str().unwrap()]);
    assert_exit(&o, 0, &[]);
    let copied: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(out.join("bundle.yaml")).unwrap()).unwrap();
    assert_eq!(copied["outputs"][0]["name"], "score");
    assert_eq!(copied["model_file"], "model.pt");
    // The new bundle scores the day as the committed one does.
    let job = p.standard_job("made", &out);
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
    // check: fine, then tampered with.
    let o = p.scorch(&["bundle", "check", out.to_str().unwrap()]);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("probe:"), "{}", stdout(&o));
    std::fs::write(out.join("model.pt"), b"not a model").unwrap();
    let o = p.scorch(&["bundle", "check", out.to_str().unwrap()]);
    assert_exit(&o, 4, &["sha256"]);
}

/// Every kind `scorch schema` prints.
const KINDS: [&str; 5] = ["job", "bundle", "preprocessing", "contract", "profiles"];

/// `scorch schema KIND`, which must succeed.
fn schema(kind: &str) -> std::process::Output {
    let o = std::process::Command::new(bin())
        .args(["schema", kind])
        .output()
        .unwrap();
    assert_exit(&o, 0, &[]);
    o
}

/// The committed schemas (docs/reference/schema/) are what `scorch schema` prints.
#[test]
fn the_committed_json_schemas_are_current() {
    for kind in KINDS {
        let o = schema(kind);
        let file = repo().join(format!("docs/reference/schema/{kind}.json"));
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == stdout(&o),
            "{} is stale or missing: run `scorch schema {kind} > {}`",
            file.display(),
            file.display()
        );
    }
}

/// Every YAML file of the repository's project meets its JSON Schema, and a
/// misspelt field does not (Python's `jsonschema`, draft 7).
#[test]
fn every_job_bundle_spec_and_contract_meets_its_json_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cases = vec![];
    let mut add = |kind: &str, file: &Path, valid: bool| {
        let doc: serde_json::Value =
            serde_saphyr::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        cases.push(serde_json::json!({"kind": kind, "file": file, "doc": doc, "valid": valid}));
    };
    let yaml_in = |dir: &str| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(repo().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        v.sort();
        v
    };
    let jobs = yaml_in("jobs");
    assert!(jobs.len() >= 6, "{jobs:?}");
    for f in &jobs {
        add("job", f, true);
    }
    for f in yaml_in("preprocess") {
        add("preprocessing", &f, true);
    }
    for f in yaml_in("schemas") {
        add("contract", &f, true);
    }
    for v in ["1.0.0", "2.0.0"] {
        add(
            "bundle",
            &repo().join(format!("models/churn/{v}/bundle.yaml")),
            true,
        );
    }
    add("profiles", &repo().join("profiles.yaml"), true);
    // Misspelt and mistyped fields.
    let bad = |name: &str, text: String| {
        let f = tmp.path().join(name);
        std::fs::write(&f, text).unwrap();
        f
    };
    let job = std::fs::read_to_string(&jobs[0]).unwrap();
    add(
        "job",
        &bad("typo.yaml", job.replace("keys:", "keyz:")),
        false,
    );
    add(
        "job",
        &bad(
            "type.yaml",
            job.replace("batch_size: 4096", "batch_size: lots"),
        ),
        false,
    );
    let cases_file = tmp.path().join("cases.json");
    std::fs::write(&cases_file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let schemas = tmp.path().join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    for kind in KINDS {
        let o = schema(kind);
        std::fs::write(schemas.join(format!("{kind}.json")), &o.stdout).unwrap();
    }
    let o = run_python(&[
        repo().join("tests/py/check_schemas.py").to_str().unwrap(),
        schemas.to_str().unwrap(),
        cases_file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    println!("{}", stdout(&o));
}
