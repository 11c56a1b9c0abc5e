//! Trust at the data boundary: no value, empty input or setting crashes a run,
//! wipes a partition or corrupts its records.

use crate::common::*;

use std::any::TypeId;
use std::path::Path;

use clap::CommandFactory;

/// The one run manifest (not report) under `<table>/_runs` written last.
fn last_manifest(table: &Path) -> serde_json::Value {
    let files: Vec<_> = std::fs::read_dir(table.join("_runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| {
            let n = f.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".json") && !n.contains(".report.")
        })
        .collect();
    // By start time: run ids order by second only, and two runs can share one.
    let mut manifests: Vec<serde_json::Value> = files.iter().map(read_json).collect();
    manifests.sort_by(|a, b| {
        a["started_at"]
            .as_str()
            .unwrap()
            .cmp(b["started_at"].as_str().unwrap())
    });
    manifests.pop().unwrap()
}

/// A job over the example data with a report and drift against the bundle's profile.
fn report_job(p: &Project, name: &str, extra: &str) -> std::path::PathBuf {
    p.job(
        name,
        &format!(
            "name: {name}\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}\n\
             keys: [customer_id]\nmodel: {}\nreport:\n  drift: {{psi_warn: 100, psi_fail: 200}}\n  \
             anomalies: [{{metric: mean, column: age, min_history: 2}}]\n\
             output:\n  path: output/{name}\ninference:\n  threads: 2\n  batch_size: 1000\n  \
             invalid_scores: \"null\"\n{extra}",
            example_bundle().display()
        ),
    )
}

