//! One writer per partition: a second run of the same job and date fails fast with
//! exit 6 naming the holder or waits with --wait-lock; locks of dead holders are
//! detected and taken over; the same on an S3 table (conditional create).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::*;

/// `scorch run JOB --date LAST_DAY` in the background with the test hook `hook`
/// set to `value`.
fn spawn_hooked(p: &Project, job: &Path, hook: &str, value: &str, env: &[(&str, &str)]) -> Child {
    Command::new(bin())
        .current_dir(p.path())
        .args(["--quiet", "run", job.to_str().unwrap(), "--date", LAST_DAY])
        .env(hook, value)
        .envs(env.iter().copied())
        .spawn()
        .unwrap()
}

/// `scorch run JOB --date LAST_DAY` in the background, paused `pause_ms` before it
/// publishes.
fn spawn_paused(p: &Project, job: &Path, pause_ms: u64, env: &[(&str, &str)]) -> Child {
    let ms = pause_ms.to_string();
    spawn_hooked(p, job, scorch::run::PAUSE_BEFORE_PUBLISH_ENV, &ms, env)
}

/// `scorch run JOB --date LAST_DAY` in the background, paused `pause_ms` inside its
/// publish (after its lock check); `mark` appears when it gets there.
fn spawn_in_publish(
    p: &Project,
    job: &Path,
    pause_ms: u64,
    mark: &Path,
    env: &[(&str, &str)],
) -> Child {
    let value = format!("{pause_ms}:{}", mark.display());
    spawn_hooked(p, job, scorch::run::PAUSE_IN_PUBLISH_ENV, &value, env)
}

