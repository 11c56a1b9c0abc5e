//! Performance estimated without labels (CBPE): `scorch profile --labels` stores a
//! calibration in the bundle; runs with `report.performance` report the expected
//! confusion matrix, precision, recall, F1, accuracy and AUC with a band; the
//! estimates are checked here against the realized values computed from the
//! example's late labels, independently of scorch's code.

use crate::common::*;
use polars::prelude::*;

/// Realized (precision, recall, F1, accuracy) at `t` and the AUC, by direct counting
/// and the rank-sum formula (ties share their mean rank).
fn realized(scores: &[f64], labels: &[bool], t: f64) -> ([f64; 4], f64) {
    let (mut tp, mut fp, mut fn_, mut tn) = (0.0, 0.0, 0.0, 0.0);
    for (s, l) in scores.iter().zip(labels) {
        match (*s >= t, *l) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            (false, false) => tn += 1.0,
        }
    }
    let n = scores.len() as f64;
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        for k in i..=j {
            ranks[idx[k]] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    let pos = labels.iter().filter(|l| **l).count() as f64;
    let rank_sum: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l)
        .map(|(r, _)| r)
        .sum();
    let auc = (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * (n - pos));
    (
        [
            tp / (tp + fp),
            tp / (tp + fn_),
            2.0 * tp / (2.0 * tp + fp + fn_),
            (tp + tn) / n,
        ],
        auc,
    )
}

fn performance_job(
    p: &Project,
    name: &str,
    bundle: &std::path::Path,
    report: &str,
) -> std::path::PathBuf {
    p.job(
        name,
        &format!(
            "name: {name}\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/{name}\n\
             inference: {{threads: 2, batch_size: 2048}}\nreport:\n{report}",
            bundle.display()
        ),
    )
}

/// [`performance_job`] with the example's late labels.
fn labelled_job(p: &Project, name: &str, report: &str) -> std::path::PathBuf {
    let job = performance_job(p, name, &example_bundle(), report);
    let mut text = std::fs::read_to_string(&job).unwrap();
    text.push_str("labels: {column: churned, path: \"data/churn/labels/ds={{ ds }}/*.parquet\"}\n");
    std::fs::write(&job, text).unwrap();
    job
}

