//! A run killed with SIGKILL while its output is staged leaves the previous
//! partition exactly as it was, and the next run cleans up and succeeds.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;

fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn sigkill_mid_write_keeps_previous_partition() {
    let p = Project::new(1, 2000);
    let job = p.standard_job("crash", &example_bundle());
    let table = p.path().join("output/crash");
    let part = table.join("ds=2026-11-28");
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
    let before = snapshot(&part);
    assert!(before.contains_key("part-00000.parquet"));

    // Second run: staged, paused just before publishing, then killed.
    let mut child = std::process::Command::new(bin())
        .current_dir(p.path())
        .args(["--quiet", "run", job.to_str().unwrap(), "--date", LAST_DAY])
        .env(scorch::run::PAUSE_BEFORE_PUBLISH_ENV, "60000")
        .spawn()
        .unwrap();
    let staging = table.join("_staging");
    let deadline = Instant::now() + Duration::from_secs(120);
    let staged_file = loop {
        let found = std::fs::read_dir(&staging).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.path().join("_manifest.json"))
                .find(|m| m.exists())
        });
        if let Some(f) = found {
            break f;
        }
        assert!(Instant::now() < deadline, "the run never staged its output");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let staged_dir = staged_file.parent().unwrap().to_path_buf();
    assert!(staged_dir.join("part-00000.parquet").exists());
    // SIGKILL, the signal nothing can catch.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );

    assert_eq!(snapshot(&part), before, "the published partition changed");
    assert!(
        staged_dir.exists(),
        "the killed run's staging folder is left behind"
    );

    // The next run removes the dead run's staging folder and publishes.
    assert_exit(&p.run_job(&job, &[]), 0, &[]);
    assert!(
        !staged_dir.exists(),
        "stale staging folder was not cleaned up"
    );
    let after = snapshot(&part);
    assert_ne!(after["_manifest.json"], before["_manifest.json"]);
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
}

/// A small deterministic generator (xorshift64*), so a failing kill schedule can
/// be replayed.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a reader sees in the partition: `None` (absent), or its manifest's run id
/// after checking that every file the manifest lists is there, whole, and that the
/// rows add up — never a half-written partition.
fn reader_view(part: &Path, rows: u64) -> Option<String> {
    let manifest = std::fs::read_to_string(part.join("_manifest.json")).ok();
    let Some(manifest) = manifest else {
        assert!(
            !part.exists() || std::fs::read_dir(part).unwrap().count() == 0,
            "a partition folder without a manifest: {:?}",
            std::fs::read_dir(part).unwrap().collect::<Vec<_>>()
        );
        return None;
    };
    let m: serde_json::Value = serde_json::from_str(&manifest).expect("the manifest is whole JSON");
    let mut total = 0u64;
    for f in m["output"]["files"]
        .as_array()
        .or(m["output"].as_array())
        .unwrap()
    {
        let path = part.join(f["path"].as_str().unwrap());
        use polars::prelude::SerReader;
        let df = polars::prelude::ParquetReader::new(std::fs::File::open(&path).unwrap())
            .finish()
            .unwrap_or_else(|e| panic!("{} is not readable: {e}", path.display()));
        assert_eq!(df.height() as u64, f["rows"].as_u64().unwrap());
        total += df.height() as u64;
    }
    assert_eq!(total, rows, "the partition's rows");
    Some(m["run_id"].as_str().unwrap().to_string())
}

