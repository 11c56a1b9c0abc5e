//! Shadow-comparison statistics against scipy on the same rows.

use crate::common::*;

#[test]
fn comparison_statistics_equal_scipy() {
    let example = bin().parent().unwrap().join("examples/shadow_metrics");
    assert!(
        example.is_file(),
        "{} is built by `cargo test` (examples are compiled with the tests)",
        example.display()
    );
    let dir = tempfile::tempdir().unwrap();
    python_check(
        "shadow_metrics_check.py",
        &[example.to_str().unwrap(), dir.path().to_str().unwrap()],
    );
}

const SHADOW_JOB: &str = r#"name: churn_nightly
source:
  parquet:
    path: data/churn/features/ds={{ ds }}/*.parquet
keys: [customer_id]
model: churn@1.0.0
output:
  path: output/churn_scores
inference: {threads: 2, batch_size: 512}
shadow:
  thresholds: [0.5, 0.3]
  segments: [plan]
  bootstrap: 200
  labels:
    column: churned
    path: data/churn/labels/ds={{ ds }}/*.parquet
  gate:
    - "agreement >= 0.8"
    - {metric: auc, min_absolute_change: -0.05}
    - "auc_delta_ci_low >= -0.1"
"#;

/// Copies the committed bundles into the project's registry folder (`models/`).
fn with_registry(p: &Project) {
    for v in ["1.0.0", "2.0.0"] {
        copy_dir(
            &repo().join("models/churn").join(v),
            &p.path().join("models/churn").join(v),
        );
    }
}

fn read_sorted_by(path: &std::path::Path, column: &str) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
        .sort([column], Default::default())
        .unwrap()
}

/// Scores LAST_DAY with `model` alone into `output/plain`.
fn plain_run(p: &Project, model: &str) {
    let plain = p.job(
        "plain",
        &SHADOW_JOB
            .replace("churn@1.0.0", model)
            .replace("output/churn_scores", "output/plain"),
    );
    assert_exit(
        &p.scorch(&["run", plain.to_str().unwrap(), "--date", LAST_DAY]),
        0,
        &[],
    );
}

/// The partition's data file, sorted by key.
fn partition(dir: &std::path::Path) -> polars::prelude::DataFrame {
    read_sorted(&dir.join("part-00000.parquet"))
}

fn score_column(dir: &std::path::Path, column: &str) -> Vec<(i64, f32)> {
    let df = partition(dir);
    let ids = df.column("customer_id").unwrap().i64().unwrap().clone();
    let s = df.column(column).unwrap().f32().unwrap().clone();
    ids.iter()
        .zip(s.iter())
        .map(|(i, v)| (i.unwrap(), v.unwrap()))
        .collect()
}

#[test]
fn shadow_run_writes_its_own_table_and_a_report_equal_to_scipy() {
    // Ten days ending 2026-11-28; labels arrive 7 days late, so of 20–23 Nov only
    // 20 and 21 are labelled.
    let p = Project::new(10, 3000);
    with_registry(&p);
    let job = p.job("churn_nightly", SHADOW_JOB);
    let o = p.scorch(&[
        "shadow",
        job.to_str().unwrap(),
        "--challenger",
        "churn@2.0.0",
        "--from",
        "2026-11-20",
        "--to",
        "2026-11-23",
    ]);
    assert_exit(&o, 0, &[]);
    let out = stdout(&o);
    assert!(out.contains("12000 rows (6000 labelled)"), "{out}");
    // Never the production table.
    assert!(!p.path().join("output/churn_scores").exists());
    let table = p.path().join("output/churn_scores_shadow");
    let part = table.join("ds=2026-11-21");
    let df = partition(&part);
    let cols: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        cols,
        [
            "customer_id",
            "plan",
            "champion_churn_probability",
            "challenger_churn_probability",
            "champion_model",
            "champion_version",
            "challenger_model",
            "challenger_version",
            "run_id",
            "scored_at"
        ]
    );
    assert_eq!(df.height(), 3000);
    let m: serde_json::Value = read_json(part.join("_manifest.json"));
    assert_eq!(m["kind"], "shadow");
    assert_eq!(m["challenger"]["version"], "2.0.0");
    // The champion's shadow scores are the production run's scores, bit for bit.
    let run = p.scorch(&["run", job.to_str().unwrap(), "--date", "2026-11-21"]);
    assert_exit(&run, 0, &[]);
    assert_eq!(
        score_column(&part, "champion_churn_probability"),
        score_column(
            &p.path().join("output/churn_scores/ds=2026-11-21"),
            "churn_probability"
        )
    );
    // The report's numbers equal numpy/scipy recomputed from the shadow table.
    let report = std::fs::read_dir(table.join("_runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".report.json"))
        .expect("report.json");
    python_check(
        "shadow_report_check.py",
        &[
            report.to_str().unwrap(),
            table.to_str().unwrap(),
            p.path().join("data/churn/labels").to_str().unwrap(),
            "plan",
        ],
    );
    let html = report.with_extension("").with_extension("report.html");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Promotion rules") && page.contains("<svg"));
    assert!(!page.contains("<script"), "the page runs no script");
    assert_eq!(
        page.matches("http").count(),
        page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count(),
        "no network"
    );
    open_in_chromium(&html, "shadow-report.png");
    let metrics = report.with_extension("").with_extension("metrics.parquet");
    let long = read_sorted_by(&metrics, "metric");
    assert!(long.height() > 50, "{long}");
}

#[test]
fn promote_if_pass_moves_the_alias_only_when_every_rule_holds() {
    let p = Project::new(1, 2000);
    with_registry(&p);
    let job = p.job("churn_nightly", SHADOW_JOB);
    let shadow = |job: &std::path::Path, alias: &str| {
        p.scorch(&[
            "shadow",
            job.to_str().unwrap(),
            "--challenger",
            "churn@2.0.0",
            "--date",
            LAST_DAY,
            "--promote-if-pass",
            "--alias",
            alias,
        ])
    };
    let alias_file = |a: &str| p.path().join(format!("models/churn/_aliases/{a}.json"));
    // Unlabelled day: the rules on AUC cannot be judged, so they fail → exit 5, no promotion.
    let o = shadow(&job, "champion");
    assert_exit(
        &o,
        5,
        &[
            "2 of 3 promotion rule(s) failed",
            "not promoted",
            "auc",
            "not available",
        ],
    );
    assert!(!alias_file("champion").exists());
    // Rules that hold → promoted, with an audit entry naming the shadow run.
    let passing = p.job(
        "passing",
        &SHADOW_JOB.replace(
            "    - {metric: auc, min_absolute_change: -0.05}\n    - \"auc_delta_ci_low >= -0.1\"\n",
            "",
        ),
    );
    let o = shadow(&passing, "champion");
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("promoted churn@2.0.0 to alias champion"));
    let pointer: serde_json::Value = read_json(alias_file("champion"));
    assert_eq!(pointer["version"], "2.0.0");
    let audit = std::fs::read_to_string(p.path().join("models/churn/_audit.jsonl")).unwrap();
    assert!(audit.contains("scorch shadow shadow-"), "{audit}");
    // A rule that fails keeps the alias where it was.
    let strict = p.job(
        "strict",
        &SHADOW_JOB.replace("agreement >= 0.8", "agreement >= 0.99999"),
    );
    let o = shadow(&strict, "prod");
    assert_exit(&o, 5, &["`agreement >= 0.99999`", "below the threshold"]);
    assert!(!alias_file("prod").exists());
    // --promote-if-pass without rules is refused.
    let bare = p.job("bare", &SHADOW_JOB[..SHADOW_JOB.find("  gate:").unwrap()]);
    assert_exit(&shadow(&bare, "prod"), 2, &["needs promotion rules"]);
}

#[test]
fn shadow_with_its_own_preprocessing_scores_like_a_plain_run_of_the_challenger() {
    let p = Project::new(1, 2000);
    with_registry(&p);
    // Challenger 3.0.0: the 2.0.0 network with another preprocessing state (the
    // first standardisation's mean moved), so features are computed twice.
    use scorch::preprocess::state::{FittedState, FittedStep};
    let dir = p.path().join("models/churn/3.0.0");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["model.pt", "bundle.yaml"] {
        std::fs::copy(repo().join("models/churn/2.0.0").join(f), dir.join(f)).unwrap();
    }
    let mut state =
        FittedState::load(&repo().join("models/churn/2.0.0/preprocess.state.json")).unwrap();
    let step = state
        .fitted
        .iter_mut()
        .flatten()
        .find(|s| matches!(s, FittedStep::Standardize { .. }))
        .unwrap();
    if let FittedStep::Standardize { mean, .. } = step {
        *mean += 0.5;
    }
    let state = state.seal();
    let hash = state.content_hash.clone();
    std::fs::write(
        dir.join("preprocess.state.json"),
        serde_json::to_string_pretty(&state).unwrap(),
    )
    .unwrap();
    let yaml = std::fs::read_to_string(dir.join("bundle.yaml")).unwrap();
    let yaml: String = yaml
        .lines()
        .filter(|l| !l.starts_with("reference_profile"))
        .map(|l| {
            if l.starts_with("version:") {
                "version: \"3.0.0\"".to_string()
            } else if l.starts_with("preprocessing:") {
                format!(
                    "preprocessing: {{\"name\": \"churn_features\", \"version\": \"1.0.0\", \"state_file\": \"preprocess.state.json\", \"state_hash\": \"{hash}\"}}"
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("bundle.yaml"), yaml + "\n").unwrap();
    let job = p.job("churn_nightly", SHADOW_JOB);
    let o = p.scorch(&[
        "shadow",
        job.to_str().unwrap(),
        "--challenger",
        "churn@3.0.0",
        "--date",
        LAST_DAY,
    ]);
    // Unlabelled day: the AUC rules fail (exit 5), the table and report are written.
    assert_exit(&o, 5, &["promotion rule(s) failed"]);
    plain_run(&p, "churn@3.0.0");
    assert_eq!(
        score_column(
            &p.path()
                .join(format!("output/churn_scores_shadow/ds={LAST_DAY}")),
            "challenger_churn_probability"
        ),
        score_column(
            &p.path().join(format!("output/plain/ds={LAST_DAY}")),
            "churn_probability"
        )
    );
}

#[test]
fn canary_split_is_deterministic_and_recorded_per_row() {
    let p = Project::new(2, 4000);
    with_registry(&p);
    let job = p.job(
        "canary",
        &SHADOW_JOB.replace(
            "model: churn@1.0.0\n",
            "model: churn@1.0.0\nrollout: {challenger: churn@2.0.0, fraction: 0.25, salt: nov-canary}\n",
        ),
    );
    let out = p.path().join(format!("output/churn_scores/ds={LAST_DAY}"));
    assert_exit(
        &p.scorch(&["run", job.to_str().unwrap(), "--date", LAST_DAY]),
        0,
        &[],
    );
    let first = partition(&out);
    // Python recomputes the documented hash for every row.
    let o = run_python(&[
        "-c",
        r#"
import hashlib, sys, polars as pl
df = pl.read_parquet(sys.argv[1] + "/*.parquet")
bad = 0
for cid, v in zip(df["customer_id"], df["model_version"]):
    h = hashlib.sha256(f"nov-canary:{cid}".encode()).digest()
    want = "2.0.0" if int.from_bytes(h[:8], "big") / 2**64 < 0.25 else "1.0.0"
    bad += want != v
share = (df["model_version"] == "2.0.0").mean()
print(f"mismatches {bad} share {share}")
assert bad == 0 and abs(share - 0.25) < 0.03, (bad, share)
"#,
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // A second run routes every row the same way; the manifest counts each arm.
    assert_exit(
        &p.scorch(&["run", job.to_str().unwrap(), "--date", LAST_DAY]),
        0,
        &[],
    );
    let second = partition(&out);
    assert!(
        first
            .column("model_version")
            .unwrap()
            .equals(second.column("model_version").unwrap())
    );
    let m: serde_json::Value = read_json(out.join("_manifest.json"));
    let ch = m["rollout"]["rows_challenger"].as_u64().unwrap();
    let by_version = first
        .column("model_version")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .filter(|v| *v == Some("2.0.0"))
        .count() as u64;
    assert_eq!(ch, by_version);
    assert_eq!(m["rollout"]["rows_champion"].as_u64().unwrap() + ch, 4000);
    // The challenger's rows carry the challenger's scores: equal to a plain 2.0.0 run.
    plain_run(&p, "churn@2.0.0");
    let all2 = score_column(
        &p.path().join(format!("output/plain/ds={LAST_DAY}")),
        "churn_probability",
    );
    let canary = score_column(&out, "churn_probability");
    let versions: Vec<Option<&str>> = first
        .column("model_version")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .collect();
    let mut compared = 0;
    for ((c, v), w) in canary.iter().zip(&versions).zip(&all2) {
        assert_eq!(c.0, w.0);
        if *v == Some("2.0.0") {
            assert!((c.1 - w.1).abs() <= 1e-6, "{c:?} vs {w:?}");
            compared += 1;
        }
    }
    assert_eq!(compared, ch);
}

#[test]
fn validate_names_bad_rollout_and_shadow_fields() {
    let p = Project::new(1, 100);
    with_registry(&p);
    let cases = [
        (
            "model: churn@1.0.0\nrollout: {challenger: churn@1.0.0, fraction: 1.5, salt: s}\n",
            2,
            "rollout.fraction",
        ),
        (
            "model: churn@1.0.0\nrollout: {challenger: churn@1.0.0, fraction: 0.1, salt: \"\"}\n",
            2,
            "rollout.salt",
        ),
        (
            "model: churn@1.0.0\nrollout: {challenger: churn@7.0.0, fraction: 0.1, salt: s}\n",
            4,
            "rollout.challenger",
        ),
    ];
    for (i, (replacement, code, needle)) in cases.iter().enumerate() {
        let job = p.job(
            &format!("bad{i}"),
            &SHADOW_JOB.replace("model: churn@1.0.0\n", replacement),
        );
        assert_exit(
            &p.scorch(&["validate", job.to_str().unwrap()]),
            *code,
            &[needle],
        );
    }
    for (i, (from, to, needle)) in [
        (
            "\"agreement >= 0.8\"",
            "\"agreement > 0.8\"",
            "operator must be >= or <=",
        ),
        (
            "\"agreement >= 0.8\"",
            "\"auc_dleta >= 0\"",
            "unknown metric `auc_dleta`",
        ),
        (
            "thresholds: [0.5, 0.3]",
            "thresholds: [1.5]",
            "shadow.thresholds",
        ),
        (
            "thresholds: [0.5, 0.3]",
            "thresholds: [0.3, 0.3]",
            "`shadow.thresholds`: threshold 0.3 is listed twice",
        ),
        (
            "path: output/churn_scores\n",
            "path: output/churn_scores\n  zstd_level: 3\n",
            "",
        ),
    ]
    .iter()
    .enumerate()
    {
        let job = p.job(&format!("gate{i}"), &SHADOW_JOB.replace(from, to));
        let o = p.scorch(&["validate", job.to_str().unwrap()]);
        if needle.is_empty() {
            assert_exit(&o, 0, &[]);
        } else {
            assert_exit(&o, 2, &[needle]);
        }
    }
}
