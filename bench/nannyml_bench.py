"""`make bench-nannyml`: performance estimated without labels and multivariate
drift on ROWS rows, scorch next to NannyML.

Generates the example churn data (python/make_churn_data.py): five days of
20,000 labelled calibration rows and one day of ROWS rows (default 5,000,000).
A copy of the example bundle is profiled on the calibration days (PCA of the
model's features, isotonic calibration, as `scorch profile --labels` does), then:

- scorch scores the big day: a plain run (read, preprocess, infer, write); runs
  with one part of the report each — `report.performance` (CBPE: expected
  confusion matrix at 0.5 and AUC, with standard errors), per-column drift, and
  per-column drift with `report.drift.multivariate` (PCA reconstruction error)
  — to show what each costs in the pass; then all of them with the metrics of
  every column;
- NannyML 0.13.1 (bench/nannyml_run.py, its own venv) gets what it needs as
  files — the model's feature matrix (`scorch preprocess apply`) and the scores
  scorch wrote — and runs CBPE (ROC AUC, F1) and data reconstruction drift with
  the big day as one chunk.

Prints each side's wall time and peak RSS (of that process alone, from wait4),
NannyML's time split into reading and computing, and the differences between
the two tools' values.

    python bench/nannyml_bench.py SCORCH_BIN NANNYML_PYTHON WORKDIR [ROWS]
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

scorch, nml_python, work = sys.argv[1], sys.argv[2], Path(sys.argv[3]).resolve()
rows = int(sys.argv[4]) if len(sys.argv) > 4 else 5_000_000
repo = Path(__file__).resolve().parent.parent
work.mkdir(parents=True, exist_ok=True)
os.chdir(work)


def timed(cmd: list, quiet: bool = True) -> tuple[float, float]:
    """Runs cmd; returns (wall seconds, peak RSS MiB of that process)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL if quiet else None)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed ({os.waitstatus_to_exitcode(status)}): {' '.join(map(str, cmd))}")
    return wall, usage.ru_maxrss / 1024


def gen(out: str, days: int, n: int, end: str) -> None:
    if Path(out, "features").exists():
        return
    subprocess.run(
        [sys.executable, str(repo / "python/make_churn_data.py"), "--out", out, "--days", str(days),
         "--rows", str(n), "--customers", str(max(2 * n, 200_000)), "--end", end, "--flip-dates", "", "--label-lag", "0", "--drift-days", "0"],
        check=True,
        stdout=subprocess.DEVNULL,
    )


t = time.perf_counter()
gen("cal", 5, 20_000, "2026-11-05")
gen("big", 1, rows, "2026-11-10")
print(f"data: {rows:,} rows to score, 100,000 calibration rows ({work}); {time.perf_counter() - t:.0f} s", flush=True)

if Path("bundle").exists():
    shutil.rmtree("bundle")
shutil.copytree(repo / "models/churn/1.0.0", "bundle")
cal = "cal/features/ds=*/*.parquet"
wall, rss = timed(
    [scorch, "--quiet", "profile", "--bundle", "bundle", "--data", cal, "--labels", "churned",
     "--calibration-data", cal, "--labels-data", "cal/labels/**/*.parquet", "--labels-on", "customer_id,ds",
     "--thresholds", "0.5"]
)
print(f"scorch profile (100,000 rows: PCA, calibration, reference performance): {wall:.2f} s, {rss:.0f} MiB peak")

Path("jobs").mkdir(exist_ok=True)
common = (
    "source:\n  parquet:\n    path: {data}/features/ds={{{{ ds }}}}/*.parquet\n"
    "keys: [customer_id]\nmodel: bundle\ninference: {{batch_size: 4096}}\n"
)
report = (
    "report:\n  drift: {psi_fail: 10, multivariate: {}}\n  performance: {thresholds: [0.5]}\n"
)
Path("jobs/estimated.yaml").write_text(
    "name: estimated\n" + common.format(data="big") + report + "output:\n  path: out/estimated\n"
)
Path("jobs/cal.yaml").write_text("name: cal\n" + common.format(data="cal") + "output:\n  path: out/cal\n")
cal_days = sorted(Path(p).name[3:] for p in glob.glob("cal/features/ds=*"))
for d in cal_days:
    timed([scorch, "--quiet", "run", "jobs/cal.yaml", "--date", d])

