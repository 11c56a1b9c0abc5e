//! Shared helpers of the integration tests: the binary, the Python venv, and
//! throwaway projects with generated example data.
#![allow(dead_code)]

pub mod azure;
pub mod pg;
pub mod s3;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The scorch binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scorch"))
}

/// The Python of the project's venv (set up by `make setup`).
pub fn python() -> PathBuf {
    let p = std::env::var_os("SCORCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/scorch/torch-2.13.0/bin/python")
        });
    assert!(
        p.exists(),
        "Python venv not found at {} — run `make setup` (or `make test`) first",
        p.display()
    );
    p
}

/// A throwaway project folder with example data for a few days.
pub struct Project {
    pub dir: tempfile::TempDir,
}

pub const LAST_DAY: &str = "2026-11-28";

impl Project {
    /// Generates `days` days × `rows` rows of the churn dataset ending on [`LAST_DAY`].
    pub fn new(days: u32, rows: u32) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("scorch-test-")
            .tempdir()
            .unwrap();
        let out = run_python(&[
            repo().join("python/make_churn_data.py").to_str().unwrap(),
            "--out",
            dir.path().join("data/churn").to_str().unwrap(),
            "--days",
            &days.to_string(),
            "--rows",
            &rows.to_string(),
            "--customers",
            &(rows * 2).max(200_000).to_string(),
            "--end",
            LAST_DAY,
        ]);
        assert!(
            out.status.success(),
            "data generation failed: {}",
            stderr(&out)
        );
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `rel` (relative to the project, folders created) and returns its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes a job file into `jobs/<name>.yaml` of the project and returns its path.
    pub fn job(&self, name: &str, yaml: &str) -> PathBuf {
        self.write(&format!("jobs/{name}.yaml"), yaml)
    }

    /// A standard job over the generated data, scoring with `bundle`.
    pub fn standard_job(&self, name: &str, bundle: &Path) -> PathBuf {
        self.job(
            name,
            &format!(
                "name: {name}\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
                 keys: [customer_id]\nmodel: {}\noutput:\n  path: output/{name}\ninference:\n  threads: 2\n  batch_size: 1000\n",
                bundle.display()
            ),
        )
    }

    /// Runs `scorch run JOB --date LAST_DAY` in the project folder, with extra environment.
    pub fn run_job(&self, job: &Path, env: &[(&str, &str)]) -> Output {
        self.scorch_env(&["run", job.to_str().unwrap(), "--date", LAST_DAY], env)
    }

    /// Runs scorch in the project folder.
    pub fn scorch(&self, args: &[&str]) -> Output {
        self.scorch_env(args, &[])
    }