#[test]
fn estimates_sit_within_their_band_of_the_realized_values_on_labelled_days() {
    // 21 days: the last 14 drift (covariate shift: higher charges, more support
    // calls, a new plan), the last 7 have no labels yet. Days 1–14 are labelled,
    // 8–14 of them drifted. The committed bundle was calibrated on other rows
    // (the example's 2026-11-01..05), so these days are out of sample.
    let p = Project::new(21, 20_000);
    let job = labelled_job(
        &p,
        "perf",
        "  performance: {thresholds: [0.3, 0.5]}\n  drift: {psi_warn: 0.1, psi_fail: 10, multivariate: {}}\n  checks:\n\
         \x20   - {metric: estimated_auc, min_change: -0.02}\n\
         \x20   - {metric: estimated_f1, threshold: 0.5, min: 0.3, severity: warn}\n",
    );
    let o = p.scorch(&[
        "backfill",
        job.to_str().unwrap(),
        "--from",
        "2026-11-08",
        "--to",
        "2026-11-22",
        "--parallel",
        "2",
    ]);
    assert_exit(&o, 0, &[]);
    // Labels arrive: `scorch evaluate` joins them to the published scores.
    let o = p.scorch(&[
        "evaluate",
        job.to_str().unwrap(),
        "--from",
        "2026-11-07",
        "--to",
        "2026-11-23",
    ]);
    assert_exit(&o, 0, &[]);
    let out = stdout(&o);
    assert!(out.contains("2026-11-07: not scored"), "{out}");
    assert!(out.contains("2026-11-22: no labels yet"), "{out}");
    assert!(out.contains("2026-11-23: not scored"), "{out}");
    let record_path = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("record: "))
        .unwrap();
    let record = read_json(p.path().join(record_path));
    let evaluated: Vec<&serde_json::Value> = record["dates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "evaluated")
        .collect();
    assert_eq!(evaluated.len(), 14);
    let (mut within, mut total, mut worst) = (0usize, 0usize, 0.0f64);
    let mut drifted_shift = 0.0;
    for day in 8..=21 {
        let ds = format!("2026-11-{day:02}");
        let manifest = read_json(p.path().join(format!("output/perf/ds={ds}/_manifest.json")));
        let report = read_json(p.path().join(manifest["report"].as_str().unwrap()));
        let perf = &report["performance"];
        assert_eq!(perf["rows"], 20_000, "{ds}");
        assert_eq!(perf["score"], "churn_probability");
        let scored = read_partition(&p.path().join(format!("output/perf/ds={ds}")));
        let labels = ParquetReader::new(
            std::fs::File::open(
                p.path()
                    .join(format!("data/churn/labels/ds={ds}/part-0.parquet")),
            )
            .unwrap(),
        )
        .finish()
        .unwrap();
        let joined = scored
            .join(
                &labels,
                ["customer_id"],
                ["customer_id"],
                JoinArgs::new(JoinType::Inner),
                None,
            )
            .unwrap();
        assert_eq!(joined.height(), 20_000);
        let s: Vec<f64> = joined
            .column("churn_probability")
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        let l: Vec<bool> = joined
            .column("churned")
            .unwrap()
            .bool()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect();
        let mut compare = |what: String, est: &serde_json::Value, real: f64| {
            let (v, se) = (
                est["value"].as_f64().unwrap(),
                est["std_error"].as_f64().unwrap(),
            );
            assert!(se > 0.0 && se < 0.05, "{what}: standard error {se}");
            let z = (v - real).abs() / se;
            total += 1;
            if z <= 1.96 {
                within += 1;
            }
            worst = worst.max(z);
            println!("{ds} {what}: estimated {v:.4} ± {se:.4}, realized {real:.4} ({z:.2} SE)");
        };
        for at in perf["at"].as_array().unwrap() {
            let t = at["threshold"].as_f64().unwrap();
            let (m, _) = realized(&s, &l, t);
            for (k, name) in ["precision", "recall", "f1", "accuracy"].iter().enumerate() {
                compare(format!("{name}@{t}"), &at[*name], m[k]);
            }
            // The expected confusion matrix sums to the rows.
            let cells: f64 = ["tp", "fp", "fn_", "tn"]
                .iter()
                .map(|c| at[*c].as_f64().unwrap())
                .sum();
            assert!((cells - 20_000.0).abs() < 1e-6, "{ds}: {cells}");
        }
        let (_, auc) = realized(&s, &l, 0.5);
        compare("auc".into(), &perf["estimated_auc"], auc);
        // The evaluation found the same realized values and set them beside the estimates.
        let e = evaluated.iter().find(|d| d["ds"] == ds.as_str()).unwrap();
        assert_eq!(e["labelled_rows"], 20_000);
        assert_eq!(e["run_id"], manifest["run_id"]);
        assert!(
            (e["realized"]["auc"].as_f64().unwrap() - auc).abs() < 1e-9,
            "{ds}"
        );
        let cmp = e["comparisons"].as_array().unwrap();
        assert_eq!(cmp.len(), 9, "{ds}: AUC and 4 metrics at 2 thresholds");
        for c in cmp {
            let (est, real) = (
                c["estimated"].as_f64().unwrap(),
                c["realized"].as_f64().unwrap(),
            );
            assert!((c["error"].as_f64().unwrap() - (est - real)).abs() < 1e-12);
            if c["metric"] == "f1" && c["threshold"] == 0.5 {
                let (m, _) = realized(&s, &l, 0.5);
                assert!((real - m[2]).abs() < 1e-12);
                assert_eq!(est, perf["at"][1]["f1"]["value"].as_f64().unwrap());
            }
        }
        if day >= 15 {
            // Drift moved the scores: the estimate follows (more churners are caught).
            drifted_shift += perf["at"][1]["recall"]["value"].as_f64().unwrap()
                - perf["at"][1]["reference_recall"].as_f64().unwrap();
        }
        // The checks were judged against the reference measured at profile time.
        let checks = report["checks"].as_array().unwrap();
        let auc_check = checks
            .iter()
            .find(|c| c["name"] == "estimated_auc")
            .unwrap();
        assert_eq!(auc_check["status"], "pass");
        assert!(
            (auc_check["min"].as_f64().unwrap() - (perf["reference_auc"].as_f64().unwrap() - 0.02))
                .abs()
                < 1e-12
        );
        assert!(checks.iter().any(|c| c["name"] == "estimated_f1@0.5"));
    }
    // A 95 % band: about 95 % of the estimates hold the realized value; none far off.
    let share = within as f64 / total as f64;
    println!("{within}/{total} within 1.96 SE ({share:.3}); worst {worst:.2} SE");
    assert!(
        share >= 0.88,
        "{within}/{total} within the band, worst {worst:.2} SE"
    );
    assert!(worst < 4.0, "worst {worst:.2} SE");
    assert!(
        drifted_shift / 7.0 > 0.05,
        "drift did not move the estimated recall"
    );
    // The metrics history holds the estimates for charts over time.
    let history = p.path().join("output/perf/_metrics/ds=2026-11-21");
    let file = std::fs::read_dir(&history)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| !f.to_string_lossy().contains("-evaluate"))
        .unwrap();
    let h = ParquetReader::new(std::fs::File::open(file).unwrap())
        .finish()
        .unwrap();
    let metrics: Vec<String> = h
        .column("metric")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_string())
        .collect();
    for m in [
        "estimated_auc",
        "estimated_auc_se",
        "estimated_f1@0.5",
        "estimated_recall_se@0.3",
    ] {
        assert!(metrics.iter().any(|x| x == m), "{m} not in the history");
    }
    // The evaluation's rows sit in the same date's history, beside the run's.
    let files: Vec<_> = std::fs::read_dir(&history)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let eval_file = files
        .iter()
        .find(|f| f.to_string_lossy().contains("-evaluate"))
        .unwrap();
    let h = ParquetReader::new(std::fs::File::open(eval_file).unwrap())
        .finish()
        .unwrap();
    assert_metrics(
        &h,
        &[
            "realized_auc",
            "realized_f1@0.5",
            "realized_log_loss",
            "estimation_error_auc",
            "labelled_rows",
        ],
        "evaluation's history",
    );
    // One page over time: statuses, rows, PSI heat map, estimated and realized performance.
    let page = p.path().join("history.html");
    let (o, html) = history_page(&p, &job, &page, &[]);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("15 date(s)"), "{}", stdout(&o));
    for part in [
        "Status and checks",
        "Drift: PSI per column and date",
        "plan · 2026-11-15 · PSI",
        "95 % band</title>",
        "realized 2026-11-21",
        "f1@0.5",
        "Multivariate drift: PCA reconstruction error",
    ] {
        assert!(html.contains(part), "history page lacks {part:?}");
    }
    // Unlabelled dates have estimates but no realized dot; dates outside --from/--to are left out.
    assert!(!html.contains("realized 2026-11-22"));
    let (o, _) = history_page(
        &p,
        &job,
        &page,
        &["--from", "2026-11-20", "--to", "2026-11-21"],
    );
    assert!(stdout(&o).contains("2 date(s)"), "{}", stdout(&o));
    let (o, _) = history_page(&p, &job, &page, &[]);
    assert_exit(&o, 0, &[]);
    open_in_chromium(&page, "history.png");
    // An evaluation without `labels:` is a configuration error.
    let nolabels = performance_job(&p, "nolabels", &example_bundle(), "  performance: {}\n");
    assert_exit(
        &p.scorch(&[
            "evaluate",
            nolabels.to_str().unwrap(),
            "--date",
            "2026-11-08",
        ]),
        2,
        &["needs the job's `labels:`"],
    );
    // The page shows the section and the reliability diagram.
    let html = std::fs::read_to_string(
        p.path().join(
            read_json(p.path().join("output/perf/ds=2026-11-21/_manifest.json"))["report_html"]
                .as_str()
                .unwrap(),
        ),
    )
    .unwrap();
    assert!(html.contains("Estimated performance") && html.contains("reliability diagram"));
    assert!(html.contains("id=\"status\""));
}

