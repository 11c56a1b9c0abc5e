//! Delta Lake outputs (`output.format: delta`), on local disk and on a real
//! S3-compatible server, read back by independent readers: the `deltalake`
//! Python package and Polars' `read_delta`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::s3::S3Server;
use crate::common::*;

const DAYS: [&str; 10] = [
    "2026-11-19",
    "2026-11-20",
    "2026-11-21",
    "2026-11-22",
    "2026-11-23",
    "2026-11-24",
    "2026-11-25",
    "2026-11-26",
    "2026-11-27",
    "2026-11-28",
];

fn delta_job(p: &Project, name: &str, output: &str, extra: &str) -> std::path::PathBuf {
    p.job(
        name,
        &format!(
            "name: {name}\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\n{extra}output:\n  path: {output}\n  format: delta\n\
             inference:\n  threads: 1\n  batch_size: 500\n",
            example_bundle().display()
        ),
    )
}

/// The run manifests of a table's `_runs/` folder: run id → (ds, status, Delta version).
fn manifests(runs: &Path) -> BTreeMap<String, (String, String, Option<u64>)> {
    std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".json") && !n.contains(".report.")
        })
        .map(|p| {
            let m = read_json(&p);
            (
                m["run_id"].as_str().unwrap().to_string(),
                (
                    m["ds"].as_str().unwrap().to_string(),
                    m["status"].as_str().unwrap().to_string(),
                    m["output"]["delta_version"].as_u64(),
                ),
            )
        })
        .collect()
}

