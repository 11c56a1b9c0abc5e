//! End to end: a job over generated data, scored by the committed example bundle,
//! read back by pyarrow and DuckDB and compared with Python torch's scores.

use crate::common::*;

#[test]
fn scores_match_python_and_output_is_readable() {
    let p = Project::new(2, 3000);
    let job = p.standard_job("churn_e2e", &example_bundle());
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 0, &[]);
    let out = stdout(&o);
    assert!(
        out.contains("3000 read, 3000 scored, 3000 written"),
        "{out}"
    );

    let part = p.path().join("output/churn_e2e/ds=2026-11-28");
    assert!(part.join("part-00000.parquet").is_file());
    let check = run_python(&[
        repo().join("tests/py/check_output.py").to_str().unwrap(),
        part.to_str().unwrap(),
        p.path()
            .join("data/churn/features/ds=2026-11-28/*.parquet")
            .to_str()
            .unwrap(),
        example_bundle().to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(stdout(&check).trim())
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&check), stderr(&check)));
    assert!(
        check.status.success(),
        "check failed: {report}\n{}",
        stderr(&check)
    );
    assert_eq!(
        report["columns"],
        serde_json::json!([
            "customer_id",
            "churn_probability",
            "model_name",
            "model_version",
            "run_id",
            "scored_at"
        ])
    );
    assert_eq!(
        report["dataset_columns"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        "ds"
    );
    assert_eq!(report["types"]["churn_probability"], "float");
    assert_eq!(report["types"]["scored_at"], "timestamp[us, tz=UTC]");
    assert_eq!(report["rows"], 3000);
    assert_eq!(report["duckdb_rows"], 3000);
    assert_eq!(report["duckdb_distinct_ids"], 3000);
    let diff = report["max_abs_diff"].as_f64().unwrap();
    assert!(diff <= 1e-5, "scores differ from Python torch by {diff}");
    let meta = &report["metadata"];
    assert_eq!(meta["scorch.job"], "churn_e2e");
    assert_eq!(meta["scorch.model_name"], "churn");
    assert_eq!(meta["scorch.model_version"], "1.0.0");
    assert_eq!(meta["scorch.preprocessing_version"], "1.0.0");
    let bundle = std::fs::read_to_string(example_bundle().join("bundle.yaml")).unwrap();
    assert!(bundle.contains(meta["scorch.model_sha256"].as_str().unwrap()));
    assert!(bundle.contains(meta["scorch.preprocessing_state_hash"].as_str().unwrap()));

    // The manifest beside the data records the run.
    let m: serde_json::Value = read_json(part.join("_manifest.json"));
    assert_eq!(m["status"], "succeeded");
    assert_eq!(m["rows"]["read"], 3000);
    assert_eq!(m["rows"]["written"], 3000);
    assert_eq!(m["run_id"], meta["scorch.run_id"]);
    assert_eq!(m["inputs"].as_array().unwrap().len(), 1);
    assert!(m["inputs"][0]["bytes"].as_u64().unwrap() > 0);
    for stage in ["read", "preprocess", "tensorize", "infer", "write", "total"] {
        assert!(
            m["stages"][stage].as_f64().is_some(),
            "stage {stage} missing: {m}"
        );
    }
}

#[test]
fn rerun_replaces_the_partition_without_duplicates() {
    let p = Project::new(1, 1500);
    let job = p.standard_job("churn_rerun", &example_bundle());
    let part = p.path().join("output/churn_rerun/ds=2026-11-28");
    let mut run_ids = Vec::new();
    for _ in 0..2 {
        let o = p.run_job(&job, &[]);
        assert_exit(&o, 0, &[]);
        let files: Vec<_> = std::fs::read_dir(&part)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        let m: serde_json::Value = read_json(part.join("_manifest.json"));
        assert_eq!(m["rows"]["written"], 1500);
        run_ids.push(m["run_id"].as_str().unwrap().to_string());
    }
    assert_ne!(run_ids[0], run_ids[1]);
    // Both runs are in the run history; staging is empty again.
    let runs = std::fs::read_dir(p.path().join("output/churn_rerun/_runs"))
        .unwrap()
        .count();
    assert_eq!(runs, 2);
    let staging = std::fs::read_dir(p.path().join("output/churn_rerun/_staging"))
        .unwrap()
        .count();
    assert_eq!(staging, 0);
}