fn wait_for(path: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A project whose input is on the S3 server and whose job `name` writes
/// `s3://lake/scores/<table>`.
fn s3_project(s3: &crate::common::s3::S3Server, name: &str, table: &str) -> (Project, PathBuf) {
    let p = Project::new(1, 1000);
    s3.put_tree(
        "lake",
        "churn/features",
        &p.path().join("data/churn/features"),
    );
    p.write("profiles.yaml", &s3.profile_yaml("lake"));
    let job = p.job(
        name,
        &format!(
            "name: {name}\nsource:\n  parquet:\n    path: s3://lake/churn/features/ds={{{{ ds }}}}/*.parquet\n\
             keys: [customer_id]\nmodel: {}\nstorage_profile: lake\noutput:\n  path: s3://lake/scores/{table}\n",
            example_bundle().display()
        ),
    );
    (p, job)
}

fn lock_file(p: &Project, table: &str) -> PathBuf {
    p.path()
        .join(format!("output/{table}/_locks/ds={LAST_DAY}.lock"))
}

fn holder(path: &Path) -> serde_json::Value {
    read_json(path)
}

#[test]
fn a_second_run_fails_fast_or_waits_and_dead_holders_are_taken_over() {
    let p = Project::new(1, 2000);
    let job = p.standard_job("locked", &example_bundle());
    let lock = lock_file(&p, "locked");

    let mut first = spawn_paused(&p, &job, 4000, &[]);
    wait_for(&lock, &mut first);
    let h = holder(&lock);
    assert_eq!(h["pid"], first.id());
    let run_id = h["run_id"].as_str().unwrap().to_string();
    // Fails at once, naming the holder; writes nothing.
    let t = Instant::now();
    let o = p.run_job(&job, &[]);
    assert_exit(
        &o,
        6,
        &[
            "locked:",
            &format!("held by run {run_id} of job locked"),
            &format!("pid {}", first.id()),
            "--wait-lock",
        ],
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // Waits for the holder, then runs.
    let o = p.scorch(&[
        "run",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--wait-lock",
        "60",
    ]);
    assert!(first.wait().unwrap().success());
    assert_exit(&o, 0, &[]);
    let m: serde_json::Value = read_json(
        p.path()
            .join(format!("output/locked/ds={LAST_DAY}/_manifest.json")),
    );
    assert_ne!(
        m["run_id"],
        run_id.as_str(),
        "the waiting run published last"
    );
    assert!(!lock.exists(), "the lock is released after the run");
    // --wait-lock with a holder that outlasts it: exit 6 after the wait.
    let mut slow = spawn_paused(&p, &job, 10_000, &[]);
    wait_for(&lock, &mut slow);
    let o = p.scorch(&[
        "run",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--wait-lock",
        "1",
    ]);
    assert_exit(&o, 6, &["held by run"]);
    // `scorch unlock` refuses to remove a live holder's lock.
    let o = p.scorch(&["unlock", job.to_str().unwrap(), "--date", LAST_DAY]);
    assert_exit(&o, 6, &["looks alive", "--force"]);
    // The holder dies (SIGKILL): its lock stays, and the next run takes it over.
    unsafe { libc::kill(slow.id() as i32, libc::SIGKILL) };
    slow.wait().unwrap();
    assert!(lock.exists());
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 0, &[]);
    assert!(
        stderr(&o).contains("taking over a stale lock"),
        "{}",
        stderr(&o)
    );
    assert!(!lock.exists());
}

#[test]
fn locks_of_other_hosts_expire_with_their_lease_and_unlock_breaks_them() {
    let p = Project::new(1, 500);
    let job = p.standard_job("remote_holder", &example_bundle());
    let lock = lock_file(&p, "remote_holder");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let fresh = chrono::Utc::now().to_rfc3339();
    let other_host = |beat: &str| {
        serde_json::json!({
            "run_id": "20261128T000000Z-elsewhere", "job": "remote_holder", "command": "run",
            "host": "another-host", "pid": 1, "pid_start": 1,
            "acquired_at": beat, "heartbeat_at": beat,
        })
        .to_string()
    };
    // A holder on another host with a fresh heartbeat: respected.
    std::fs::write(&lock, other_host(&fresh)).unwrap();
    assert_exit(&p.run_job(&job, &[]), 6, &["another-host", "pid 1"]);
    let o = p.scorch(&["unlock", job.to_str().unwrap(), "--date", LAST_DAY]);
    assert_exit(&o, 6, &["looks alive"]);
    // A heartbeat 30 s old: within a 10-minute lease, respected; older than a
    // 10-second lease, stale and taken over.
    let old = (chrono::Utc::now() - chrono::Duration::seconds(30)).to_rfc3339();
    std::fs::write(&lock, other_host(&old)).unwrap();
    // A local lock's heartbeat is also its file's mtime (heartbeats touch it).
    std::fs::File::options()
        .write(true)
        .open(&lock)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(30))
        .unwrap();
    assert_exit(
        &p.run_job(&job, &[("SCORCH_LOCK_LEASE_S", "600")]),
        6,
        &["another-host"],
    );
    assert_exit(&p.run_job(&job, &[("SCORCH_LOCK_LEASE_S", "10")]), 0, &[]);
    // `unlock --force` removes a live-looking lock (an operator knows it is dead).
    std::fs::write(&lock, other_host(&chrono::Utc::now().to_rfc3339())).unwrap();
    let o = p.scorch(&[
        "unlock",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--force",
    ]);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("held by run 20261128T000000Z-elsewhere"),
        "{}",
        stdout(&o)
    );
    assert!(!lock.exists());
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
}

#[test]
fn heartbeats_keep_a_long_run_locked_and_a_taken_over_run_publishes_nothing() {
    let p = Project::new(1, 500);
    let job = p.standard_job("beat", &example_bundle());
    let lock = lock_file(&p, "beat");
    // Lease 2 s: heartbeats every 0.5 s keep the paused run's lock fresh.
    let env = [("SCORCH_LOCK_LEASE_S", "2")];
    let mut first = spawn_paused(&p, &job, 3000, &env);
    wait_for(&lock, &mut first);
    std::thread::sleep(Duration::from_millis(1500));
    // Local heartbeats touch the lock file (its own inode): its mtime is fresh.
    let age = std::fs::metadata(&lock)
        .unwrap()
        .modified()
        .unwrap()
        .elapsed()
        .unwrap();
    assert!(age < Duration::from_millis(1200), "heartbeat {age:?} old");
    assert_exit(&p.run_job(&job, &env), 6, &["held by run"]);
    // An operator force-removes the lock and another run takes the partition: the
    // first run notices before publishing and publishes nothing (exit 6).
    let o = p.scorch(&[
        "unlock",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--force",
    ]);
    assert_exit(&o, 0, &[]);
    let second = p.run_job(&job, &[]);
    assert_exit(&second, 0, &[]);
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6));
    let m: serde_json::Value = read_json(
        p.path()
            .join(format!("output/beat/ds={LAST_DAY}/_manifest.json")),
    );
    assert!(
        stdout(&second).contains(m["run_id"].as_str().unwrap()),
        "the published partition is the second run's"
    );
}

