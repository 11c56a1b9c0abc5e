//! Data contracts: schema checks before reading, row rules with quarantine, dataset
//! rules before publishing.

use crate::common::*;

use polars::prelude::*;

fn contract_file(p: &Project, name: &str, yaml: &str) -> String {
    let rel = format!("schemas/{name}.yaml");
    p.write(&rel, yaml);
    rel
}

fn job(p: &Project, name: &str, path: &str, contract: &str) -> std::path::PathBuf {
    p.job(
        name,
        &format!(
            "name: {name}\nsource:\n  parquet:\n    path: {path}\nkeys: [customer_id]\ncontract: {contract}\n\
             model: {}\noutput:\n  path: output/{name}\n",
            example_bundle().display()
        ),
    )
}

fn read(path: &std::path::Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

/// The generated features of one day.
fn day(p: &Project, ds: &str) -> DataFrame {
    let dir = p.path().join(format!("data/churn/features/ds={ds}"));
    read(
        &std::fs::read_dir(dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
}

fn ids(df: &DataFrame) -> Vec<i64> {
    df.column("customer_id")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

fn run_manifest(p: &Project, table: &str) -> serde_json::Value {
    let dir = p.path().join(format!("output/{table}/_runs"));
    let f = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    read_json(&f)
}

const TODAY: &str = "data/churn/features/ds={{ ds }}/*.parquet";

#[test]
fn rows_breaking_rules_are_quarantined_with_reasons_and_not_scored() {
    let p = Project::new(1, 5000);
    // The repository's example contract: the generator plants ages of 150.
    p.write(
        "schemas/churn_features.yaml",
        &std::fs::read_to_string(repo().join("schemas/churn_features.yaml")).unwrap(),
    );
    let o = p.run_job(
        &job(&p, "checked", TODAY, "schemas/churn_features.yaml"),
        &[],
    );
    assert_exit(&o, 0, &[]);
    let bad_ids = ids(&day(&p, LAST_DAY)
        .lazy()
        .filter(col("age").gt(lit(120.0)))
        .collect()
        .unwrap());
    assert!(!bad_ids.is_empty(), "the generator plants outliers");
    let m = run_manifest(&p, "checked");
    assert_eq!(m["rows"]["read"], 5000);
    assert_eq!(m["rows"]["quarantined"], bad_ids.len());
    assert_eq!(m["rows"]["scored"], 5000 - bad_ids.len());
    let q_path = m["contract"]["quarantine"].as_str().unwrap();
    assert!(q_path.contains("_quarantine/ds=2026-11-28/"), "{q_path}");
    let q = read(&p.path().join(q_path));
    assert_eq!(ids(&q), bad_ids);
    for r in q
        .column("quarantine_reason")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
    {
        assert_eq!(r, "age > max 120");
    }
    // The scored table holds every other row, none of the quarantined ones.
    let out = read(
        &p.path()
            .join(format!("output/checked/ds={LAST_DAY}/part-00000.parquet")),
    );
    assert_eq!(out.height(), 5000 - bad_ids.len());
    let scored: std::collections::HashSet<i64> = ids(&out).into_iter().collect();
    assert!(bad_ids.iter().all(|id| !scored.contains(id)));
}

#[test]
fn too_many_invalid_rows_fail_the_run_and_publish_nothing() {
    let p = Project::new(1, 3000);
    let c = contract_file(
        &p,
        "strict",
        "name: strict\ncolumns:\n  plan: {allowed: [basic]}\n  age: {max: 120}\nmax_invalid_fraction: 0.05\n",
    );
    let o = p.run_job(&job(&p, "strict", TODAY, &c), &[]);
    assert_exit(
        &o,
        3,
        &[
            "contract `strict`",
            "max_invalid_fraction is 0.05",
            "quarantine",
        ],
    );
    assert!(!p.path().join("output/strict/ds=2026-11-28").exists());
    let m = run_manifest(&p, "strict");
    assert_eq!(m["status"], "failed");
    assert_eq!(m["exit_code"], 3);
    // The quarantine file is kept for inspection, every rule broken is named.
    let q = read(&p.path().join(m["contract"]["quarantine"].as_str().unwrap()));
    assert_eq!(
        q.height() as u64,
        m["rows"]["quarantined"].as_u64().unwrap()
    );
    let reasons: Vec<&str> = q
        .column("quarantine_reason")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert!(reasons.contains(&"plan not in allowed values"));
    assert!(
        reasons.contains(&"age > max 120; plan not in allowed values")
            || reasons.contains(&"age > max 120"),
        "{:?}",
        &reasons[..5]
    );
}

#[test]
fn repeated_keys_are_quarantined_after_their_first_row() {
    // Two days read together: customers active on both days appear twice.
    let p = Project::new(2, 4000);
    let c = contract_file(
        &p,
        "unique",
        "name: unique\nunique: [customer_id]\nmax_invalid_fraction: 0.9\n",
    );
    let o = p.run_job(&job(&p, "unique", "data/churn/features", &c), &[]);
    assert_exit(&o, 0, &[]);
    let first: std::collections::HashSet<i64> = ids(&day(&p, "2026-11-27")).into_iter().collect();
    let repeats = ids(&day(&p, LAST_DAY))
        .into_iter()
        .filter(|id| first.contains(id))
        .count();
    assert!(repeats > 0);
    let m = run_manifest(&p, "unique");
    assert_eq!(m["rows"]["quarantined"], repeats);
    let out = read(
        &p.path()
            .join(format!("output/unique/ds={LAST_DAY}/part-00000.parquet")),
    );
    let ids = out.column("customer_id").unwrap();
    assert_eq!(ids.n_unique().unwrap(), out.height());
}

#[test]
fn schema_and_dataset_rules_fail_with_exit_3_naming_what() {
    let p = Project::new(2, 500);
    let missing = contract_file(&p, "missing", "name: missing\ncolumns:\n  email: {}\n");
    let o = p.run_job(&job(&p, "missing", TODAY, &missing), &[]);
    assert_exit(&o, 3, &["no column `email`", "schemas/missing.yaml"]);
    let dtype = contract_file(
        &p,
        "dtype",
        "name: dtype\ncolumns:\n  age: {dtype: string}\n",
    );
    let o = p.run_job(&job(&p, "dtype", TODAY, &dtype), &[]);
    assert_exit(&o, 3, &["column `age` is f64", "requires string"]);
    let rows = contract_file(&p, "rows", "name: rows\nrow_count: {min: 501}\n");
    let o = p.run_job(&job(&p, "rows", TODAY, &rows), &[]);
    assert_exit(&o, 3, &["500 rows read, row_count.min is 501"]);
    assert!(!p.path().join("output/rows/ds=2026-11-28").exists());
    // Freshness is judged from the run date: the day before's snapshot is 48 h old
    // at the end of the run date.
    let fresh = contract_file(
        &p,
        "fresh",
        "name: fresh\nfreshness: {column: ds, max_age_hours: 36}\n",
    );
    let stale_job = job(
        &p,
        "fresh",
        "data/churn/features/ds=2026-11-27/*.parquet",
        &fresh,
    );
    let o = p.run_job(&stale_job, &[]);
    assert_exit(&o, 3, &["newest `ds` is 48.0 hours", "max_age_hours is 36"]);
    let o = p.scorch(&["run", stale_job.to_str().unwrap(), "--date", "2026-11-27"]);
    assert_exit(&o, 0, &[]);
}

#[test]
fn validate_checks_contract_files() {
    let p = Project::new(1, 100);
    let bad = contract_file(
        &p,
        "bad",
        "name: bad\ncolumns:\n  a: {dtype: text, regex: \"(\", min: 3, max: 1}\nmax_invalid_fraction: 2\n",
    );
    let o = p.scorch(&["validate", &bad]);
    assert_exit(
        &o,
        2,
        &[
            "columns.a.dtype",
            "columns.a.regex",
            "columns.a.min",
            "max_invalid_fraction",
        ],
    );
    let o = p.scorch(&[
        "validate",
        repo().join("schemas").to_str().unwrap(),
        repo()
            .join("jobs/churn_daily_contract.yaml")
            .to_str()
            .unwrap(),
        "--project-dir",
        repo().to_str().unwrap(),
    ]);
    assert_exit(&o, 0, &[]);
}
