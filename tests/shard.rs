//! Sharded runs: N shards plus `scorch commit` give exactly the rows and scores of
//! one run (shard boundaries are whole inference batches), a shard rerun replaces
//! only its own files, and commit refuses an incomplete set.

mod common;
use common::*;

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
        .select(["customer_id", "ds", "churn_probability"])
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
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(p.path().join(format!(
            "output/sharded/_shards/ds={LAST_DAY}/shard-{i:05}-of-00004/_manifest.json"
        )))
        .unwrap(),
    )
    .unwrap();
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
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            p.path()
                .join(format!("output/sharded/ds={LAST_DAY}/_manifest.json")),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(m["kind"], "commit");
    assert_eq!(m["rows"], 9000);
    assert_eq!(m["shards"].as_array().unwrap().len(), 4);
    assert!(
        !p.path()
            .join(format!("output/sharded/_shards/ds={LAST_DAY}"))
            .exists()
    );
}

#[test]
fn sharding_refuses_what_it_cannot_merge_yet() {
    let p = Project::new(1, 100);
    let with_report = job(&p, "rep", "report: {}\n");
    let o = run(&p, &with_report, &["--shard", "0/2"]);
    assert_exit(&o, 2, &["sharded runs do not yet support `report:`"]);
    let plain = job(&p, "plain", "");
    let o = run(&p, &plain, &["--shard", "2/2"]);
    assert_exit(&o, 2, &["the index must be 0 to COUNT-1"]);
    let o = run(&p, &plain, &["--shards", "2"]);
    assert_exit(&o, 2, &["JOB_COMPLETION_INDEX"]);
}
