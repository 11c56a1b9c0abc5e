//! `scorch run --dry-run`: the run's plan, printed, with nothing written and the
//! exit code the run would give.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

/// The example job (`jobs/churn_daily.yaml`) and its bundle, copied into a project.
fn example_project(rows: u32) -> (Project, PathBuf) {
    let p = Project::new(1, rows);
    p.copy_bundle();
    let job = p.write(
        "jobs/churn_daily.yaml",
        &std::fs::read_to_string(repo().join("jobs/churn_daily.yaml")).unwrap(),
    );
    (p, job)
}

/// Every file under the project's output folder, with its size and modification time.
fn output_state(p: &Project) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut v: Vec<_> = files_under(&p.path().join("output"))
        .into_iter()
        .map(|f| {
            let md = std::fs::metadata(&f).unwrap();
            (f, md.len(), md.modified().unwrap())
        })
        .collect();
    v.sort();
    v
}

fn dry_run(p: &Project, job: &Path) -> std::process::Output {
    p.scorch(&[
        "run",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--dry-run",
    ])
}

/// The line of `text` that starts with `prefix` (after indentation).
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{text}"))
}

#[test]
fn the_dry_run_prints_the_plan_of_the_example_job_and_writes_nothing() {
    let (p, job) = example_project(1500);
    let o = dry_run(&p, &job);
    assert_exit(&o, 0, &[]);
    let out = stdout(&o);
    assert!(
        !p.path().join("output").exists(),
        "a dry run wrote {:?}",
        files_under(&p.path().join("output"))
    );

    // Inputs: every file of the date, its size and its row count from the footer.
    let files: Vec<PathBuf> = {
        let dir = p.path().join(format!("data/churn/features/ds={LAST_DAY}"));
        let mut f: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        f.sort();
        f
    };
    assert!(!files.is_empty());
    assert!(
        line(&out, "inputs:").starts_with(&format!("inputs: {} file(s), ", files.len())),
        "{out}"
    );
    assert!(line(&out, "inputs:").ends_with(", 1500 rows"), "{out}");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let l = out
            .lines()
            .find(|l| l.contains(&name))
            .unwrap_or_else(|| panic!("input {name} not listed:\n{out}"));
        use polars::prelude::SerReader;
        let rows = polars::prelude::ParquetReader::new(std::fs::File::open(f).unwrap())
            .num_rows()
            .unwrap();
        assert!(l.ends_with(&format!("  {rows} rows")), "{l}");
    }
    assert!(line(&out, "source: ").contains("parquet data/churn/features/ds=2026-11-28"));

    // The model and device, the pin, the partition it would create.
    let model = line(&out, "model: ");
    assert!(
        model.starts_with("model: churn 1.0.0 (torchscript, bundle models/churn/1.0.0, sha256 "),
        "{model}"
    );
    assert!(
        line(&out, "inference: ").starts_with("inference: device cpu, precision f32,"),
        "{out}"
    );
    assert!(line(&out, "inference: ").ends_with("batch 4096"), "{out}");
    assert!(
        line(&out, "preprocessing: ").starts_with("preprocessing: churn_features 1.0.0 ("),
        "{out}"
    );
    assert!(
        line(&out, "output: ").ends_with("output/churn_scores"),
        "{out}"
    );
    assert_eq!(
        line(&out, "partition: "),
        "partition: ds=2026-11-28 (new: there is no such partition yet)"
    );
    assert!(
        line(&out, "columns: ").starts_with("columns: customer_id, churn_probability"),
        "{out}"
    );
    assert!(
        line(&out, "report: ").contains("drift against the model's reference profile"),
        "{out}"
    );
    assert_eq!(line(&out, "lock: "), "lock: _locks/ds=2026-11-28.lock");

    // After a run, the dry run names the rows it would replace, and still writes nothing.
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
    let before = output_state(&p);
    let o = dry_run(&p, &job);
    assert_exit(&o, 0, &[]);
    assert_eq!(
        line(&stdout(&o), "partition: "),
        "partition: ds=2026-11-28 (would replace its 1500 rows)"
    );
    assert_eq!(
        output_state(&p),
        before,
        "the dry run changed the output table"
    );

    // It takes no lock: it plans while a run holds the partition.
    let mut held = Command::new(bin())
        .current_dir(p.path())
        .args(["run", job.to_str().unwrap(), "--date", LAST_DAY])
        .env("SCORCH_TEST_PAUSE_BEFORE_PUBLISH_MS", "20000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = p
        .path()
        .join("output/churn_scores/_locks/ds=2026-11-28.lock");
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| !s.is_empty()) {
        assert!(t.elapsed().as_secs() < 60, "the run never took its lock");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let locked = p.run_job(&job, &[]);
    let planned = dry_run(&p, &job);
    held.kill().unwrap();
    let _ = held.wait();
    assert_exit(&locked, 6, &[]);
    assert_exit(&planned, 0, &[]);
}

