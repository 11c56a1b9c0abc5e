//! Object-store sources and sinks against a real S3-compatible server (s3s-fs on
//! loopback), never a mock.

use crate::common::s3::S3Server;
use crate::common::*;
use polars::prelude::*;

fn s3_job(p: &Project, name: &str, source: &str) -> std::path::PathBuf {
    p.job(
        name,
        &format!(
            "name: {name}\nsource:\n{source}keys: [customer_id]\nmodel: {}\nstorage_profile: lake\n\
             output:\n  path: s3://lake/scores/{name}\ninference:\n  chunk_rows: 500\n",
            example_bundle().display()
        ),
    )
}

#[test]
fn s3_input_and_output_give_the_local_scores_and_commit_by_manifest() {
    let s3 = S3Server::start();
    let p = Project::new(2, 1500);
    s3.put_tree(
        "lake",
        "churn/features",
        &p.path().join("data/churn/features"),
    );
    p.write("profiles.yaml", &s3.profile_yaml("lake"));
    let env = S3Server::env();

    let job = s3_job(
        &p,
        "from_s3",
        "  parquet:\n    path: s3://lake/churn/features/ds={{ ds }}/*.parquet\n",
    );
    let o = p.run_job(&job, &env);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("1500 read, 1500 scored, 1500 written"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("output: s3://lake/scores/from_s3/ds=2026-11-28"),
        "{}",
        stdout(&o)
    );

    // What the server holds: one data file named by the run, and the committing manifest.
    let part = s3.root.path().join("lake/scores/from_s3/ds=2026-11-28");
    let names = |dir: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| !n.starts_with('.'))
            .collect();
        v.sort();
        v
    };
    let files = names(&part);
    assert_eq!(files.len(), 2, "{files:?}");
    let manifest: serde_json::Value = read_json(part.join("_manifest.json"));
    let data_file = manifest["output"]["files"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(files.contains(&data_file));
    assert!(data_file.contains(manifest["run_id"].as_str().unwrap()));
    assert_eq!(
        manifest["inputs"][0]["path"],
        "s3://lake/churn/features/ds=2026-11-28/part-0.parquet"
    );
    assert!(manifest["inputs"][0]["bytes"].as_u64().unwrap() > 0);
    // Lineage: size and last-modified always; the entity tag when the store lists one.
    assert!(
        manifest["inputs"][0]["modified"].as_str().is_some(),
        "{manifest}"
    );
    let text = serde_json::to_string(&manifest).unwrap();
    assert!(!text.contains(crate::common::s3::SECRET_KEY));

    // Same scores as the local job on the same rows.
    let local = p.standard_job("local", &example_bundle());
    assert_exit(&p.run_job(&local, &[]), 0, &[]);
    let a = read_sorted(&part.join(&data_file));
    let b = read_sorted(
        &p.path()
            .join("output/local/ds=2026-11-28/part-00000.parquet"),
    );
    assert_eq!(
        a.column("customer_id").unwrap(),
        b.column("customer_id").unwrap()
    );
    assert_eq!(
        a.column("churn_probability").unwrap(),
        b.column("churn_probability").unwrap()
    );

    // A rerun commits a new file and removes the old one: never both listed.
    let o = p.run_job(&job, &env);
    assert_exit(&o, 0, &[]);
    let files2 = names(&part);
    assert_eq!(files2.len(), 2, "{files2:?}");
    assert!(
        !files2.contains(&data_file),
        "old data file left behind: {files2:?}"
    );
    let runs = names(&s3.root.path().join("lake/scores/from_s3/_runs"));
    assert_eq!(runs.len(), 2);

    // Polars SQL over an S3 table.
    let sql = p.path().join("sql");
    std::fs::create_dir_all(&sql).unwrap();
    std::fs::write(sql.join("s3.sql"), "SELECT * FROM f WHERE ds = '{{ ds }}'").unwrap();
    let job = s3_job(
        &p,
        "sql_s3",
        "  sql:\n    query: sql/s3.sql\n    tables:\n      f: s3://lake/churn/features\n",
    );
    let o = p.run_job(&job, &env);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("1500 read"), "{}", stdout(&o));
}