#[test]
fn s3_tables_are_locked_by_conditional_create() {
    let s3 = crate::common::s3::S3Server::start();
    let (p, job) = s3_project(&s3, "s3_locked", "locked");
    let env = crate::common::s3::S3Server::env();
    let lock = s3
        .bucket("lake")
        .join(format!("scores/locked/_locks/ds={LAST_DAY}.lock"));
    let mut first = spawn_paused(&p, &job, 3000, &env);
    wait_for(&lock, &mut first);
    let o = p.run_job(&job, &env);
    assert_exit(
        &o,
        6,
        &[
            "s3://lake/scores/locked/_locks/ds=2026-11-28.lock",
            "held by run",
        ],
    );
    assert!(first.wait().unwrap().success());
    assert!(!lock.exists(), "released");
    // A dead holder's lock on the store is taken over by a conditional PUT.
    let mut killed = spawn_paused(&p, &job, 60_000, &env);
    wait_for(&lock, &mut killed);
    // It stages its files locally before uploading: the folder names its pid.
    let staging = |pid: u32| {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("scorch-staging-") && n.ends_with(&format!(".pid{pid}")))
            .count()
    };
    let pid = killed.id();
    let t = Instant::now();
    while staging(pid) == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no local staging folder"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    killed.wait().unwrap();
    let o = p.run_job(&job, &env);
    assert_exit(&o, 0, &[]);
    assert!(
        stderr(&o).contains("taking over a stale lock"),
        "{}",
        stderr(&o)
    );
    // The next run removed the killed run's local staging folder.
    assert_eq!(staging(pid), 0);
    assert!(!lock.exists());
}

/// Two writers and a forced takeover between them, interleaved at the publish
/// point: the writer that lost its lock exits 6 and publishes and deletes nothing;
/// every file of the surviving manifest exists.
#[test]
fn a_writer_whose_lock_was_taken_over_publishes_and_deletes_nothing() {
    let p = Project::new(1, 2000);
    let job = p.standard_job("fenced", &example_bundle());
    let lock = lock_file(&p, "fenced");
    let part = p.path().join(format!("output/fenced/ds={LAST_DAY}"));
    // A: staged, paused just before its publish.
    let mut a = spawn_paused(&p, &job, 6000, &[]);
    wait_for(&lock, &mut a);
    let a_id = holder(&lock)["run_id"].as_str().unwrap().to_string();
    // Its lock is removed by force (an operator who thought it dead) and B runs,
    // publishing the partition while A still sleeps.
    let o = p.scorch(&[
        "unlock",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--force",
    ]);
    assert_exit(&o, 0, &[]);
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
    let b = read_json(part.join("_manifest.json"));
    assert_ne!(b["run_id"], a_id.as_str());
    // A wakes at its publish point: fenced out.
    let out = a.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let after = read_json(part.join("_manifest.json"));
    assert_eq!(
        after["run_id"], b["run_id"],
        "the surviving manifest is B's"
    );
    for f in after["output"]["files"].as_array().unwrap() {
        let file = part.join(f["path"].as_str().unwrap());
        assert!(file.is_file(), "{} is missing", file.display());
    }
    assert_eq!(read_partition(&part).height(), 2000);
    let a_manifest = read_json(p.path().join(format!("output/fenced/_runs/{a_id}.json")));
    assert_eq!(a_manifest["status"], "failed");
    assert_eq!(a_manifest["exit_code"], 6);
}