    pub fn scorch_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(bin());
        c.current_dir(self.path()).args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// `scorch preprocess fit --spec SPEC --data DATA --out OUT`, which must succeed.
    pub fn fit(&self, spec: &Path, data: &Path, out: &Path) {
        let o = self.scorch(&[
            "preprocess",
            "fit",
            "--spec",
            spec.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_exit(&o, 0, &[]);
    }

    /// `scorch preprocess apply --state STATE --data DATA --keep KEEP --out OUT`,
    /// which must succeed.
    pub fn apply(&self, state: &Path, data: &Path, keep: &str, out: &Path) {
        let o = self.scorch(&[
            "preprocess",
            "apply",
            "--state",
            state.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--keep",
            keep,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_exit(&o, 0, &[]);
    }

    /// Copies the committed example bundle into the project (to tamper with it safely).
    pub fn copy_bundle(&self) -> PathBuf {
        let dst = self.path().join("models/churn/1.0.0");
        copy_dir(&repo().join("models/churn/1.0.0"), &dst);
        dst
    }
}

/// Copies the folder `from` into `to` (created), recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// The committed example bundle.
pub fn example_bundle() -> PathBuf {
    repo().join("models/churn/1.0.0")
}

pub fn run_python(args: &[&str]) -> Output {
    Command::new(python())
        .args(args)
        .env("PYTHONPATH", repo().join("python"))
        .output()
        .unwrap()
}

/// Runs a check script under tests/py with `args`; asserts it succeeds and prints
/// its "max relative difference" line; returns its stdout.
pub fn python_check(script: &str, args: &[&str]) -> String {
    let path = repo().join("tests/py").join(script);
    let all: Vec<&str> = std::iter::once(path.to_str().unwrap())
        .chain(args.iter().copied())
        .collect();
    let o = run_python(&all);
    assert!(o.status.success(), "{script}: {}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("max relative difference"), "{script}: {out}");
    out
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Asserts the exit code and that stderr mentions every fragment.
pub fn assert_exit(o: &Output, code: i32, fragments: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}, got {:?}\nstdout:\n{}\nstderr:\n{err}",
        o.status.code(),
        stdout(o)
    );
    for f in fragments {
        assert!(err.contains(f), "stderr lacks {f:?}:\n{err}");
    }
}

/// A free TCP port on loopback (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a server on a free loopback port: `spawn(port)` starts it, then this waits
/// until the port answers *and* the child is still running. The free port can be
/// taken by another test's server between the check and the bind; the child then
/// exits while the port answers for someone else, so this tries again on a new port.
pub fn spawn_on_free_port(
    what: &str,
    spawn: impl Fn(u16) -> std::process::Child,
) -> (u16, std::process::Child) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(port);
        wait_for_port(port, what);
        std::thread::sleep(std::time::Duration::from_millis(100));
        if child.try_wait().unwrap().is_none() {
            return (port, child);
        }
    }
    panic!("{what} could not start on a free port in 5 tries");
}

/// Waits until something listens on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A tool installed into the cache by `make test`: `$env` if set, else `~/.cache/scorch/<rel>`.
pub fn cached_tool(env: &str, rel: &str) -> PathBuf {
    let p = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/scorch")
            .join(rel)
    });
    assert!(
        p.exists(),
        "{} not found — `make test` installs it",
        p.display()
    );
    p
}

/// Reads a Parquet file sorted by `customer_id`.
pub fn read_sorted(path: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
        .sort(["customer_id"], Default::default())
        .unwrap()
}

/// Opens a page in headless Chromium (`$SCORCH_CHROMIUM`, else `chromium`; `make
/// test` installs it) and asserts it renders with no console message; the
/// screenshot is kept as `$CARGO_TARGET_DIR/test-artifacts/<shot>`.
pub fn open_in_chromium(page: &Path, shot: &str) {
    let chromium = std::env::var("SCORCH_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let artifacts =
        PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
            .join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join(shot);
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {chromium} (`make test` installs it): {e}"));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let png = std::fs::metadata(&shot).expect("screenshot written").len();
    assert!(png > 20_000, "screenshot of {png} bytes looks empty");
    println!("screenshot: {}", shot.display());
}

/// Every data file of a partition folder, in file-name order, stacked (the order a
/// reader of the partition sees).
pub fn read_partition(dir: &Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    let mut out: Option<DataFrame> = None;
    for f in files {
        let df = ParquetReader::new(std::fs::File::open(&f).unwrap())
            .finish()
            .unwrap();
        match out.as_mut() {
            None => out = Some(df),
            Some(o) => {
                o.vstack_mut_owned(df).unwrap();
            }
        }
    }
    out.expect("the partition has data files")
}

/// A JSON file, parsed.
pub fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The files under `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Asserts that two score tables hold the same customers, in order, with
/// `churn_probability` within `tol` of each other row by row.
pub fn assert_scores_close(
    a: &polars::prelude::DataFrame,
    b: &polars::prelude::DataFrame,
    tol: f32,
) {
    assert_eq!(
        a.column("customer_id").unwrap(),
        b.column("customer_id").unwrap()
    );
    let score = |f: &polars::prelude::DataFrame| {
        f.column("churn_probability")
            .unwrap()
            .f32()
            .unwrap()
            .clone()
    };
    let (x, y) = (score(a), score(b));
    assert_eq!(x.len(), y.len());
    for (i, (u, v)) in x.iter().zip(y.iter()).enumerate() {
        let (u, v) = (u.unwrap(), v.unwrap());
        assert!((u - v).abs() <= tol, "row {i}: {u} vs {v}");
    }
}
