"""Benchmark: the example day (20,000 rows) scored with a report (every column
profiled, drift against the bundle's reference, an anomaly check), once as
generated and once with +inf, -inf and NaN in two float columns and "" in a
string column (tests/py/corrupt_day.py: one row in EVERY); prints wall time,
peak RSS and the report's non_finite counts. Not a test: it prints figures.

    nonfinite.py SCORCH_BIN [EVERY] [ROWS]
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent.parent


def run(cmd, cwd):
    """Runs one command; its wall time and its own peak RSS in MiB (from wait4)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"{cmd}: exit {os.waitstatus_to_exitcode(status)}\n{err.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def main() -> int:
    scorch = sys.argv[1]
    every = sys.argv[2] if len(sys.argv) > 2 else "10"
    rows = sys.argv[3] if len(sys.argv) > 3 else "20000"
    work = pathlib.Path(tempfile.mkdtemp(prefix="scorch-bench-nonfinite."))
    try:
        subprocess.run(
            [sys.executable, str(HERE / "python/make_churn_data.py"), "--out", str(work / "data/churn"),
             "--days", "2", "--rows", rows],
            check=True, capture_output=True,
        )
        (work / "schemas").mkdir()
        (work / "schemas/finite.yaml").write_text(
            "name: finite\ncolumns:\n  age: {dtype: float64, finite: true}\n"
            "  data_usage_gb: {dtype: float64, finite: true}\nmax_invalid_fraction: 0.5\n"
        )
        (work / "jobs").mkdir()
        job = work / "jobs/bench.yaml"
        job.write_text(
            f"name: bench\nsource:\n  parquet:\n    path: data/churn/features/ds={{{{ ds }}}}\n"
            f"keys: [customer_id]\nmodel: {HERE}/models/churn/1.0.0\ncontract: schemas/finite.yaml\n"
            "report:\n  drift: {psi_warn: 100, psi_fail: 200}\n"
            "  anomalies: [{metric: mean, column: age, min_history: 2}]\n"
            "output:\n  path: output/bench\n"
        )
        results = {}
        for label in ["clean", "non-finite"]:
            if label == "non-finite":
                shutil.rmtree(work / "output")
                p = subprocess.run(
                    [sys.executable, str(HERE / "tests/py/corrupt_day.py"), str(work / "data/churn/features"), every],
                    check=True, capture_output=True, text=True,
                )
                print(f"injected (both days): {p.stdout.strip()}")
            for day in ["2026-11-27", "2026-11-28"]:
                wall, rss = run([scorch, "-q", "run", str(job), "--date", day], work)
            manifest = sorted((work / "output/bench/_runs").glob("*[0-9a-f].json"))[-1]
            m = json.loads(manifest.read_text())
            report = json.loads((work / m["report"]).read_text())
            nf = {c["name"]: c["non_finite"] for c in report["columns"] if c["non_finite"]}
            results[label] = (wall, rss, m["rows"]["read"], m["rows"]["quarantined"], nf)
        for label, (wall, rss, read, quarantined, nf) in results.items():
            print(f"{label:>10}: {read} rows read, {quarantined} quarantined, last run {wall:.2f} s, "
                  f"peak RSS {rss:.0f} MiB, non_finite {nf}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
