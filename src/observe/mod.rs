//! Operability: what a run tells the systems that watch it.
//!
//! - **Prometheus metrics** for node_exporter's textfile collector: with
//!   `--metrics-dir DIR` (or `$SCORCH_METRICS_DIR`), every run rewrites
//!   `DIR/scorch_<job>.prom` atomically (written beside, then renamed) with the
//!   gauges of its last run: status, exit code, timestamps, rows per stage, seconds
//!   per stage, checks and drift.
//! - **OpenLineage run events** (spec 2-0-2): with `--lineage TARGET` (or
//!   `$SCORCH_LINEAGE`, or OpenLineage's own `$OPENLINEAGE_URL`), a `START` event
//!   when the run begins and `COMPLETE` or `FAIL` when it ends, with the job, the
//!   input and output datasets and scorch's run id. TARGET is an `http(s)://` URL
//!   (events are POSTed to `<url>/api/v1/lineage`, or to `$OPENLINEAGE_ENDPOINT`
//!   under it) or a file (one JSON event per line, appended).
//!
//! - **Logs** ([`logging`]): human lines or flat JSON on stderr.
//!
//! Neither metrics nor lineage ever fails a run: a metrics or lineage write that fails is a warning.

pub mod logging;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::sink::manifest::{Manifest, RunStatus};

/// Where metrics and lineage events go.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub metrics_dir: Option<PathBuf>,
    pub lineage: Option<String>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Sets the targets from the command line; unset ones come from the environment.
pub fn configure(metrics_dir: Option<PathBuf>, lineage: Option<String>) {
    let _ = SETTINGS.set(with_env(metrics_dir, lineage));
}

fn with_env(metrics_dir: Option<PathBuf>, lineage: Option<String>) -> Settings {
    Settings {
        metrics_dir: metrics_dir.or_else(|| env_path("SCORCH_METRICS_DIR")),
        lineage: lineage
            .or_else(|| std::env::var("SCORCH_LINEAGE").ok())
            .or_else(|| std::env::var("OPENLINEAGE_URL").ok())
            .filter(|v| !v.is_empty()),
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The settings as environment variables, for child processes (`scorch schedule`
/// runs each job as a `scorch run` process).
pub fn child_env() -> Vec<(&'static str, std::ffi::OsString)> {
    let s = settings();
    let mut env = Vec::new();
    if let Some(d) = &s.metrics_dir {
        env.push(("SCORCH_METRICS_DIR", d.clone().into_os_string()));
    }
    if let Some(l) = &s.lineage {
        env.push(("SCORCH_LINEAGE", l.into()));
    }
    env
}

fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| with_env(None, None))
}

/// The run began (lineage `START`).
pub fn run_started(m: &Manifest, output: &str) {
    if let Some(target) = &settings().lineage {
        emit(target, &event("START", m, output));
    }
}

/// The run ended: metrics, and lineage `COMPLETE` or `FAIL`.
pub fn run_finished(m: &Manifest, output: &str) {
    let s = settings();
    if let Some(dir) = &s.metrics_dir
        && let Err(e) = write_metrics(dir, m)
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not write the run's metrics");
    }
    if let Some(target) = &s.lineage {
        let kind = if m.status == RunStatus::Succeeded {
            "COMPLETE"
        } else {
            "FAIL"
        };
        emit(target, &event(kind, m, output));
    }
}

/// Prometheus label value escaping (backslash, quote, newline).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text of `scorch_<job>.prom`.
pub fn metrics_text(m: &Manifest) -> String {
    let job = label(&m.job.name);
    let base = format!("job=\"{job}\",ds=\"{}\",kind=\"{}\"", label(&m.ds), m.kind);
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (labels, v) in rows {
            let sep = if labels.is_empty() { "" } else { "," };
            out.push_str(&format!("{name}{{{base}{sep}{labels}}} {v}\n"));
        }
    };
    let ts = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| t.timestamp_millis() as f64 / 1000.0)
            .unwrap_or(0.0)
    };
    gauge(
        "scorch_last_run_success",
        "1 if the job's last run succeeded, else 0.",
        vec![(
            String::new(),
            (m.status == RunStatus::Succeeded) as u8 as f64,
        )],
    );
    gauge(
        "scorch_last_run_status",
        "The job's last run, by status (1 for its status).",
        [
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::ChecksFailed,
        ]
        .iter()
        .map(|s| (format!("status=\"{s}\""), (m.status == *s) as u8 as f64))
        .collect(),
    );
    gauge(
        "scorch_last_run_exit_code",
        "Exit code of the job's last run (0 ok, 1-6: docs/reference/exit-codes.md).",
        vec![(String::new(), m.exit_code as f64)],
    );
    gauge(
        "scorch_last_run_start_timestamp_seconds",
        "When the job's last run started (Unix time).",
        vec![(String::new(), ts(&m.started_at))],
    );
    gauge(
        "scorch_last_run_end_timestamp_seconds",
        "When the job's last run ended (Unix time).",
        vec![(String::new(), ts(&m.finished_at))],
    );
    let r = &m.rows;
    gauge(
        "scorch_last_run_rows",
        "Rows of the job's last run, by stage.",
        [
            ("read", r.read),
            ("scored", r.scored),
            ("written", r.written),
            ("quarantined", r.quarantined),
            ("null_scores", r.null_scores),
        ]
        .iter()
        .map(|(s, v)| (format!("stage=\"{s}\""), *v as f64))
        .collect(),
    );
    gauge(
        "scorch_last_run_seconds",
        "Seconds of the job's last run, by stage (busy time; stages overlap) and in total.",
        m.stages
            .iter()
            .map(|(s, v)| (format!("stage=\"{s}\""), *v))
            .collect(),
    );
    let count = |status: &str| m.checks.iter().filter(|c| c.status == status).count() as f64;
    gauge(
        "scorch_last_run_checks",
        "Quality checks of the job's last run, by result.",
        ["pass", "warn", "fail"]
            .iter()
            .map(|s| (format!("status=\"{s}\""), count(s)))
            .collect(),
    );
    let drift = m
        .warnings
        .iter()
        .filter(|w| w.starts_with("drift of "))
        .count();
    gauge(
        "scorch_last_run_drift_warnings",
        "Columns whose drift was `warn` in the job's last run.",
        vec![(String::new(), drift as f64)],
    );
    out
}

