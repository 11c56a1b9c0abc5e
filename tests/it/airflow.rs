//! The Airflow DAG factory (`airflow/scorch_dags.py`) with real Apache Airflow from
//! PyPI (`make airflow` installs it into the cache): the DagBag imports with no
//! errors, `airflow dags test` scores the example job end to end, and scorch's exit
//! codes map to Airflow outcomes (1 retried; 2, 3, 4 failed without retry).

use crate::common::*;

use std::path::PathBuf;
use std::process::{Command, Output};

fn airflow_bin() -> PathBuf {
    let dir = std::env::var_os("SCORCH_AIRFLOW")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/scorch/airflow-3/bin")
        });
    assert!(
        dir.join("airflow").exists(),
        "Airflow not found in {} — run `make airflow` (or `make test`)",
        dir.display()
    );
    dir
}

/// An Airflow home with a migrated SQLite database, reading the repo's DAG folder
/// for the project `p`.
struct Airflow {
    home: tempfile::TempDir,
    project: PathBuf,
}

impl Airflow {
    fn new(p: &Project) -> Self {
        let a = Airflow {
            home: tempfile::tempdir().unwrap(),
            project: p.path().to_path_buf(),
        };
        let o = a.cmd("airflow").args(["db", "migrate"]).output().unwrap();
        assert!(o.status.success(), "airflow db migrate: {}", stderr(&o));
        a
    }

    fn cmd(&self, tool: &str) -> Command {
        let mut c = Command::new(airflow_bin().join(tool));
        c.env("AIRFLOW_HOME", self.home.path())
            .env("AIRFLOW__CORE__DAGS_FOLDER", repo().join("airflow"))
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("SCORCH_PROJECT", &self.project)
            .env("SCORCH_BIN", bin())
            .env("SCORCH_RETRIES", "1")
            .env("SCORCH_RETRY_DELAY_S", "1");
        c
    }

    /// Runs Python `code` with `db`, the DagBag of the DAG folder; returns its stdout.
    fn dagbag(&self, code: &str) -> String {
        let script = format!(
            "import os\nfrom airflow.models.dagbag import DagBag\n\
             db = DagBag(dag_folder=os.environ['AIRFLOW__CORE__DAGS_FOLDER'], include_examples=False)\n{code}"
        );
        let o = self.cmd("python").args(["-c", &script]).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    }

    fn dags_test(&self, dag: &str, logical: &str) -> Output {
        self.cmd("airflow")
            .args(["dags", "test", dag, logical])
            .output()
            .unwrap()
    }
}

fn scheduled_job(p: &Project, name: &str, source: &str) -> PathBuf {
    p.job(
        name,
        &format!(
            "name: {name}\nsource:\n{source}keys: [customer_id]\nmodel: {}\noutput:\n  path: output/{name}\n\
             schedule: {{cron: \"0 2 * * *\", timezone: Europe/Berlin}}\n",
            example_bundle().display()
        ),
    )
}

const PARQUET: &str = "  parquet:\n    path: data/churn/features/ds={{ ds }}/*.parquet\n";

#[test]
fn dag_factory_imports_cleanly_and_scores_a_job_end_to_end() {
    let p = Project::new(1, 500);
    let daily = scheduled_job(&p, "daily", PARQUET);
    // Its evaluations on their own schedule: a second DAG.
    let mut text = std::fs::read_to_string(&daily).unwrap();
    text.push_str(
        "labels: {column: churned, path: \"data/churn/labels/ds={{ ds }}/*.parquet\"}\n\
         evaluate: {schedule: {cron: \"0 6 * * *\", ds_offset_days: -1}, window: 1}\n",
    );
    std::fs::write(&daily, text).unwrap();
    // A job without a schedule gets no DAG.
    p.standard_job("adhoc", &example_bundle());
    let af = Airflow::new(&p);
    let out = af.dagbag(
        r#"
import json
d = db.get_dag("scorch_daily")
print(json.dumps({
    "errors": {k: str(v) for k, v in db.import_errors.items()},
    "dags": sorted(db.dag_ids),
    "tasks": sorted(t.task_id for t in d.tasks),
    "upstream": sorted(d.get_task("score").upstream_task_ids),
    "cron": d.timetable._expression,
    "tz": str(d.timetable._timezone),
    "max_active_runs": d.max_active_runs,
    "catchup": d.catchup,
}))
"#,
    );
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(v["errors"], serde_json::json!({}), "{out}");
    assert_eq!(
        v["dags"],
        serde_json::json!(["scorch_daily", "scorch_daily_evaluate"])
    );
    assert_eq!(v["tasks"], serde_json::json!(["score", "validate"]));
    assert_eq!(v["upstream"], serde_json::json!(["validate"]));
    assert_eq!(v["cron"], "0 2 * * *");
    assert_eq!(v["tz"], "Europe/Berlin");
    assert_eq!(v["max_active_runs"], 1);
    assert_eq!(v["catchup"], false);
    // 02:00 in Berlin on 2026-11-29 is 01:00 UTC; the run scores yesterday, LAST_DAY.
    let o = af.dags_test("scorch_daily", "2026-11-29T01:00:00+00:00");
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{log}");
    assert!(
        log.contains(&format!("scorch: job daily ds={LAST_DAY}")),
        "{log}"
    );
    let df = read_sorted(
        &p.path()
            .join(format!("output/daily/ds={LAST_DAY}/part-00000.parquet")),
    );
    assert_eq!(df.height(), 500);
    // The evaluation DAG runs `scorch evaluate` for its date: scored, no labels yet.
    let o = af.dags_test("scorch_daily_evaluate", "2026-11-29T06:00:00+00:00");
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{log}");
    assert!(
        log.contains(&format!("{LAST_DAY}: no labels yet (500 rows)")),
        "{log}"
    );
}

