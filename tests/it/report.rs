//! The run report: column metrics computed while scoring, checked against Polars'
//! exact values on the same rows.

use crate::common::*;

use polars::prelude::*;

#[test]
fn report_metrics_match_exact_values_on_the_same_rows() {
    let p = Project::new(2, 6000);
    let job = p.job(
        "rep",
        &format!(
            "name: rep\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id, ds]\n\
             model: {}\nreport: {{}}\noutput:\n  path: output/rep\ninference:\n  chunk_rows: 1000\n  batch_size: 500\n",
            example_bundle().display()
        ),
    );
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 0, &[]);
    let runs = p.path().join("output/rep/_runs");
    let manifest_file = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|f| !f.to_string_lossy().contains(".report."))
        .unwrap();
    let m: serde_json::Value = read_json(&manifest_file);
    let report_path = p.path().join(m["report"].as_str().unwrap());
    let r: serde_json::Value = read_json(&report_path);
    assert_eq!(r["report_version"], 1);
    assert_eq!(r["rows"], 12000);
    // The same rows, read whole by Polars.
    let all = LazyFrame::scan_parquet(
        PlRefPath::new(
            p.path()
                .join("data/churn/features/**/*.parquet")
                .to_string_lossy()
                .as_ref(),
        ),
        Default::default(),
    )
    .unwrap()
    .collect()
    .unwrap();
    let cols = r["columns"].as_array().unwrap();
    assert!(cols.len() >= 20, "every column read is profiled");
    for c in cols {
        let name = c["name"].as_str().unwrap();
        let s = all.column(name).unwrap().as_materialized_series().clone();
        assert_eq!(c["count"], 12000, "{name}");
        assert_eq!(
            c["nulls"].as_u64().unwrap(),
            s.null_count() as u64,
            "{name}"
        );
        let exact = s.drop_nulls().n_unique().unwrap() as f64;
        assert_eq!(c["distinct"].as_f64().unwrap(), exact, "{name} distinct");
        // Deequ: values occurring once over non-null rows, and over distinct values.
        let counts = s
            .drop_nulls()
            .value_counts(false, false, "n".into(), false)
            .unwrap();
        let once = counts
            .column("n")
            .unwrap()
            .as_materialized_series()
            .equal(1)
            .unwrap()
            .sum()
            .unwrap_or(0) as f64;
        let non_null = (12000 - s.null_count()) as f64;
        assert!(
            (c["uniqueness"].as_f64().unwrap() - once / non_null).abs() < 1e-12,
            "{name} uniqueness"
        );
        assert!(
            (c["unique_value_ratio"].as_f64().unwrap() - once / exact).abs() < 1e-12,
            "{name} unique_value_ratio"
        );
        let approx = c["approx_distinct"].as_f64().unwrap();
        assert!(
            (approx - exact).abs() <= (0.05 * exact).max(2.0),
            "{name}: approx distinct {approx}, exact {exact}"
        );
        if s.dtype().is_primitive_numeric() {
            let x = s.cast(&DataType::Float64).unwrap();
            let x = x.f64().unwrap();
            let mean = x.mean().unwrap();
            let sd = x.std(0).unwrap();
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
            assert!(close(c["mean"].as_f64().unwrap(), mean), "{name} mean");
            assert!(close(c["stddev"].as_f64().unwrap(), sd), "{name} stddev");
            assert_eq!(c["min"].as_f64().unwrap(), x.min().unwrap(), "{name} min");
            assert_eq!(c["max"].as_f64().unwrap(), x.max().unwrap(), "{name} max");
            // Quantiles: within 1% (relative) of the value at rank floor(q (n-1)).
            let mut sorted: Vec<f64> = x.iter().flatten().filter(|v| !v.is_nan()).collect();
            sorted.sort_by(f64::total_cmp);
            for (key, q) in [("p01", 0.01), ("p25", 0.25), ("p50", 0.5), ("p99", 0.99)] {
                let want = sorted[(q * (sorted.len() - 1) as f64).floor() as usize];
                let got = c["quantiles"][key].as_f64().unwrap();
                assert!(
                    (got - want).abs() <= 0.010_000_01 * want.abs() + 1e-300,
                    "{name} {key}: {got} vs {want}"
                );
            }
        } else {
            assert!(c["mean"].is_null(), "{name}");
        }
    }
}