/// Files a crash may leave: staging folders, temporary files, locks.
fn leftovers(table: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![table.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            let rel = p.strip_prefix(table).unwrap().display().to_string();
            if p.is_dir() {
                if rel.starts_with("_staging/") || rel.starts_with("_shards/") {
                    out.push(rel.clone());
                }
                stack.push(p);
            } else if name.ends_with(".tmp") || name.ends_with(".lock") || name.contains(".broken")
            {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

fn scores(part: &Path) -> polars::prelude::DataFrame {
    read_partition(part)
        .select(["customer_id", "input_ds", "churn_probability"])
        .unwrap()
}

fn kill_after(child: std::process::Child, after: Duration) -> Option<i32> {
    kill_noting(child, after, || ()).err()
}

/// Kills `child` with SIGKILL after `after` and returns what `note` saw just before
/// the kill; `Err(exit code)` when the child ended first.
fn kill_noting<T>(
    mut child: std::process::Child,
    after: Duration,
    note: impl Fn() -> T,
) -> Result<T, i32> {
    let t = Instant::now();
    while t.elapsed() < after {
        if let Some(s) = child.try_wait().unwrap() {
            return Err(s.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let seen = note();
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    Ok(seen)
}

/// Where a run was: from its staging folder (created before it reads).
fn phase(table: &Path) -> &'static str {
    let staged: Vec<std::path::PathBuf> = std::fs::read_dir(table.join("_staging"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    let has = |ext: &str| {
        staged.iter().any(|d| {
            std::fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(ext))
        })
    };
    if staged.is_empty() {
        "starting, or published"
    } else if has("_manifest.json") {
        "publishing"
    } else if has(".parquet") {
        "reading, scoring and writing"
    } else {
        "reading and scoring the first chunk"
    }
}

#[test]
fn sigkill_at_random_moments_never_exposes_partial_data() {
    // 3 input files × 6,000 rows, written as several files (small row groups, 1 MB
    // files), scored 256 rows a batch on one thread: the run takes long enough for
    // kills to land while it reads, preprocesses, infers, writes and publishes.
    let p = Project::new(3, 6000);
    let job = p.job(
        "crashy",
        &format!(
            "name: crashy\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id, ds]\n\
             model: {}\noutput:\n  path: output/crashy\n  row_group_size: 1000\n  max_file_mb: 1\n\
             inference: {{batch_size: 256, chunk_rows: 1024, threads: 1}}\n",
            example_bundle().display()
        ),
    );
    let table = p.path().join("output/crashy");
    let part = table.join(format!("ds={LAST_DAY}"));
    let spawn = || {
        std::process::Command::new(bin())
            .current_dir(p.path())
            .args(["--quiet", "run", job.to_str().unwrap(), "--date", LAST_DAY])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // A clean run: the reference output and the run's length.
    let t = Instant::now();
    assert_eq!(kill_after(spawn(), Duration::from_secs(120)), Some(0));
    let length = t.elapsed();
    let reference = scores(&part);
    assert_eq!(reference.height(), 18_000);
    let mut published = reader_view(&part, 18_000).unwrap();

    let seed = 0x5C0C_C4A5_u64;
    let mut rng = Rng(seed);
    let (mut killed, mut finished) = (0, 0);
    let mut phases = std::collections::BTreeMap::new();
    // Kill until 24 kills landed. A run that finished before its kill shortens the
    // window (the machine's load changes how long runs take).
    let mut length = length;
    let mut i = 0;
    while killed < 24 {
        i += 1;
        assert!(i <= 120, "only {killed} of {i} kills landed");
        let at = length.mul_f64(rng.next_f64());
        let t = Instant::now();
        match kill_noting(spawn(), at, || phase(&table)) {
            Ok(ph) => {
                killed += 1;
                *phases.entry(ph).or_insert(0) += 1;
            }
            Err(0) => {
                finished += 1;
                length = length.min(t.elapsed().mul_f64(0.95));
            }
            Err(c) => panic!("kill {i} (seed {seed:#x}, at {at:?}): the run exited {c}"),
        }
        // A reader sees the previous partition or a whole new one, never a part.
        let now = reader_view(&part, 18_000).expect("the partition never disappears");
        if now != published {
            assert!(
                scores(&part).equals(&reference),
                "kill {i}: new partition differs"
            );
            published = now;
        }
    }
    println!(
        "{killed} runs killed, {finished} finished before their kill (seed {seed:#x}, kill \
         window {length:?}); killed while {phases:?}"
    );
    // (The moment between staging and publishing is too short to hit at random;
    // `sigkill_mid_write_keeps_previous_partition` kills a run paused there.)
    assert!(
        phases.contains_key("reading, scoring and writing") && phases.len() >= 2,
        "kills landed in too few phases: {phases:?}"
    );
    // The next run cleans up after the killed ones and gives the same output.
    assert_eq!(kill_after(spawn(), Duration::from_secs(120)), Some(0));
    assert!(scores(&part).equals(&reference));
    assert_eq!(leftovers(&table), Vec::<String>::new());
}

#[test]
fn sigkill_during_commit_leaves_the_shards_whole() {
    let p = Project::new(3, 3000);
    let job = p.job(
        "crashy_shards",
        &format!(
            "name: crashy_shards\nsource:\n  parquet:\n    path: data/churn/features\nkeys: [customer_id, ds]\n\
             model: {}\noutput:\n  path: output/crashy_shards\n  row_group_size: 500\n  max_file_mb: 1\n\
             inference: {{batch_size: 256, chunk_rows: 1024, threads: 1}}\nreport:\n  drift: {{psi_fail: 100}}\n",
            example_bundle().display()
        ),
    );
    let table = p.path().join("output/crashy_shards");
    let part = table.join(format!("ds={LAST_DAY}"));
    let shards = || {
        for i in 0..4 {
            assert_exit(
                &p.scorch(&[
                    "run",
                    job.to_str().unwrap(),
                    "--date",
                    LAST_DAY,
                    "--shard",
                    &format!("{i}/4"),
                ]),
                0,
                &[],
            );
        }
    };
    let commit = || {
        std::process::Command::new(bin())
            .current_dir(p.path())
            .args([
                "--quiet",
                "commit",
                job.to_str().unwrap(),
                "--date",
                LAST_DAY,
                "--shards",
                "4",
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // One whole commit first: how long one takes, and the partition the killed
    // commits may replace.
    shards();
    let t = Instant::now();
    assert_eq!(kill_after(commit(), Duration::from_secs(60)), Some(0));
    let length = t.elapsed();
    let first = reader_view(&part, 9000).unwrap();
    shards();
    let mut rng = Rng(0xC0FF_EE11);
    let mut killed = 0;
    let mut done = false;
    for _ in 0..20 {
        let at = length.mul_f64(rng.next_f64() * 1.05);
        match kill_after(commit(), at) {
            None => killed += 1,
            Some(0) => {
                done = true;
                break;
            }
            Some(c) => panic!("the commit exited {c}"),
        }
        // Before the commit publishes, the previous partition; after, the new one,
        // whole.
        if reader_view(&part, 9000).unwrap() != first {
            done = true;
            break;
        }
    }
    println!("{killed} commits killed before one published (a commit takes {length:?})");
    assert!(killed >= 1);
    // Whatever happened, the next commit finishes the job (or finds it done) …
    let o = p.scorch(&[
        "commit",
        job.to_str().unwrap(),
        "--date",
        LAST_DAY,
        "--shards",
        "4",
    ]);
    assert_exit(&o, 0, &[]);
    let _ = done;
    assert!(reader_view(&part, 9000).is_some());
    // … and leaves no shards, staging folders, temporary files or locks behind.
    assert_eq!(leftovers(&table), Vec::<String>::new());
}
