//! The Kubernetes manifests under deploy/k8s: no cluster here, so their structure
//! is checked against the job they run and scorch's exit codes.

use crate::common::*;

use clap::Parser;
use scorch::error::ExitCode;
use scorch::spec::job::JobSpec;

#[test]
fn cronjob_matches_the_jobs_schedule_and_exit_codes() {
    let text = std::fs::read_to_string(repo().join("deploy/k8s/cronjob.yaml")).unwrap();
    let m: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(m["apiVersion"], "batch/v1");
    assert_eq!(m["kind"], "CronJob");
    let spec = &m["spec"];
    // The same schedule as the job's own `schedule:`.
    let job = JobSpec::load(&repo().join("jobs/churn_daily.yaml")).unwrap();
    let sched = job.schedule.expect("the example job has a schedule");
    assert_eq!(spec["schedule"], sched.cron.as_str());
    assert_eq!(spec["timeZone"], sched.timezone.as_str());
    assert_eq!(
        spec["concurrencyPolicy"], "Forbid",
        "never two runs at once"
    );
    let job_spec = &spec["jobTemplate"]["spec"];
    let pod = &job_spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never", "podFailurePolicy needs it");
    // Exit codes a retry cannot fix fail the Job at once; 1 is retried (backoffLimit).
    let rules = job_spec["podFailurePolicy"]["rules"].as_array().unwrap();
    let fail = rules.iter().find(|r| r["action"] == "FailJob").unwrap();
    let codes: Vec<i64> = fail["onExitCodes"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let no_retry = [
        ExitCode::Config,
        ExitCode::DataContract,
        ExitCode::Model,
        ExitCode::QualityGate,
    ]
    .map(|c| i64::from(c.code()));
    assert_eq!(codes, no_retry);
    assert!(!codes.contains(&i64::from(ExitCode::Internal.code())));
    assert!(job_spec["backoffLimit"].as_i64().unwrap() >= 1);
    let c = &pod["containers"][0];
    assert_eq!(fail["onExitCodes"]["containerName"], c["name"]);
    // It runs the job file of the repo for yesterday in the schedule's zone.
    let cmd = c["args"][0].as_str().unwrap();
    assert!(cmd.contains("scorch run jobs/churn_daily.yaml"), "{cmd}");
    assert_eq!(sched.ds_offset_days, -1);
    assert!(
        cmd.contains(&format!("TZ={} date -d '-1 day' +%Y-%m-%d", sched.timezone)),
        "{cmd}"
    );
}

#[test]
fn evaluate_cronjob_matches_the_jobs_evaluate_schedule() {
    let m = manifest("evaluate-cronjob.yaml");
    assert_eq!(m["kind"], "CronJob");
    let spec = &m["spec"];
    let job = JobSpec::load(&repo().join("jobs/churn_daily.yaml")).unwrap();
    let ev = job
        .evaluate
        .expect("the example job has an evaluate schedule");
    assert_eq!(spec["schedule"], ev.schedule.cron.as_str());
    assert_eq!(spec["timeZone"], ev.schedule.timezone.as_str());
    assert_eq!(spec["concurrencyPolicy"], "Forbid");
    let job_spec = &spec["jobTemplate"]["spec"];
    let rules = job_spec["podFailurePolicy"]["rules"].as_array().unwrap();
    let fail = rules.iter().find(|r| r["action"] == "FailJob").unwrap();
    assert_eq!(
        fail["onExitCodes"]["values"],
        serde_json::json!([2, 3, 4, 5])
    );
    let c = &job_spec["template"]["spec"]["containers"][0];
    let cmd = c["args"][0].as_str().unwrap();
    assert!(
        cmd.contains("scorch evaluate jobs/churn_daily.yaml"),
        "{cmd}"
    );
    assert!(cmd.contains(&format!("--window {}", ev.window)), "{cmd}");
    assert!(
        cmd.contains(&format!(
            "TZ={} date -d '{} day' +%Y-%m-%d",
            ev.schedule.timezone, ev.schedule.ds_offset_days
        )),
        "{cmd}"
    );
    // The command parses as scorch's own (the shell's date substituted).
    let args: Vec<String> = cmd
        .trim_start_matches("exec ")
        .replace(
            &format!(
                "\"$(TZ={} date -d '{} day' +%Y-%m-%d)\"",
                ev.schedule.timezone, ev.schedule.ds_offset_days
            ),
            "2026-11-20",
        )
        .split_whitespace()
        .map(String::from)
        .collect();
    assert!(scorch::cli::Cli::try_parse_from(&args).is_ok(), "{args:?}");
}

fn manifest(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo().join("deploy/k8s").join(name)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// The container of a Job manifest: its shell command and its `DS`.
fn command(m: &serde_json::Value) -> (String, String) {
    let c = &m["spec"]["template"]["spec"]["containers"][0];
    let ds = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "DS")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(c["command"], serde_json::json!(["/bin/sh", "-c"]));
    (c["args"][0].as_str().unwrap().to_string(), ds)
}

#[test]
fn indexed_job_and_commit_run_here_as_their_pods_would() {
    let shards = manifest("indexed-job.yaml");
    let commit = manifest("commit-job.yaml");
    let spec = &shards["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"], n);
    let (shard_cmd, ds) = command(&shards);
    let (commit_cmd, commit_ds) = command(&commit);
    assert_eq!(ds, commit_ds);
    assert!(shard_cmd.contains(&format!("--shards {n}")), "{shard_cmd}");
    assert!(
        commit_cmd.contains(&format!("--shards {n}")),
        "{commit_cmd}"
    );
    for m in [&shards, &commit] {
        let rule = &m["spec"]["podFailurePolicy"]["rules"][0];
        assert!(rule["action"] == "FailIndex" || rule["action"] == "FailJob");
        assert_eq!(
            rule["onExitCodes"]["values"],
            serde_json::json!([2, 3, 4, 5])
        );
        assert_eq!(m["spec"]["template"]["spec"]["restartPolicy"], "Never");
    }
    // Run the pods' commands here: each index, then the commit, in a project with the
    // example job and bundle; the result equals one unsharded run.
    let p = Project::new(1, 9000);
    p.copy_bundle();
    let job = std::fs::read_to_string(repo().join("jobs/churn_sharded.yaml")).unwrap();
    p.write("jobs/churn_sharded.yaml", &job);
    p.write(
        "jobs/single.yaml",
        &job.replace("output/churn_scores_sharded", "output/single")
            .replace("name: churn_sharded", "name: single"),
    );
    let path = format!(
        "{}:{}",
        bin().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let sh = |cmd: &str, index: Option<u64>| {
        let mut c = std::process::Command::new("/bin/sh");
        c.args(["-c", cmd])
            .current_dir(p.path())
            .env("PATH", &path)
            .env("DS", LAST_DAY);
        if let Some(i) = index {
            c.env("JOB_COMPLETION_INDEX", i.to_string());
        }
        c.output().unwrap()
    };
    for i in 0..n {
        assert_exit(&sh(&shard_cmd, Some(i)), 0, &[]);
    }
    assert_exit(&sh(&commit_cmd, None), 0, &[]);
    assert_exit(
        &p.scorch(&["run", "jobs/single.yaml", "--date", LAST_DAY]),
        0,
        &[],
    );
    let read = |table: &str| {
        read_partition(&p.path().join(format!("output/{table}/ds={LAST_DAY}")))
            .select(["customer_id", "churn_probability"])
            .unwrap()
    };
    let (a, b) = (read("single"), read("churn_scores_sharded"));
    assert_eq!(a.height(), 9000);
    assert!(a.equals(&b));
    // The example job has `report:`: the commit wrote the merged report.
    let manifest: serde_json::Value = read_json(p.path().join(format!(
        "output/churn_scores_sharded/ds={LAST_DAY}/_manifest.json"
    )));
    let report: serde_json::Value = read_json(p.path().join(manifest["report"].as_str().unwrap()));
    assert_eq!(report["rows"], 9000);
    assert_eq!(manifest["checks"].as_array().unwrap().len(), 2);
}

/// Every manifest runs the image `make image` builds (deploy/container/Containerfile),
/// tagged with this version, in the image's project folder.
#[test]
fn the_manifests_run_the_containerfiles_image() {
    let containerfile =
        std::fs::read_to_string(repo().join("deploy/container/Containerfile")).unwrap();
    assert!(
        containerfile.contains("\nWORKDIR /project\n"),
        "{containerfile}"
    );
    assert!(containerfile.contains("ENTRYPOINT [\"scorch\"]"));
    let makefile = std::fs::read_to_string(repo().join("Makefile")).unwrap();
    assert!(makefile.contains("IMAGE ?= localhost/scorch:$(VERSION)"));
    for name in ["cronjob.yaml", "indexed-job.yaml", "commit-job.yaml"] {
        let text = std::fs::read_to_string(repo().join("deploy/k8s").join(name)).unwrap();
        let m: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let pod = if m["kind"] == "CronJob" {
            &m["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        } else {
            &m["spec"]["template"]["spec"]
        };
        let c = &pod["containers"][0];
        let image = c["image"].as_str().unwrap();
        assert!(
            image.ends_with(&format!("/scorch:{}", env!("CARGO_PKG_VERSION"))),
            "{name}: {image}"
        );
        assert_eq!(c["workingDir"], "/project", "{name}");
    }
}