fn write_metrics(dir: &Path, m: &Manifest) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name: String = m
        .job
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let target = dir.join(format!("scorch_{name}.prom"));
    // node_exporter reads *.prom only: write beside under another name, then rename.
    let tmp = dir.join(format!(".scorch_{name}.prom.{}", std::process::id()));
    std::fs::write(&tmp, metrics_text(m))?;
    std::fs::rename(&tmp, &target)
}

/// An OpenLineage dataset `{namespace, name}` for a path or URL: `s3://bucket/a/b`
/// → (`s3://bucket`, `a/b`); a local path → (`file`, its absolute path).
fn dataset(location: &str) -> Value {
    if let Some((scheme, rest)) = location.split_once("://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        return json!({"namespace": format!("{scheme}://{bucket}"), "name": key});
    }
    let p = Path::new(location);
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let clean: PathBuf = abs
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    json!({"namespace": "file", "name": clean.display().to_string()})
}

/// A run id in UUID form (OpenLineage's `runId`), derived from scorch's run id, so
/// the START and the COMPLETE of a run carry the same one.
pub fn lineage_run_id(run_id: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(run_id.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

fn event(kind: &str, m: &Manifest, output: &str) -> Value {
    // Input datasets: the folders of the input files (a date's partition), or the
    // source's description for queries.
    let mut inputs: Vec<String> = Vec::new();
    for f in &m.inputs {
        let dir = match f.path.rsplit_once('/') {
            Some((d, _)) if !f.path.ends_with(".sql") => d.to_string(),
            _ => f.path.clone(),
        };
        if !inputs.contains(&dir) {
            inputs.push(dir);
        }
    }
    if inputs.is_empty()
        && let Some(s) = &m.source
    {
        inputs.push(s.clone());
    }
    let mut run_facets = json!({
        "scorch": {
            "_producer": PRODUCER,
            "_schemaURL": "https://github.com/scorch-dev/scorch/blob/main/docs/reference/metrics.md",
            "run_id": m.run_id,
            "kind": m.kind,
            "ds": m.ds,
            "status": m.status,
            "exit_code": m.exit_code,
            "rows": m.rows,
            "model": m.model.as_ref().map(|x| format!("{} {}", x.name, x.version)),
        }
    });
    if let Some(e) = &m.error {
        run_facets["errorMessage"] = json!({
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json",
            "message": e,
            "programmingLanguage": "rust",
        });
    }
    let mut out = dataset(output);
    out["facets"] = json!({
        "scorch_partition": {
            "_producer": PRODUCER,
            "_schemaURL": "https://github.com/scorch-dev/scorch/blob/main/docs/reference/metrics.md",
            "partition": format!("ds={}", m.ds),
        }
    });
    json!({
        "eventType": kind,
        "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": lineage_run_id(&m.run_id), "facets": run_facets},
        "job": {"namespace": "scorch", "name": m.job.name},
        "inputs": inputs.iter().map(|i| dataset(i)).collect::<Vec<_>>(),
        "outputs": [out],
    })
}

const PRODUCER: &str = concat!(
    "https://github.com/scorch-dev/scorch/tree/v",
    env!("CARGO_PKG_VERSION")
);

fn emit(target: &str, ev: &Value) {
    let result = if target.starts_with("http://") || target.starts_with("https://") {
        post(target, ev)
    } else {
        append(Path::new(target), ev)
    };
    if let Err(e) = result {
        // The endpoint's userinfo password (and the client's echo of the URL) hidden.
        tracing::warn!(
            target = %crate::spec::secret::display_url(target),
            error = %crate::spec::secret::redact_urls(&e),
            "could not send the OpenLineage event"
        );
    }
}

fn append(path: &Path, ev: &Value) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| e.to_string())?;
    // One write per line: concurrent runs never interleave within a line.
    f.write_all(format!("{ev}\n").as_bytes())
        .map_err(|e| e.to_string())
}

fn post(url: &str, ev: &Value) -> Result<(), String> {
    let endpoint =
        std::env::var("OPENLINEAGE_ENDPOINT").unwrap_or_else(|_| "api/v1/lineage".into());
    let url = format!(
        "{}/{}",
        url.trim_end_matches('/'),
        endpoint.trim_start_matches('/')
    );
    let body = serde_json::to_vec(ev).expect("event serializes");
    let rt = crate::storage::runtime().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let mut req = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Ok(key) = std::env::var("OPENLINEAGE_API_KEY") {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("{url} answered {}", resp.status()))
        }
    })
}