#[test]
fn sql_source_scores_the_same_rows_as_parquet() {
    let p = Project::new(3, 1000);
    let parquet_job = p.standard_job("by_parquet", &example_bundle());
    p.write(
        "sql/day.sql",
        "SELECT * FROM features WHERE ds = '{{ ds }}' AND num_logins_30d >= 0",
    );
    let sql_job = p.job(
        "by_sql",
        &format!(
            "name: by_sql\nsource:\n  sql:\n    query: sql/day.sql\n    tables:\n      features: data/churn/features\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/by_sql\n",
            example_bundle().display()
        ),
    );
    for j in [&parquet_job, &sql_job] {
        let o = p.scorch(&["run", j.to_str().unwrap(), "--date", "2026-11-27"]);
        assert_exit(&o, 0, &[]);
    }
    let read = |t: &str| {
        read_sorted(
            &p.path()
                .join(format!("output/{t}/ds=2026-11-27/part-00000.parquet")),
        )
    };
    let (a, b) = (read("by_parquet"), read("by_sql"));
    assert_eq!(a.height(), 1000);
    assert_eq!(
        a.column("customer_id").unwrap(),
        b.column("customer_id").unwrap()
    );
    assert_eq!(
        a.column("churn_probability").unwrap(),
        b.column("churn_probability").unwrap()
    );
    // The SQL job's manifest lists every file of the table it was given.
    let m: serde_json::Value =
        read_json(p.path().join("output/by_sql/ds=2026-11-27/_manifest.json"));
    assert_eq!(m["inputs"].as_array().unwrap().len(), 3);
}

#[test]
fn multi_output_model_maps_to_named_score_columns() {
    multi_output_maps_to_named_score_columns("torchscript");
}

/// The same two-headed model as an AOTInductor package: the package returns its
/// outputs as a flat list, mapped like TorchScript's tuple.
#[test]
fn multi_output_aoti_package_maps_to_named_score_columns() {
    multi_output_maps_to_named_score_columns("aoti");
}

fn multi_output_maps_to_named_score_columns(format: &str) {
    let p = Project::new(1, 2500);
    let bundle = p.path().join("models/two_heads/0.1.0");
    let expected = p.path().join("expected.parquet");
    let o = run_python(&[
        repo()
            .join("tests/py/make_multi_output_bundle.py")
            .to_str()
            .unwrap(),
        example_bundle().to_str().unwrap(),
        bundle.to_str().unwrap(),
        p.path()
            .join("data/churn/features/ds=2026-11-28/*.parquet")
            .to_str()
            .unwrap(),
        expected.to_str().unwrap(),
        format,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let job = p.standard_job("two_heads", &bundle);
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
    let read = read_sorted;
    let ours = read(
        &p.path()
            .join("output/two_heads/ds=2026-11-28/part-00000.parquet"),
    );
    let theirs = read(&expected);
    let names: Vec<&str> = ours.get_column_names().iter().map(|s| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "customer_id",
            "p",
            "logits_0",
            "logits_1",
            "model_name",
            "model_version",
            "run_id",
            "scored_at"
        ]
    );
    assert_eq!(
        ours.column("customer_id").unwrap(),
        theirs.column("customer_id").unwrap()
    );
    for c in ["p", "logits_0", "logits_1"] {
        let a = ours.column(c).unwrap().f32().unwrap();
        let b = theirs.column(c).unwrap().f32().unwrap();
        let worst = a
            .into_no_null_iter()
            .zip(b.into_no_null_iter())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            worst <= 1e-6,
            "{format}: {c} differs from Python torch by {worst}"
        );
    }
    let m = read_json(
        p.path()
            .join("output/two_heads/ds=2026-11-28/_manifest.json"),
    );
    assert_eq!(m["model"]["format"], format);
}