#[test]
fn failing_checks_publish_then_exit_5_and_warnings_exit_0() {
    let p = Project::new(1, 3000);
    let job = |name: &str, checks: &str| {
        p.job(
            name,
            &format!(
                "name: {name}\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id]\n\
                 model: {}\nreport:\n  checks:\n{checks}output:\n  path: output/{name}\n",
                example_bundle().display()
            ),
        )
    };
    // The generator leaves some `nps_score` values null and plants ages of 150.
    let checks = "    - {column: customer_id, metric: completeness, min: 1}\n\
                  \x20   - {column: nps_score, metric: completeness, min: 0.999, severity: warn}\n\
                  \x20   - {sql: \"age IS NULL OR age <= 120\", mostly: 0.99}\n";
    let o = p.run_job(&job("warned", checks), &[]);
    assert_exit(&o, 0, &[]);
    let out = stdout(&o);
    assert!(out.contains("(3 checks, 2 passed)"), "{out}");
    assert!(
        out.contains("warning: check completeness(nps_score)"),
        "{out}"
    );

    let failing = "    - {sql: \"age <= 120\", name: sane_age}\n\
                   \x20   - {column: monthly_charges, metric: max, max: 1}\n";
    let o = p.run_job(&job("gated", failing), &[]);
    assert_exit(&o, 5, &["quality gate", "sane_age", "max(monthly_charges)"]);
    // Output and report were written first; the manifests say what happened.
    let part = p.path().join(format!("output/gated/ds={LAST_DAY}"));
    assert!(part.join("part-00000.parquet").exists());
    let m: serde_json::Value = read_json(part.join("_manifest.json"));
    assert_eq!(m["status"], "checks_failed");
    let sane = m["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sane_age")
        .unwrap();
    assert_eq!(sane["status"], "fail");
    assert!(sane["value"].as_f64().unwrap() < 1.0);
    let run: Vec<serde_json::Value> = std::fs::read_dir(p.path().join("output/gated/_runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| !f.to_string_lossy().contains(".report."))
        .map(|f| read_json(&f))
        .collect();
    assert_eq!(run[0]["exit_code"], 5);
    assert_eq!(run[0]["status"], "checks_failed");

    // A malformed check is a config error naming it.
    let bad = "    - {column: age, metric: median, min: 1}\n";
    let o = p.run_job(&job("bad", bad), &[]);
    assert_exit(&o, 2, &["report.checks[0]", "median"]);
}

#[test]
fn drift_psi_matches_numpy_and_flags_only_the_drifted_days() {
    // 30 days; the generator drifts the last 14 (2026-11-15 …).
    let p = Project::new(30, 3000);
    let bundle = p.copy_bundle();
    let o = p.scorch(&[
        "profile",
        "--bundle",
        bundle.to_str().unwrap(),
        "--data",
        "data/churn/features/ds=2026-11-0[1-8]/*.parquet",
    ]);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("profiled 24000 rows, 21 columns"),
        "{}",
        stdout(&o)
    );
    let job = p.job(
        "drift",
        &format!(
            "name: drift\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\nreport:\n  drift: {{}}\noutput:\n  path: output/drift\n",
            bundle.display()
        ),
    );
    // The partition's manifest names the run's report.
    let report_of = |ds: &str| {
        let m: serde_json::Value = read_json(
            p.path()
                .join(format!("output/drift/ds={ds}/_manifest.json")),
        );
        p.path().join(m["report"].as_str().unwrap())
    };
    // A quiet day: no column drifts.
    let quiet = p.scorch(&["run", job.to_str().unwrap(), "--date", "2026-11-10"]);
    assert_exit(&quiet, 0, &[]);
    let r: serde_json::Value = read_json(report_of("2026-11-10"));
    assert_eq!(r["drift_share"], 0.0, "{}", r["drift"]);
    // A drifted day: charges, support calls and the new `family` plan fail the gate
    // (exit 5) after the output and report are written.
    let drifted = p.run_job(&job, &[]);
    assert_exit(&drifted, 5, &["drift(monthly_charges)", "drift(plan)"]);
    let report = report_of(LAST_DAY);
    let r: serde_json::Value = read_json(&report);
    let plan = r["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["column"] == "plan")
        .unwrap();
    assert_eq!(plan["status"], "fail");
    assert_eq!(plan["new_categories"], 1);
    // The model's score drifts too (its reference: the model run on the profiled days).
    let score = r["drift"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["column"] == "churn_probability")
        .unwrap();
    assert!(score["psi"].as_f64().unwrap() > 0.1, "{score}");
    assert!(
        p.path()
            .join("output/drift/ds=2026-11-28/part-00000.parquet")
            .exists()
    );
    // numpy and scipy agree on every column and statistic, from the same profile and rows.
    let yaml = std::fs::read_to_string(bundle.join("bundle.yaml")).unwrap();
    let pin = yaml
        .lines()
        .find_map(|l| l.strip_prefix("reference_profile: "))
        .unwrap();
    let pin: serde_json::Value = serde_json::from_str(pin).unwrap();
    let profile_file = bundle.join(pin["file"].as_str().unwrap());
    // The previous profile (the committed bundle's) was replaced, not kept beside.
    assert!(!bundle.join("reference.profile.json").exists());
    let data = |rel: &str| p.path().join(rel).to_str().unwrap().to_string();
    let out = python_check(
        "drift_check.py",
        &[
            profile_file.to_str().unwrap(),
            report.to_str().unwrap(),
            &data("data/churn/features/ds=2026-11-28/*.parquet"),
            &data("output/drift/ds=2026-11-28/*.parquet"),
            &data("data/churn/features/ds=2026-11-0[1-8]/*.parquet"),
        ],
    );
    assert!(out.contains("sketch bounds hold"), "{out}");
}

#[test]
fn html_report_opens_in_headless_chromium_without_console_errors() {
    let p = Project::new(1, 4000);
    let job = p.job(
        "page",
        &format!(
            "name: page\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id]\n\
             model: {}\nreport:\n  checks:\n    - {{column: customer_id, metric: completeness, min: 1}}\n  \
             drift: {{psi_fail: 100}}\noutput:\n  path: output/page\n",
            example_bundle().display()
        ),
    );
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 0, &[]);
    let m: serde_json::Value = read_json(p.path().join("output/page/ds=2026-11-28/_manifest.json"));
    let page = p.path().join(m["report_html"].as_str().unwrap());
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "the page runs no script");
    // No network: the only URLs are the SVG namespace.
    assert_eq!(
        html.matches("http").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert_eq!(
        html.matches("<svg").count(),
        21,
        "one chart per profiled column and score"
    );
    // The drift table is sorted by PSI: the new `family` plan puts `plan` first.
    let table = &html[html.find("<h2>Drift</h2>").unwrap()..];
    let first_row = &table[table.find("<tr><td").unwrap()..];
    assert!(
        first_row.starts_with("<tr><td class=\"l\">plan</td>"),
        "{}",
        &first_row[..80]
    );

    // Headless Chromium renders it with no console messages; the screenshot is kept.
    open_in_chromium(&page, "report.png");
}

#[test]
fn metrics_history_grows_per_run_and_anomalies_are_flagged() {
    let p = Project::new(8, 1000);
    let job = p.job(
        "hist",
        &format!(
            "name: hist\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\nreport:\n  anomalies:\n    - {{metric: row_count, min_history: 5, severity: fail}}\n\
             \x20   - {{metric: completeness, column: age}}\noutput:\n  path: output/hist\n",
            example_bundle().display()
        ),
    );
    for day in 21..=27 {
        let o = p.scorch(&[
            "run",
            job.to_str().unwrap(),
            "--date",
            &format!("2026-11-{day}"),
        ]);
        assert_exit(&o, 0, &[]);
    }
    // The last day arrives with half its rows: far outside mean ± 3σ of the history.
    let dir = p.path().join(format!("data/churn/features/ds={LAST_DAY}"));
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut half = ParquetReader::new(std::fs::File::open(&file).unwrap())
        .finish()
        .unwrap()
        .head(Some(500));
    ParquetWriter::new(std::fs::File::create(&file).unwrap())
        .finish(&mut half)
        .unwrap();
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 5, &["anomaly(row_count)"]);
    // One history file per run, one row_count row per day.
    let history = LazyFrame::scan_parquet(
        PlRefPath::new(
            p.path()
                .join("output/hist/_metrics/*/*.parquet")
                .to_string_lossy()
                .as_ref(),
        ),
        Default::default(),
    )
    .unwrap()
    .filter(col("metric").eq(lit("row_count")))
    .sort(["ds"], Default::default())
    .collect()
    .unwrap();
    let counts: Vec<f64> = history
        .column("value")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(
        counts,
        [
            1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 500.0
        ]
    );
    let m: serde_json::Value = read_json(
        p.path()
            .join(format!("output/hist/ds={LAST_DAY}/_manifest.json")),
    );
    let checks = m["checks"].as_array().unwrap();
    let rc = checks
        .iter()
        .find(|c| c["name"] == "anomaly(row_count)")
        .unwrap();
    assert_eq!(rc["status"], "fail");
    assert_eq!(rc["min"], 1000.0);
    let age = checks
        .iter()
        .find(|c| c["name"] == "anomaly(completeness(age))")
        .unwrap();
    assert_ne!(age["status"], "fail", "a warn check never fails the run");
}