#[test]
fn object_store_failures_have_documented_codes() {
    let mut s3 = S3Server::start();
    let p = Project::new(1, 300);
    s3.put_tree(
        "lake",
        "churn/features",
        &p.path().join("data/churn/features"),
    );
    p.write("profiles.yaml", &s3.profile_yaml("lake"));
    let job = s3_job(
        &p,
        "fail",
        "  parquet:\n    path: s3://lake/churn/features/ds={{ ds }}/*.parquet\n",
    );

    // No object matches: data contract, exit 3.
    let o = p.scorch_env(
        &["run", job.to_str().unwrap(), "--date", "2020-01-01"],
        &S3Server::env(),
    );
    assert_exit(
        &o,
        3,
        &[
            "no Parquet files match",
            "s3://lake/churn/features/ds=2020-01-01",
        ],
    );

    // Wrong secret: refused by the server; the secret is never printed.
    let wrong = "wrong-secret-sentinel-77";
    let o = p.run_job(
        &job,
        &[
            ("S3_KEY", crate::common::s3::ACCESS_KEY),
            ("S3_SECRET", wrong),
        ],
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(!stderr(&o).contains(wrong) && !stdout(&o).contains(wrong));

    // An unknown option key is a configuration error naming it.
    std::fs::write(
        p.path().join("profiles.yaml"),
        s3.profile_yaml("lake").replace("aws_region", "aws_regoin"),
    )
    .unwrap();
    let o = p.run_job(&job, &S3Server::env());
    assert_exit(&o, 2, &["aws_regoin"]);
    p.write("profiles.yaml", &s3.profile_yaml("lake"));

    // Server gone: retried, then a runtime error (exit 1); nothing published.
    s3.stop();
    let o = p.run_job(&job, &S3Server::env());
    assert_exit(&o, 1, &["s3://lake"]);
    assert!(
        !s3.root
            .path()
            .join("lake/scores/fail/ds=2026-11-28")
            .exists()
    );
}

#[test]
fn file_urls_read_like_local_paths() {
    let p = Project::new(1, 400);
    let url = format!(
        "file://{}/data/churn/features/ds={{{{ ds }}}}/*.parquet",
        p.path().display()
    );
    let job = p.job(
        "file_url",
        &format!(
            "name: file_url\nsource:\n  parquet:\n    path: {url}\nkeys: [customer_id]\nmodel: {}\noutput:\n  path: output/file_url\n",
            example_bundle().display()
        ),
    );
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("400 read, 400 scored, 400 written"),
        "{}",
        stdout(&o)
    );
    let m: serde_json::Value = read_json(
        p.path()
            .join("output/file_url/ds=2026-11-28/_manifest.json"),
    );
    assert!(
        m["inputs"][0]["path"]
            .as_str()
            .unwrap()
            .starts_with("file:///"),
        "{m}"
    );
}

