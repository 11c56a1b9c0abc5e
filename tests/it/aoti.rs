//! AOTInductor `.pt2` packages beside TorchScript: the same model in both formats
//! scores identically through `scorch run`, and broken packages are model errors
//! (exit 4) that publish nothing. The packages are compiled here, by real torch
//! (`tests/py/make_aoti_bundles.py`, once per test binary, ~20-50 s).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::*;
use polars::prelude::*;

/// The bundles of `make_aoti_bundles.py`: good, narrow, two_inputs, cuda, corrupt. Built once
/// per run of this test binary into cargo's scratch folder for integration tests
/// (a static is never dropped, so a temporary folder would outlive the tests).
fn bundles() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("aoti-bundles");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        let o = run_python(&[
            repo()
                .join("tests/py/make_aoti_bundles.py")
                .to_str()
                .unwrap(),
            example_bundle().to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        assert!(
            o.status.success(),
            "building the packages failed:\n{}{}",
            stdout(&o),
            stderr(&o)
        );
        dir
    })
}

/// A job over the project's data scoring with `bundle`; `inference` lines are
/// added to the standard ones (2 threads, batches of 1000 rows).
fn job(p: &Project, name: &str, bundle: &Path, inference: &str) -> PathBuf {
    let path = p.standard_job(name, bundle);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}{inference}")).unwrap();
    path
}

fn scores(p: &Project, name: &str) -> DataFrame {
    read_partition(&p.path().join(format!("output/{name}/ds={LAST_DAY}")))
        .sort(["customer_id"], SortMultipleOptions::default())
        .unwrap()
}