#[test]
fn gates_fail_the_run_and_bad_settings_are_refused_before_reading() {
    let p = Project::new(1, 2_000);
    // A gate the model cannot meet: exit 5, output and report still written.
    let job = performance_job(
        &p,
        "gate",
        &example_bundle(),
        "  performance: {}\n  checks:\n\x20   - {metric: estimated_auc, min_change: 0.1}\n",
    );
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 5, &["estimated_auc"]);
    let m = read_json(
        p.path()
            .join(format!("output/gate/ds={LAST_DAY}/_manifest.json")),
    );
    let r = read_json(p.path().join(m["report"].as_str().unwrap()));
    assert_eq!(r["status"], "fail");
    // Default thresholds: the profile's.
    let t: Vec<f64> = r["performance"]["at"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["threshold"].as_f64().unwrap())
        .collect();
    assert_eq!(t, vec![0.3, 0.5]);

    // A bundle without calibration: exit 2 from validate and run, with the fix.
    let bundle = p.copy_bundle();
    let o = p.scorch(&[
        "profile",
        "--bundle",
        bundle.to_str().unwrap(),
        "--data",
        "data/churn/features",
    ]);
    assert_exit(&o, 0, &[]);
    let job = performance_job(&p, "nocal", &bundle, "  performance: {}\n");
    for o in [
        p.scorch(&["validate", job.to_str().unwrap()]),
        p.run_job(&job, &[]),
    ] {
        assert_exit(&o, 2, &["report.performance", "no calibration", "--labels"]);
    }
    // A check at a threshold that is not counted, or compared with a reference
    // threshold that was not measured.
    let job = performance_job(
        &p,
        "badt",
        &example_bundle(),
        "  performance: {thresholds: [0.5]}\n  checks:\n\x20   - {metric: estimated_f1, threshold: 0.4, min: 0.1}\n",
    );
    assert_exit(
        &p.run_job(&job, &[]),
        2,
        &["threshold 0.4", "report.performance.thresholds"],
    );
    let job = performance_job(
        &p,
        "badref",
        &example_bundle(),
        "  performance: {thresholds: [0.4]}\n  checks:\n\x20   - {metric: estimated_f1, min_change: -0.1}\n",
    );
    assert_exit(
        &p.run_job(&job, &[]),
        2,
        &["reference was measured at 0.3, 0.5"],
    );
    // Pure mistakes, caught by validate.
    for (report, says) in [
        (
            "  checks:\n\x20   - {metric: estimated_auc, min: 0.5}\n",
            "needs `report.performance`",
        ),
        (
            "  performance: {}\n  checks:\n\x20   - {metric: estimated_auc, threshold: 0.5, min: 0.5}\n",
            "takes no `threshold`",
        ),
        (
            "  performance: {}\n  checks:\n\x20   - {column: age, metric: mean, min_change: 0.5}\n",
            "apply to the estimated",
        ),
        (
            "  performance: {}\n  checks:\n\x20   - {metric: estimated_f1}\n",
            "needs `min`, `max`, `min_change`",
        ),
        ("  performance: {thresholds: [1.5]}\n", "between 0 and 1"),
        (
            "  performance: {thresholds: [0.5, 0.3, 0.5]}\n",
            "threshold 0.5 is listed twice",
        ),
        (
            "  performance: {}\n  checks:\n\x20   - {metric: mean, min: 0}\n",
            "needs a `column`",
        ),
    ] {
        let job = performance_job(&p, "bad", &example_bundle(), report);
        assert_exit(&p.scorch(&["validate", job.to_str().unwrap()]), 2, &[says]);
    }
}

