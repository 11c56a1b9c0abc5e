//! Faults in what scorch depends on: the S3 server stopped and restarted mid-run
//! (retried, nothing lost), the PostgreSQL connection killed mid-stream (a clear
//! error, nothing published), the output volume full (a clear error, nothing
//! published, the previous partition intact).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::pg::{self, PgServer};
use crate::common::s3::S3Server;
use crate::common::*;

/// Every file under `dir` (relative name → bytes).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn s3_stopped_and_restarted_mid_run_is_retried_and_loses_nothing() {
    let mut s3 = S3Server::start();
    let p = Project::new(1, 3000);
    // Patient retries: the server is away for about two seconds.
    p.write(
        "profiles.yaml",
        &s3.profile_yaml("lake").replace(
            "    retry:\n      max_retries: 2\n      timeout_s: 5\n      initial_backoff_ms: 50\n",
            "    retry:\n      max_retries: 10\n      timeout_s: 60\n      initial_backoff_ms: 200\n",
        ),
    );
    let job = p.job(
        "flaky",
        &format!(
            "name: flaky\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\nstorage_profile: lake\noutput:\n  path: s3://lake/scores/flaky\n",
            example_bundle().display()
        ),
    );
    s3.bucket("lake");
    // The run stages its files, pauses 1 s before uploading; the server goes down
    // during the pause and comes back 2 s later, while the upload is retried.
    let child = Command::new(bin())
        .current_dir(p.path())
        .args(["run", job.to_str().unwrap(), "--date", LAST_DAY])
        .env(scorch::run::PAUSE_BEFORE_PUBLISH_ENV, "1000")
        .envs(S3Server::env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lock = s3
        .root
        .path()
        .join(format!("lake/scores/flaky/_locks/ds={LAST_DAY}.lock"));
    let t = Instant::now();
    while !lock.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    s3.stop();
    let down = Instant::now();
    std::thread::sleep(Duration::from_millis(2000));
    s3.restart();
    let o = child.wait_with_output().unwrap();
    println!("server down for {:?}", down.elapsed());
    assert_exit(&o, 0, &[]);
    // Nothing lost: the partition holds every row, scored as a local run scores them.
    let part = s3
        .root
        .path()
        .join(format!("lake/scores/flaky/ds={LAST_DAY}"));
    let got = read_partition(&part)
        .select(["customer_id", "churn_probability"])
        .unwrap();
    // The same job writing locally (same batches, so the same scores to the bit).
    let local = p.job(
        "local",
        &std::fs::read_to_string(&job)
            .unwrap()
            .replace("name: flaky", "name: local")
            .replace("s3://lake/scores/flaky", "output/local"),
    );
    assert_exit(&p.run_job(&local, &S3Server::env()), 0, &[]);
    let want = read_partition(&p.path().join(format!("output/local/ds={LAST_DAY}")))
        .select(["customer_id", "churn_probability"])
        .unwrap();
    assert_eq!(got.height(), 3000);
    assert!(got.equals(&want));
}