#[test]
fn date_ranges_select_partitions_on_s3() {
    let s3 = S3Server::start();
    let p = Project::new(10, 200);
    s3.put_tree(
        "lake",
        "churn/features",
        &p.path().join("data/churn/features"),
    );
    p.write("profiles.yaml", &s3.profile_yaml("lake"));
    // The last 7 days up to the run date, pruned by partition.
    p.write(
        "sql/week.sql",
        "SELECT * FROM f WHERE ds BETWEEN '{{ ds_add(-6) }}' AND '{{ ds }}'",
    );
    let job = s3_job(
        &p,
        "week",
        "  sql:\n    query: sql/week.sql\n    tables:\n      f: s3://lake/churn/features\n",
    );
    let o = p.run_job(&job, &S3Server::env());
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("1400 read, 1400 scored"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn azure_blob_input_and_output_on_azurite() {
    use object_store::ObjectStoreExt;
    let az = crate::common::azure::Azurite::start();
    az.container("lake");
    // SAFETY: set before any thread of this test reads it; other tests do not use it.
    unsafe { std::env::set_var("AZURITE_BLOB_STORAGE_URL", az.url()) };
    let p = Project::new(1, 700);
    let settings = scorch::storage::Settings {
        options: vec![("azure_storage_use_emulator".into(), "true".into())],
        ..Default::default()
    };
    // Upload the day's features through the Azure protocol.
    let local = p
        .path()
        .join("data/churn/features/ds=2026-11-28/part-0.parquet");
    let (store, path) = scorch::storage::open(
        "az://lake/churn/features/ds=2026-11-28/part-0.parquet",
        &settings,
    )
    .unwrap();
    scorch::storage::runtime()
        .unwrap()
        .block_on(
            store
                .store
                .put(&path, std::fs::read(&local).unwrap().into()),
        )
        .unwrap();
    std::fs::write(
        p.path().join("profiles.yaml"),
        "azure:\n  object_store:\n    options:\n      azure_storage_use_emulator: \"true\"\n",
    )
    .unwrap();
    let job = p.job(
        "from_azure",
        &format!(
            "name: from_azure\nsource:\n  parquet:\n    path: az://lake/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\nstorage_profile: azure\noutput:\n  path: az://lake/scores\n",
            example_bundle().display()
        ),
    );
    let env = [("AZURITE_BLOB_STORAGE_URL", az.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let o = p.run_job(&job, &env);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("700 read, 700 scored, 700 written"),
        "{}",
        stdout(&o)
    );

    // Read the committed manifest and the data file back over the Azure protocol.
    let rt = scorch::storage::runtime().unwrap();
    let get = |url: &str| {
        let (s, path) = scorch::storage::open(url, &settings).unwrap();
        rt.block_on(async { s.store.get(&path).await.unwrap().bytes().await.unwrap() })
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&get("az://lake/scores/ds=2026-11-28/_manifest.json")).unwrap();
    let file = manifest["output"]["files"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let bytes = get(&format!("az://lake/scores/ds=2026-11-28/{file}"));
    let ours = ParquetReader::new(std::io::Cursor::new(bytes.to_vec()))
        .finish()
        .unwrap()
        .sort(["customer_id"], Default::default())
        .unwrap();
    let local_job = p.standard_job("local", &example_bundle());
    assert_exit(&p.run_job(&local_job, &[]), 0, &[]);
    let theirs = read_sorted(
        &p.path()
            .join("output/local/ds=2026-11-28/part-00000.parquet"),
    );
    assert_eq!(
        ours.column("churn_probability").unwrap(),
        theirs.column("churn_probability").unwrap()
    );
}

#[test]
fn quarantined_rows_are_uploaded_beside_an_s3_table() {
    let s3 = S3Server::start();
    let p = Project::new(1, 2000);
    p.write("profiles.yaml", &s3.profile_yaml("lake"));
    p.write(
        "schemas/c.yaml",
        "name: c\ncolumns:\n  age: {max: 120}\nmax_invalid_fraction: 0.1\n",
    );
    let job = p.job(
        "checked",
        &format!(
            "name: checked\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id]\n\
             contract: schemas/c.yaml\nmodel: {}\nstorage_profile: lake\noutput:\n  path: s3://lake/scores/checked\n",
            example_bundle().display()
        ),
    );
    let o = p.run_job(&job, &S3Server::env());
    assert_exit(&o, 0, &[]);
    let out = stdout(&o);
    let q = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("quarantine: "))
        .unwrap_or_else(|| panic!("no quarantine line in {out}"));
    assert!(
        q.starts_with("s3://lake/scores/checked/_quarantine/ds=2026-11-28/"),
        "{q}"
    );
    // The server holds it, and it holds the rows with age > 120.
    let key = q.trim_start_matches("s3://lake/");
    let file = s3.root.path().join("lake").join(key);
    let df = ParquetReader::new(std::fs::File::open(&file).unwrap())
        .finish()
        .unwrap();
    assert!(df.height() > 0);
    let ages = df.column("age").unwrap().f64().unwrap();
    assert!(ages.into_no_null_iter().all(|a| a > 120.0));
    // No temporary file is left behind locally.
    assert!(!std::fs::read_dir(std::env::temp_dir()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains("scorch-quarantine-")
    }));
}

#[test]
fn reports_and_metrics_history_live_beside_an_s3_table() {
    let s3 = S3Server::start();
    let p = Project::new(3, 800);
    p.write("profiles.yaml", &s3.profile_yaml("lake"));
    std::fs::create_dir_all(s3.root.path().join("lake")).unwrap(); // the bucket
    let job = p.job(
        "hist",
        &format!(
            "name: hist\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\nstorage_profile: lake\n\
             report:\n  anomalies:\n    - {{metric: row_count, min_history: 2}}\noutput:\n  path: s3://lake/scores/hist\n",
            example_bundle().display()
        ),
    );
    for day in ["2026-11-26", "2026-11-27", "2026-11-28"] {
        let o = p.scorch_env(
            &["run", job.to_str().unwrap(), "--date", day],
            &S3Server::env(),
        );
        assert_exit(&o, 0, &[]);
        assert!(
            stdout(&o).contains("report: s3://lake/scores/hist/_runs/"),
            "{}",
            stdout(&o)
        );
    }
    // Three history files on the server; the last run read the first two.
    let root = s3.root.path().join("lake/scores/hist/_metrics");
    let mut days: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    days.sort();
    assert_eq!(days, ["ds=2026-11-26", "ds=2026-11-27", "ds=2026-11-28"]);
    let m: serde_json::Value = read_json(
        s3.root
            .path()
            .join("lake/scores/hist/ds=2026-11-28/_manifest.json"),
    );
    let rc = &m["checks"][0];
    assert_eq!(rc["name"], "anomaly(row_count)");
    assert_eq!(rc["status"], "pass");
    assert_eq!(rc["min"], 800.0, "judged against the two earlier runs");
}
