"""DAG factory: one Airflow DAG per scorch job with a ``schedule:``.

Put this file (or a one-line import of it) in Airflow's DAGs folder and set

- ``SCORCH_PROJECT``: the scorch project folder (holding ``jobs/``); default: the
  folder above this file;
- ``SCORCH_BIN``: the scorch binary; default ``scorch`` on the PATH (the binary,
  or the ``scorch`` command of the wheel installed in the worker's environment);
- ``SCORCH_IMAGE``: run every task in this container image instead (the one
  ``make image`` builds from ``deploy/container/Containerfile``), with the project
  folder mounted at ``/project``; ``SCORCH_CONTAINER_CLI`` (default ``podman``;
  ``docker`` takes the same arguments) runs it, ``SCORCH_CONTAINER_ARGS`` adds
  arguments (``-e NAME`` for secrets, further ``-v`` mounts);
- ``SCORCH_RETRIES`` (default 2) and ``SCORCH_RETRY_DELAY_S`` (default 60): retries
  of runtime errors (exit 1).

Each job ``jobs/<file>.yaml`` with a ``schedule:`` becomes the DAG ``scorch_<name>``
(Airflow 3 ``airflow.sdk`` API) with the job's cron expression read in its time
zone (``CronTriggerTimetable``), ``catchup`` as in the job, one active run at a
time, and the tasks

    validate  ->  score                                   (job `shards: 1`, the default)
    validate  ->  score[0] … score[N-1]  ->  commit       (job `shards: N`)

A job with an ``evaluate:`` schedule also becomes the DAG ``scorch_<name>_evaluate``:
``validate -> evaluate``, where ``evaluate`` runs ``scorch evaluate`` for the
``window`` dates ending at the logical date (plus its ``ds_offset_days``, the label
lag), writing realized performance beside the estimates.

``validate`` runs ``scorch validate`` on the job; ``score`` runs ``scorch run`` (with
``--shard I/N`` in the N task instances of dynamic task mapping) for the logical
date, and ``commit`` runs ``scorch commit``. The date scored is the Airflow run's
logical date in the job's zone plus ``ds_offset_days`` (so Airflow and ``scorch
schedule`` score the same partition for the same fire).

scorch's exit codes map to Airflow outcomes: 0 success; 1 (runtime: warehouse
unreachable, I/O) and 6 (locked: another run of the job and date is writing) fail
and are retried (``retries`` below); 2, 3, 4 (configuration,
data contract, model) fail without retry, since a retry cannot fix them; 5 (a
quality gate: outputs and reports were written) fails without retry and logs the
report's path.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import shlex
import subprocess

import pendulum
import yaml
from airflow.exceptions import AirflowException, AirflowFailException
from airflow.sdk import DAG, task
from airflow.timetables.trigger import CronTriggerTimetable

PROJECT = os.environ.get("SCORCH_PROJECT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCORCH = os.environ.get("SCORCH_BIN", "scorch")
IMAGE = os.environ.get("SCORCH_IMAGE")
CONTAINER_CLI = os.environ.get("SCORCH_CONTAINER_CLI", "podman")
CONTAINER_ARGS = shlex.split(os.environ.get("SCORCH_CONTAINER_ARGS", ""))
RETRIES = int(os.environ.get("SCORCH_RETRIES", "2"))
RETRY_DELAY = dt.timedelta(seconds=float(os.environ.get("SCORCH_RETRY_DELAY_S", "60")))
NO_RETRY = {2: "configuration or job-spec error", 3: "data contract violation", 4: "model or bundle error"}


def scorch_command(args: list[str]) -> list[str]:
    """The command line of one scorch call: the binary, or the image with the
    project mounted at /project (its working folder)."""
    if not IMAGE:
        return [SCORCH, *args]
    mount = f"{os.path.abspath(PROJECT)}:/project"
    # As this worker's user, so the outputs in the mounted project are its files.
    user = f"{os.getuid()}:{os.getgid()}"
    return [CONTAINER_CLI, "run", "--rm", "--user", user, "-v", mount, *CONTAINER_ARGS, IMAGE, *args]


def run_scorch(args: list[str]) -> str:
    """Runs scorch in the project folder; raises by exit code (see the module doc)."""
    proc = subprocess.run(scorch_command(args), cwd=PROJECT, capture_output=True, text=True)
    print(proc.stdout)
    print(proc.stderr)
    code = proc.returncode
    if code == 0:
        return proc.stdout
    message = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
    if code == 5:
        report = next((l.split(":", 1)[1].strip() for l in proc.stdout.splitlines() if l.strip().startswith("report")), None)
        raise AirflowFailException(f"scorch quality gate (exit 5): {message}; report: {report or 'see the run manifest'}")
    if code in NO_RETRY:
        raise AirflowFailException(f"scorch exit {code} ({NO_RETRY[code]}), not retried: {message}")
    what = "locked by another run" if code == 6 else "runtime error"
    raise AirflowException(f"scorch exit {code} ({what}), will be retried: {message}")


def logical_ds(logical_date: dt.datetime, timezone: str, offset_days: int) -> str:
    """The scorch ``ds`` of an Airflow run: its logical date in the job's zone plus the offset."""
    local = pendulum.instance(logical_date).in_timezone(timezone)
    return (local.date() + dt.timedelta(days=offset_days)).isoformat()