/// The same interleaving on an S3 table: the lock object is replaced by the
/// second writer, and the first, waking at its publish point, is fenced out (its
/// lock check and the partition manifest's conditional PUT).
#[test]
fn a_taken_over_writer_on_s3_publishes_and_deletes_nothing() {
    let s3 = crate::common::s3::S3Server::start();
    let (p, job) = s3_project(&s3, "s3_fenced", "fenced");
    let env = crate::common::s3::S3Server::env();
    let table = s3.bucket("lake").join("scores/fenced");
    let lock = table.join(format!("_locks/ds={LAST_DAY}.lock"));
    let part = table.join(format!("ds={LAST_DAY}"));
    let mut a = spawn_paused(&p, &job, 8000, &env);
    wait_for(&lock, &mut a);
    let o = p.scorch_env(
        &[
            "unlock",
            job.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--force",
        ],
        &env,
    );
    assert_exit(&o, 0, &[]);
    assert_exit(&p.run_job(&job, &env), 0, &[]);
    let b = read_json(part.join("_manifest.json"));
    let out = a.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let after = read_json(part.join("_manifest.json"));
    assert_eq!(
        after["run_id"], b["run_id"],
        "the surviving manifest is B's"
    );
    for f in after["output"]["files"].as_array().unwrap() {
        let file = part.join(f["path"].as_str().unwrap());
        assert!(file.is_file(), "{} is missing", file.display());
    }
}

/// `scorch unlock --force` (or a takeover) that comes while a run is inside its
/// publish waits for the publish to end: when it returns, the partition is the
/// run's, whole, never half-swapped under a new holder.
#[test]
fn an_unlock_during_a_publish_waits_for_it() {
    let p = Project::new(1, 2000);
    let job = p.standard_job("inpublish", &example_bundle());
    let lock = lock_file(&p, "inpublish");
    let part = p.path().join(format!("output/inpublish/ds={LAST_DAY}"));
    let mark = p.path().join("in-publish");
    let mut a = spawn_in_publish(&p, &job, 3000, &mark, &[]);
    wait_for(&mark, &mut a);
    let a_id = holder(&lock)["run_id"].as_str().unwrap().to_string();
    let o = p.scorch(&[
        "unlock",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--force",
    ]);
    assert_exit(&o, 0, &[]);
    // The unlock came back only once A had published.
    let m = read_json(part.join("_manifest.json"));
    assert_eq!(m["run_id"], a_id.as_str(), "the partition is A's");
    let out = a.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read_partition(&part).height(), 2000);
    // And the table is free for the next run.
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
}

/// On S3 there is no lock to hold across the publish: a writer whose lock is taken
/// over after its last lock check, and whose partition another run publishes
/// meanwhile, is fenced by the version of the partition manifest it saw when it
/// took its lock: it exits 6, and the other run's files and manifest survive.
#[test]
fn a_writer_taken_over_inside_its_publish_on_s3_is_fenced() {
    let s3 = crate::common::s3::S3Server::start();
    let (p, job) = s3_project(&s3, "s3_inpublish", "inpublish");
    let env = crate::common::s3::S3Server::env();
    let table = s3.bucket("lake").join("scores/inpublish");
    let lock = table.join(format!("_locks/ds={LAST_DAY}.lock"));
    let part = table.join(format!("ds={LAST_DAY}"));
    // An earlier run's partition, which both writers replace.
    assert_exit(&p.run_job(&job, &env), 0, &[]);
    let mark = p.path().join("in-publish");
    let mut a = spawn_in_publish(&p, &job, 6000, &mark, &env);
    wait_for(&mark, &mut a);
    let a_id = holder(&lock)["run_id"].as_str().unwrap().to_string();
    let o = p.scorch_env(
        &[
            "unlock",
            job.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--force",
        ],
        &env,
    );
    assert_exit(&o, 0, &[]);
    assert_exit(&p.run_job(&job, &env), 0, &[]);
    let b = read_json(part.join("_manifest.json"));
    let out = a.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let after = read_json(part.join("_manifest.json"));
    assert_eq!(
        after["run_id"], b["run_id"],
        "the surviving manifest is B's"
    );
    for f in after["output"]["files"].as_array().unwrap() {
        let file = part.join(f["path"].as_str().unwrap());
        assert!(file.is_file(), "{} is missing", file.display());
    }
    let strays: Vec<_> = std::fs::read_dir(&part)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(&a_id))
        .collect();
    assert!(strays.is_empty(), "A left {strays:?}");
    assert_eq!(read_partition(&part).height(), 1000);
}