#[test]
fn profile_labels_read_a_column_or_a_joined_table_and_refuse_bad_labels() {
    let p = Project::new(9, 3_000);
    let bundle = p.copy_bundle();
    let b = bundle.to_str().unwrap();
    // The label as a column of the calibration rows.
    let labelled = p.path().join("labelled.parquet");
    let feats = p.path().join("data/churn/features");
    let mut df = LazyFrame::scan_parquet(
        PlRefPath::new(format!("{}/**/*.parquet", feats.display()).as_str()),
        ScanArgsParquet {
            hive_options: HiveOptions::new_enabled(),
            ..Default::default()
        },
    )
    .unwrap()
    .join(
        LazyFrame::scan_parquet(
            PlRefPath::new(
                format!("{}/data/churn/labels/**/*.parquet", p.path().display()).as_str(),
            ),
            ScanArgsParquet {
                hive_options: HiveOptions::new_enabled(),
                ..Default::default()
            },
        )
        .unwrap(),
        [col("customer_id"), col("ds")],
        [col("customer_id"), col("ds")],
        JoinArgs::new(JoinType::Inner),
    )
    .with_column(col("churned").cast(DataType::Int8))
    .collect()
    .unwrap();
    assert_eq!(df.height(), 6_000);
    ParquetWriter::new(std::fs::File::create(&labelled).unwrap())
        .finish(&mut df)
        .unwrap();
    let profile = |extra: &[&str]| {
        p.scorch(
            &[
                &["profile", "--bundle", b, "--data", "data/churn/features"][..],
                extra,
            ]
            .concat(),
        )
    };
    let o = profile(&[
        "--labels",
        "churned",
        "--calibration-data",
        "labelled.parquet",
        "--thresholds",
        "0.2,0.6",
    ]);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("calibrated churn_probability on 6000 labelled rows"),
        "{}",
        stdout(&o)
    );
    let by_column = read_profile(&bundle);
    // The same rows through a joined labels table give the same calibration.
    let o = profile(&[
        "--labels",
        "churned",
        "--labels-data",
        "data/churn/labels",
        "--labels-on",
        "customer_id,ds",
        "--thresholds",
        "0.2,0.6",
    ]);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("6000 labelled rows"), "{}", stdout(&o));
    let joined = read_profile(&bundle);
    assert_eq!(by_column["calibration"], joined["calibration"]);
    assert_eq!(by_column["realized"], joined["realized"]);
    let at = joined["realized"]["at"].as_array().unwrap();
    assert_eq!(at.len(), 2);
    assert_eq!(at[0]["threshold"], 0.2);
    // Isotonic: non-decreasing values in [0, 1], one per block, counts sum to the rows.
    let values: Vec<f64> = joined["calibration"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]));
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
    let counts: f64 = joined["calibration"]["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert_eq!(counts, 6000.0);
    // pandas' labels: float 0.0/1.0 with NaN for the unlabelled. The NaN rows are
    // left out, as the same rows dropped from an integer column are.
    let nan_rows = |i: usize| i % 4 == 1;
    let mut float = df.clone();
    let y = df
        .column("churned")
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap();
    let y: Vec<f64> = y
        .f64()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, v)| if nan_rows(i) { f64::NAN } else { v.unwrap() })
        .collect();
    float.with_column(Column::new("churned".into(), y)).unwrap();
    let float_file = p.path().join("float.parquet");
    ParquetWriter::new(std::fs::File::create(&float_file).unwrap())
        .finish(&mut float)
        .unwrap();
    let mask: BooleanChunked = (0..6000).map(|i| Some(!nan_rows(i))).collect();
    let mut dropped = df.filter(&mask).unwrap();
    ParquetWriter::new(std::fs::File::create(p.path().join("dropped.parquet")).unwrap())
        .finish(&mut dropped)
        .unwrap();
    let mut profiles = vec![];
    for file in ["float.parquet", "dropped.parquet"] {
        let o = profile(&["--labels", "churned", "--calibration-data", file]);
        assert_exit(&o, 0, &[]);
        assert!(
            stdout(&o).contains("on 4500 labelled rows"),
            "{}",
            stdout(&o)
        );
        profiles.push(read_profile(&bundle));
    }
    assert_eq!(profiles[0]["calibration"], profiles[1]["calibration"]);
    assert_eq!(profiles[0]["realized"], profiles[1]["realized"]);

    // Refusals: a label that is not 0/1, one class only, a missing column, an
    // unknown score column, a threshold outside [0, 1], duplicate labels.
    let mut bad = df.clone();
    bad.with_column(Column::new(
        "churned".into(),
        (0..6000).map(|i| (i % 3) as i64).collect::<Vec<_>>(),
    ))
    .unwrap();
    let bad_file = p.path().join("bad.parquet");
    ParquetWriter::new(std::fs::File::create(&bad_file).unwrap())
        .finish(&mut bad)
        .unwrap();
    assert_exit(
        &profile(&["--labels", "churned", "--calibration-data", "bad.parquet"]),
        3,
        &[
            "label column `churned`",
            "has value 2 at row 2",
            "0/1 or true/false",
        ],
    );
    let mut one = df.clone();
    one.with_column(Column::new("churned".into(), vec![1i64; 6000]))
        .unwrap();
    ParquetWriter::new(std::fs::File::create(&bad_file).unwrap())
        .finish(&mut one)
        .unwrap();
    assert_exit(
        &profile(&["--labels", "churned", "--calibration-data", "bad.parquet"]),
        3,
        &["at least 2 labelled rows of each class", "0 negative"],
    );
    // Text that is not a number is refused, not read as unlabelled.
    let mut text = df.clone();
    text.with_column(Column::new(
        "churned".into(),
        (0..6000)
            .map(|i| if i % 3 == 0 { "yes" } else { "no" })
            .collect::<Vec<_>>(),
    ))
    .unwrap();
    ParquetWriter::new(std::fs::File::create(&bad_file).unwrap())
        .finish(&mut text)
        .unwrap();
    assert_exit(
        &profile(&["--labels", "churned", "--calibration-data", "bad.parquet"]),
        3,
        &[
            "label column `churned` is not numeric or boolean",
            "\"yes\"",
        ],
    );
    assert_exit(
        &profile(&["--labels", "nope", "--calibration-data", "labelled.parquet"]),
        3,
        &["nope"],
    );
    assert_exit(
        &profile(&[
            "--labels",
            "churned",
            "--calibration-data",
            "labelled.parquet",
            "--score",
            "x",
        ]),
        2,
        &["--score x", "churn_probability"],
    );
    assert_exit(
        &profile(&["--labels", "churned", "--thresholds", "1.5"]),
        2,
        &["between 0 and 1"],
    );
    assert_exit(
        &profile(&["--labels", "churned", "--thresholds", "0.5,0.5"]),
        2,
        &["--thresholds", "0.5 is listed twice"],
    );
    let mut twice = df.clone();
    twice.vstack_mut(&df).unwrap();
    let twice_file = p.path().join("twice.parquet");
    ParquetWriter::new(std::fs::File::create(&twice_file).unwrap())
        .finish(&mut twice)
        .unwrap();
    assert_exit(
        &profile(&[
            "--labels",
            "churned",
            "--labels-data",
            "twice.parquet",
            "--labels-on",
            "customer_id,ds",
        ]),
        3,
        &["more than one label"],
    );
    // A failed profile leaves the bundle's last profile (`dropped.parquet`) in place.
    assert_eq!(read_profile(&bundle)["realized"], profiles[1]["realized"]);

    // `scorch evaluate` with the label in the job's own input (no labels table).
    let day = "2026-11-21";
    let mut part = df
        .clone()
        .lazy()
        .filter(col("ds").cast(DataType::String).eq(lit(day)))
        .drop(by_name(["ds"], true, false))
        .collect()
        .unwrap();
    assert_eq!(part.height(), 3000);
    let dir = p.path().join(format!("inlab/ds={day}"));
    std::fs::create_dir_all(&dir).unwrap();
    ParquetWriter::new(std::fs::File::create(dir.join("part-0.parquet")).unwrap())
        .finish(&mut part)
        .unwrap();
    let job = p.job(
        "inlab",
        &format!(
            "name: inlab\nsource:\n  parquet:\n    path: inlab/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/inlab\n\
             labels: {{column: churned}}\n",
            example_bundle().display()
        ),
    );
    assert_exit(
        &p.scorch(&["run", job.to_str().unwrap(), "--date", day]),
        0,
        &[],
    );
    let o = p.scorch(&["evaluate", job.to_str().unwrap(), "--date", day]);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("3000 of 3000 rows labelled"),
        "{}",
        stdout(&o)
    );
    let scored = read_partition(&p.path().join(format!("output/inlab/ds={day}")))
        .join(
            &part,
            ["customer_id"],
            ["customer_id"],
            JoinArgs::new(JoinType::Inner),
            None,
        )
        .unwrap();
    let s: Vec<f64> = scored
        .column("churn_probability")
        .unwrap()
        .cast(&DataType::Float64)
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .map(|v| v.unwrap())
        .collect();
    let l: Vec<bool> = scored
        .column("churned")
        .unwrap()
        .i8()
        .unwrap()
        .iter()
        .map(|v| v.unwrap() == 1)
        .collect();
    let (_, auc) = realized(&s, &l, 0.5);
    let record = stdout(&o)
        .lines()
        .find_map(|l| l.trim().strip_prefix("record: ").map(String::from))
        .unwrap();
    let r = read_json(p.path().join(record));
    let got = r["dates"][0]["realized"]["auc"].as_f64().unwrap();
    assert!((got - auc).abs() < 1e-9, "{got} vs {auc}");
    // No estimates were made (no `report.performance`): nothing to compare.
    assert_eq!(r["dates"][0]["comparisons"].as_array().unwrap().len(), 0);

    // A labels table whose key is text ("C17") against integer keys: refused
    // (exit 3, naming `labels.on`), not read as "no row labelled"; the same for
    // `scorch profile --labels-on`.
    let mut text_keys = part
        .clone()
        .lazy()
        .select([
            (lit("C") + col("customer_id").cast(DataType::String)).alias("customer_id"),
            col("churned"),
        ])
        .collect()
        .unwrap();
    let dir = p.path().join(format!("textkeys/ds={day}"));
    std::fs::create_dir_all(&dir).unwrap();
    ParquetWriter::new(std::fs::File::create(dir.join("part-0.parquet")).unwrap())
        .finish(&mut text_keys)
        .unwrap();
    let text_job = p.job(
        "textkeys",
        &std::fs::read_to_string(&job).unwrap().replace(
            "labels: {column: churned}",
            "labels: {column: churned, path: \"textkeys/ds={{ ds }}/*.parquet\"}",
        ),
    );
    assert_exit(
        &p.scorch(&["evaluate", text_job.to_str().unwrap(), "--date", day]),
        3,
        &["labels for 2026-11-21", "`labels.on`", "str", "\"C"],
    );
    assert_exit(
        &profile(&[
            "--labels",
            "churned",
            "--calibration-data",
            &format!("inlab/ds={day}/*.parquet"),
            "--labels-data",
            &format!("textkeys/ds={day}/*.parquet"),
            "--labels-on",
            "customer_id",
        ]),
        3,
        &["--labels-on", "customer_id"],
    );
}