def scheduled_dag(dag_id: str, description: str, sched: dict) -> DAG:
    """A DAG on a scorch ``schedule:`` (cron in its zone, its catch-up), one active
    run at a time."""
    tz = sched.get("timezone", "UTC")
    return DAG(
        dag_id=dag_id,
        description=description,
        schedule=CronTriggerTimetable(sched["cron"], timezone=tz),
        start_date=pendulum.datetime(2026, 1, 1, tz=tz),
        catchup=bool(sched.get("catchup", False)),
        max_active_runs=1,
        tags=["scorch"],
        default_args={"retries": RETRIES, "retry_delay": RETRY_DELAY},
    )


def validate_task(rel: str):
    @task(task_id="validate", retries=0)
    def validate() -> None:
        run_scorch(["--quiet", "validate", rel])

    return validate()


def make_dag(job_file: str, job: dict) -> DAG:
    sched = job["schedule"]
    tz = sched.get("timezone", "UTC")
    offset = int(sched.get("ds_offset_days", -1))
    rel = os.path.relpath(job_file, PROJECT)
    with scheduled_dag(f"scorch_{job['name']}", job.get("description") or f"scorch job {rel}", sched) as dag:
        validate = validate_task(rel)

        shards = int(job.get("shards", 1))
        if shards <= 1:

            @task(task_id="score")
            def score(logical_date=None) -> None:
                ds = logical_ds(logical_date, tz, offset)
                run_scorch(["run", rel, "--date", ds, "--no-progress"])

            validate >> score()
        else:
            # One mapped task instance per shard, then one commit.
            @task(task_id="score")
            def score_shard(shard: int, logical_date=None) -> None:
                ds = logical_ds(logical_date, tz, offset)
                run_scorch(["run", rel, "--date", ds, "--shard", f"{shard}/{shards}", "--no-progress"])

            @task(task_id="commit")
            def commit(logical_date=None) -> None:
                ds = logical_ds(logical_date, tz, offset)
                run_scorch(["commit", rel, "--date", ds, "--shards", str(shards)])

            validate >> score_shard.expand(shard=list(range(shards))) >> commit()
    return dag


def make_evaluate_dag(job_file: str, job: dict) -> DAG:
    """The DAG of a job's ``evaluate:`` schedule: ``scorch evaluate`` of the
    ``window`` dates ending at the fire's logical date plus ``ds_offset_days``."""
    ev = job["evaluate"]
    sched = ev["schedule"]
    tz = sched.get("timezone", "UTC")
    offset = int(sched.get("ds_offset_days", -1))
    window = int(ev.get("window", 7))
    rel = os.path.relpath(job_file, PROJECT)
    description = f"scorch evaluate {rel}: realized performance from late labels"
    with scheduled_dag(f"scorch_{job['name']}_evaluate", description, sched) as dag:
        validate = validate_task(rel)

        @task(task_id="evaluate")
        def evaluate(logical_date=None) -> None:
            ds = logical_ds(logical_date, tz, offset)
            run_scorch(["evaluate", rel, "--date", ds, "--window", str(window)])

        validate >> evaluate()
    return dag


for _file in sorted(glob.glob(os.path.join(PROJECT, "jobs", "*.yaml"))):
    with open(_file, encoding="utf-8") as _f:
        _job = yaml.safe_load(_f)
    if isinstance(_job, dict) and _job.get("schedule"):
        globals()[f"scorch_{_job['name']}"] = make_dag(_file, _job)
    if isinstance(_job, dict) and isinstance(_job.get("evaluate"), dict):
        globals()[f"scorch_{_job['name']}_evaluate"] = make_evaluate_dag(_file, _job)
