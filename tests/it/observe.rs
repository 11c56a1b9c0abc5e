//! Operability: Prometheus textfile metrics per run, OpenLineage run events to a
//! file and to an HTTP endpoint, and JSON logs whose every line carries the run id.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::common::*;

/// Metric name → value for the sample lines of a `.prom` file whose labels contain
/// `with`; checks every line against the text exposition format.
fn samples(text: &str, with: &str) -> Vec<(String, f64)> {
    let line = regex::Regex::new(
        r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\} (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$"#,
    )
    .unwrap();
    let mut typed = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            typed.insert(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if l.starts_with("# HELP ") {
            continue;
        }
        let c = line
            .captures(l)
            .unwrap_or_else(|| panic!("not exposition format: {l:?}"));
        assert!(
            typed.contains(&c[1]),
            "{} has no # TYPE line before it",
            &c[1]
        );
        if c[2].contains(with) {
            out.push((c[1].to_string(), c[3].parse().unwrap()));
        }
    }
    out
}

fn value(s: &[(String, f64)], name: &str) -> f64 {
    s.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

#[test]
fn runs_write_prometheus_metrics_for_the_textfile_collector() {
    let p = Project::new(1, 300);
    let job = p.standard_job("obs", &example_bundle());
    let dir = p.path().join("metrics");
    let o = p.scorch(&[
        "--metrics-dir",
        dir.to_str().unwrap(),
        "run",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
    ]);
    assert_exit(&o, 0, &[]);
    let text = std::fs::read_to_string(dir.join("scorch_obs.prom")).unwrap();
    let s = samples(&text, "job=\"obs\",ds=\"2026-11-28\",kind=\"run\"");
    assert_eq!(value(&s, "scorch_last_run_success"), 1.0);
    assert_eq!(value(&s, "scorch_last_run_exit_code"), 0.0);
    let rows = samples(&text, "stage=\"written\"");
    assert_eq!(value(&rows, "scorch_last_run_rows"), 300.0);
    let total = samples(&text, "stage=\"total\"");
    assert!(value(&total, "scorch_last_run_seconds") > 0.0);
    assert!(
        value(&s, "scorch_last_run_end_timestamp_seconds")
            >= value(&s, "scorch_last_run_start_timestamp_seconds")
    );
    // Only the .prom file is left (written beside, then renamed).
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // A failed run replaces it: success 0 and its exit code; from the environment.
    let o = p.scorch_env(
        &["run", job.to_str().unwrap(), "--date", "2020-01-01"],
        &[("SCORCH_METRICS_DIR", dir.to_str().unwrap())],
    );
    assert_exit(&o, 3, &[]);
    let text = std::fs::read_to_string(dir.join("scorch_obs.prom")).unwrap();
    let s = samples(&text, "ds=\"2020-01-01\"");
    assert_eq!(value(&s, "scorch_last_run_success"), 0.0);
    assert_eq!(value(&s, "scorch_last_run_exit_code"), 3.0);
    let failed = samples(&text, "status=\"failed\"");
    assert_eq!(value(&failed, "scorch_last_run_status"), 1.0);
}

fn events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn openlineage_events_go_to_a_file_and_to_an_http_endpoint() {
    let p = Project::new(1, 300);
    let job = p.standard_job("lineage", &example_bundle());
    let file = p.path().join("lineage/events.jsonl");
    let o = p.scorch(&[
        "--lineage",
        file.to_str().unwrap(),
        "run",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
    ]);
    assert_exit(&o, 0, &[]);
    let ev = events(&file);
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["eventType"], "START");
    assert_eq!(ev[1]["eventType"], "COMPLETE");
    assert_eq!(ev[0]["run"]["runId"], ev[1]["run"]["runId"]);
    assert_eq!(ev[0]["run"]["runId"].as_str().unwrap().len(), 36);
    assert_eq!(
        ev[1]["job"],
        serde_json::json!({"namespace": "scorch", "name": "lineage"})
    );
    let run_id = ev[1]["run"]["facets"]["scorch"]["run_id"].as_str().unwrap();
    assert!(stdout(&o).contains(run_id));
    assert_eq!(ev[1]["run"]["facets"]["scorch"]["rows"]["written"], 300);
    let input = &ev[1]["inputs"][0];
    assert_eq!(input["namespace"], "file");
    assert!(
        input["name"]
            .as_str()
            .unwrap()
            .ends_with("data/churn/features/ds=2026-11-28"),
        "{input}"
    );
    let output = &ev[1]["outputs"][0];
    assert!(
        output["name"].as_str().unwrap().ends_with("output/lineage"),
        "{output}"
    );
    assert_eq!(
        output["facets"]["scorch_partition"]["partition"],
        "ds=2026-11-28"
    );

    // An HTTP endpoint (a small server here): START and FAIL for a failing run.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            r.read_line(&mut request).unwrap();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let path = request.split(' ').nth(1).unwrap_or("").to_string();
            sink.lock()
                .unwrap()
                .push((path, serde_json::from_slice(&body).unwrap()));
            let mut s = stream;
            let _ = s.write_all(
                b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    let o = p.scorch_env(
        &["run", job.to_str().unwrap(), "--date", "2020-01-01"],
        &[("OPENLINEAGE_URL", &format!("http://127.0.0.1:{port}"))],
    );
    assert_exit(&o, 3, &[]);
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|(path, _)| path == "/api/v1/lineage"));
    assert_eq!(got[0].1["eventType"], "START");
    assert_eq!(got[1].1["eventType"], "FAIL");
    let msg = got[1].1["run"]["facets"]["errorMessage"]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("no Parquet files match"), "{msg}");
    assert_eq!(got[1].1["run"]["facets"]["scorch"]["exit_code"], 3);
}

