//! Sharded runs: N shards plus `scorch commit` give exactly the rows and scores of
//! one run (shard boundaries are whole inference batches), a shard rerun replaces
//! only its own files, commit refuses an incomplete set, and the shards' report
//! statistics merge into the single run's report.

use crate::common::*;

fn job(p: &Project, name: &str, extra: &str) -> std::path::PathBuf {
    p.job(
        name,
        &format!(
            "name: {name}\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id, ds]\n\
             model: {}\noutput:\n  path: output/{name}\ninference: {{batch_size: 512, chunk_rows: 2048, threads: 2}}\n{extra}",
            example_bundle().display()
        ),
    )
}

fn partition(p: &Project, table: &str) -> polars::prelude::DataFrame {
    read_partition(&p.path().join(format!("output/{table}/ds={LAST_DAY}")))
        .select(["customer_id", "input_ds", "churn_probability"])
        .unwrap()
}

/// `scorch run JOB --date LAST_DAY` with extra arguments.
fn run(p: &Project, job: &std::path::Path, extra: &[&str]) -> std::process::Output {
    p.scorch(
        &[
            &["run", job.to_str().unwrap(), "--date", LAST_DAY][..],
            extra,
        ]
        .concat(),
    )
}

fn shard_run_id(p: &Project, i: usize) -> String {
    let m: serde_json::Value = read_json(p.path().join(format!(
        "output/sharded/_shards/ds={LAST_DAY}/shard-{i:05}-of-00004/_manifest.json"
    )));
    m["run_id"].as_str().unwrap().to_string()
}

#[test]
fn four_shards_and_commit_equal_one_run_bit_for_bit() {
    // Three days, 3,000 rows each, read as one input of 9,000 rows in three files:
    // shards cut through files and row groups.
    let p = Project::new(3, 3000);
    let single = job(&p, "single", "");
    let sharded = job(&p, "sharded", "");
    assert_exit(&p.run_job(&single, &[]), 0, &[]);
    for i in [0, 1, 3] {
        let o = run(&p, &sharded, &["--shard", &format!("{i}/4")]);
        assert_exit(&o, 0, &[]);
    }
    // Nothing is visible before the commit, and the commit names the missing shard.
    assert!(
        !p.path()
            .join(format!("output/sharded/ds={LAST_DAY}"))
            .exists()
    );
    let commit = || {
        p.scorch(&[
            "commit",
            sharded.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--shards",
            "4",
        ])
    };
    assert_exit(&commit(), 3, &["shard(s) 2 of 4 have not finished"]);
    // Shard 2 from the pod index, as a Kubernetes Indexed Job runs it.
    let o = p.scorch_env(
        &[
            "run",
            sharded.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--shards",
            "4",
        ],
        &[("JOB_COMPLETION_INDEX", "2")],
    );
    assert_exit(&o, 0, &[]);
    // Rerunning one shard replaces only its files.
    let before: Vec<String> = (0..4).map(|i| shard_run_id(&p, i)).collect();
    let o = run(&p, &sharded, &["--shard", "1/4"]);
    assert_exit(&o, 0, &[]);
    let after: Vec<String> = (0..4).map(|i| shard_run_id(&p, i)).collect();
    assert_ne!(before[1], after[1]);
    assert_eq!(
        (&before[0], &before[2], &before[3]),
        (&after[0], &after[2], &after[3])
    );
    let o = commit();
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("committed 4 shards"), "{}", stdout(&o));
    // Same rows, same order, same scores to the bit.
    let (a, b) = (partition(&p, "single"), partition(&p, "sharded"));
    assert_eq!(a.height(), 9000);
    assert!(a.equals(&b), "sharded output differs from the single run");
    let m: serde_json::Value = read_json(
        p.path()
            .join(format!("output/sharded/ds={LAST_DAY}/_manifest.json")),
    );
    assert_eq!(m["kind"], "commit");
    assert_eq!(m["rows"], 9000);
    assert_eq!(m["shards"].as_array().unwrap().len(), 4);
    assert!(
        !p.path()
            .join(format!("output/sharded/_shards/ds={LAST_DAY}"))
            .exists()
    );
}