fn read_delta(uri: &str, endpoint: Option<&str>, at: &[u64]) -> serde_json::Value {
    let script = repo().join("tests/py/delta_read.py");
    let mut args = vec![script.to_str().unwrap().to_string(), uri.to_string()];
    if let Some(e) = endpoint {
        args.extend(["--endpoint".to_string(), e.to_string()]);
    }
    for v in at {
        args.extend(["--at".to_string(), v.to_string()]);
    }
    let mut c = std::process::Command::new(python());
    c.args(&args);
    for (k, v) in S3Server::env() {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "delta_read.py: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn ten_dates_on_s3_with_three_reruns_read_back_by_deltalake_and_polars() {
    let s3 = S3Server::start();
    s3.bucket("lake");
    let p = Project::new(10, 400);
    p.write("profiles.yaml", &s3.profile_yaml("lake"));
    let env = S3Server::env();
    let job = delta_job(
        &p,
        "delta_s3",
        "s3://lake/scores/delta_s3",
        "storage_profile: lake\n",
    );
    let job = job.to_str().unwrap();
    // Three dates at once: their commits race for versions and must all land.
    let o = p.scorch_env(
        &[
            "backfill",
            job,
            "--from",
            DAYS[0],
            "--to",
            DAYS[9],
            "--parallel",
            "3",
        ],
        &env,
    );
    assert_exit(&o, 0, &[]);
    let runs = s3.root.path().join("lake/scores/delta_s3/_runs");
    let first = manifests(&runs);
    assert_eq!(first.len(), 10, "{first:?}");
    // Three reruns replace their dates.
    let reruns = [DAYS[2], DAYS[5], DAYS[9]];
    for d in reruns {
        let o = p.scorch_env(&["run", job, "--date", d], &env);
        assert_exit(&o, 0, &[]);
    }
    let all = manifests(&runs);
    assert_eq!(all.len(), 13);
    assert!(all.values().all(|(_, s, _)| s == "succeeded"), "{all:?}");

    let endpoint = format!("http://127.0.0.1:{}", s3.port);
    let seen = read_delta("s3://lake/scores/delta_s3", Some(&endpoint), &[9]);

    // One version per run: 0..=12, each commit naming its run.
    assert_eq!(seen["version"], 12, "{seen}");
    let history = seen["history"].as_array().unwrap();
    assert_eq!(history.len(), 13, "{seen}");
    let mut by_version = BTreeMap::new();
    for h in history {
        assert_eq!(h["operation"], "WRITE");
        let id = h["run_id"].as_str().unwrap();
        let (ds, _, version) = &all[id];
        assert_eq!(h["ds"].as_str().unwrap(), ds);
        assert_eq!(
            version,
            &h["version"].as_u64(),
            "manifest and log agree on {id}"
        );
        assert_eq!(h["model"], "churn");
        assert!(
            h["preprocessing_state_hash"]
                .as_str()
                .unwrap()
                .starts_with("sha256:")
        );
        by_version.insert(h["version"].as_u64().unwrap(), id.to_string());
    }
    assert_eq!(
        by_version.keys().copied().collect::<Vec<_>>(),
        (0..13).collect::<Vec<u64>>()
    );
    // The last run of each date is what is live now.
    let mut latest: BTreeMap<String, String> = BTreeMap::new();
    for id in by_version.values() {
        latest.insert(all[id].0.clone(), id.clone());
    }
    let now = seen["now"].as_object().unwrap();
    assert_eq!(now.len(), 10);
    for d in DAYS {
        assert_eq!(now[d]["rows"], 400, "{d}: {seen}");
        assert_eq!(now[d]["run_ids"], serde_json::json!([latest[d]]), "{d}");
        assert_eq!(seen["deltalake_rows"][d], 400, "{d}");
    }
    // Exactly the new files are live: one per date, named by its latest run.
    let files: Vec<&str> = seen["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 10, "{files:?}");
    for d in DAYS {
        let live: Vec<_> = files
            .iter()
            .filter(|f| f.contains(&format!("ds={d}/")))
            .collect();
        assert_eq!(live.len(), 1, "{d}: {files:?}");
        assert!(live[0].contains(&latest[d]), "{d}: {live:?}");
    }
    // Time travel to the version before the reruns: the first runs' rows.
    let before = seen["at"]["9"].as_object().unwrap();
    for d in DAYS {
        let first_run = first.iter().find(|(_, (ds, _, _))| ds == d).unwrap().0;
        assert_eq!(before[d]["run_ids"], serde_json::json!([first_run]), "{d}");
        assert_eq!(before[d]["rows"], 400);
    }
    // The replaced files stay on the server for time travel; scorch's records sit
    // in `_` folders beside the data.
    let rerun_dir = s3
        .root
        .path()
        .join(format!("lake/scores/delta_s3/ds={}", DAYS[2]));
    let on_server: BTreeSet<String> = std::fs::read_dir(&rerun_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    assert_eq!(on_server.len(), 2, "{on_server:?}");
    // A backfill sees the dates committed, from the Delta log and the run log.
    let o = p.scorch_env(&["backfill", job, "--from", DAYS[0], "--to", DAYS[9]], &env);
    assert_exit(&o, 0, &[]);
    assert_eq!(manifests(&runs).len(), 13, "{}", stdout(&o));
}

#[test]
fn a_local_delta_table_replaces_a_date_and_keeps_its_history() {
    let p = Project::new(2, 300);
    let job = delta_job(&p, "delta_local", "output/delta_local", "");
    let job = job.to_str().unwrap();
    for d in ["2026-11-27", LAST_DAY, LAST_DAY] {
        let o = p.scorch(&["run", job, "--date", d]);
        assert_exit(&o, 0, &[]);
        assert!(
            stdout(&o).contains("output:") && stdout(&o).contains("delta_local/ds="),
            "{}",
            stdout(&o)
        );
    }
    let table = p.path().join("output/delta_local");
    let seen = read_delta(table.to_str().unwrap(), None, &[1]);
    assert_eq!(seen["version"], 2, "{seen}");
    assert_eq!(seen["now"][LAST_DAY]["rows"], 300);
    assert_eq!(seen["now"]["2026-11-27"]["rows"], 300);
    assert_ne!(
        seen["now"][LAST_DAY]["run_ids"], seen["at"]["1"][LAST_DAY]["run_ids"],
        "the rerun replaced the date"
    );
    // The files carry no `ds` column: it is the Delta partition column.
    let columns: Vec<&str> = seen["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "customer_id",
            "churn_probability",
            "model_name",
            "model_version",
            "run_id",
            "scored_at",
            "ds"
        ]
    );
    // Nothing but the log, the data folders and scorch's `_` folders.
    for e in std::fs::read_dir(&table).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(n.starts_with('_') || n.starts_with("ds="), "{n}");
    }
    // The rows guard reads the replaced date's rows from the log's statistics: a
    // 100-row input may not replace 300 rows under `min_rows_ratio: 0.5`.
    let small = p.path().join("small/ds=2026-11-28");
    std::fs::create_dir_all(&small).unwrap();
    let o = run_python(&[
        "-c",
        &format!(
            "import polars as pl; pl.read_parquet('{}/data/churn/features/ds={LAST_DAY}/*.parquet')\
             .head(100).write_parquet('{}/part-0.parquet')",
            p.path().display(),
            small.display()
        ),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let guarded = p.job(
        "delta_local_guard",
        &std::fs::read_to_string(p.path().join("jobs/delta_local.yaml"))
            .unwrap()
            .replace("data/churn/features/", "small/")
            .replace(
                "  format: delta\n",
                "  format: delta\n  min_rows_ratio: 0.5\n",
            ),
    );
    let o = p.scorch(&["run", guarded.to_str().unwrap(), "--date", LAST_DAY]);
    assert_exit(&o, 3, &["min_rows_ratio", "300 rows"]);
    let again = read_delta(table.to_str().unwrap(), None, &[]);
    assert_eq!(again["version"], 2, "a refused run commits nothing");
}

#[test]
fn a_killed_delta_run_leaves_the_table_at_its_version() {
    let p = Project::new(1, 300);
    let job = delta_job(&p, "delta_kill", "output/delta_kill", "");
    let job = job.to_str().unwrap();
    let o = p.scorch(&["run", job, "--date", LAST_DAY]);
    assert_exit(&o, 0, &[]);
    let mark = p.path().join("in-publish");
    let mut child = std::process::Command::new(bin())
        .current_dir(p.path())
        .args(["run", job, "--date", LAST_DAY])
        .env(
            "SCORCH_TEST_PAUSE_IN_PUBLISH",
            format!("60000:{}", mark.display()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !mark.exists() {
        assert!(
            t0.elapsed().as_secs() < 120,
            "the run never reached its publish"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let table = p.path().join("output/delta_kill");
    let seen = read_delta(table.to_str().unwrap(), None, &[]);
    assert_eq!(seen["version"], 0, "{seen}");
    assert_eq!(seen["files"].as_array().unwrap().len(), 1);
    assert_eq!(seen["now"][LAST_DAY]["rows"], 300);
    // The next run takes over and commits version 1.
    let o = p.scorch(&["run", job, "--date", LAST_DAY]);
    assert_exit(&o, 0, &[]);
    assert_eq!(read_delta(table.to_str().unwrap(), None, &[])["version"], 1);
}

#[test]
fn a_delta_table_of_other_columns_or_a_sharded_delta_job_is_refused() {
    let p = Project::new(1, 200);
    let job = delta_job(&p, "delta_cols", "output/delta_cols", "");
    let o = p.scorch(&["run", job.to_str().unwrap(), "--date", LAST_DAY]);
    assert_exit(&o, 0, &[]);
    // Another job with other keys into the same table: exit 2, nothing committed.
    let other = p.job(
        "delta_cols2",
        &std::fs::read_to_string(&job)
            .unwrap()
            .replace("keys: [customer_id]", "keys: [customer_id, plan]"),
    );
    let o = p.scorch(&["run", other.to_str().unwrap(), "--date", LAST_DAY]);
    assert_exit(
        &o,
        2,
        &["Delta table", "does not change a table's schema", "plan"],
    );
    let seen = read_delta(
        p.path().join("output/delta_cols").to_str().unwrap(),
        None,
        &[],
    );
    assert_eq!(seen["version"], 0);
    // Shards write Parquet tables only.
    let sharded = p.job(
        "delta_sharded",
        &format!("{}shards: 2\n", std::fs::read_to_string(&job).unwrap()),
    );
    let o = p.scorch(&["validate", sharded.to_str().unwrap()]);
    assert_exit(&o, 2, &["shards", "format: delta"]);
}

/// Writes the project's feature files into a Delta table partitioned by `ds`, one
/// append (one version) per date, with the `deltalake` package.
fn features_as_delta(p: &Project, table: &Path, days: &[&str]) {
    let script = format!(
        "import polars as pl, datetime\n\
         from deltalake import write_deltalake\n\
         for d in {days:?}:\n\
         \x20   df = pl.read_parquet('{root}/data/churn/features/ds=' + d + '/*.parquet', hive_partitioning=False)\n\
         \x20   df = df.with_columns(pl.lit(datetime.date.fromisoformat(d)).alias('ds'))\n\
         \x20   write_deltalake('{table}', df.to_arrow(), partition_by=['ds'], mode='append')\n",
        root = p.path().display(),
        table = table.display(),
    );
    let o = run_python(&["-c", &script]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_delta_source_scores_like_its_parquet_files_and_records_its_version() {
    let p = Project::new(3, 300);
    let days = ["2026-11-26", "2026-11-27", LAST_DAY];
    let table = p.path().join("lake/features");
    features_as_delta(&p, &table, &days);
    let bundle = example_bundle();
    let parquet_job = p.standard_job("from_parquet", &bundle);
    let delta_job = |name: &str, extra: &str| {
        p.job(
            name,
            &format!(
                "name: {name}\nsource:\n  delta:\n    path: lake/features\n    filters: {{ds: \"{{{{ ds }}}}\"}}\n{extra}\
                 keys: [customer_id]\nmodel: {}\noutput:\n  path: output/{name}\ninference:\n  threads: 2\n  batch_size: 1000\n",
                bundle.display()
            ),
        )
    };
    let from_delta = delta_job("from_delta", "");
    for job in [&parquet_job, &from_delta] {
        let o = p.run_job(job, &[]);
        assert_exit(&o, 0, &[]);
    }
    // The same rows, the same scores, to the bit.
    let a = read_partition(&p.path().join(format!("output/from_parquet/ds={LAST_DAY}")));
    let b = read_partition(&p.path().join(format!("output/from_delta/ds={LAST_DAY}")));
    assert_eq!(a.height(), 300);
    let ids = |df: &polars::prelude::DataFrame| {
        df.column("customer_id")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect::<Vec<_>>()
    };
    let scores = |df: &polars::prelude::DataFrame| {
        df.column("churn_probability")
            .unwrap()
            .f32()
            .unwrap()
            .into_no_null_iter()
            .map(f32::to_bits)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(scores(&a), scores(&b));
    // Lineage: the version read, and only the date's file (the others pruned).
    let runs = p.path().join("output/from_delta/_runs");
    let m = manifests_json(&runs);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["source_version"], 2, "{}", m[0]);
    assert_eq!(m[0]["inputs"].as_array().unwrap().len(), 1, "{}", m[0]);
    assert!(
        m[0]["inputs"][0]["path"]
            .as_str()
            .unwrap()
            .contains(&format!("ds={LAST_DAY}/")),
        "{}",
        m[0]
    );
    let source = m[0]["source"].as_str().unwrap();
    assert!(
        source.contains("version 2") && source.contains("2 pruned"),
        "{source}"
    );
    // Pinned to version 1 (before the last date was appended): no rows, exit 3.
    let pinned = delta_job("pinned", "    version: \"1\"\n");
    let o = p.run_job(&pinned, &[]);
    assert_exit(&o, 3, &["read 0 rows"]);
    // Pinned by a variable, on a date version 1 holds: the same scores.
    let by_env = delta_job("pinned_env", "    version: ${FEATURES_VERSION}\n");
    let o = p.scorch_env(
        &["run", by_env.to_str().unwrap(), "--date", "2026-11-27"],
        &[("FEATURES_VERSION", "1")],
    );
    assert_exit(&o, 0, &[]);
    let m = manifests_json(&p.path().join("output/pinned_env/_runs"));
    assert_eq!(m[0]["source_version"], 1);
    // Mistakes: no table there (exit 3), a filter on a column the table lacks (exit 2),
    // version and timestamp both (exit 2).
    let missing = p.job(
        "missing",
        &std::fs::read_to_string(&from_delta)
            .unwrap()
            .replace("lake/features", "lake/nothing"),
    );
    assert_exit(
        &p.run_job(&missing, &[]),
        3,
        &["no Delta table", "lake/nothing"],
    );
    let bad_filter = p.job(
        "bad_filter",
        &std::fs::read_to_string(&from_delta)
            .unwrap()
            .replace("filters: {ds:", "filters: {nosuch: EU, ds:"),
    );
    assert_exit(
        &p.run_job(&bad_filter, &[]),
        2,
        &["filters.nosuch", "no column `nosuch`"],
    );
    // A version the table never had: exit 3 naming it, nothing read from another version.
    let future = delta_job("future", "    version: \"99\"\n");
    assert_exit(&p.run_job(&future, &[]), 3, &["at version 99"]);
    // A timestamp before the table existed: exit 3 too.
    let early = delta_job("early", "    timestamp: 2001-01-01T00:00:00Z\n");
    assert_exit(&p.run_job(&early, &[]), 3, &["as of 2001-01-01"]);
    let both = delta_job(
        "both",
        "    version: \"1\"\n    timestamp: 2026-11-28T00:00:00Z\n",
    );
    assert_exit(
        &p.scorch(&["validate", both.to_str().unwrap()]),
        2,
        &["not both"],
    );
}

fn manifests_json(runs: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".json") && !n.contains(".report.")
        })
        .map(read_json)
        .collect()
}