#[test]
fn every_json_log_line_of_a_run_carries_its_run_id() {
    let p = Project::new(1, 300);
    let job = p.standard_job("logs", &example_bundle());
    for (date, code) in [(LAST_DAY, 0), ("2020-01-01", 3)] {
        let o = p.scorch(&[
            "-vv",
            "--log-format",
            "json",
            "run",
            job.to_str().unwrap(),
            "--date",
            date,
        ]);
        assert_exit(&o, code, &[]);
        let mut ids = std::collections::BTreeSet::new();
        let mut lines = 0;
        for l in stderr(&o).lines().filter(|l| l.starts_with('{')) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            // Polars' and libtorch's own debug lines come from outside the run.
            if !v["target"].as_str().unwrap_or("").starts_with("scorch") {
                continue;
            }
            let id = v["run_id"]
                .as_str()
                .unwrap_or_else(|| panic!("no run_id: {l}"));
            ids.insert(id.to_string());
            lines += 1;
        }
        // Every stderr line is JSON (the closing error too).
        assert!(
            stderr(&o).lines().all(|l| l.starts_with('{')),
            "{}",
            stderr(&o)
        );
        assert!(lines >= if code == 0 { 2 } else { 1 }, "{}", stderr(&o));
        assert_eq!(ids.len(), 1, "{ids:?}");
        let run_id = ids.into_iter().next().unwrap();
        let manifest = p.path().join(format!("output/logs/_runs/{run_id}.json"));
        assert!(manifest.exists(), "{}", manifest.display());
    }
}

#[test]
fn commits_send_lineage_events_and_metrics_too() {
    let p = Project::new(1, 300);
    let job = p.standard_job("sharded_obs", &example_bundle());
    for i in 0..2 {
        let o = p.scorch(&[
            "run",
            job.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--shard",
            &format!("{i}/2"),
        ]);
        assert_exit(&o, 0, &[]);
    }
    let file = p.path().join("lineage.jsonl");
    let dir = p.path().join("metrics");
    let o = p.scorch(&[
        "--lineage",
        file.to_str().unwrap(),
        "--metrics-dir",
        dir.to_str().unwrap(),
        "commit",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--shards",
        "2",
    ]);
    assert_exit(&o, 0, &[]);
    let ev = events(&file);
    assert_eq!(
        ev.iter()
            .map(|e| e["eventType"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["START", "COMPLETE"]
    );
    assert_eq!(ev[1]["run"]["facets"]["scorch"]["kind"], "commit");
    assert_eq!(ev[1]["run"]["facets"]["scorch"]["rows"]["written"], 300);
    let text = std::fs::read_to_string(dir.join("scorch_sharded_obs.prom")).unwrap();
    let s = samples(&text, "kind=\"commit\"");
    assert_eq!(value(&s, "scorch_last_run_success"), 1.0);
}

#[test]
fn human_logs_are_plain_off_a_terminal_and_round_their_numbers() {
    let p = Project::new(1, 1000);
    let job = p.standard_job("plain_logs", &example_bundle());
    // Redirected (as in a CI log or `make demo > log`): no escape codes.
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 0, &[]);
    let err = stderr(&o);
    assert!(
        !err.contains('\u{1b}'),
        "escape codes off a terminal:\n{err:?}"
    );
    let scored = err
        .lines()
        .find(|l| l.contains(" scored"))
        .unwrap_or_else(|| panic!("no `scored` line:\n{err}"));
    for field in ["read_s=", "preprocess_s=", "infer_s=", "write_s="] {
        let value = scored
            .split_whitespace()
            .find_map(|w| w.strip_prefix(field))
            .unwrap_or_else(|| panic!("no {field} in {scored}"));
        let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
        assert_eq!(decimals, 3, "{field}{value} in {scored}");
        assert!(value.parse::<f64>().is_ok_and(|v| v >= 0.0), "{scored}");
    }
    // On a terminal (a pseudo-terminal from `script`): coloured, unless NO_COLOR.
    let on_tty = |no_color: Option<&str>| {
        let cmd = format!(
            "{} run {} --date {LAST_DAY} --no-progress",
            bin().display(),
            job.display()
        );
        let mut c = Command::new("script");
        c.current_dir(p.path())
            .args(["-q", "-e", "-c", &cmd, "/dev/null"])
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            c.env("NO_COLOR", v);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stdout(&o));
        stdout(&o)
    };
    assert!(on_tty(None).contains('\u{1b}'), "no colour on a terminal");
    assert!(
        !on_tty(Some("1")).contains('\u{1b}'),
        "colour despite NO_COLOR=1"
    );
    // An empty NO_COLOR does not count (https://no-color.org).
    assert!(on_tty(Some("")).contains('\u{1b}'));
}
