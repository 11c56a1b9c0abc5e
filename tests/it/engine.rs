//! The streaming engine: fused preprocessing equals the Polars path, output files roll
//! over, reduced precision, the progress bar.

use crate::common::*;

use polars::prelude::*;

/// All data files of a partition, in name order, concatenated.
fn read_partition(dir: &std::path::Path) -> (DataFrame, Vec<String>) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    names.sort();
    let mut out: Option<DataFrame> = None;
    for n in &names {
        let df = ParquetReader::new(std::fs::File::open(dir.join(n)).unwrap())
            .finish()
            .unwrap();
        match out.as_mut() {
            None => out = Some(df),
            Some(o) => {
                o.vstack_mut(&df).unwrap();
            }
        }
    }
    (out.expect("at least one file"), names)
}

fn manifest(dir: &std::path::Path) -> serde_json::Value {
    read_json(dir.join("_manifest.json"))
}

#[test]
fn fused_preprocessing_equals_the_polars_path_to_the_bit() {
    // Two days of the example data: nulls, outliers, unknown categories in the drifted days.
    let p = Project::new(2, 3000);
    let job = |name: &str| {
        p.job(
            name,
            &format!(
                "name: {name}\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id, ds]\n\
                 model: {}\noutput:\n  path: output/{name}\ninference:\n  chunk_rows: 1500\n  batch_size: 500\n",
                example_bundle().display()
            ),
        )
    };
    let fused = p.run_job(&job("fused"), &[]);
    assert_exit(&fused, 0, &[]);
    let polars = p.run_job(&job("polars"), &[("SCORCH_PREPROCESS_PATH", "polars")]);
    assert_exit(&polars, 0, &[]);
    let part = |t: &str| p.path().join(format!("output/{t}/ds={LAST_DAY}"));
    assert_eq!(manifest(&part("fused"))["preprocessing"]["path"], "fused");
    assert_eq!(manifest(&part("polars"))["preprocessing"]["path"], "polars");
    let (a, _) = read_partition(&part("fused"));
    let (b, _) = read_partition(&part("polars"));
    assert_eq!(a.height(), 6000);
    for c in ["customer_id", "input_ds", "churn_probability"] {
        assert_eq!(a.column(c).unwrap(), b.column(c).unwrap(), "column {c}");
    }
}

#[test]
fn output_files_roll_over_at_max_file_mb_without_changing_rows() {
    let p = Project::new(1, 300_000);
    let job = |name: &str, extra: &str| {
        p.job(
            name,
            &format!(
                "name: {name}\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id]\n\
                 model: {}\noutput:\n  path: output/{name}\n{extra}inference:\n  chunk_rows: 20000\n",
                example_bundle().display()
            ),
        )
    };
    let o = p.run_job(&job("rolled", "  max_file_mb: 1\n"), &[]);
    assert_exit(&o, 0, &[]);
    let o = p.run_job(&job("single", ""), &[]);
    assert_exit(&o, 0, &[]);
    let dir = |t: &str| p.path().join(format!("output/{t}/ds={LAST_DAY}"));
    let (rolled, names) = read_partition(&dir("rolled"));
    let (single, single_names) = read_partition(&dir("single"));
    assert_eq!(single_names, ["part-00000.parquet"]);
    assert!(names.len() >= 2, "expected several files, got {names:?}");
    assert_eq!(names[1], "part-00001.parquet");
    for c in ["customer_id", "churn_probability"] {
        assert_eq!(rolled.column(c).unwrap(), single.column(c).unwrap());
    }
    // The manifest lists every file with its rows and size; all but the last reached 1 MiB.
    let m = manifest(&dir("rolled"));
    let files = m["output"]["files"].as_array().unwrap();
    assert_eq!(files.len(), names.len());
    let rows: u64 = files.iter().map(|f| f["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, 300_000);
    for (f, name) in files.iter().zip(&names) {
        assert_eq!(f["path"], name.as_str());
        let on_disk = std::fs::metadata(dir("rolled").join(name)).unwrap().len();
        assert_eq!(f["bytes"].as_u64().unwrap(), on_disk);
    }
    for f in &files[..files.len() - 1] {
        assert!(f["bytes"].as_u64().unwrap() >= 1 << 20, "{f}");
    }
}

#[test]
fn bf16_precision_changes_scores_slightly_and_is_recorded() {
    let p = Project::new(1, 4000);
    let bundle = example_bundle();
    let job = p.standard_job("prec", &bundle);
    let f32_run = p.run_job(&job, &[]);
    assert_exit(&f32_run, 0, &[]);
    let dir = p.path().join(format!("output/prec/ds={LAST_DAY}"));
    let (a, _) = read_partition(&dir);
    let with_precision = |prec: &str| {
        p.scorch(&[
            "run",
            job.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--precision",
            prec,
        ])
    };
    assert_exit(&with_precision("bf16"), 0, &[]);
    let (b, _) = read_partition(&dir);
    assert_eq!(manifest(&dir)["inference"]["precision"], "bf16");
    let x = a.column("churn_probability").unwrap().f32().unwrap();
    let y = b.column("churn_probability").unwrap().f32().unwrap();
    let diffs: Vec<f32> = x
        .into_no_null_iter()
        .zip(y.into_no_null_iter())
        .map(|(u, v)| (u - v).abs())
        .collect();
    let max = diffs.iter().cloned().fold(0f32, f32::max);
    assert!(max > 0.0, "bf16 should not be bit-identical to f32");
    assert!(max < 0.05, "bf16 scores differ by up to {max}");
    // A bad precision is a usage error naming the flag and the accepted values,
    // and in a job file a config error naming the field.
    assert_exit(&with_precision("int3"), 2, &["--precision", "int3", "bf16"]);
    let bad = p.job(
        "prec_bad",
        &std::fs::read_to_string(&job)
            .unwrap()
            .replace("name: prec", "name: prec_bad")
            .replace("inference:\n", "inference:\n  precision: int3\n"),
    );
    assert_exit(
        &p.run_job(&bad, &[]),
        2,
        &["inference", "precision", "int3"],
    );
}

#[test]
fn progress_bar_only_on_a_terminal_and_never_with_quiet() {
    let p = Project::new(1, 2000);
    let job = p.standard_job("bar", &example_bundle());
    // Not a terminal (captured stderr): no bar.
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 0, &[]);
    assert!(!stderr(&o).contains("rows/s"), "{}", stderr(&o));
    // On a pseudo-terminal (script(1)): a bar with rows and the rate.
    let cmd = |extra: &str| {
        format!(
            "{} {extra} run {} --date {LAST_DAY}",
            bin().display(),
            job.display()
        )
    };
    let tty = |c: String| {
        std::process::Command::new("script")
            .args(["-qec", &c, "/dev/null"])
            .current_dir(p.path())
            .output()
            .unwrap()
    };
    let o = tty(cmd(""));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let shown = stdout(&o);
    assert!(
        shown.contains("2,000/2,000 rows") || shown.contains("2000/2000 rows"),
        "{shown}"
    );
    let o = tty(cmd("--quiet"));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!stdout(&o).contains("/2,000 rows"), "{}", stdout(&o));
}
