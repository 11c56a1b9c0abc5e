//! Secret hygiene: every command that touches the warehouse password or the object
//! store's secret key — successful and failing, human and JSON logs at -vv — and
//! nothing the password or key appears in: no log line, no stdout, no manifest,
//! report, metrics history, lock, scheduler history or Parquet file (data or
//! metadata), on local disk or in the S3 bucket.

use std::path::Path;

use crate::common::pg::{self, PgServer};
use crate::common::s3::{self, S3Server};
use crate::common::*;

/// A command: its arguments, environment and expected exit code.
type Command<'a> = (Vec<&'a str>, &'a [(&'a str, &'a str)], i32);

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn no_command_leaks_a_password_or_secret_key() {
    let server = PgServer::start();
    let store = S3Server::start();
    let p = Project::new(2, 400);
    server.load_parquet(
        "churn_features",
        &p.path().join("data/churn/features/*/*.parquet"),
        pg::CHURN_DDL,
    );
    store.put_tree(
        "lake",
        "churn/features",
        &p.path().join("data/churn/features"),
    );
    p.write(
        "profiles.yaml",
        &format!(
            "{}{}",
            server.profiles_yaml("warehouse", "WH_PASSWORD"),
            store.profile_yaml("lake")
        ),
    );
    p.write(
        "sql/features.sql",
        "SELECT * FROM churn_features WHERE ds = {{ ds }}\n",
    );
    let bundle = example_bundle();
    // Warehouse in, S3 out, with a report, a schedule and a shadow section.
    p.job(
        "pg_to_s3",
        &format!(
            "name: pg_to_s3\nsource:\n  postgres:\n    profile: warehouse\n    query: sql/features.sql\n\
             keys: [customer_id]\nmodel: {}\nstorage_profile: lake\noutput:\n  path: s3://lake/scores/pg\n\
             report:\n  drift: {{psi_fail: 100}}\nschedule: {{cron: \"0 2 * * *\", timezone: UTC}}\n\
             shadow:\n  gate: []\n",
            bundle.display()
        ),
    );
    // S3 in and out, sharded.
    p.job(
        "s3_sharded",
        &format!(
            "name: s3_sharded\nsource:\n  parquet:\n    path: s3://lake/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\nstorage_profile: lake\noutput:\n  path: s3://lake/scores/sharded\n\
             shards: 2\nreport: {{}}\n",
            bundle.display()
        ),
    );
    let good = [
        ("WH_PASSWORD", pg::PASSWORD),
        s3::S3Server::env()[0],
        s3::S3Server::env()[1],
    ];
    let wrong_password = "wrong-sentinel-password-77f2";
    let wrong = [
        ("WH_PASSWORD", wrong_password),
        s3::S3Server::env()[0],
        s3::S3Server::env()[1],
    ];
    let challenger = repo().join("models/churn/2.0.0");
    let challenger = challenger.to_str().unwrap();
    let commands: Vec<Command> = vec![
        (vec!["validate", "jobs"], &good, 0),
        (
            vec!["run", "jobs/pg_to_s3.yaml", "--date", LAST_DAY],
            &good,
            0,
        ),
        (
            vec!["run", "jobs/pg_to_s3.yaml", "--date", LAST_DAY],
            &wrong,
            2,
        ),
        (
            vec![
                "backfill",
                "jobs/pg_to_s3.yaml",
                "--from",
                "2026-11-27",
                "--to",
                LAST_DAY,
                "--force",
            ],
            &good,
            0,
        ),
        (
            vec![
                "shadow",
                "jobs/pg_to_s3.yaml",
                "--challenger",
                challenger,
                "--date",
                LAST_DAY,
            ],
            &good,
            0,
        ),
        (
            vec![
                "run",
                "jobs/s3_sharded.yaml",
                "--date",
                LAST_DAY,
                "--shard",
                "0/2",
            ],
            &good,
            0,
        ),
        (
            vec![
                "run",
                "jobs/s3_sharded.yaml",
                "--date",
                LAST_DAY,
                "--shard",
                "1/2",
            ],
            &good,
            0,
        ),
        (
            vec![
                "commit",
                "jobs/s3_sharded.yaml",
                "--date",
                LAST_DAY,
                "--shards",
                "2",
            ],
            &good,
            0,
        ),
        (
            vec!["unlock", "jobs/pg_to_s3.yaml", "--date", LAST_DAY],
            &good,
            0,
        ),
        (vec!["schedule", "jobs", "--list"], &good, 0),
        (vec!["crontab", "jobs"], &good, 0),
        (vec!["runs"], &good, 0),
    ];
    let secrets = [pg::PASSWORD, s3::SECRET_KEY, wrong_password];
    let mut ran = 0;
    for format in ["human", "json"] {
        for (args, env, code) in &commands {
            let all: Vec<&str> = ["-vv", "--log-format", format]
                .into_iter()
                .chain(args.iter().copied())
                .collect();
            let o = p.scorch_env(&all, env);
            assert_exit(&o, *code, &[]);
            let text = format!("{}{}", stdout(&o), stderr(&o));
            for s in secrets {
                assert!(
                    !text.contains(s),
                    "`scorch {}` printed a secret:\n{text}",
                    all.join(" ")
                );
            }
            ran += 1;
        }
    }
    assert_eq!(ran, 2 * commands.len());
    // Everything written: the project (manifests, reports, history, scheduler
    // database) and the bucket (tables, locks, run files, Parquet metadata).
    for s in secrets {
        let mut hits = files_containing(&p.path().join("output"), s.as_bytes());
        hits.extend(files_containing(&p.path().join(".scorch"), s.as_bytes()));
        hits.extend(files_containing(
            &store.bucket("lake").join("scores"),
            s.as_bytes(),
        ));
        assert!(hits.is_empty(), "secret found in {hits:?}");
    }
    // The test would notice a leak: the secrets are really in the environment
    // these commands ran with, and outputs were written.
    assert!(
        !files_containing(&store.bucket("lake").join("scores/pg"), b"_manifest").is_empty()
            || store.bucket("lake").join("scores/pg").exists()
    );
}