#[test]
fn drift_without_a_reference_profile_is_a_config_error() {
    let p = Project::new(1, 200);
    // A bundle without a reference profile: drop the file and its line.
    let bundle = p.copy_bundle();
    std::fs::remove_file(bundle.join("reference.profile.json")).unwrap();
    let yaml = std::fs::read_to_string(bundle.join("bundle.yaml")).unwrap();
    let kept: Vec<&str> = yaml
        .lines()
        .filter(|l| !l.starts_with("reference_profile:"))
        .collect();
    std::fs::write(bundle.join("bundle.yaml"), kept.join("\n")).unwrap();
    let job = p.job(
        "nodrift",
        &format!(
            "name: nodrift\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id]\n\
             model: {}\nreport:\n  drift: {{}}\noutput:\n  path: output/nodrift\n",
            bundle.display()
        ),
    );
    for o in [
        p.scorch(&["validate", job.to_str().unwrap()]),
        p.run_job(&job, &[]),
    ] {
        assert_exit(
            &o,
            2,
            &[
                "report.drift",
                "no reference profile",
                "scorch profile --bundle",
            ],
        );
    }
}

#[test]
fn exact_drift_statistics_equal_scipy_on_many_distributions() {
    // Ties, a constant column, NaN, an all-null sample, a categorical column, and
    // every regime of scipy's KS p-value (tests/py/ks_check.py).
    let dir = tempfile::tempdir().unwrap();
    python_check(
        "ks_check.py",
        &[bin().to_str().unwrap(), dir.path().to_str().unwrap()],
    );
}