/// The `performance` part of the bundle's pinned reference profile.
fn read_profile(bundle: &std::path::Path) -> serde_json::Value {
    read_whole_profile(bundle)["performance"].clone()
}

/// Asserts that a metrics history file holds each of `names`.
fn assert_metrics(h: &DataFrame, names: &[&str], what: &str) {
    let metric = h.column("metric").unwrap().str().unwrap().clone();
    for m in names {
        assert!(
            metric.iter().any(|x| x == Some(*m)),
            "{m} not in the {what}"
        );
    }
}

/// `scorch history JOB --out page [more]`: its output and the page's text.
fn history_page(
    p: &Project,
    job: &std::path::Path,
    page: &std::path::Path,
    more: &[&str],
) -> (std::process::Output, String) {
    let mut args = vec![
        "history",
        job.to_str().unwrap(),
        "--out",
        page.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    let o = p.scorch(&args);
    let html = std::fs::read_to_string(page).unwrap_or_default();
    (o, html)
}

/// The whole pinned reference profile of a bundle.
fn read_whole_profile(bundle: &std::path::Path) -> serde_json::Value {
    let yaml = std::fs::read_to_string(bundle.join("bundle.yaml")).unwrap();
    let pin: serde_json::Value = serde_json::from_str(
        yaml.lines()
            .find_map(|l| l.strip_prefix("reference_profile: "))
            .unwrap(),
    )
    .unwrap();
    read_json(bundle.join(pin["file"].as_str().unwrap()))
}

/// The report of a published date.
fn report_of(p: &Project, table: &str, ds: &str) -> serde_json::Value {
    let m = read_json(
        p.path()
            .join(format!("output/{table}/ds={ds}/_manifest.json")),
    );
    read_json(p.path().join(m["report"].as_str().unwrap()))
}

#[test]
fn multivariate_drift_fires_on_a_flipped_correlation_and_agrees_with_nannyml() {
    // 30 days to 2026-11-28: the generator flips the tenure / total-charges
    // correlation on 2026-11-06 and -07 (every column's values drawn as on other
    // days) and drifts the marginals from 2026-11-15.
    let p = Project::new(30, 3000);
    let bundle = p.copy_bundle();
    let reference = "data/churn/features/ds=2026-11-0[1-5]/*.parquet";
    let o = p.scorch(&[
        "profile",
        "--bundle",
        bundle.to_str().unwrap(),
        "--data",
        reference,
        "--labels",
        "churned",
        "--calibration-data",
        reference,
        "--labels-data",
        "data/churn/labels/**/*.parquet",
        "--labels-on",
        "customer_id,ds",
        "--thresholds",
        "0.5",
        "--html",
        "profile.html",
    ]);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("multivariate drift reference: "),
        "{}",
        stdout(&o)
    );
    // The profile's page: the reliability diagram and the PCA's chunk errors.
    let page = p.path().join("profile.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for part in [
        "Reference profile: churn 1.0.0",
        "aria-label=\"reliability diagram\"",
        "mean reconstruction error per reference chunk",
        "variance explained per kept component",
    ] {
        assert!(html.contains(part), "profile page lacks {part:?}");
    }
    open_in_chromium(&page, "profile.png");
    let rec = read_whole_profile(&bundle)["reconstruction"].clone();
    assert_eq!(rec["rows"], 15_000);
    assert_eq!(rec["chunk_rows"], 750);
    let job = performance_job(
        &p,
        "mv",
        &bundle,
        "  drift: {psi_warn: 0.1, psi_fail: 10, multivariate: {}}\n  performance: {thresholds: [0.5]}\n",
    );
    let mut text = std::fs::read_to_string(&job).unwrap();
    text.push_str("labels: {column: churned, path: \"data/churn/labels/ds={{ ds }}/*.parquet\"}\n");
    std::fs::write(&job, text).unwrap();
    let days = [
        "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "20",
    ];
    for d in days {
        let o = p.scorch(&[
            "run",
            job.to_str().unwrap(),
            "--date",
            &format!("2026-11-{d}"),
        ]);
        assert_exit(&o, 0, &[]);
    }
    let score_columns = ["churn_probability"];
    for d in ["08", "09", "10"] {
        let r = report_of(&p, "mv", &format!("2026-11-{d}"));
        assert_eq!(
            r["multivariate"]["status"], "pass",
            "{d}: {}",
            r["multivariate"]
        );
    }
    for d in ["06", "07"] {
        let r = report_of(&p, "mv", &format!("2026-11-{d}"));
        let m = &r["multivariate"];
        let (e, lo, hi) = (
            m["mean_error"].as_f64().unwrap(),
            m["lower"].as_f64().unwrap(),
            m["upper"].as_f64().unwrap(),
        );
        assert_eq!(m["status"], "warn", "{d}: {m}");
        assert!(e > hi + 10.0 * (hi - lo), "{d}: {e} vs {lo}..{hi}");
        assert_eq!(r["status"], "warn");
        // No input column drifted: per-column statistics cannot see it.
        for c in r["drift"].as_array().unwrap() {
            if !score_columns.contains(&c["column"].as_str().unwrap()) {
                assert!(c["psi"].as_f64().unwrap() < 0.1, "{d}: {c}");
                assert_eq!(c["status"], "pass", "{d}: {c}");
            }
        }
    }
    // What the warning means for the estimates: on the flipped days the model
    // sees input combinations it never saw, its calibration no longer holds and
    // CBPE misses the realized AUC by far; on the quiet days it does not.
    let o = p.scorch(&[
        "evaluate",
        job.to_str().unwrap(),
        "--date",
        "2026-11-10",
        "--window",
        "5",
    ]);
    assert_exit(&o, 0, &[]);
    let record = stdout(&o)
        .lines()
        .find_map(|l| l.trim().strip_prefix("record: ").map(String::from))
        .unwrap();
    let record = read_json(p.path().join(record));
    for d in record["dates"].as_array().unwrap() {
        let auc = d["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["metric"] == "auc")
            .unwrap();
        let z = auc["z"].as_f64().unwrap();
        println!(
            "{}: AUC estimated {} realized {} ({z:.1} SE)",
            d["ds"], auc["estimated"], auc["realized"]
        );
        if matches!(d["ds"].as_str().unwrap(), "2026-11-06" | "2026-11-07") {
            assert!(z > 4.0, "{d}");
        } else {
            assert!(z < 4.0, "{d}");
        }
    }
    // The metrics history holds the error and its band; the page shows both.
    let h = read_partition(&p.path().join("output/mv/_metrics/ds=2026-11-06"));
    assert_metrics(
        &h,
        &[
            "reconstruction_error",
            "reconstruction_lower",
            "reconstruction_upper",
        ],
        "history",
    );
    let (o, html) = history_page(&p, &job, &p.path().join("mv.html"), &[]);
    assert_exit(&o, 0, &[]);
    assert!(html.contains("Multivariate drift: PCA reconstruction error"));
    assert!(
        html.contains("multivariate drift · 2026-11-06 · warn"),
        "the status grid's row"
    );
    let m = read_json(p.path().join("output/mv/ds=2026-11-06/_manifest.json"));
    let html = std::fs::read_to_string(p.path().join(m["report_html"].as_str().unwrap())).unwrap();
    assert!(html.contains("id=\"multivariate\""));

    // NannyML 0.13.1 on the same rows: its data reconstruction drift on the same
    // feature matrix (`scorch preprocess apply`), and CBPE with the calibration
    // rows' scores and labels as its reference.
    let apply = |data: &str, out: &str| {
        let o = p.scorch(&[
            "preprocess",
            "apply",
            "--state",
            bundle.join("preprocess.state.json").to_str().unwrap(),
            "--data",
            data,
            "--out",
            out,
        ]);
        assert_exit(&o, 0, &[]);
        p.path().join(out).to_str().unwrap().to_string()
    };
    let part = |d: &str| {
        let dir = p.path().join(format!("output/mv/ds=2026-11-{d}"));
        dir.join("part-00000.parquet").to_str().unwrap().to_string()
    };
    let analysis = ["06", "07", "08", "09", "10", "20"];
    let cfg = serde_json::json!({
        "reference_features": apply(reference, "ref.parquet"),
        "reference_scores": days[..5].iter().map(|d| part(d)).collect::<Vec<_>>(),
        "reference_labels": days[..5].iter().map(|d| p.path().join(format!("data/churn/labels/ds=2026-11-{d}/part-0.parquet")).to_str().unwrap().to_string()).collect::<Vec<_>>(),
        "key": "customer_id", "score": "churn_probability", "label": "churned",
        "threshold": 0.5, "reference_chunks": 20,
        "days": analysis.iter().map(|d| serde_json::json!({
            "ds": format!("2026-11-{d}"),
            "features": apply(&format!("data/churn/features/ds=2026-11-{d}/*.parquet"), &format!("f{d}.parquet")),
            "scores": part(d),
        })).collect::<Vec<_>>(),
    });
    let cfg_path = p.write("nannyml.json", &cfg.to_string());
    let python = cached_tool("SCORCH_NANNYML", "nannyml-0.13.1/bin/python");
    let o = std::process::Command::new(python)
        .arg(repo().join("tests/py/nannyml_check.py"))
        .arg(&cfg_path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let n: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-12);
    // The reference chunks' errors: the same PCA on the same rows.
    let mut worst_pca = 0.0f64;
    for (a, b) in rec["chunk_means"]
        .as_array()
        .unwrap()
        .iter()
        .zip(n["reference_chunk_errors"].as_array().unwrap())
    {
        worst_pca = worst_pca.max(rel(a.as_f64().unwrap(), b.as_f64().unwrap()));
    }
    assert_eq!(n["reference_chunk_rows"], 750);
    let (nlo, nhi) = (
        n["reference_threshold"][0].as_f64().unwrap(),
        n["reference_threshold"][1].as_f64().unwrap(),
    );
    let (mut worst_auc, mut worst_f1) = (0.0f64, 0.0f64);
    for d in analysis {
        let ds = format!("2026-11-{d}");
        let r = report_of(&p, "mv", &ds);
        let nd = &n["days"][&ds];
        let m = &r["multivariate"];
        worst_pca = worst_pca.max(rel(
            m["mean_error"].as_f64().unwrap(),
            nd["reconstruction_error"].as_f64().unwrap(),
        ));
        // NannyML's band is for chunks of 750 rows; scorch scales it to the run's rows.
        let (mid, half) = (
            (nlo + nhi) / 2.0,
            (nhi - nlo) / 2.0 * (750.0f64 / 3000.0).sqrt(),
        );
        worst_pca = worst_pca.max(rel(m["lower"].as_f64().unwrap(), mid - half));
        worst_pca = worst_pca.max(rel(m["upper"].as_f64().unwrap(), mid + half));
        let perf = &r["performance"];
        let auc = perf["estimated_auc"]["value"].as_f64().unwrap();
        let f1 = perf["at"][0]["f1"]["value"].as_f64().unwrap();
        println!(
            "{ds}: reconstruction {:.6} (NannyML {:.6}), AUC {auc:.5} (NannyML {:.5}), F1@0.5 {f1:.5} (NannyML {:.5})",
            m["mean_error"].as_f64().unwrap(),
            nd["reconstruction_error"].as_f64().unwrap(),
            nd["roc_auc"].as_f64().unwrap(),
            nd["f1"].as_f64().unwrap()
        );
        worst_auc = worst_auc.max((auc - nd["roc_auc"].as_f64().unwrap()).abs());
        worst_f1 = worst_f1.max((f1 - nd["f1"].as_f64().unwrap()).abs());
    }
    println!(
        "largest differences: reconstruction (relative) {worst_pca:.2e}, AUC {worst_auc:.2e}, F1 {worst_f1:.2e}"
    );
    // f32 features into f64 sums on both sides.
    assert!(worst_pca < 1e-6, "{worst_pca}");
    // Both calibrate by isotonic regression on the same rows; NannyML interpolates
    // between the blocks, scorch keeps steps.
    assert!(worst_auc < 5e-4, "{worst_auc}");
    assert!(worst_f1 < 5e-4, "{worst_f1}");

    // `severity: fail` fails the run (exit 5) after writing.
    let strict = performance_job(
        &p,
        "strict",
        &bundle,
        "  drift: {psi_fail: 10, multivariate: {severity: fail}}\n",
    );
    let o = p.scorch(&["run", strict.to_str().unwrap(), "--date", "2026-11-06"]);
    assert_exit(&o, 5, &["multivariate drift"]);
    assert!(
        p.path()
            .join("output/strict/ds=2026-11-06/_manifest.json")
            .exists()
    );
    // Bad settings are refused before reading: exit 2, naming the field.
    let bad = performance_job(
        &p,
        "bad",
        &bundle,
        "  drift: {multivariate: {sigmas: 0, min_width: -1}}\n",
    );
    let o = p.scorch(&["run", bad.to_str().unwrap(), "--date", "2026-11-06"]);
    assert_exit(
        &o,
        2,
        &[
            "report.drift.multivariate.sigmas",
            "report.drift.multivariate.min_width",
        ],
    );
    // A reference too small for a PCA: the profile says why, and a job asking for
    // multivariate drift is refused (exit 2) by `validate` and `run` alike.
    let tiny = p.path().join("tiny.parquet");
    let mut head =
        read_partition(&p.path().join("data/churn/features/ds=2026-11-01")).head(Some(50));
    ParquetWriter::new(std::fs::File::create(&tiny).unwrap())
        .finish(&mut head)
        .unwrap();
    let small = p.path().join("small");
    copy_dir(&bundle, &small);
    let o = p.scorch(&[
        "profile",
        "--bundle",
        small.to_str().unwrap(),
        "--data",
        tiny.to_str().unwrap(),
    ]);
    assert_exit(&o, 0, &["no multivariate drift reference: 50 rows"]);
    assert!(read_whole_profile(&small).get("reconstruction").is_none());
    let job = performance_job(&p, "small", &small, "  drift: {multivariate: {}}\n");
    for args in [
        vec!["validate", job.to_str().unwrap()],
        vec!["run", job.to_str().unwrap(), "--date", "2026-11-06"],
    ] {
        let o = p.scorch(&args);
        assert_exit(
            &o,
            2,
            &[
                "report.drift.multivariate",
                "no PCA of the model's features",
            ],
        );
    }
}

/// `scorch evaluate` past its memory budget hash-partitions the label join into
/// files (budget 0: 64 parts) and gets the same figures as the join in memory:
/// the same rows and counts, the AUC to the bit, log loss and Brier up to their
/// order of summation; a duplicated label key is refused the same way; the
/// partition files go with the call.
#[test]
fn a_partitioned_label_join_equals_the_one_in_memory() {
    // Ten days end on LAST_DAY; the first three are labelled.
    let p = Project::new(10, 20_000);
    let day = "2026-11-19";
    let memory = labelled_job(&p, "inmem", "  memory_budget_mb: 256\n");
    let parts = labelled_job(&p, "parts", "  memory_budget_mb: 0\n");
    let tmp = p.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let tmp_env = [("TMPDIR", tmp.to_str().unwrap())];
    let assert_no_spill = |tmp: &std::path::Path| {
        let left: Vec<String> = std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("scorch-"))
            .collect();
        assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    };
    let mut realized = Vec::new();
    for job in [&memory, &parts] {
        assert_exit(
            &p.scorch(&["run", job.to_str().unwrap(), "--date", day]),
            0,
            &[],
        );
        let o = p.scorch_env(
            &["evaluate", job.to_str().unwrap(), "--date", day],
            &tmp_env,
        );
        assert_exit(&o, 0, &[]);
        let record = stdout(&o)
            .lines()
            .find_map(|l| l.trim().strip_prefix("record: ").map(String::from))
            .unwrap();
        let r = read_json(p.path().join(record));
        assert_eq!(r["dates"][0]["status"], "evaluated", "{r}");
        realized.push(r["dates"][0].clone());
        assert_no_spill(&tmp);
    }
    let (a, b) = (&realized[0], &realized[1]);
    assert_eq!(a["join"]["partitions"], 1, "{a}");
    assert_eq!(a["join"]["spill_bytes"], 0, "{a}");
    assert_eq!(b["join"]["partitions"], 64, "{b}");
    assert!(b["join"]["spill_bytes"].as_u64().unwrap() > 100_000, "{b}");
    assert_eq!(a["rows"], 20_000);
    assert_eq!(a["rows"], b["rows"]);
    assert!(a["labelled_rows"].as_u64().unwrap() > 1000, "{a}");
    assert_eq!(a["labelled_rows"], b["labelled_rows"]);
    let (ra, rb) = (&a["realized"], &b["realized"]);
    for k in ["rows", "positives", "auc", "at"] {
        assert_eq!(ra[k], rb[k], "{k}: {ra} vs {rb}");
    }
    for k in ["log_loss", "brier"] {
        let (x, y) = (ra[k].as_f64().unwrap(), rb[k].as_f64().unwrap());
        assert!((x - y).abs() <= 1e-12 * x.abs(), "{k}: {x} vs {y}");
    }

    // A key labelled twice: refused by both, naming the count and the field.
    let labels_dir = p.path().join(format!("data/churn/labels/ds={day}"));
    let file = files_under(&labels_dir).into_iter().next().unwrap();
    let mut lab = read_sorted(&file);
    let extra = lab.slice(7, 1);
    lab.vstack_mut(&extra).unwrap();
    ParquetWriter::new(std::fs::File::create(&file).unwrap())
        .finish(&mut lab)
        .unwrap();
    for job in [&memory, &parts] {
        let o = p.scorch_env(
            &["evaluate", job.to_str().unwrap(), "--date", day],
            &tmp_env,
        );
        assert_exit(&o, 3, &["1 key(s) have more than one label", "`labels.on`"]);
        assert_no_spill(&tmp);
    }
}