#[test]
fn env_secrets_are_used_but_never_written() {
    let p = Project::new(1, 300);
    let secret = "s3cr3t-sentinel-7f1c2a";
    std::fs::rename(
        p.path().join("data/churn"),
        p.path().join(format!("data/{secret}")),
    )
    .unwrap();
    let job = p.job(
        "secret",
        &format!(
            "name: secret\nsource:\n  parquet:\n    path: data/${{DATA_DIR}}/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nsecrets: [DATA_DIR]\nmodel: {}\noutput:\n  path: output/secret\n",
            example_bundle().display()
        ),
    );
    // Unset: a clear config error, not an empty path.
    assert_exit(&p.run_job(&job, &[]), 2, &["DATA_DIR", "not set"]);
    let o = p.scorch_env(
        &[
            "--log-format",
            "json",
            "run",
            job.to_str().unwrap(),
            "--date",
            LAST_DAY,
        ],
        &[("DATA_DIR", secret)],
    );
    assert_exit(&o, 0, &[]);
    assert!(!stderr(&o).contains(secret) && !stdout(&o).contains(secret));
    let mut seen = 0;
    for dir in ["output/secret/ds=2026-11-28", "output/secret/_runs"] {
        for e in std::fs::read_dir(p.path().join(dir)).unwrap() {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "secret written to {dir}"
            );
            seen += 1;
        }
    }
    // The data file and manifest of the partition, and the manifests of the failed
    // (unset variable) and the successful run.
    assert_eq!(seen, 4);
    let m = std::fs::read_to_string(p.path().join("output/secret/ds=2026-11-28/_manifest.json"))
        .unwrap();
    // A declared secret is recorded as its placeholder.
    assert!(m.contains("data/${DATA_DIR}/features"), "{m}");
    // A failing run's error message is redacted too.
    let o = p.scorch_env(
        &["run", job.to_str().unwrap(), "--date", "2020-01-01"],
        &[("DATA_DIR", secret)],
    );
    assert_exit(&o, 3, &["data/${DATA_DIR}/features"]);
    assert!(!stderr(&o).contains(secret));
}

#[test]
fn chunked_run_equals_single_chunk_run() {
    use polars::prelude::*;
    let p = Project::new(2, 2500);
    let make = |name: &str, chunk: usize| {
        p.job(
            name,
            &format!(
                "name: {name}\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id, ds]\n\
                 model: {}\noutput:\n  path: output/{name}\n  row_group_size: 1000\ninference:\n  chunk_rows: {chunk}\n  batch_size: 333\n",
                example_bundle().display()
            ),
        )
    };
    for (name, chunk) in [("small_chunks", 700usize), ("one_chunk", 1_000_000)] {
        let o = p.scorch(&[
            "run",
            make(name, chunk).to_str().unwrap(),
            "--date",
            LAST_DAY,
        ]);
        assert_exit(&o, 0, &[]);
        assert!(
            stdout(&o).contains("5000 read, 5000 scored, 5000 written"),
            "{}",
            stdout(&o)
        );
    }
    let read = |t: &str| {
        let f = p
            .path()
            .join(format!("output/{t}/ds=2026-11-28/part-00000.parquet"));
        ParquetReader::new(std::fs::File::open(f).unwrap())
            .finish()
            .unwrap()
    };
    let (a, b) = (read("small_chunks"), read("one_chunk"));
    // Same rows in the same (input) order, same scores to the bit.
    for c in ["customer_id", "input_ds", "churn_probability"] {
        assert_eq!(a.column(c).unwrap(), b.column(c).unwrap(), "column {c}");
    }
}

#[test]
fn an_allowed_empty_input_writes_an_empty_partition_with_the_schema() {
    use polars::prelude::*;
    let p = Project::new(1, 300);
    p.write(
        "sql/none.sql",
        "SELECT * FROM f WHERE ds = '{{ ds }}' AND num_logins_30d < 0",
    );
    let job = p.job(
        "empty",
        &format!(
            "name: empty\nsource:\n  sql:\n    query: sql/none.sql\n    tables:\n      f: data/churn/features\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/empty\n  allow_empty: true\n",
            example_bundle().display()
        ),
    );
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("0 read, 0 scored, 0 written"),
        "{}",
        stdout(&o)
    );
    let part = p.path().join("output/empty/ds=2026-11-28");
    let df = ParquetReader::new(std::fs::File::open(part.join("part-00000.parquet")).unwrap())
        .finish()
        .unwrap();
    assert_eq!(df.height(), 0);
    let schema: Vec<String> = df
        .schema()
        .iter()
        .map(|(n, t)| format!("{n}:{t}"))
        .collect();
    assert_eq!(
        schema,
        [
            "customer_id:i64",
            "churn_probability:f32",
            "model_name:str",
            "model_version:str",
            "run_id:str",
            "scored_at:datetime[μs, UTC]"
        ]
    );
    let m: serde_json::Value = read_json(part.join("_manifest.json"));
    assert_eq!(m["status"], "succeeded");
    assert_eq!(m["rows"]["written"], 0);
}
