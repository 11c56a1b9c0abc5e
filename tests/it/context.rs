//! Every command that touches a job's table builds it through one job context
//! (`scorch::run::JobContext`), so an environment value that walks a templated
//! output path out of its base folder is refused by all of them alike: exit 2,
//! naming the field, and nothing written anywhere.

use crate::common::*;

const JOB: &str = r#"name: confined
source:
  parquet:
    path: data/churn/features/ds={{ ds }}/*.parquet
keys: [customer_id]
model: churn@1.0.0
output:
  path: output/${TEAM}/scores
inference: {threads: 2, batch_size: 512}
shadow:
  output: output/${TEAM}/shadow
  thresholds: [0.5]
  bootstrap: 20
  labels:
    column: churned
    path: data/churn/labels/ds={{ ds }}/*.parquet
"#;

/// Every file under the project, except the inputs (data, models, jobs).
fn written(p: &Project) -> Vec<String> {
    files_under(p.path())
        .into_iter()
        .map(|f| {
            f.strip_prefix(p.path())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|f| {
            !["data/", "models/", "jobs/"]
                .iter()
                .any(|d| f.starts_with(d))
        })
        .collect()
}

#[test]
fn every_writing_command_refuses_an_escaping_variable_and_writes_nothing() {
    let p = Project::new(1, 2_000);
    for v in ["1.0.0", "2.0.0"] {
        copy_dir(
            &repo().join("models/churn").join(v),
            &p.path().join("models/churn").join(v),
        );
    }
    let job = p.job("confined", JOB);
    let job = job.to_str().unwrap();
    let challenger = p.path().join("models/churn/2.0.0");
    let challenger = challenger.to_str().unwrap();
    // A legitimate value works (and leaves a published partition and a shard to
    // act on), so the refusals below are about the value alone.
    let ok = [("TEAM", "risk")];
    assert_exit(
        &p.scorch_env(&["run", job, "--date", LAST_DAY], &ok),
        0,
        &[],
    );
    assert_exit(
        &p.scorch_env(&["run", job, "--date", LAST_DAY, "--shard", "0/2"], &ok),
        0,
        &[],
    );
    let before = written(&p);
    assert!(
        before
            .iter()
            .any(|f| f.starts_with("output/risk/scores/ds=")),
        "the legitimate run published: {before:?}"
    );
    // `..` out of `output/` into the project's own folder `x/`.
    let bad = [("TEAM", "../x")];
    let page = p.path().join("history.html");
    let page = page.to_str().unwrap();
    let commands: Vec<(&str, Vec<&str>)> = vec![
        ("run", vec!["run", job, "--date", LAST_DAY]),
        (
            "run --dry-run",
            vec!["run", job, "--date", LAST_DAY, "--dry-run"],
        ),
        (
            "run --shard",
            vec!["run", job, "--date", LAST_DAY, "--shard", "1/2"],
        ),
        (
            "commit",
            vec!["commit", job, "--date", LAST_DAY, "--shards", "2"],
        ),
        ("unlock", vec!["unlock", job, "--date", LAST_DAY, "--force"]),
        ("evaluate", vec!["evaluate", job, "--date", LAST_DAY]),
        (
            "shadow",
            vec![
                "shadow",
                job,
                "--challenger",
                challenger,
                "--date",
                LAST_DAY,
            ],
        ),
        (
            "backfill",
            vec!["backfill", job, "--from", LAST_DAY, "--to", LAST_DAY],
        ),
        (
            "backfill --force",
            vec![
                "backfill", job, "--from", LAST_DAY, "--to", LAST_DAY, "--force",
            ],
        ),
        ("history", vec!["history", job, "--out", page]),
    ];
    for (what, args) in &commands {
        let o = p.scorch_env(args, &bad);
        assert_eq!(
            o.status.code(),
            Some(2),
            "{what} with TEAM=../x: {}",
            stderr(&o)
        );
        let err = stderr(&o);
        assert!(
            err.contains("output.path") || err.contains("shadow.output"),
            "{what}: the error names the field: {err}"
        );
        assert!(!p.path().join("x").exists(), "{what} wrote under x/");
        assert_eq!(written(&p), before, "{what} wrote or removed files");
    }
}

/// `scorch validate` and `scorch run` parse each field with the same function, so
/// a bad value gets the same message (and exit 2) from both.
#[test]
fn validate_and_run_say_the_same_of_each_bad_field() {
    let p = Project::new(1, 200);
    let bundle = example_bundle();
    let delta = |field: &str, value: &str| {
        format!(
            "name: same\nsource:\n  delta:\n    path: data/table\n    {field}: \"{value}\"\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/same\n",
            bundle.display()
        )
    };
    let cases = [
        (
            "source.delta.version",
            delta("version", "${V}"),
            vec![("V", "seven")],
            "\"seven\" is not a table version",
        ),
        (
            "source.delta.timestamp",
            delta("timestamp", "yesterday"),
            vec![],
            "is not an RFC 3339 time",
        ),
        (
            "output.path",
            JOB.replace(
                "model: churn@1.0.0",
                &format!("model: {}", bundle.display()),
            ),
            vec![("TEAM", "../../x")],
            "leaves",
        ),
    ];
    for (field, yaml, env, says) in cases {
        let job = p.job("same", &yaml);
        let job = job.to_str().unwrap();
        let v = p.scorch_env(&["validate", job], &env);
        let r = p.scorch_env(&["run", job, "--date", LAST_DAY], &env);
        for (what, o) in [("validate", &v), ("run", &r)] {
            assert_eq!(o.status.code(), Some(2), "{field}: {what}: {}", stderr(o));
            let line = format!("field `{field}`: ");
            let err = stderr(o);
            let at = err
                .find(&line)
                .unwrap_or_else(|| panic!("{field}: {what} names the field: {err}"));
            assert!(err[at..].contains(says), "{field}: {what}: {err}");
        }
        // The same text after the field's name.
        let tail = |o: &std::process::Output| {
            let e = stderr(o);
            let at = e.find(&format!("field `{field}`: ")).unwrap();
            e[at..].lines().next().unwrap().to_string()
        };
        assert_eq!(tail(&v), tail(&r), "{field}: validate and run differ");
    }
}