#[test]
fn drift_command_names_a_missing_column() {
    let p = Project::new(2, 100);
    let o = p.scorch(&[
        "drift",
        "--reference",
        "data/churn/features/ds=2026-11-27/*.parquet",
        "--current",
        "data/churn/features/ds=2026-11-28/*.parquet",
        "--columns",
        "tenure_months,nope",
    ]);
    assert_exit(&o, 3, &["column `nope`"]);
}

/// `scorch drift` spilling every chunk (`--memory-budget-mb 0`) into `--spill-dir`
/// gives every figure it gives in memory, says how much it spilled, and leaves
/// the folder as it found it; a budget out of range is refused naming the flag.
#[test]
fn drift_command_spills_and_gets_the_same_figures() {
    let p = Project::new(2, 20_000);
    let spill = p.path().join("spill");
    std::fs::create_dir_all(&spill).unwrap();
    let run = |extra: &[&str], out: &str| -> serde_json::Value {
        let mut args = vec![
            "drift",
            "--reference",
            "data/churn/features/ds=2026-11-27/*.parquet",
            "--current",
            "data/churn/features/ds=2026-11-28/*.parquet",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        assert_exit(&p.scorch(&args), 0, &[]);
        read_json(p.path().join(out))
    };
    let memory = run(&[], "memory.json");
    let spilled = run(
        &[
            "--memory-budget-mb",
            "0",
            "--spill-dir",
            spill.to_str().unwrap(),
        ],
        "spilled.json",
    );
    assert_eq!(memory["spill_bytes"], 0, "{}", memory["spill_bytes"]);
    assert!(spilled["spill_bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        std::fs::read_dir(&spill).unwrap().count(),
        0,
        "spill folder left behind"
    );
    let (a, b) = (
        memory["columns"].as_array().unwrap(),
        spilled["columns"].as_array().unwrap(),
    );
    assert!(a.len() > 10, "{}", a.len());
    for (x, y) in a.iter().zip(b) {
        for k in [
            "psi",
            "js_distance",
            "ks_statistic",
            "ks_p_value",
            "wasserstein_distance",
            "chi2",
            "new_categories",
            "edges",
        ] {
            assert_eq!(x[k], y[k], "{} {k}", x["column"]);
        }
        let (w1, w2) = (x["wasserstein"].as_f64(), y["wasserstein"].as_f64());
        assert_eq!(w1.is_some(), w2.is_some());
        if let (Some(w1), Some(w2)) = (w1, w2) {
            assert!((w1 - w2).abs() <= 1e-9 * w1.abs(), "{w1} vs {w2}");
        }
    }
    for (x, y) in memory["quality"]["current"]
        .as_array()
        .unwrap()
        .iter()
        .zip(spilled["quality"]["current"].as_array().unwrap())
    {
        assert_eq!(x["distinct"], y["distinct"], "{}", x["name"]);
        assert_eq!(y["frequencies"], "spilled", "{}", y["name"]);
    }
    let o = p.scorch(&[
        "drift",
        "--reference",
        "data/churn/features/ds=2026-11-27/*.parquet",
        "--current",
        "data/churn/features/ds=2026-11-28/*.parquet",
        "--memory-budget-mb",
        "99999999",
    ]);
    assert_exit(&o, 2, &["--memory-budget-mb"]);
}
