"""`make bench-shadow`: a shadow comparison of one big day in bounded memory.

    python bench/shadow_scale.py SCORCH_BIN WORK_DIR [ROWS] [FILES] [BUDGET_MB]

ROWS (default 2,000,000) rows of the example data in FILES Parquet files (default 10),
every customer_id unique, are generated once into WORK_DIR (as `make bench-scale`
does), with a labels table for the day (a quarter of the customers churned). The
example job's shadow settings (segments `plan` and `contract`, 1,000 bootstrap
resamples) compare models/churn/1.0.0 with 2.0.0 on that day, `report.memory_budget_mb`
set to BUDGET_MB (default 256); a sampler reads the process's RssAnon every 0.1 s.
Prints wall time, peak anonymous RSS and the bytes spilled, then the report's
figures beside DuckDB's over the shadow table it wrote: counts, agreement, positive
rates, the largest difference and the labelled rows must be equal, means and
Pearson's correlation within 1e-9 relative. Exits 1 when a figure is off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scale import ROOT, close, generate, run_sampled  # noqa: E402

DATE = "2026-11-28"


def main() -> int:
    scorch, work = sys.argv[1], sys.argv[2]
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 2_000_000
    files = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    budget = int(sys.argv[5]) if len(sys.argv) > 5 else 256
    os.makedirs(work, exist_ok=True)
    data = generate(work, rows, files)
    con = duckdb.connect()
    con.execute(f"SET threads=2; SET temp_directory='{work}/duckdb-tmp'")
    labels = os.path.join(work, f"shadow-labels-{rows}", f"ds={DATE}")
    if not os.path.exists(os.path.join(labels, "part-0.parquet")):
        os.makedirs(labels, exist_ok=True)
        con.execute(
            f"COPY (SELECT customer_id, (hash(customer_id) % 4 = 0)::INTEGER AS churned "
            f"FROM read_parquet('{data}')) TO '{labels}/part-0.parquet' (FORMAT parquet)")
    text = open(os.path.join(ROOT, "jobs", "churn_daily.yaml"), encoding="utf-8").read()
    text = text.replace("path: data/churn/features/ds={{ ds }}/*.parquet",
                        f"path: {data}\n    hive_partitioning: false")
    text = text.replace("model: models/churn/1.0.0", f"model: {ROOT}/models/churn/1.0.0")
    text = text.replace("path: output/churn_scores", f"path: {work}/shadow-out/churn_scores")
    text = text.replace("path: data/churn/labels/ds={{ ds }}/*.parquet",
                        f"path: {os.path.dirname(labels)}/ds={{{{ ds }}}}/*.parquet")
    text = text.replace("report:                            # column metrics",
                        f"report:\n  memory_budget_mb: {budget}\n  # column metrics")
    job = os.path.join(work, "shadow.yaml")
    with open(job, "w", encoding="utf-8") as f:
        f.write(text)
    subprocess.run(["rm", "-rf", os.path.join(work, "shadow-out")], check=True)
    wall, anon_kib, rc = run_sampled([scorch, "shadow", job, "--challenger",
                                      f"{ROOT}/models/churn/2.0.0", "--date", DATE])
    runs = os.path.join(work, "shadow-out", "churn_scores_shadow", "_runs")
    path = max((os.path.join(runs, f) for f in os.listdir(runs) if f.endswith(".report.json")
                and f.startswith("shadow-")), key=os.path.getmtime)
    r = json.load(open(path))
    o = r["overall"]
    print(f"\nscorch shadow (exit {rc}): {rows:,} rows in {wall:.1f} s wall, "
          f"peak anonymous RSS {anon_kib / 1024:,.0f} MiB, spilled {r['spill_bytes'] / 2**20:,.0f} MiB "
          f"(report.memory_budget_mb {r['memory_budget_mb']}); {len(r['segments'])} segments, "
          f"{r['bootstrap']['resamples']} resamples")
    table = os.path.join(work, "shadow-out", "churn_scores_shadow", f"ds={DATE}", "*.parquet")
    con.execute(f"CREATE VIEW s AS SELECT * FROM read_parquet('{table}')")
    con.execute(f"CREATE VIEW l AS SELECT * FROM read_parquet('{labels}/*.parquet')")
    a, b = "champion_churn_probability", "challenger_churn_probability"
    n, ma, mb, mx, corr = con.execute(
        f"SELECT count(*), avg({a}), avg({b}), max(abs({a} - {b})), corr({a}, {b}) FROM s").fetchall()[0]
    labelled, positives = con.execute(
        "SELECT count(l.churned), sum(l.churned) FROM s LEFT JOIN l USING (customer_id)").fetchall()[0]
    bad = 0

    def check(name: str, got, want, rel: float | None = None) -> None:
        nonlocal bad
        ok = got == want if rel is None else close(got, want, rel)
        bad += not ok
        print(f"  {name:<34} scorch {got!s:<24} duckdb {want!s:<24} {'ok' if ok else 'OFF'}")

    check("rows", o["rows"], n)
    check("labelled_rows", o["labelled_rows"], labelled)
    check("positives", o["labelled"]["positives"], positives)
    check("champion_mean", o["champion_mean"], ma, 1e-9)
    check("challenger_mean", o["challenger_mean"], mb, 1e-9)
    check("max_abs_diff", o["max_abs_diff"], mx)
    check("pearson", o["pearson"], corr, 1e-9)
    for at in o["agreement"]:
        t = at["threshold"]
        agree, pa, pb = con.execute(
            f"SELECT avg((({a} >= {t}) = ({b} >= {t}))::INT), avg(({a} >= {t})::INT), "
            f"avg(({b} >= {t})::INT) FROM s").fetchall()[0]
        check(f"agreement@{t}", at["agreement"], agree, 1e-12)
        check(f"champion_positive_rate@{t}", at["champion_positive_rate"], pa, 1e-12)
        check(f"challenger_positive_rate@{t}", at["challenger_positive_rate"], pb, 1e-12)
    for seg in r["segments"]:
        col = seg["column"]
        # A segment reports null values as the value `null`.
        null = f" OR {col} IS NULL" if seg["value"] == "null" else ""
        cnt = con.execute(f"SELECT count(*) FROM s WHERE {col}::VARCHAR = ?{null}", [seg["value"]]).fetchall()[0][0]
        check(f"rows of {col} = {seg['value']}", seg["rows"], cnt)
    print(f"spearman {o['spearman']}, champion AUC {o['labelled']['champion']['auc']}, "
          f"challenger AUC {o['labelled']['challenger']['auc']}, "
          f"auc delta CI [{o['labelled']['deltas'][0]['ci_low']}, {o['labelled']['deltas'][0]['ci_high']}]")
    if rc not in (0, 5):
        print(f"scorch shadow exited {rc}")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