# Each part of the report on its own (column metrics only for the key, where the
# part allows), then everything together.
parts = [
    ("plain", None),
    ("CBPE", "report:\n  columns: [customer_id]\n  performance: {thresholds: [0.5]}\n"),
    ("per-column drift", "report:\n  columns: [customer_id]\n  drift: {psi_fail: 10}\n"),
    ("per-column + multivariate drift", "report:\n  columns: [customer_id]\n  drift: {psi_fail: 10, multivariate: {}}\n"),
]
times = {}
for name, part in parts:
    job = "name: part\n" + common.format(data="big") + (part or "") + "output:\n  path: out/part\n"
    Path("jobs/part.yaml").write_text(job)
    times[name] = timed([scorch, "--quiet", "run", "jobs/part.yaml", "--date", "2026-11-10"])
est = timed([scorch, "--quiet", "run", "jobs/estimated.yaml", "--date", "2026-11-10"])
manifest = json.loads(Path("out/estimated/ds=2026-11-10/_manifest.json").read_text())
r = json.loads(Path(manifest["report"]).read_text())
base = times["plain"][0]
for name, (wall, rss) in times.items():
    extra = "" if name == "plain" else f" (+{wall - base:.2f} s)"
    print(f"scorch run, {name + ':':33s}{wall:7.2f} s wall, {rss:6.0f} MiB peak{extra}")
name = "all, with the metrics of 21 columns:"
print(f"scorch run, {name:33s}{est[0]:7.2f} s wall, {est[1]:6.0f} MiB peak (+{est[0] - base:.2f} s)", flush=True)

# NannyML's inputs: the feature matrices and the scores, as files.
t, made = time.perf_counter(), False
for name, data in [("ref_features.parquet", cal), ("big_features.parquet", "big/features/ds=2026-11-10/*.parquet")]:
    if not Path(name).exists():
        subprocess.run(
            [scorch, "--quiet", "preprocess", "apply", "--state", "bundle/preprocess.state.json", "--data", data,
             "--out", name],
            check=True,
        )
        made = True
prep = f"scorch preprocess apply wrote them in {time.perf_counter() - t:.1f} s" if made else "written by an earlier run"

cfg = {
    "reference_features": "ref_features.parquet",
    "reference_scores": [sorted(glob.glob(f"out/cal/ds={d}/*.parquet"))[0] for d in cal_days],
    "reference_labels": [sorted(glob.glob(f"cal/labels/ds={d}/*.parquet"))[0] for d in cal_days],
    "analysis_features": "big_features.parquet",
    "analysis_scores": sorted(glob.glob("out/estimated/ds=2026-11-10/*.parquet")),
    "key": "customer_id",
    "score": "churn_probability",
    "label": "churned",
    "threshold": 0.5,
}
Path("nannyml.json").write_text(json.dumps(cfg))
nml = timed([nml_python, str(repo / "bench/nannyml_run.py"), "nannyml.json", "nannyml_out.json"], quiet=False)
n = json.loads(Path("nannyml_out.json").read_text())
print(
    f"NannyML CBPE + data reconstruction:       {nml[0]:7.2f} s wall, {nml[1]:6.0f} MiB peak "
    f"(reading {n['read_seconds']:.2f} s, reconstruction {n['reconstruction_seconds']:.2f} s, "
    f"CBPE {n['cbpe_seconds']:.2f} s; its inputs, the {n['features']}-feature matrices and the scores, {prep})"
)
m, p = r["multivariate"], r["performance"]
f1 = next(a for a in p["at"] if a["threshold"] == 0.5)["f1"]["value"]
print(
    f"values: reconstruction error scorch {m['mean_error']:.6f} NannyML {n['reconstruction_error']:.6f} "
    f"(relative difference {abs(m['mean_error'] - n['reconstruction_error']) / n['reconstruction_error']:.1e}); "
    f"AUC {p['estimated_auc']['value']:.5f} vs {n['roc_auc']:.5f}; F1@0.5 {f1:.5f} vs {n['f1']:.5f}"
)