/// Every leaf of two JSON documents equal: numbers within `rel` (relative), the
/// rest exactly; `run_id` and `job` (the name) are left out.
fn assert_json_close(a: &serde_json::Value, b: &serde_json::Value, rel: f64, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= rel * x.abs().max(y.abs()).max(1e-300),
                "{at}: {x} vs {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: lengths");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_json_close(x, y, rel, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys = |o: &serde_json::Map<String, Value>| {
                o.keys()
                    .filter(|k| !["run_id", "job"].contains(&k.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(keys(x), keys(y), "{at}: keys");
            for k in keys(x) {
                assert_json_close(&x[&k], &y[&k], rel, &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

#[test]
fn sharded_reports_merge_to_the_single_runs_report() {
    // 3 days × 3,000 rows in one input; customers repeat across days, so the exact
    // `uniqueness` check fails — the commit must reach the same verdict (exit 5).
    let p = Project::new(3, 3000);
    let report = "report:\n  checks:\n\
                  \x20   - {column: customer_id, metric: completeness, min: 1}\n\
                  \x20   - {column: customer_id, metric: uniqueness, min: 1}\n\
                  \x20   - {column: monthly_charges, metric: p99, max: 500, severity: warn}\n\
                  \x20   - {sql: \"age IS NULL OR age <= 60\", mostly: 0.99, severity: warn}\n\
                  \x20   - {metric: estimated_f1, threshold: 0.3, min_change: -0.05, severity: warn}\n\
                  \x20 drift: {psi_warn: 0.1, psi_fail: 10, wasserstein_warn: 0.1, multivariate: {}}\n\
                  \x20 performance: {thresholds: [0.3, 0.5]}\n";
    let single = job(&p, "single", report);
    let sharded = job(&p, "sharded", report);
    let o = p.run_job(&single, &[]);
    assert_exit(&o, 5, &["uniqueness(customer_id)"]);
    for i in 0..4 {
        let o = run(&p, &sharded, &["--shard", &format!("{i}/4")]);
        assert_exit(&o, 0, &[]);
        // Shards judge nothing: they leave their statistics for the commit.
        let dir = p.path().join(format!(
            "output/sharded/_shards/ds={LAST_DAY}/shard-{i:05}-of-00004"
        ));
        assert!(dir.join("_profile.msgpack").is_file());
        assert!(read_json(dir.join("_manifest.json"))["report"].is_null());
    }
    let o = p.scorch(&[
        "commit",
        sharded.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--shards",
        "4",
    ]);
    assert_exit(&o, 5, &["uniqueness(customer_id)", "merged statistics"]);
    let (a, b) = (partition(&p, "single"), partition(&p, "sharded"));
    assert!(a.equals(&b), "sharded output differs from the single run");
    let manifest = |t: &str| {
        read_json(
            p.path()
                .join(format!("output/{t}/ds={LAST_DAY}/_manifest.json")),
        )
    };
    let (ma, mb) = (manifest("single"), manifest("sharded"));
    assert_eq!(mb["kind"], "commit");
    assert_eq!(mb["status"], "checks_failed");
    assert_json_close(&ma["checks"], &mb["checks"], 1e-9, "checks");
    assert_eq!(ma["warnings"], mb["warnings"]);
    let (ra, rb) = (
        read_json(p.path().join(ma["report"].as_str().unwrap())),
        read_json(p.path().join(mb["report"].as_str().unwrap())),
    );
    assert_eq!(ra["rows"], 9000);
    assert!(!ra["drift"].as_array().unwrap().is_empty());
    // The estimated performance counts merge too (sums of calibrated probabilities).
    assert_eq!(ra["performance"]["rows"], 9000);
    assert_eq!(rb["performance"]["at"].as_array().unwrap().len(), 2);
    assert!(
        rb["performance"]["estimated_auc"]["std_error"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    // So do the reconstruction errors' sums (multivariate drift).
    assert_eq!(rb["multivariate"]["rows"], 9000);
    assert!(rb["multivariate"]["mean_error"].as_f64().unwrap() > 0.0);
    // Counts, distinct counts, quantile sketches, check tallies and every drift
    // statistic (PSI, JS, chi², KS, Wasserstein) merge exactly; means and standard
    // deviations up to rounding.
    assert_json_close(&ra, &rb, 1e-12, "report");
    assert_eq!(ra["drift"], rb["drift"]);
    for (ca, cb) in ra["columns"]
        .as_array()
        .unwrap()
        .iter()
        .zip(rb["columns"].as_array().unwrap())
    {
        for k in [
            "count",
            "nulls",
            "approx_distinct",
            "distinct",
            "uniqueness",
            "quantiles",
            "min",
            "max",
        ] {
            assert_eq!(ca[k], cb[k], "{} {k}", ca["name"]);
        }
    }
    assert!(p.path().join(mb["report_html"].as_str().unwrap()).is_file());
    // The commit's metrics go into the table's history like a run's.
    let history = p
        .path()
        .join(format!("output/sharded/_metrics/ds={LAST_DAY}"));
    assert_eq!(std::fs::read_dir(history).unwrap().count(), 1);
}

#[test]
fn sharding_refuses_what_it_cannot_merge() {
    let p = Project::new(1, 100);
    let with_contract = job(&p, "con", "contract: contracts/x.yaml\n");
    let o = run(&p, &with_contract, &["--shard", "0/2"]);
    assert_exit(&o, 2, &["sharded runs do not support `contract:`"]);
    let plain = job(&p, "plain", "");
    let o = run(&p, &plain, &["--shard", "2/2"]);
    assert_exit(&o, 2, &["the index must be 0 to COUNT-1"]);
    let o = run(&p, &plain, &["--shards", "2"]);
    assert_exit(&o, 2, &["JOB_COMPLETION_INDEX"]);
    // The model changed between shards (same job file, another bundle at its path):
    // the commit refuses to mix them.
    let bundle = p.copy_bundle();
    let swapped = p.job(
        "swapped",
        &format!(
            "name: swapped\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id, ds]\n\
             model: {}\noutput:\n  path: output/swapped\n",
            bundle.display()
        ),
    );
    assert_exit(&run(&p, &swapped, &["--shard", "0/2"]), 0, &[]);
    copy_dir(&repo().join("models/churn/2.0.0"), &bundle);
    assert_exit(&run(&p, &swapped, &["--shard", "1/2"]), 0, &[]);
    let o = p.scorch(&[
        "commit",
        swapped.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--shards",
        "2",
    ]);
    assert_exit(
        &o,
        3,
        &[
            "shard-00001-of-00002",
            "scored by model churn 2.0.0",
            "rerun that shard",
        ],
    );
    assert!(
        !p.path()
            .join(format!("output/swapped/ds={LAST_DAY}"))
            .exists()
    );
    let commit = |job: &std::path::Path| {
        p.scorch(&[
            "commit",
            job.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--shards",
            "2",
        ])
    };
    // An input file rewritten between shards with the same rows (so the row ranges
    // still line up) but other bytes: the input fingerprints differ and the commit
    // refuses, naming the file.
    let changed = job(&p, "changed", "");
    assert_exit(&run(&p, &changed, &["--shard", "0/2"]), 0, &[]);
    let input = std::fs::read_dir(p.path().join(format!("data/churn/features/ds={LAST_DAY}")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| f.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    {
        use polars::prelude::*;
        let mut df = ParquetReader::new(std::fs::File::open(&input).unwrap())
            .finish()
            .unwrap();
        ParquetWriter::new(std::fs::File::create(&input).unwrap())
            .with_compression(ParquetCompression::Uncompressed)
            .finish(&mut df)
            .unwrap();
    }
    assert_exit(&run(&p, &changed, &["--shard", "1/2"]), 0, &[]);
    let o = commit(&changed);
    assert_exit(
        &o,
        3,
        &[
            "shard-00001-of-00002",
            "the input changed between shards",
            input.file_name().unwrap().to_str().unwrap(),
            "bytes",
        ],
    );
    // Rerunning every shard on the same input commits.
    assert_exit(&run(&p, &changed, &["--shard", "0/2"]), 0, &[]);
    assert_exit(&commit(&changed), 0, &[]);
    // A shard manifest missing a field the commit needs is an error naming the
    // shard and the field, never a count of zero.
    let plain2 = job(&p, "plain2", "");
    for i in 0..2 {
        assert_exit(&run(&p, &plain2, &["--shard", &format!("{i}/2")]), 0, &[]);
    }
    let mf = p.path().join(format!(
        "output/plain2/_shards/ds={LAST_DAY}/shard-00001-of-00002/_manifest.json"
    ));
    let mut m: serde_json::Value = read_json(&mf);
    m["rows"].as_object_mut().unwrap().remove("written");
    std::fs::write(&mf, serde_json::to_vec(&m).unwrap()).unwrap();
    assert_exit(
        &commit(&plain2),
        3,
        &["shard-00001-of-00002", "not a shard manifest", "written"],
    );
    assert!(
        !p.path()
            .join(format!("output/plain2/ds={LAST_DAY}"))
            .exists()
    );
}

#[test]
fn shards_read_and_commit_on_an_s3_store() {
    // Input and output on a real S3 server (s3s-fs on loopback): 3 files of 2,000
    // rows cut into 3 shards; the commit copies the shards' objects server-side.
    let s3 = crate::common::s3::S3Server::start();
    let p = Project::new(3, 2000);
    s3.put_tree(
        "lake",
        "churn/features",
        &p.path().join("data/churn/features"),
    );
    p.write("profiles.yaml", &s3.profile_yaml("lake"));
    let env = crate::common::s3::S3Server::env();
    let report = "report:\n  drift: {psi_fail: 100}\n";
    let single = job(&p, "single", report);
    assert_exit(&p.run_job(&single, &[]), 0, &[]);
    let sharded = p.job(
        "s3_sharded",
        &format!(
            "name: s3_sharded\nsource:\n  parquet:\n    path: s3://lake/churn/features\nkeys: [customer_id, ds]\n\
             model: {}\nstorage_profile: lake\noutput:\n  path: s3://lake/scores/sharded\n\
             inference: {{batch_size: 512, chunk_rows: 2048, threads: 2}}\n{report}",
            example_bundle().display()
        ),
    );
    let shard = |i: usize| {
        p.scorch_env(
            &[
                "run",
                sharded.to_str().unwrap(),
                "--date",
                LAST_DAY,
                "--shard",
                &format!("{i}/3"),
            ],
            &env,
        )
    };
    for i in 0..3 {
        assert_exit(&shard(i), 0, &[]);
    }
    // A rerun of shard 1 replaces its objects (no files of the first attempt remain).
    let shard1 = s3.bucket("lake").join(format!(
        "scores/sharded/_shards/ds={LAST_DAY}/shard-00001-of-00003"
    ));
    let before = files_under(&shard1);
    assert_exit(&shard(1), 0, &[]);
    let after = files_under(&shard1);
    assert_eq!(after.len(), before.len(), "{after:?}");
    assert_ne!(after, before);
    let o = p.scorch_env(
        &[
            "commit",
            sharded.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--shards",
            "3",
        ],
        &env,
    );
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains(&format!("s3://lake/scores/sharded/ds={LAST_DAY}")),
        "{}",
        stdout(&o)
    );
    let committed = s3
        .bucket("lake")
        .join(format!("scores/sharded/ds={LAST_DAY}"));
    let b = read_partition(&committed)
        .select(["customer_id", "input_ds", "churn_probability"])
        .unwrap();
    let a = partition(&p, "single");
    assert_eq!(a.height(), 6000);
    assert!(
        a.equals(&b),
        "sharded S3 output differs from the single run"
    );
    let m = read_json(committed.join("_manifest.json"));
    assert_eq!(m["kind"], "commit");
    let report_at = m["report"].as_str().unwrap();
    assert!(
        report_at.starts_with("s3://lake/scores/sharded/_runs/"),
        "{report_at}"
    );
    let name = report_at.rsplit('/').next().unwrap();
    let rb = read_json(s3.bucket("lake").join("scores/sharded/_runs").join(name));
    let ma = read_json(
        p.path()
            .join(format!("output/single/ds={LAST_DAY}/_manifest.json")),
    );
    let ra = read_json(p.path().join(ma["report"].as_str().unwrap()));
    assert_json_close(&ra, &rb, 1e-12, "report");
    // The committed shards' objects are gone (s3s-fs may leave empty folders).
    let left: Vec<_> = files_under(&s3.bucket("lake").join("scores/sharded/_shards"));
    assert!(left.is_empty(), "{left:?}");
}

/// A key in two shards (each shard's own keys unique) is caught by the commit:
/// exit 3 naming it, nothing published; relaxed to a warning, the commit publishes
/// and its manifest lists the duplicate.
#[test]
fn a_key_in_two_shards_fails_the_commit() {
    let p = Project::new(1, 3000);
    let day = p.path().join(format!("data/churn/features/ds={LAST_DAY}"));
    // The day's first row again, in a second file: it lands in the last shard.
    let script = "import polars as pl, sys\n\
                  d = pl.read_parquet(sys.argv[1] + '/part-0.parquet')\n\
                  d.head(1).write_parquet(sys.argv[1] + '/part-9.parquet')\n\
                  print(d['customer_id'][0])\n";
    let o = run_python(&["-c", script, day.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = stdout(&o);
    let first = first.trim();
    let j = p.job(
        "dup",
        &format!(
            "name: dup\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/dup\n\
             inference: {{batch_size: 512, threads: 2}}\n",
            example_bundle().display()
        ),
    );
    let shards_and_commit = |j: &std::path::Path| {
        for i in 0..2 {
            assert_exit(&run(&p, j, &["--shard", &format!("{i}/2")]), 0, &[]);
        }
        p.scorch(&[
            "commit",
            j.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--shards",
            "2",
        ])
    };
    let o = shards_and_commit(&j);
    assert_exit(
        &o,
        3,
        &[
            &format!("customer_id = {first} (2 rows)"),
            "all 2 shards",
            "nothing was published",
        ],
    );
    assert!(!p.path().join(format!("output/dup/ds={LAST_DAY}")).exists());
    let text = std::fs::read_to_string(&j).unwrap().replace(
        "  path: output/dup\n",
        "  path: output/dup\n  on_duplicate_keys: warn\n",
    );
    std::fs::write(&j, text).unwrap();
    let o = shards_and_commit(&j);
    assert_exit(&o, 0, &[]);
    let m = read_json(
        p.path()
            .join(format!("output/dup/ds={LAST_DAY}/_manifest.json")),
    );
    assert_eq!(m["keys"]["duplicated"], 1, "{}", m["keys"]);
    assert_eq!(m["keys"]["rows"], 3001);
    let warned = m["warnings"].to_string();
    assert!(
        warned.contains(&format!("customer_id = {first} (2 rows)")),
        "{warned}"
    );
}
