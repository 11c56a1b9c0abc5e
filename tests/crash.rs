//! A run killed with SIGKILL while its output is staged leaves the previous
//! partition exactly as it was, and the next run cleans up and succeeds.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

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
