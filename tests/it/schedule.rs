//! The scheduler with a one-second schedule (cron's 6-field form): fires on time,
//! never overlaps a job's runs, catches up missed fires when asked, stops cleanly on
//! SIGTERM (finishing or stopping the running job), and keeps the history in SQLite.

use crate::common::*;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// A job firing every second whose logical date is LAST_DAY (the generated data's).
fn job(p: &Project, name: &str, extra: &str) -> std::path::PathBuf {
    let today = Utc::now().date_naive();
    let last: chrono::NaiveDate = LAST_DAY.parse().unwrap();
    // Fires near midnight could land on another day; the tests run well within one.
    let offset = (last - today).num_days();
    p.job(
        name,
        &format!(
            "name: {name}\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/{name}\ninference:\n  threads: 1\n\
             schedule:\n  cron: \"* * * * * *\"\n  ds_offset_days: {offset}\n{extra}",
            example_bundle().display()
        ),
    )
}

fn start(p: &Project, dir: &str, grace: &str, env: &[(&str, &str)]) -> Child {
    let mut c = Command::new(bin());
    c.current_dir(p.path())
        .args(["schedule", dir, "--history", "h.sqlite", "--grace", grace])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

fn sigterm(c: &Child) {
    unsafe {
        libc::kill(c.id() as i32, libc::SIGTERM);
    }
}

fn wait(c: &mut Child, limit: Duration) -> Option<i32> {
    let t = Instant::now();
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            t.elapsed() < limit,
            "the scheduler did not stop within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn history(p: &Project) -> Vec<serde_json::Value> {
    let o = p.scorch(&["runs", "--history", "h.sqlite", "--json", "--limit", "1000"]);
    assert_exit(&o, 0, &[]);
    let mut rows: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    rows.reverse();
    rows
}

fn time(v: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn fires_on_time_and_stops_on_sigterm_after_the_running_job() {
    let p = Project::new(1, 200);
    job(&p, "tick", "");
    let mut s = start(&p, "jobs", "30", &[]);
    std::thread::sleep(Duration::from_millis(4500));
    sigterm(&s);
    let signalled = Utc::now();
    assert_eq!(wait(&mut s, Duration::from_secs(30)), Some(0));
    let rows = history(&p);
    let ok: Vec<&serde_json::Value> = rows.iter().filter(|r| r["status"] == "succeeded").collect();
    assert!(ok.len() >= 2, "{rows:#?}");
    for r in &rows {
        assert_eq!(r["ds"], LAST_DAY);
        assert!(
            time(&r["scheduled_for"]) <= signalled,
            "no fire after SIGTERM: {r}"
        );
        if r["status"] == "succeeded" {
            // Started within a second of its fire time; manifest recorded.
            let late = time(&r["started_at"]) - time(&r["scheduled_for"]);
            assert!(late < chrono::Duration::milliseconds(1000), "{r}");
            assert!(r["detail"].as_str().unwrap().ends_with(".json"), "{r}");
            assert_eq!(r["exit_code"], 0);
        }
        assert_ne!(r["status"], "running", "every run ended: {r}");
    }
    // One fire per second, no two rows for one fire.
    let fires: Vec<DateTime<Utc>> = rows.iter().map(|r| time(&r["scheduled_for"])).collect();
    for w in fires.windows(2) {
        assert!(w[1] > w[0], "{fires:?}");
    }
}

#[test]
fn a_slow_job_never_overlaps_itself_and_grace_zero_stops_it() {
    let p = Project::new(1, 200);
    job(&p, "slow", "");
    // Each run pauses 2.5 s before publishing: fires every second must be skipped.
    let env = [("SCORCH_TEST_PAUSE_BEFORE_PUBLISH_MS", "2500")];
    let mut s = start(&p, "jobs", "0", &env);
    std::thread::sleep(Duration::from_millis(3500));
    let t = Instant::now();
    // Signal while a run that started recently is in progress (seconds from its end).
    while !history(&p).iter().any(|r| {
        r["status"] == "running"
            && Utc::now() - time(&r["started_at"]) < chrono::Duration::milliseconds(1200)
    }) {
        assert!(t.elapsed() < Duration::from_secs(20), "no run started");
        std::thread::sleep(Duration::from_millis(100));
    }
    sigterm(&s);
    let t = Instant::now();
    assert_eq!(wait(&mut s, Duration::from_secs(20)), Some(0));
    assert!(
        t.elapsed() < Duration::from_secs(12),
        "grace 0 stops the run at once"
    );
    let rows = history(&p);
    let skipped = rows.iter().filter(|r| r["status"] == "skipped").count();
    assert!(skipped >= 1, "{rows:#?}");
    assert!(
        rows.iter()
            .filter(|r| r["status"] == "skipped")
            .all(|r| r["detail"].as_str().unwrap().contains("overlap"))
    );
    // Runs never overlap: each starts after the previous one finished.
    let ran: Vec<&serde_json::Value> = rows.iter().filter(|r| r["status"] != "skipped").collect();
    for w in ran.windows(2) {
        assert!(
            time(&w[1]["started_at"]) >= time(&w[0]["finished_at"]),
            "{w:#?}"
        );
    }
    // The run going at SIGTERM was stopped (grace 0), and recorded so.
    assert_eq!(ran.last().unwrap()["status"], "stopped", "{rows:#?}");
    // A stopped run never half-writes: the partition is the last finished run's or absent.
    let part = p.path().join(format!("output/slow/ds={LAST_DAY}"));
    if part.exists() {
        let df = read_sorted(&part.join("part-00000.parquet"));
        assert_eq!(df.height(), 200);
    }
}

#[test]
fn catchup_runs_the_latest_missed_fires_once_and_only_when_asked() {
    let p = Project::new(1, 200);
    // A first session records some fires, then the scheduler is down for a while.
    let file = job(&p, "cu", "");
    let mut s = start(&p, "jobs", "30", &[]);
    std::thread::sleep(Duration::from_millis(1800));
    sigterm(&s);
    assert_eq!(wait(&mut s, Duration::from_secs(30)), Some(0));
    std::thread::sleep(Duration::from_secs(5));
    // Without catchup nothing from the gap runs.
    let before = history(&p).len();
    let restart = Utc::now();
    let mut s = start(&p, "jobs", "30", &[]);
    std::thread::sleep(Duration::from_millis(800));
    sigterm(&s);
    assert_eq!(wait(&mut s, Duration::from_secs(30)), Some(0));
    let rows = history(&p);
    assert!(
        rows[before..]
            .iter()
            .all(|r| time(&r["scheduled_for"]) >= restart - chrono::Duration::milliseconds(1)),
        "{rows:#?}"
    );
    std::thread::sleep(Duration::from_secs(4));
    // With catchup (at most 3) the three latest missed fires run first, in order.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).unwrap() + "  catchup: true\n  max_catchup: 3\n",
    )
    .unwrap();
    let before = history(&p).len();
    // The scheduler's own start time (its "scheduled" log line): fires before it are
    // the missed ones (the process takes a moment to start).
    let log = p.path().join("catchup.log");
    let mut s = Command::new(bin())
        .current_dir(p.path())
        .args([
            "--log-format",
            "json",
            "schedule",
            "jobs",
            "--history",
            "h.sqlite",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(4000));
    sigterm(&s);
    assert_eq!(wait(&mut s, Duration::from_secs(30)), Some(0));
    let started = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "scheduled")
        .expect("the scheduler logs its start");
    let restart = time(&started["timestamp"]);
    let rows = history(&p);
    let missed: Vec<&serde_json::Value> = rows[before..]
        .iter()
        .filter(|r| time(&r["scheduled_for"]) < restart - chrono::Duration::milliseconds(1))
        .collect();
    assert_eq!(missed.len(), 3, "{rows:#?}");
    assert!(
        missed.iter().all(|r| r["status"] == "succeeded"),
        "{missed:#?}"
    );
    let gap_end = time(&missed[2]["scheduled_for"]);
    assert!(
        restart - gap_end < chrono::Duration::milliseconds(1500),
        "the latest ones"
    );
}

#[test]
fn an_evaluate_schedule_runs_scorch_evaluate_as_its_own_job() {
    let p = Project::new(1, 200);
    let today = Utc::now().date_naive();
    let last: chrono::NaiveDate = LAST_DAY.parse().unwrap();
    let offset = (last - today).num_days();
    p.job(
        "ev",
        &format!(
            "name: ev\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/ev\n\
             labels: {{column: churned, path: \"data/churn/labels/ds={{{{ ds }}}}/*.parquet\"}}\n\
             evaluate:\n  schedule: {{cron: \"* * * * * *\", ds_offset_days: {offset}}}\n  window: 2\n",
            example_bundle().display()
        ),
    );
    let mut s = start(&p, "jobs", "30", &[]);
    std::thread::sleep(Duration::from_millis(2500));
    sigterm(&s);
    assert_eq!(wait(&mut s, Duration::from_secs(30)), Some(0));
    let rows = history(&p);
    let ok: Vec<&serde_json::Value> = rows.iter().filter(|r| r["status"] == "succeeded").collect();
    assert!(!ok.is_empty(), "{rows:#?}");
    for r in &ok {
        assert_eq!(r["job"], "ev-evaluate", "{r}");
        assert_eq!(r["ds"], LAST_DAY);
        // The evaluation's record: both dates of the window, neither scored yet.
        let detail = r["detail"].as_str().unwrap();
        assert!(detail.ends_with("-evaluate.evaluation.json"), "{r}");
        let record = read_json(p.path().join(detail));
        let dates: Vec<&str> = record["dates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["ds"].as_str().unwrap())
            .collect();
        assert_eq!(dates, ["2026-11-27", LAST_DAY], "{record}");
    }
}

#[test]
fn list_crontab_and_bad_schedules() {
    let p = Project::new(1, 10);
    p.job(
        "daily",
        &format!(
            "name: daily\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/daily\n\
             schedule: {{cron: \"30 1 * * *\", timezone: America/New_York}}\n\
             labels: {{column: churned, path: \"data/churn/labels/ds={{{{ ds }}}}/*.parquet\"}}\n\
             evaluate: {{schedule: {{cron: \"0 6 * * *\", ds_offset_days: -8}}}}\n",
            example_bundle().display()
        ),
    );
    let o = p.scorch(&["schedule", "jobs", "--list", "--count", "2"]);
    assert_exit(&o, 0, &[]);
    let out = stdout(&o);
    // 01:30 in New York is 06:30 UTC (EST, winter).
    assert!(out.contains("T06:30:00Z"), "{out}");
    let o = p.scorch(&["crontab", "jobs"]);
    assert_exit(&o, 0, &[]);
    let out = stdout(&o);
    assert!(out.contains("CRON_TZ=America/New_York\n30 1 * * * DS=$(TZ=America/New_York date -d '-1 day' +\\%Y-\\%m-\\%d) && cd "), "{out}");
    assert!(
        out.contains("flock -n") && out.contains("--date \"$DS\""),
        "{out}"
    );
    // The evaluations: their own line, eight days back, seven dates each.
    assert!(out.contains("# daily-evaluate\nCRON_TZ=UTC\n0 6 * * * DS=$(TZ=UTC date -d '-8 day' +\\%Y-\\%m-\\%d) && cd "), "{out}");
    assert!(
        out.contains("/jobs/daily.yaml' --date \"$DS\" --window 7"),
        "{out}"
    );
    let o = p.scorch(&["schedule", "jobs", "--list", "--count", "1"]);
    assert!(stdout(&o).contains("daily-evaluate ("), "{}", stdout(&o));
    // An evaluate schedule without labels, or with a bad window, is refused.
    let nolabels = p.job(
        "nolabels",
        "name: nolabels\nsource:\n  parquet:\n    path: x\nkeys: [id]\nmodel: m\noutput:\n  path: o\n\
         evaluate: {schedule: {cron: \"0 6 * * *\"}, window: 0}\n",
    );
    assert_exit(
        &p.scorch(&["validate", nolabels.to_str().unwrap()]),
        2,
        &["`evaluate`", "needs the job's `labels:`", "evaluate.window"],
    );
    std::fs::remove_file(&nolabels).unwrap();
    let bad = p.job(
        "bad",
        "name: bad\nsource:\n  parquet:\n    path: x\nkeys: [id]\nmodel: m\noutput:\n  path: o\n\
         schedule: {cron: \"0 25 * * *\", timezone: Nowhere/Land}\n",
    );
    assert_exit(
        &p.scorch(&["validate", bad.to_str().unwrap()]),
        2,
        &["`schedule`"],
    );
}