#[test]
fn infinities_nan_and_empty_strings_are_counted_not_crashes() {
    let p = Project::new(2, 3000);
    let o = run_python(&[
        repo().join("tests/py/corrupt_day.py").to_str().unwrap(),
        p.path().join("data/churn/features").to_str().unwrap(),
        "10",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let injected: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    // Rows whose features are not finite are quarantined (the model cannot score
    // them); the report covers every row read.
    p.write(
        "schemas/finite.yaml",
        "name: finite\ncolumns:\n  age: {dtype: float64, finite: true}\n  \
         data_usage_gb: {dtype: float64, finite: true}\nmax_invalid_fraction: 0.5\n",
    );
    let job = report_job(&p, "nonfinite", "contract: schemas/finite.yaml\n");
    for day in ["2026-11-27", LAST_DAY] {
        let o = p.scorch(&["run", job.to_str().unwrap(), "--date", day]);
        assert_exit(&o, 0, &[]);
    }
    let table = p.path().join("output/nonfinite");
    let m = last_manifest(&table);
    let report = read_json(p.path().join(m["report"].as_str().unwrap()));
    let col = |name: &str| {
        report["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    // One day of the two: half the injected values.
    let per_day = injected["age"].as_u64().unwrap() / 2;
    assert_eq!(col("age")["non_finite"].as_u64().unwrap(), per_day);
    assert_eq!(col("plan")["non_finite"].as_u64().unwrap(), 0);
    // Moments and quantiles are of the finite values only, and finite.
    let day = read_partition(&p.path().join(format!("data/churn/features/ds={LAST_DAY}")));
    let age: Vec<f64> = day
        .column("age")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .filter(|v| v.is_finite())
        .collect();
    let mean = age.iter().sum::<f64>() / age.len() as f64;
    let got = col("age")["mean"].as_f64().unwrap();
    assert!((got - mean).abs() < 1e-9 * mean.abs(), "{got} vs {mean}");
    assert!(col("age")["max"].as_f64().unwrap().is_finite());
    assert!(col("age")["quantiles"]["p99"].as_f64().unwrap().is_finite());
    // Drift judged every column, with finite statistics (non-finite count as null).
    for d in report["drift"].as_array().unwrap() {
        assert_ne!(d["status"], "no_data", "{d}");
        assert!(d["psi"].as_f64().is_some_and(f64::is_finite), "{d}");
        if let Some(w) = d.get("wasserstein") {
            assert!(w.as_f64().is_some_and(f64::is_finite), "{d}");
        }
    }
    // The anomaly check saw a history of one earlier run: learned from finite values.
    let anomaly = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "anomaly(mean(age))")
        .unwrap();
    assert!(anomaly["value"].as_f64().is_some_and(f64::is_finite));
    // The history holds the non_finite metric and no non-finite value.
    let mut h = polars::prelude::DataFrame::empty();
    for f in files_under(&table.join("_metrics")) {
        use polars::prelude::SerReader;
        let part = polars::prelude::ParquetReader::new(std::fs::File::open(f).unwrap())
            .finish()
            .unwrap();
        if h.width() == 0 {
            h = part
        } else {
            h.vstack_mut_owned(part).unwrap();
        }
    }
    let metric = h.column("metric").unwrap().str().unwrap();
    assert!(metric.iter().any(|m| m == Some("non_finite")));
    assert!(
        h.column("value")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten()
            .all(f64::is_finite)
    );
}

#[test]
fn an_empty_input_never_replaces_a_partition() {
    let p = Project::new(1, 2000);
    p.write(
        "sql/none.sql",
        "SELECT * FROM features WHERE ds = '{{ ds }}' AND num_logins_30d < 0\n",
    );
    p.write(
        "sql/some.sql",
        "SELECT * FROM features WHERE ds = '{{ ds }}' AND customer_id % 10 = 0\n",
    );
    let job = |name: &str, query: &str, extra: &str| {
        p.job(
            name,
            &format!(
                "name: t\nsource:\n  sql:\n    query: sql/{query}.sql\n    tables:\n      features: data/churn/features\n\
                 keys: [customer_id]\nmodel: {}\nreport: {{}}\noutput:\n  path: output/t\n{extra}",
                example_bundle().display()
            ),
        )
    };
    let full = job("full", "all", "");
    p.write(
        "sql/all.sql",
        "SELECT * FROM features WHERE ds = '{{ ds }}'\n",
    );
    assert_exit(
        &p.scorch(&["run", full.to_str().unwrap(), "--date", LAST_DAY]),
        0,
        &[],
    );
    let part = p.path().join(format!("output/t/ds={LAST_DAY}"));
    let before = read_partition(&part);
    assert_eq!(before.height(), 2000);
    let history_files = || files_under(&p.path().join("output/t/_metrics")).len();
    assert_eq!(history_files(), 1);
    // Zero rows: exit 3, naming what it would replace; the partition and history stay.
    let empty = job("empty", "none", "");
    let o = p.scorch(&["run", empty.to_str().unwrap(), "--date", LAST_DAY]);
    assert_exit(
        &o,
        3,
        &["read 0 rows", "holds 2000 rows", "output.allow_empty"],
    );
    assert_eq!(read_partition(&part), before);
    assert_eq!(
        history_files(),
        1,
        "a run that publishes nothing feeds no history"
    );
    // A tenth of the rows against min_rows_ratio 0.5: refused too.
    let tenth = job("tenth", "some", "  min_rows_ratio: 0.5\n");
    let o = p.scorch(&["run", tenth.to_str().unwrap(), "--date", LAST_DAY]);
    assert_exit(&o, 3, &["min_rows_ratio", "2000 rows"]);
    assert_eq!(read_partition(&part), before);
    // Asked for: an empty partition is published.
    let allowed = job("allowed", "none", "  allow_empty: true\n");
    assert_exit(
        &p.scorch(&["run", allowed.to_str().unwrap(), "--date", LAST_DAY]),
        0,
        &[],
    );
    assert_eq!(read_json(part.join("_manifest.json"))["rows"]["written"], 0);
    // An allowed empty run is not failed by checks it has no value for (no mean,
    // no estimate: `no_data`, like drift); a metric it does have is still judged.
    let checked = p.job(
        "checked",
        &format!(
            "name: t\nsource:\n  sql:\n    query: sql/none.sql\n    tables:\n      features: data/churn/features\n\
             keys: [customer_id]\nmodel: {}\nreport:\n  performance: {{thresholds: [0.5]}}\n  checks:\n\
             \x20   - {{column: tenure_months, metric: mean, min: 0, severity: fail}}\n\
             \x20   - {{column: tenure_months, metric: completeness, min: 1, severity: fail}}\n\
             \x20   - {{metric: estimated_auc, min_change: -0.02, severity: fail}}\n\
             \x20   - {{metric: estimated_f1, threshold: 0.5, min: 0.1, severity: fail}}\n\
             \x20   - {{column: tenure_months, metric: count, max: 0, severity: fail}}\n\
             output:\n  path: output/t\n  allow_empty: true\n",
            example_bundle().display()
        ),
    );
    let o = p.scorch(&["run", checked.to_str().unwrap(), "--date", LAST_DAY]);
    assert_exit(&o, 0, &[]);
    let m = read_json(part.join("_manifest.json"));
    let report = read_json(p.path().join(m["report"].as_str().unwrap()));
    let statuses: Vec<(String, String)> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(statuses.len(), 5, "{statuses:?}");
    for (name, st) in &statuses[..4] {
        assert_eq!(st, "no_data", "{name}: {statuses:?}");
    }
    assert_eq!(statuses[4].1, "pass", "count 0 is judged: {statuses:?}");
    assert_eq!(report["status"], "pass");
    // The same empty run with a check on a value it has that fails: exit 5.
    let failing = p.job(
        "failing",
        &std::fs::read_to_string(&checked)
            .unwrap()
            .replace("metric: count, max: 0", "metric: count, min: 1"),
    );
    let o = p.scorch(&["run", failing.to_str().unwrap(), "--date", LAST_DAY]);
    assert_exit(&o, 5, &["count"]);
    // Bad ratios are refused before anything runs.
    for r in ["-0.1", "1.5", ".nan", ".inf"] {
        let bad = job("bad", "all", &format!("  min_rows_ratio: {r}\n"));
        let o = p.scorch(&["validate", bad.to_str().unwrap()]);
        assert_exit(&o, 2, &["output.min_rows_ratio"]);
    }
}

#[test]
fn short_environment_values_leave_the_records_intact() {
    let p = Project::new(1, 500);
    let job = p.job(
        "envpath",
        &format!(
            "name: envpath\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}\n\
             keys: [customer_id]\nmodel: {}\nreport: {{}}\noutput:\n  path: output/${{DEPLOY}}/scores\n",
            example_bundle().display()
        ),
    );
    let mut shapes = Vec::new();
    // Values that occur inside JSON keys and common words, then a long one.
    for v in [
        "d",
        "e",
        "de",
        "dev",
        "run",
        "ds",
        "a-deployment-name-nobody-else-uses",
    ] {
        let o = p.scorch_env(
            &["run", job.to_str().unwrap(), "--date", LAST_DAY],
            &[("DEPLOY", v)],
        );
        assert_exit(&o, 0, &[]);
        let table = p.path().join(format!("output/{v}/scores"));
        let m = last_manifest(&table);
        let text = serde_json::to_string(&m).unwrap();
        assert!(!text.contains("***"), "{v}: {text}");
        assert_eq!(m["status"], "succeeded");
        assert_eq!(m["inference"]["device"], "cpu");
        assert!(
            m["output"]["table"]
                .as_str()
                .unwrap()
                .ends_with(&format!("output/{v}/scores"))
        );
        let report = read_json(
            table
                .join("_runs")
                .join(format!("{}.report.json", m["run_id"].as_str().unwrap())),
        );
        assert_eq!(report["rows"], 500, "{v}");
        // Same keys, same value types, everywhere.
        fn shape(v: &serde_json::Value) -> serde_json::Value {
            match v {
                serde_json::Value::Object(o) => {
                    o.iter().map(|(k, v)| (k.clone(), shape(v))).collect()
                }
                serde_json::Value::Array(a) => a.iter().map(shape).collect(),
                serde_json::Value::String(_) => "s".into(),
                serde_json::Value::Number(_) => 0.into(),
                other => other.clone(),
            }
        }
        shapes.push((v, shape(&m), shape(&report)));
    }
    for (v, m, r) in &shapes[..shapes.len() - 1] {
        assert_eq!(
            m,
            &shapes.last().unwrap().1,
            "manifest shape with DEPLOY={v}"
        );
        assert_eq!(r, &shapes.last().unwrap().2, "report shape with DEPLOY={v}");
    }
    // Declared secret: recorded as ${NAME}, never its value.
    let secret = p.job(
        "secretpath",
        &format!(
            "name: secretpath\nsecrets: [TOKEN]\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/s-${{TOKEN}}\n",
            example_bundle().display()
        ),
    );
    let o = p.scorch_env(
        &["run", secret.to_str().unwrap(), "--date", LAST_DAY, "-vv"],
        &[("TOKEN", "tok3n-value")],
    );
    assert_exit(&o, 0, &[]);
    let m = last_manifest(&p.path().join("output/s-tok3n-value"));
    assert!(
        m["output"]["table"]
            .as_str()
            .unwrap()
            .ends_with("output/s-${TOKEN}")
    );
    assert!(!stderr(&o).contains("tok3n-value") && !stdout(&o).contains("tok3n-value"));
}

#[test]
fn lineage_url_credentials_never_reach_the_logs() {
    let p = Project::new(1, 200);
    let job = p.standard_job("lin", &example_bundle());
    let port = free_port();
    let url = format!("http://lineage-user:Pw-5ecret@127.0.0.1:{port}/");
    for fmt in ["human", "json"] {
        let o = p.scorch(&[
            "run",
            job.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--lineage",
            &url,
            "--log-format",
            fmt,
            "-vv",
        ]);
        assert_exit(&o, 0, &["could not send the OpenLineage event"]);
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!all.contains("Pw-5ecret"), "{fmt}: {all}");
        assert!(all.contains("lineage-user:***@127.0.0.1"), "{fmt}: {all}");
    }
}

/// Every numeric flag of every command, with values no flag accepts: exit 2 naming
/// the flag. With 0 (valid for some): never a panic or a signal.
#[test]
fn every_numeric_flag_refuses_odd_numbers() {
    let cli = scorch::cli::Cli::command();
    let numeric = |a: &clap::Arg| {
        let t = a.get_value_parser().type_id();
        [
            TypeId::of::<usize>(),
            TypeId::of::<u64>(),
            TypeId::of::<u32>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
            TypeId::of::<f64>(),
            TypeId::of::<(usize, usize)>(),
        ]
        .iter()
        .any(|id| t == *id)
    };
    // A value for each other required argument.
    let filler = |a: &clap::Arg| -> String {
        let t = a.get_value_parser().type_id();
        if t == TypeId::of::<chrono::NaiveDate>() {
            LAST_DAY.into()
        } else if numeric(a) {
            "2".into()
        } else {
            "does-not-exist".into()
        }
    };
    let cwd = tempfile::tempdir().unwrap();
    let mut walked = Vec::new();
    let mut stack: Vec<(Vec<String>, clap::Command)> = vec![(vec![], cli)];
    while let Some((path, cmd)) = stack.pop() {
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            stack.push((p, sub.clone()));
        }
        for arg in cmd.get_arguments().filter(|a| numeric(a)) {
            let Some(long) = arg.get_long() else { continue };
            let flag = format!("--{long}");
            let pair = arg.get_value_parser().type_id() == TypeId::of::<(usize, usize)>();
            for v in [
                "inf",
                "-inf",
                "nan",
                "-1",
                "9223372036854775808",
                "1e400",
                "0",
            ] {
                let value = if pair {
                    format!("0/{v}")
                } else {
                    v.to_string()
                };
                let mut argv = path.clone();
                for other in cmd.get_arguments() {
                    if other.is_required_set() && other.get_id() != arg.get_id() {
                        if let Some(l) = other.get_long() {
                            argv.push(format!("--{l}"));
                        }
                        argv.push(filler(other));
                    }
                }
                argv.push(format!("{flag}={value}"));
                let args: Vec<&str> = argv.iter().map(String::as_str).collect();
                let o = std::process::Command::new(bin())
                    .args(&args)
                    .current_dir(cwd.path())
                    .output()
                    .unwrap();
                let code = o.status.code();
                assert!(
                    code.is_some() && code != Some(101),
                    "{args:?}: {code:?}\n{}",
                    stderr(&o)
                );
                if v != "0" || pair {
                    assert_eq!(code, Some(2), "{args:?}\n{}", stderr(&o));
                    assert!(stderr(&o).contains(&flag), "{args:?}\n{}", stderr(&o));
                }
            }
            walked.push(format!("{} {flag}", path.join(" ")));
        }
    }
    walked.sort();
    println!("walked {} numeric flags: {walked:?}", walked.len());
    for must in [
        "run --threads",
        "run --batch-size",
        "run --wait-lock",
        "run --shard",
        "run --shards",
        "commit --wait-lock",
        "schedule --grace",
        "backfill --parallel",
        "profile --sketch",
    ] {
        assert!(
            walked.iter().any(|w| w == must),
            "{must} not walked: {walked:?}"
        );
    }
}

#[test]
fn job_fields_and_flags_share_their_bounds() {
    let p = Project::new(1, 100);
    let job = |name: &str, inference: &str| {
        p.job(
            name,
            &format!(
                "name: {name}\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id]\n\
                 model: {}\noutput:\n  path: output/{name}\ninference:\n{inference}",
                example_bundle().display()
            ),
        )
    };
    let yaml = job("y", "  threads: 5000\n");
    assert_exit(
        &p.scorch(&["validate", yaml.to_str().unwrap()]),
        2,
        &["inference.threads", "between 0 and 1024"],
    );
    let ok = job("ok", "  threads: 1\n");
    let o = p.scorch(&[
        "run",
        ok.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--threads",
        "5000",
    ]);
    assert_exit(&o, 2, &["--threads", "between 0 and 1024"]);
    let o = p.scorch(&[
        "run",
        ok.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--precision",
        "f64",
    ]);
    assert_exit(&o, 2, &["--precision", "f32, bf16, f16"]);
    let help = stdout(&p.scorch(&["run", "--help"]));
    assert!(help.contains("f32, bf16, f16"), "{help}");
}

/// Every table scorch writes — scores (with an input `ds` key), quarantine, the
/// metrics history, the shadow table — reads as a hive-partitioned dataset in
/// pyarrow, DuckDB and Polars, with no data column named like its partition folders.
#[test]
fn every_table_reads_back_in_the_readers_users_use() {
    let p = Project::new(2, 1500);
    for v in ["1.0.0", "2.0.0"] {
        copy_dir(
            &repo().join("models/churn").join(v),
            &p.path().join("models/churn").join(v),
        );
    }
    p.write(
        "schemas/c.yaml",
        "name: c\ncolumns:\n  tenure_months: {dtype: integer, max: 40}\nmax_invalid_fraction: 0.9\n",
    );
    let job = p.job(
        "hive",
        "name: hive\nsource:\n  parquet:\n    path: data/churn/features/ds={{ ds }}\n\
         keys: [customer_id, ds]\nmodel: churn@1.0.0\ncontract: schemas/c.yaml\nreport: {}\n\
         output:\n  path: output/hive\ninference: {threads: 2}\n\
         shadow:\n  segments: [plan]\n  gate: []\n",
    );
    for day in ["2026-11-27", LAST_DAY] {
        assert_exit(
            &p.scorch(&["run", job.to_str().unwrap(), "--date", day]),
            0,
            &[],
        );
    }
    let o = p.scorch(&[
        "shadow",
        job.to_str().unwrap(),
        "--challenger",
        "churn@2.0.0",
        "--from",
        "2026-11-27",
        "--to",
        LAST_DAY,
    ]);
    assert_exit(&o, 0, &[]);
    let out = p.path().join("output");
    let tables = [
        out.join("hive"),
        out.join("hive/_quarantine"),
        out.join("hive/_metrics"),
        out.join("hive_shadow"),
    ];
    let mut args = vec![repo().join("tests/py/hive_read.py").display().to_string()];
    args.extend(tables.iter().map(|t| t.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run_python(&args);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let r: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    println!("{r}");
    let written: u64 = ["2026-11-27", LAST_DAY]
        .iter()
        .map(|d| {
            read_json(out.join(format!("hive/ds={d}/_manifest.json")))["rows"]["written"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let quarantined: u64 = ["2026-11-27", LAST_DAY]
        .iter()
        .map(|d| {
            read_json(out.join(format!("hive/ds={d}/_manifest.json")))["rows"]["quarantined"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert!(quarantined > 0 && written > 0);
    for (name, rows) in [
        ("hive", written),
        ("_quarantine", quarantined),
        ("hive_shadow", written),
    ] {
        for reader in ["pyarrow", "pyarrow_dataset", "duckdb", "polars"] {
            assert_eq!(r[name][reader], rows, "{name} in {reader}: {r}");
        }
        assert_eq!(
            r[name]["ds"],
            serde_json::json!(["2026-11-27", LAST_DAY]),
            "{name}"
        );
    }
    assert!(r["_metrics"]["pyarrow"].as_u64().unwrap() > 0);
    assert_eq!(r["_metrics"]["duckdb_dates"], 2);
    // The key `ds` of the input is in the files as `input_ds`.
    let f = read_sorted(&out.join(format!("hive/ds={LAST_DAY}/part-00000.parquet")));
    assert!(f.column("input_ds").is_ok() && f.column("ds").is_err());
}

/// The example job and bundle in a project whose day `LAST_DAY` is the example day
/// repeated `times` times with new, unique keys (`dups` rows then given another
/// row's key), in `files` files; returns the project, the job and what
/// `tests/py/repeat_day.py` measured with DuckDB.
fn big_day(times: u32, files: u32, dups: u32) -> (Project, std::path::PathBuf, serde_json::Value) {
    let p = Project::new(1, 20_000);
    p.copy_bundle();
    let job = p.write(
        "jobs/churn_daily.yaml",
        &std::fs::read_to_string(repo().join("jobs/churn_daily.yaml")).unwrap(),
    );
    let day = p.path().join(format!("data/churn/features/ds={LAST_DAY}"));
    let big = p.path().join("big-day");
    let o = run_python(&[
        repo().join("tests/py/repeat_day.py").to_str().unwrap(),
        day.to_str().unwrap(),
        big.to_str().unwrap(),
        &times.to_string(),
        &files.to_string(),
        &dups.to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let facts: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    std::fs::remove_dir_all(&day).unwrap();
    std::fs::rename(&big, &day).unwrap();
    (p, job, facts)
}

/// The run report a manifest points at (relative to the project).
fn report_of(p: &Project, manifest: &serde_json::Value) -> serde_json::Value {
    read_json(p.path().join(manifest["report"].as_str().unwrap()))
}

/// Issue 34: 2,000,000 unique customers pass the example job's own key check
/// (exact at any size: it used to report `uniqueness: null` and fail); one
/// duplicated key fails the run with exit 3 naming it, before anything is
/// published; relaxed to a warning, the report's uniqueness check fails with its
/// value and bound (exit 5).
#[test]
fn two_million_unique_keys_pass_and_one_duplicate_is_named() {
    let (p, job, facts) = big_day(100, 4, 0);
    assert_eq!(facts["rows"], 2_000_000);
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 0, &[]);
    let table = p.path().join("output/churn_scores");
    let m = last_manifest(&table);
    assert_eq!(m["keys"]["rows"], 2_000_000);
    assert_eq!(m["keys"]["distinct"], 2_000_000);
    assert_eq!(m["keys"]["duplicated"], 0);
    let r = report_of(&p, &m);
    let id = r["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "customer_id")
        .unwrap()
        .clone();
    assert_eq!(id["distinct"], facts["distinct"]);
    assert_eq!(id["uniqueness"], 1.0);
    // Every column's frequency metrics are figures, none null, at this size.
    for c in r["columns"].as_array().unwrap() {
        assert!(c["distinct"].is_u64(), "{c}");
        assert!(c["unique_value_ratio"].is_number(), "{c}");
    }
    let check = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().contains("uniqueness"))
        .unwrap()
        .clone();
    assert_eq!(check["status"], "pass", "{check}");

    // One key twice: exit 3, naming it and its count; the partition is untouched.
    let (p, job, facts) = big_day(100, 4, 1);
    let dup = facts["duplicated"][0].as_i64().unwrap();
    let o = p.run_job(&job, &[]);
    let named = format!("customer_id = {dup} (2 rows)");
    assert_exit(&o, 3, &["1 key value(s) of `customer_id`", &named]);
    let table = p.path().join("output/churn_scores");
    assert!(!table.join(format!("ds={LAST_DAY}")).exists());
    let m = last_manifest(&table);
    assert_eq!(m["status"], "failed");
    assert_eq!(m["keys"]["duplicated"], 1);
    assert_eq!(m["keys"]["extra_rows"], 1);

    // Relaxed: published, warned, and the uniqueness check fails with its value.
    let text = std::fs::read_to_string(&job).unwrap().replace(
        "output:\n  path: output/churn_scores\n",
        "output:\n  path: output/churn_scores\n  on_duplicate_keys: warn\n",
    );
    std::fs::write(&job, text).unwrap();
    let o = p.run_job(&job, &[]);
    let once = facts["once"].as_f64().unwrap() / 2_000_000.0;
    assert_exit(
        &o,
        5,
        &[&format!("uniqueness(customer_id): value {once} (min 1)")],
    );
    let m = last_manifest(&table);
    let warned = m["warnings"].as_array().unwrap();
    assert!(
        warned.iter().any(|w| w.as_str().unwrap().contains(&named)),
        "{warned:?}"
    );
    assert!(table.join(format!("ds={LAST_DAY}")).exists());
}

/// Past the memory budget (0 MiB: every chunk spills), the frequency metrics and
/// the key check are the same exact figures, marked `spilled`, and no spill file
/// is left in the published partition or the staging area.
#[test]
fn spilled_frequencies_equal_in_memory_ones() {
    let (p, job, facts) = big_day(3, 2, 5);
    let base = std::fs::read_to_string(&job).unwrap().replace(
        "output:\n  path: output/churn_scores\n",
        "output:\n  path: output/churn_scores\n  on_duplicate_keys: warn\n",
    );
    let mut reports = Vec::new();
    for (name, budget) in [("mem", ""), ("spill", "  memory_budget_mb: 0\n")] {
        // After the `report:` line (which carries a comment).
        let text: String = base
            .replace("output/churn_scores", &format!("output/{name}"))
            .lines()
            .map(|l| {
                if l.starts_with("report:") {
                    format!("{l}\n{budget}")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let text = if budget.is_empty() {
            text
        } else {
            text.replace(
                "on_duplicate_keys: warn\n",
                "on_duplicate_keys: warn\n  keys_memory_mb: 0\n",
            )
        };
        let j = p.write(&format!("jobs/{name}.yaml"), &text);
        let o = p.run_job(&j, &[]);
        // The uniqueness check fails on the duplicates (exit 5), published.
        assert_exit(&o, 5, &["uniqueness(customer_id): value"]);
        let table = p.path().join(format!("output/{name}"));
        let m = last_manifest(&table);
        assert_eq!(m["keys"]["duplicated"], 5, "{}", m["keys"]);
        let want = if budget.is_empty() {
            "memory"
        } else {
            "spilled"
        };
        assert_eq!(m["keys"]["computed"], want);
        for f in files_under(&table) {
            let s = f.to_string_lossy().to_string();
            assert!(
                !s.contains("_spill") && !s.contains("_distinct"),
                "left: {s}"
            );
        }
        reports.push(report_of(&p, &m));
    }
    let (a, b) = (&reports[0]["columns"], &reports[1]["columns"]);
    for (x, y) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
        assert_eq!(x["frequencies"], "memory");
        assert_eq!(y["frequencies"], "spilled", "{y}");
        for k in ["distinct", "uniqueness", "unique_value_ratio"] {
            assert_eq!(x[k], y[k], "{} {k}", x["name"]);
        }
    }
    let id = a
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "customer_id")
        .unwrap();
    assert_eq!(id["distinct"], facts["distinct"]);
}