#[test]
fn exit_codes_map_to_airflow_outcomes() {
    let p = Project::new(1, 100);
    scheduled_job(&p, "daily", PARQUET);
    // A warehouse that is not there: exit 1, a runtime error worth retrying.
    let port = free_port();
    p.write(
        "profiles.yaml",
        &format!(
            "gone:\n  postgres:\n    host: 127.0.0.1\n    port: {port}\n    user: u\n    dbname: d\n    connect_timeout_s: 2\n"
        ),
    );
    p.write("sql/q.sql", "SELECT * FROM t WHERE ds = {{ ds }}\n");
    scheduled_job(
        &p,
        "warehouse",
        "  postgres:\n    profile: gone\n    query: sql/q.sql\n",
    );
    let af = Airflow::new(&p);
    // No input for the date: exit 3, failed at once, never retried.
    let o = af.dags_test("scorch_daily", "2026-12-10T01:00:00+00:00");
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!o.status.success(), "{log}");
    assert!(
        log.contains("scorch exit 3 (data contract violation), not retried"),
        "{log}"
    );
    assert!(log.contains("new_state=failed"), "{log}");
    assert!(!log.contains("up_for_retry"), "{log}");
    // Unreachable warehouse: exit 1, handed back to Airflow for a retry.
    let o = af.dags_test("scorch_warehouse", "2026-11-29T01:00:00+00:00");
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        log.contains("scorch exit 1 (runtime error), will be retried"),
        "{log}"
    );
    assert!(log.contains("up_for_retry"), "{log}");
}

#[test]
fn a_sharded_job_maps_scoring_over_its_shards_and_commits() {
    let p = Project::new(1, 3000);
    p.job(
        "wide",
        &format!(
            "name: wide\nsource:\n{PARQUET}keys: [customer_id]\nmodel: {}\noutput:\n  path: output/wide\n\
             inference: {{batch_size: 256}}\nshards: 3\nschedule: {{cron: \"0 2 * * *\", timezone: Europe/Berlin}}\n",
            example_bundle().display()
        ),
    );
    p.job(
        "narrow",
        &format!(
            "name: narrow\nsource:\n{PARQUET}keys: [customer_id]\nmodel: {}\noutput:\n  path: output/narrow\n\
             inference: {{batch_size: 256}}\n",
            example_bundle().display()
        ),
    );
    let af = Airflow::new(&p);
    let out = af.dagbag(
        r#"
assert not db.import_errors, db.import_errors
d = db.get_dag("scorch_wide")
print(sorted(t.task_id for t in d.tasks), sorted(d.get_task("commit").upstream_task_ids), type(d.get_task("score")).__name__)
"#,
    );
    assert!(
        out.contains("['commit', 'score', 'validate'] ['score'] DecoratedMappedOperator"),
        "{out}"
    );
    let o = af.dags_test("scorch_wide", "2026-11-29T01:00:00+00:00");
    let log = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success(), "{log}");
    assert!(log.contains("committed 3 shards of job wide"), "{log}");
    // The committed partition equals an unsharded run of the same job.
    let narrow = p.path().join("jobs/narrow.yaml");
    assert_exit(&p.run_job(&narrow, &[]), 0, &[]);
    let read = |t: &str| {
        read_partition(&p.path().join(format!("output/{t}/ds={LAST_DAY}")))
            .select(["customer_id", "churn_probability"])
            .unwrap()
    };
    let (a, b) = (read("narrow"), read("wide"));
    assert_eq!(a.height(), 3000);
    assert!(
        a.equals(&b),
        "the sharded DAG's partition differs from an unsharded run"
    );
}
