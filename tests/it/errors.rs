//! Every documented exit code, each provoked by a real bad input.

use crate::common::*;

/// Rewrites one day's feature file with `edit` applied (polars, in Rust).
fn edit_features(
    p: &Project,
    edit: impl Fn(polars::prelude::DataFrame) -> polars::prelude::DataFrame,
) {
    use polars::prelude::*;
    let f = p
        .path()
        .join("data/churn/features/ds=2026-11-28/part-0.parquet");
    let df = ParquetReader::new(std::fs::File::open(&f).unwrap())
        .finish()
        .unwrap();
    let mut df = edit(df);
    ParquetWriter::new(std::fs::File::create(&f).unwrap())
        .finish(&mut df)
        .unwrap();
}

#[test]
fn unknown_yaml_field_exits_2_naming_field_and_file() {
    let p = Project::new(1, 200);
    let job = p.job(
        "typo",
        &format!(
            "name: typo\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/typo\n  compresion: zstd\n",
            example_bundle().display()
        ),
    );
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 2, &["compresion", "typo.yaml"]);
    // `scorch validate` reports the same problem without reading data.
    let v = p.scorch(&["validate", "jobs"]);
    assert_exit(&v, 2, &["compresion"]);
    assert!(stdout(&v).contains("FAIL"));
    assert!(
        !p.path().join("output/typo").exists(),
        "a config error must not create output"
    );
}

#[test]
fn missing_column_exits_3_naming_it() {
    let p = Project::new(1, 200);
    edit_features(&p, |df| df.drop("monthly_charges").unwrap());
    let job = p.standard_job("missing", &example_bundle());
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 3, &["monthly_charges", "churn_features"]);
    assert!(!p.path().join("output/missing/ds=2026-11-28").exists());
    // The failed run still leaves a manifest saying why.
    let runs: Vec<_> = std::fs::read_dir(p.path().join("output/missing/_runs"))
        .unwrap()
        .collect();
    assert_eq!(runs.len(), 1);
    let m: serde_json::Value = read_json(runs[0].as_ref().unwrap().path());
    assert_eq!(m["status"], "failed");
    assert_eq!(m["exit_code"], 3);
}

#[test]
fn missing_key_column_exits_3() {
    let p = Project::new(1, 200);
    let job = p.job(
        "nokey",
        &format!(
            "name: nokey\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [account_id]\nmodel: {}\noutput:\n  path: output/nokey\n",
            example_bundle().display()
        ),
    );
    assert_exit(&p.run_job(&job, &[]), 3, &["account_id", "keys"]);
}

#[test]
fn wrong_column_type_exits_3_naming_column() {
    use polars::prelude::*;
    let p = Project::new(1, 200);
    edit_features(&p, |mut df| {
        let s = df
            .column("tenure_months")
            .unwrap()
            .cast(&DataType::String)
            .unwrap();
        df.with_column(s).unwrap();
        df
    });
    let job = p.standard_job("wrongtype", &example_bundle());
    assert_exit(&p.run_job(&job, &[]), 3, &["tenure_months", "str"]);
}

#[test]
fn no_input_files_exits_3() {
    let p = Project::new(1, 200);
    let job = p.standard_job("nofiles", &example_bundle());
    let o = p.scorch(&["run", job.to_str().unwrap(), "--date", "2020-01-01"]);
    assert_exit(&o, 3, &["no Parquet files match", "ds=2020-01-01"]);
}

#[test]
fn tampered_model_file_exits_4() {
    let p = Project::new(1, 200);
    let bundle = p.copy_bundle();
    let model = bundle.join("model.pt");
    let mut bytes = std::fs::read(&model).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&model, bytes).unwrap();
    let job = p.standard_job("tampered", &bundle);
    assert_exit(
        &p.run_job(&job, &[]),
        4,
        &["model.pt", "sha256", "refusing"],
    );
}

#[test]
fn preprocessing_mismatch_exits_4() {
    let p = Project::new(1, 200);
    let job = p.job(
        "mismatch",
        &format!(
            "name: mismatch\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\npreprocessing:\n  name: churn_features\n  version: 2.0.0\n\
             output:\n  path: output/mismatch\n",
            example_bundle().display()
        ),
    );
    assert_exit(
        &p.run_job(&job, &[]),
        4,
        &["preprocessing", "2.0.0", "1.0.0"],
    );
}

