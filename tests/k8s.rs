//! The Kubernetes manifests under deploy/k8s: no cluster here, so their structure
//! is checked against the job they run and scorch's exit codes.

mod common;
use common::*;

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