#[test]
fn postgres_connection_killed_mid_stream_fails_clearly_and_publishes_nothing() {
    let server = PgServer::start();
    let p = Project::new(1, 20_000);
    server.load_parquet(
        "churn_features",
        &p.path().join("data/churn/features/*/*.parquet"),
        pg::CHURN_DDL,
    );
    p.write(
        "profiles.yaml",
        &server
            .profiles_yaml("warehouse", "WH_PASSWORD")
            .replace("fetch_rows: 1000", "fetch_rows: 500"),
    );
    let job = p.job(
        "pg_drop",
        &format!(
            "name: pg_drop\nsource:\n  postgres:\n    profile: warehouse\n    query: sql/q.sql\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/pg_drop\n\
             inference: {{chunk_rows: 512, batch_size: 512}}\n",
            example_bundle().display()
        ),
    );
    let env = [("WH_PASSWORD", pg::PASSWORD)];
    // A first, whole run: the partition the failed one must leave alone.
    p.write(
        "sql/q.sql",
        "SELECT * FROM churn_features WHERE ds = {{ ds }}\n",
    );
    assert_exit(&p.run_job(&job, &env), 0, &[]);
    let part = p.path().join(format!("output/pg_drop/ds={LAST_DAY}"));
    let before = snapshot(&part);
    // A slow query (1 ms a row), killed from the server side while it streams.
    p.write(
        "sql/q.sql",
        "SELECT * FROM churn_features WHERE ds = {{ ds }} AND pg_sleep(0.001)::text = ''\n",
    );
    let mut child = Command::new(bin())
        .current_dir(p.path())
        .args(["run", job.to_str().unwrap(), "--date", LAST_DAY])
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let killed = loop {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the query never showed up"
        );
        if child.try_wait().unwrap().is_some() {
            let o = child.wait_with_output().unwrap();
            panic!("the run ended before it was cut off: {}", stderr(&o));
        }
        let n = server.sql(
            // scorch's session (it streams with a cursor: FETCH after FETCH), once
            // it has been reading for a second.
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE usename = 'scorch' AND datname = '{}' AND pid <> pg_backend_pid() \
                 AND now() - backend_start > interval '1 second'",
                server.db
            ),
        );
        if n != "0" {
            break n;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(killed, "1");
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 1, &["profile `warehouse`", "sql/q.sql"]);
    let err = stderr(&o);
    assert!(
        err.contains("terminating connection") || err.contains("connection"),
        "{err}"
    );
    assert!(!err.contains(pg::PASSWORD));
    // Nothing published: the earlier partition is exactly as it was.
    assert_eq!(snapshot(&part), before);
    let staging = p.path().join("output/pg_drop/_staging");
    assert_eq!(snapshot(&staging).len(), 0, "staged files left behind");
}

/// A tmpfs of `size` mounted at a fresh folder; unmounted on drop.
struct Volume {
    dir: tempfile::TempDir,
}

impl Volume {
    fn mount(size: &str) -> Volume {
        let dir = tempfile::Builder::new()
            .prefix("scorch-vol-")
            .tempdir()
            .unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "this test mounts a small tmpfs (it needs root): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Volume { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn free(&self) -> u64 {
        let c = std::ffi::CString::new(self.dir.path().to_str().unwrap()).unwrap();
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
        st.f_bavail as u64 * st.f_frsize as u64
    }
}

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_output_volume_fails_clearly_and_keeps_the_previous_partition() {
    let vol = Volume::mount("4m");
    let p = Project::new(2, 3000);
    let out = vol.path().join("tables/full");
    let job = p.job(
        "full",
        &format!(
            "name: full\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: {}\n  zstd_level: 1\n",
            example_bundle().display(),
            out.display()
        ),
    );
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
    let part = out.join(format!("ds={LAST_DAY}"));
    let before = snapshot(&part);
    let size: u64 = before.values().map(|b| b.len() as u64).sum();
    // Fill the volume until less than a third of a partition is free.
    let filler = vol.path().join("filler");
    let keep = size / 3;
    let fill = vol.free().saturating_sub(keep);
    std::fs::write(&filler, vec![7u8; fill as usize]).unwrap();
    assert!(vol.free() < size, "{} free, partition {size}", vol.free());
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 1, &["No space left on device"]);
    let err = stderr(&o);
    assert!(
        err.contains(out.to_str().unwrap()),
        "the message names the table: {err}"
    );
    assert_eq!(snapshot(&part), before, "the previous partition changed");
    assert_eq!(
        snapshot(&out.join("_staging")).len(),
        0,
        "staged files left on the full volume"
    );
    // Space again: the next run succeeds.
    std::fs::remove_file(&filler).unwrap();
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
    assert_ne!(snapshot(&part)["_manifest.json"], before["_manifest.json"]);
}