#[test]
fn the_same_model_as_torchscript_and_as_a_package_scores_identically() {
    // 5,001 rows in batches of 1,000: the last batch has one row, which a package
    // exported with a dynamic batch dimension does not take as is (scorch pads it).
    let p = Project::new(1, 5001);
    let good = bundles().join("good");

    let ts = job(&p, "ts", &example_bundle(), "");
    assert_exit(&p.run_job(&ts, &[]), 0, &[]);
    let aoti = job(&p, "aoti", &good, "");
    let o = p.scorch(&["validate", aoti.to_str().unwrap()]);
    assert_exit(&o, 0, &[]);
    assert_exit(&p.run_job(&aoti, &[]), 0, &[]);

    let (a, b) = (scores(&p, "ts"), scores(&p, "aoti"));
    assert_eq!(a.height(), 5001);
    assert!(a.column("customer_id").unwrap() == b.column("customer_id").unwrap());
    let x = a.column("churn_probability").unwrap().f32().unwrap();
    let y = b.column("churn_probability").unwrap().f32().unwrap();
    let max_diff = x
        .into_no_null_iter()
        .zip(y.into_no_null_iter())
        .map(|(u, v)| (u - v).abs())
        .fold(0f32, f32::max);
    println!("max |torchscript - aoti| over 5,001 rows: {max_diff:e}");
    assert!(max_diff <= 1e-6, "scores differ by up to {max_diff}");
    // The scores are real: not all equal.
    assert!(x.max().unwrap() - x.min().unwrap() > 0.1);

    let m = read_json(
        p.path()
            .join(format!("output/aoti/ds={LAST_DAY}/_manifest.json")),
    );
    assert_eq!(m["model"]["format"], "aoti", "{m}");
    assert_eq!(m["inference"]["device"], "cpu", "{m}");
    let m = read_json(
        p.path()
            .join(format!("output/ts/ds={LAST_DAY}/_manifest.json")),
    );
    assert_eq!(m["model"]["format"], "torchscript", "{m}");

    // `format:` left out: `.pt2` means aoti; `device: auto` follows a CPU package.
    let inferred = p.path().join("models/inferred");
    copy_dir(&good, &inferred);
    let yaml = std::fs::read_to_string(inferred.join("bundle.yaml")).unwrap();
    let without: String = yaml
        .lines()
        .filter(|l| !l.starts_with("format:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(yaml, without);
    std::fs::write(inferred.join("bundle.yaml"), without).unwrap();
    let auto = job(&p, "auto", &inferred, "  device: auto\n");
    assert_exit(&p.run_job(&auto, &[]), 0, &[]);
    let c = scores(&p, "auto");
    assert!(c.column("churn_probability").unwrap() == b.column("churn_probability").unwrap());
    let m = read_json(
        p.path()
            .join(format!("output/auto/ds={LAST_DAY}/_manifest.json")),
    );
    assert_eq!(m["model"]["format"], "aoti", "{m}");
}

#[test]
fn broken_packages_are_model_errors_that_publish_nothing() {
    let p = Project::new(1, 300);
    let dir = bundles();
    let cases: Vec<(&str, PathBuf, &str, Vec<&str>)> = vec![
        (
            "cuda_on_cpu",
            dir.join("cuda"),
            "",
            vec!["compiled for cuda, but this run scores on cpu"],
        ),
        (
            "cuda_auto",
            dir.join("cuda"),
            "  device: auto\n",
            vec!["compiled for cuda, but CUDA is not available on this machine"],
        ),
        (
            "corrupt",
            dir.join("corrupt"),
            "",
            vec![
                "cannot read AOTInductor package",
                "corrupt/model.pt2",
                "central directory",
            ],
        ),
        (
            "narrow",
            dir.join("narrow"),
            "",
            vec![
                "narrow/model.pt2",
                "forward pass failed",
                "expected: 38, but got: 43",
            ],
        ),
        (
            "two_inputs",
            dir.join("two_inputs"),
            "",
            vec![
                "two_inputs/model.pt2",
                "expected inputs vector size to be 2, but got 1",
            ],
        ),
        (
            "bf16",
            dir.join("good"),
            "  precision: bf16\n",
            vec!["inference.precision is bf16", "AOTInductor package"],
        ),
    ];
    for (name, bundle, inference, fragments) in cases {
        let j = job(&p, name, &bundle, inference);
        let o = p.run_job(&j, &[]);
        println!("{name}: {}", stderr(&o).trim());
        assert_exit(&o, 4, &fragments);
        let out = p.path().join(format!("output/{name}/ds={LAST_DAY}"));
        assert!(!out.exists(), "{name}: {} was published", out.display());
        // What the package's metadata tells, `scorch validate` tells before a run.
        if matches!(name, "cuda_on_cpu" | "corrupt") {
            let o = p.scorch(&["validate", j.to_str().unwrap()]);
            assert_exit(&o, 4, &fragments[..1]);
        }
    }
    // The package's runtime prints its errors to stderr itself; scorch mutes that
    // for the probe, so the JSON log stays JSON.
    let j = job(&p, "narrow_json", &dir.join("narrow"), "");
    let o = p.scorch(&[
        "--log-format",
        "json",
        "run",
        j.to_str().unwrap(),
        "--date",
        LAST_DAY,
    ]);
    assert_exit(&o, 4, &["expected: 38, but got: 43"]);
    for line in stderr(&o).lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        assert!(v["message"].is_string(), "{line}");
    }

    // The format is what the bundle says, and a wrong one names the way out.
    let wrong = p.path().join("models/wrong");
    copy_dir(&dir.join("good"), &wrong);
    let yaml = std::fs::read_to_string(wrong.join("bundle.yaml")).unwrap();
    std::fs::write(
        wrong.join("bundle.yaml"),
        yaml.replace("format: \"aoti\"", "format: \"torchscript\""),
    )
    .unwrap();
    let o = p.run_job(&job(&p, "wrong", &wrong, ""), &[]);
    assert_exit(
        &o,
        4,
        &["cannot load TorchScript model", "set `format: aoti`"],
    );
    // Neither a format nor a telling extension.
    std::fs::rename(wrong.join("model.pt2"), wrong.join("model.bin")).unwrap();
    let yaml: String = yaml
        .lines()
        .filter(|l| !l.starts_with("format:"))
        .map(|l| format!("{}\n", l.replace("model.pt2", "model.bin")))
        .collect();
    std::fs::write(wrong.join("bundle.yaml"), yaml).unwrap();
    let o = p.run_job(&job(&p, "unknown", &wrong, ""), &[]);
    assert_exit(&o, 4, &["cannot tell the format of `model.bin`"]);
}

/// Before moving a model to `torch.export`, score the same day with the
/// TorchScript champion and its `.pt2` export in a shadow run: the challenger is
/// looked up in the registry given with `--registry` (where it would be promoted).
#[test]
fn a_shadow_run_compares_a_torchscript_champion_with_its_aoti_export() {
    let p = Project::new(1, 2000);
    let export = p.path().join("incoming/churn-aoti");
    copy_dir(&bundles().join("good"), &export);
    let yaml = std::fs::read_to_string(export.join("bundle.yaml")).unwrap();
    std::fs::write(
        export.join("bundle.yaml"),
        yaml.replace("version: \"1.0.0\"", "version: \"1.0.0-aoti\""),
    )
    .unwrap();
    let o = p.scorch(&[
        "model",
        "register",
        export.to_str().unwrap(),
        "--registry",
        "elsewhere",
    ]);
    assert_exit(&o, 0, &[]);
    let job = p.job(
        "nightly",
        &format!(
            "name: nightly\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/nightly\n\
             inference: {{threads: 2, batch_size: 300}}\nshadow:\n  gate:\n    - \"agreement >= 0.9999\"\n",
            example_bundle().display()
        ),
    );
    let shadow = |extra: &[&str]| {
        let mut args = vec![
            "shadow",
            job.to_str().unwrap(),
            "--challenger",
            "churn@1.0.0-aoti",
            "--date",
            LAST_DAY,
        ];
        args.extend_from_slice(extra);
        p.scorch(&args)
    };
    // Not in the project's own registry (`models/` does not even exist here).
    assert_exit(&shadow(&[]), 4, &["no model \"churn\" in the registry"]);
    let o = shadow(&["--registry", "elsewhere"]);
    assert_exit(&o, 0, &[]);
    let part = p
        .path()
        .join(format!("output/nightly_shadow/ds={LAST_DAY}"));
    let df = read_partition(&part);
    assert_eq!(df.height(), 2000);
    let a = df
        .column("champion_churn_probability")
        .unwrap()
        .f32()
        .unwrap();
    let b = df
        .column("challenger_churn_probability")
        .unwrap()
        .f32()
        .unwrap();
    let worst = a
        .into_no_null_iter()
        .zip(b.into_no_null_iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-6, "champion and its export differ by {worst}");
    let m = read_json(part.join("_manifest.json"));
    assert_eq!(m["challenger"]["version"], "1.0.0-aoti", "{m}");
    assert_eq!(m["challenger"]["format"], "aoti", "{m}");
    assert_eq!(m["model"]["format"], "torchscript", "{m}");
}

/// scorch unpacks a package into `$TMPDIR/scorch-aoti-*.pid<PID>` and removes it
/// when the run ends; a killed run's folder is removed by the next run.
#[test]
fn a_killed_run_leaves_no_unpacked_package_behind() {
    let p = Project::new(1, 300);
    let tmp = p.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let unpacked = || -> Vec<String> {
        std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("scorch-aoti-") || n.starts_with("aotinductor_"))
            .collect()
    };
    let j = job(&p, "killed", &bundles().join("good"), "");
    let tmp_env = tmp.to_str().unwrap();
    assert_exit(&p.run_job(&j, &[("TMPDIR", tmp_env)]), 0, &[]);
    assert_eq!(unpacked(), Vec::<String>::new(), "a finished run cleans up");

    // Paused before publishing (the package is loaded by then), then SIGKILLed.
    let mut child = std::process::Command::new(bin())
        .current_dir(p.path())
        .args(["run", j.to_str().unwrap(), "--date", LAST_DAY])
        .env("TMPDIR", tmp_env)
        .env("SCORCH_TEST_PAUSE_BEFORE_PUBLISH_MS", "30000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !p
        .path()
        .join("output/killed/_staging")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some())
    {
        assert!(
            start.elapsed().as_secs() < 60,
            "the run never staged its files"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left = unpacked();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("scorch-aoti-"), "{left:?}");
    assert!(
        left[0].ends_with(&format!(".pid{}", child.id())),
        "{left:?}"
    );

    assert_exit(&p.run_job(&j, &[("TMPDIR", tmp_env)]), 0, &[]);
    assert_eq!(unpacked(), Vec::<String>::new(), "the next run removed it");
}