#[test]
fn edited_preprocessing_state_exits_4() {
    let p = Project::new(1, 200);
    let bundle = p.copy_bundle();
    let state = bundle.join("preprocess.state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    // Change one fitted number: the content hash no longer matches.
    let edited = text.replacen("\"mean\": ", "\"mean\": 1", 1);
    assert_ne!(text, edited);
    std::fs::write(&state, edited).unwrap();
    let job = p.standard_job("edited", &bundle);
    assert_exit(
        &p.run_job(&job, &[]),
        4,
        &["preprocess.state.json", "modified after fitting"],
    );
}

#[test]
fn model_output_shape_mismatch_exits_4() {
    let p = Project::new(1, 200);
    let bundle = p.copy_bundle();
    let b = bundle.join("bundle.yaml");
    let text = std::fs::read_to_string(&b).unwrap();
    let edited = text.replace("\"shape\": []", "\"shape\": [3]");
    assert_ne!(text, edited);
    std::fs::write(&b, edited).unwrap();
    let job = p.standard_job("shape", &bundle);
    assert_exit(&p.run_job(&job, &[]), 4, &["churn_probability", "shape"]);
}

#[test]
fn cuda_without_cuda_exits_2() {
    if tch::Cuda::is_available() {
        eprintln!("CUDA is available here; the fallback error cannot be provoked");
        return;
    }
    let p = Project::new(1, 200);
    let job = p.standard_job("cuda", &example_bundle());
    let o = p.scorch(&[
        "run",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--device",
        "cuda",
    ]);
    assert_exit(&o, 2, &["CUDA is not available"]);
    // `auto` falls back to the CPU.
    let o = p.scorch(&[
        "run",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--device",
        "auto",
    ]);
    assert_exit(&o, 0, &[]);
}

#[test]
fn nan_feature_exits_3_naming_column_and_row() {
    use polars::prelude::*;
    let p = Project::new(1, 200);
    edit_features(&p, |mut df| {
        let mut v: Vec<f64> = df
            .column("monthly_charges")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        v[7] = f64::NAN;
        df.with_column(Column::new("monthly_charges".into(), v))
            .unwrap();
        df
    });
    let job = p.standard_job("nan", &example_bundle());
    assert_exit(
        &p.run_job(&job, &[]),
        3,
        &["monthly_charges", "NaN", "row 7", "customer_id="],
    );
}

#[test]
fn validate_accepts_the_repository_jobs() {
    let o = std::process::Command::new(bin())
        .current_dir(repo())
        .args(["validate", "jobs", "preprocess", "models"])
        .output()
        .unwrap();
    assert_exit(&o, 0, &[]);
    let out = stdout(&o);
    assert!(out.contains("jobs/churn_daily.yaml (job)"), "{out}");
    assert!(
        out.contains("(bundle)") && out.contains("(preprocess)"),
        "{out}"
    );
}

/// A bundle names only files inside its folder: a `model_file`, state or profile
/// path that leaves it (`..`, an absolute path, a symbolic link out) is refused by
/// `validate`, `bundle check` and `run` with exit 4 naming the field; the same
/// bundle with its files inside it runs.
#[test]
fn bundle_files_outside_the_bundle_are_refused() {
    let p = Project::new(1, 200);
    let bundle = p.copy_bundle();
    let job = p.standard_job("escape", &bundle);
    let yaml = std::fs::read_to_string(bundle.join("bundle.yaml")).unwrap();
    let outside = p.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    for f in [
        "model.pt",
        "preprocess.state.json",
        "reference.profile.json",
    ] {
        std::fs::copy(bundle.join(f), outside.join(f)).unwrap();
    }
    let abs = outside.join("model.pt").display().to_string();
    let cases: Vec<(&str, String)> = vec![
        (
            "model_file",
            yaml.replace("\"model.pt\"", "\"../../../elsewhere/model.pt\""),
        ),
        (
            "model_file",
            yaml.replace("\"model.pt\"", &format!("\"{abs}\"")),
        ),
        (
            "preprocessing.state_file",
            yaml.replace(
                "\"preprocess.state.json\"",
                "\"../1.0.0/../../../elsewhere/preprocess.state.json\"",
            ),
        ),
        (
            "reference_profile.file",
            yaml.replace(
                "\"reference.profile.json\"",
                "\"../../../elsewhere/reference.profile.json\"",
            ),
        ),
    ];
    let check = |field: &str| {
        for args in [
            vec!["validate", job.to_str().unwrap()],
            vec!["bundle", "check", bundle.to_str().unwrap()],
            vec!["run", job.to_str().unwrap(), "--date", LAST_DAY],
        ] {
            let o = p.scorch(&args);
            assert_exit(&o, 4, &[field, "outside", "bundle"]);
        }
    };
    for (field, text) in &cases {
        assert_ne!(&yaml, text, "the case changed nothing");
        std::fs::write(bundle.join("bundle.yaml"), text).unwrap();
        check(field);
    }
    // A symbolic link out of the bundle: the path looks inside, the file is not.
    std::fs::write(bundle.join("bundle.yaml"), &yaml).unwrap();
    std::fs::remove_file(bundle.join("model.pt")).unwrap();
    std::os::unix::fs::symlink(outside.join("model.pt"), bundle.join("model.pt")).unwrap();
    check("model_file");
    // The file back inside: the bundle runs.
    std::fs::remove_file(bundle.join("model.pt")).unwrap();
    std::fs::copy(outside.join("model.pt"), bundle.join("model.pt")).unwrap();
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
}
