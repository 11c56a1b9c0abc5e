//! `scorch backfill`: one run per date, several at once; committed dates are
//! skipped (resumable), `--force` reruns them, a failing date does not stop the
//! others and sets the exit code.

use crate::common::*;

fn run_id(p: &Project, ds: &str) -> String {
    let m: serde_json::Value =
        read_json(p.path().join(format!("output/bf/ds={ds}/_manifest.json")));
    m["run_id"].as_str().unwrap().to_string()
}

#[test]
fn backfill_is_parallel_idempotent_and_resumable() {
    let p = Project::new(5, 300);
    let job = p.standard_job("bf", &example_bundle());
    let days: Vec<String> = (24..=28).map(|d| format!("2026-11-{d}")).collect();
    let backfill = |extra: &[&str]| {
        p.scorch(
            &[
                &[
                    "backfill",
                    job.to_str().unwrap(),
                    "--from",
                    "2026-11-24",
                    "--to",
                    "2026-11-28",
                ][..],
                extra,
            ]
            .concat(),
        )
    };
    let o = backfill(&["--parallel", "2"]);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("5 ran, 0 skipped (committed), 0 failed"),
        "{}",
        stdout(&o)
    );
    let first: Vec<String> = days.iter().map(|d| run_id(&p, d)).collect();
    for d in &days {
        let df = read_sorted(
            &p.path()
                .join(format!("output/bf/ds={d}/part-00000.parquet")),
        );
        assert_eq!(df.height(), 300);
    }
    // Again: every date is committed, nothing runs.
    let o = backfill(&["--parallel", "2"]);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("0 ran, 5 skipped"), "{}", stdout(&o));
    assert_eq!(
        days.iter().map(|d| run_id(&p, d)).collect::<Vec<_>>(),
        first
    );
    // Resumable: a lost partition is the only date that runs.
    std::fs::remove_dir_all(p.path().join("output/bf/ds=2026-11-26")).unwrap();
    let o = backfill(&[]);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("1 ran, 4 skipped"), "{}", stdout(&o));
    assert_ne!(run_id(&p, "2026-11-26"), first[2]);
    assert_eq!(run_id(&p, "2026-11-25"), first[1]);
    // --force reruns every date, replacing (not duplicating) the rows.
    let o = backfill(&["--force", "--parallel", "3"]);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("5 ran, 0 skipped"), "{}", stdout(&o));
    for (d, old) in days.iter().zip(&first) {
        assert_ne!(&run_id(&p, d), old);
        let files = std::fs::read_dir(p.path().join(format!("output/bf/ds={d}")))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".parquet")
            })
            .count();
        assert_eq!(files, 1);
    }
    // A date without input fails (exit 3) but the other dates still run.
    std::fs::remove_dir_all(p.path().join("data/churn/features/ds=2026-11-25")).unwrap();
    let o = backfill(&["--force"]);
    assert_exit(
        &o,
        3,
        &[
            "1 of 5 date(s) failed",
            "first 2026-11-25",
            "no Parquet files",
        ],
    );
    assert!(
        stdout(&o).contains("4 ran, 0 skipped (committed), 1 failed"),
        "{}",
        stdout(&o)
    );
}