#[test]
fn the_dry_run_exits_with_the_code_the_run_would_give() {
    let (p, _) = example_project(1000);
    let bundle = p.path().join("models/churn/1.0.0");
    let base = std::fs::read_to_string(repo().join("jobs/churn_daily.yaml")).unwrap();
    // A day with the input's schema and no rows.
    let mut none =
        read_partition(&p.path().join(format!("data/churn/features/ds={LAST_DAY}"))).head(Some(0));
    let empty = p.path().join(format!("data/empty/ds={LAST_DAY}"));
    std::fs::create_dir_all(&empty).unwrap();
    polars::prelude::ParquetWriter::new(
        std::fs::File::create(empty.join("part-0.parquet")).unwrap(),
    )
    .finish(&mut none)
    .unwrap();
    let cases: Vec<(&str, String, i32, &str)> = vec![
        (
            "unknown_field",
            base.replace("keys: [customer_id]", "keys: [customer_id]\nkyes: [x]"),
            2,
            "kyes",
        ),
        (
            "pin",
            base.replace("version: 1.0.0\nreport", "version: 9.9.9\nreport"),
            4,
            "refusing to score with preprocessing the model was not trained on",
        ),
        (
            "no_input",
            base.replace("ds={{ ds }}/*.parquet", "ds={{ ds }}/none-*.parquet"),
            3,
            "no Parquet files match",
        ),
        (
            "empty_input",
            base.replace("data/churn/features/ds=", "data/empty/ds="),
            3,
            "read 0 rows",
        ),
        (
            "missing_key",
            base.replace("keys: [customer_id]", "keys: [customer_key]"),
            3,
            "key column `customer_key`",
        ),
        (
            "bad_device",
            base.replace("device: cpu", "device: tpu"),
            2,
            "inference.device",
        ),
        (
            "model_missing",
            base.replace("model: models/churn/1.0.0", "model: models/churn/7.0.0"),
            4,
            "7.0.0",
        ),
    ];
    for (name, yaml, code, fragment) in cases {
        assert_ne!(yaml, base, "case {name} changed nothing");
        let job = p.job(name, &yaml);
        let planned = dry_run(&p, &job);
        assert_exit(&planned, code, &[fragment]);
        assert!(
            !p.path().join("output").exists(),
            "case {name}: the dry run wrote {:?}",
            files_under(&p.path().join("output"))
        );
        let ran = p.run_job(&job, &[]);
        assert_eq!(
            ran.status.code(),
            planned.status.code(),
            "case {name}: the run exits {:?}, its dry run {:?}\n{}",
            ran.status.code(),
            planned.status.code(),
            stderr(&ran)
        );
        // The run recorded its failure where a failed run does; leave a clean table
        // for the next case's dry run.
        let _ = std::fs::remove_dir_all(p.path().join("output"));
    }
    assert!(bundle.exists());
}
