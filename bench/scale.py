"""`make bench-scale`: one big day scored end to end by the example job, every check,
drift and the key check on, and every report figure compared with DuckDB's over the
same files.

    python bench/scale.py SCORCH_BIN WORK_DIR [ROWS] [FILES]

ROWS (default 100,000,000) rows of the example data in FILES Parquet files (default
100), every customer_id unique, are generated once into WORK_DIR. The example job
(jobs/churn_daily.yaml, its source pointed at those files) scores them; a sampler
reads the process's RssAnon from /proc every 0.1 s. Prints wall time, rows/s, peak
anonymous RSS, the bytes the exact counts spilled, then each report figure beside
DuckDB's: exact ones (counts, nulls, distinct, uniqueness, unique_value_ratio, min,
max, non-finite, the key check) must be equal, approximate ones within their stated
bound (mean 1e-9 and stddev 1e-6 relative, quantiles 1 % relative of the value at
rank floor(q*(n-1)) (DuckDB's quantile_disc), approx_distinct 5 %, three standard errors). Exits 1 when a
figure is off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable


def generate(work: str, rows: int, files: int) -> str:
    out = os.path.join(work, f"data-{rows}-{files}")
    if not os.path.exists(os.path.join(out, ".done")):
        per = rows // files
        t = time.perf_counter()
        print(f"generating {rows:,} rows in {files} files into {out} ...", flush=True)
        subprocess.run(
            [PY, os.path.join(ROOT, "python", "make_churn_data.py"), "--out", out, "--days", str(files),
             "--rows", str(per), "--customers", str(per), "--disjoint-days", "--drift-days", "0",
             "--label-lag", str(files)],
            check=True, stdout=subprocess.DEVNULL,
        )
        open(os.path.join(out, ".done"), "w").close()
        print(f"generated in {time.perf_counter() - t:.0f} s", flush=True)
    return os.path.join(out, "features", "*", "*.parquet")


def job(work: str, data: str) -> str:
    text = open(os.path.join(ROOT, "jobs", "churn_daily.yaml"), encoding="utf-8").read()
    text = text.replace("path: data/churn/features/ds={{ ds }}/*.parquet",
                        f"path: {data}\n    hive_partitioning: false")
    text = text.replace("model: models/churn/1.0.0", f"model: {ROOT}/models/churn/1.0.0")
    text = text.replace("path: output/churn_scores", f"path: {work}/out/churn_scores")
    text = text.replace("path: data/churn/labels", f"path: {work}/labels")
    path = os.path.join(work, "scale.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def run_sampled(cmd: list[str]) -> tuple[float, int, int]:
    """Runs cmd; returns (wall seconds, peak RssAnon KiB, exit code)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while p.poll() is None:
            try:
                with open(f"/proc/{p.pid}/status", encoding="ascii") as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = p.communicate()
    wall = time.perf_counter() - t
    th.join()
    sys.stderr.write(err[-4000:])
    return wall, peak[0], p.returncode


def close(a: float | None, b: float | None, rel: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def main() -> int:
    scorch, work = sys.argv[1], sys.argv[2]
    rows = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000_000
    files = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    os.makedirs(work, exist_ok=True)
    data = generate(work, rows, files)
    j = job(work, data)
    subprocess.run(["rm", "-rf", os.path.join(work, "out")], check=True)
    wall, anon_kib, rc = run_sampled([scorch, "run", "--no-progress", j, "--date", "2026-11-28"])
    runs = os.path.join(work, "out", "churn_scores", "_runs")
    manifest = json.load(open(max((os.path.join(runs, f) for f in os.listdir(runs)
                                   if f.endswith(".json") and ".report." not in f), key=os.path.getmtime)))
    report = json.load(open(manifest["report"]))
    spilled = sum(c.get("spill_bytes", 0) for c in report["columns"]) + manifest["keys"]["spill_bytes"]
    print(f"\nscorch run (exit {rc}): {rows:,} rows in {wall:.1f} s wall, {rows / wall:,.0f} rows/s, "
          f"peak anonymous RSS {anon_kib / 1024:,.0f} MiB, spilled {spilled / 2**20:,.0f} MiB "
          f"(report.memory_budget_mb 256 + output.keys_memory_mb 128)")
    print(f"stages (busy s): {json.dumps(manifest['stages'])}")
    print(f"key check: {json.dumps(manifest['keys'])}")

    con = duckdb.connect()
    con.execute(f"SET memory_limit='6GB'; SET threads=2; SET temp_directory='{work}/duckdb-tmp'; "
                "SET preserve_insertion_order=false")
    con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{data}')")
    bad = 0
    t = time.perf_counter()
    for c in report["columns"]:
        name, numeric = c["name"], "min" in c and c.get("min") is not None
        q = f'"{name}"'
        n, nn = con.execute(f"SELECT count(*), count({q}) FROM t").fetchall()[0]
        distinct, once = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE k = 1) FROM "
            f"(SELECT {q}, count(*) k FROM t WHERE {q} IS NOT NULL GROUP BY 1)").fetchall()[0]
        want = {"count": n, "nulls": n - nn, "distinct": distinct,
                "uniqueness": once / nn if nn else None,
                "unique_value_ratio": once / distinct if distinct else None}
        approx: dict[str, tuple[float | None, float]] = {"approx_distinct": (distinct, 0.05)}
        if c["dtype"] in ("f64", "f32", "i64", "i32", "i16", "i8", "u64", "u32", "u16", "u8"):
            finite = f"{q} IS NOT NULL" + (f" AND isfinite({q})" if c["dtype"].startswith("f") else "")
            lo, hi, mean, sd, cnt = con.execute(
                f"SELECT min({q}), max({q}), avg({q}::DOUBLE), stddev_pop({q}::DOUBLE), count(*) "
                f"FROM t WHERE {finite}").fetchall()[0]
            want.update({"min": lo, "max": hi, "non_finite": nn - cnt})
            approx.update({"mean": (mean, 1e-9), "stddev": (sd, 1e-6)})
            if cnt:
                # DuckDB's exact discrete quantiles (one pass for all seven).
                qs = [("p01", .01), ("p05", .05), ("p25", .25), ("p50", .5), ("p75", .75),
                      ("p95", .95), ("p99", .99)]
                vals = con.execute(f"SELECT quantile_disc({q}, {[x for _, x in qs]}) FROM t WHERE {finite}"
                                   ).fetchall()[0][0]
                for (key, _), v in zip(qs, vals):
                    approx[f"quantiles.{key}"] = (v, 0.0100001)
        for k, v in want.items():
            got = c.get(k)
            ok = (got == v) if not isinstance(v, float) else close(got, v, 1e-12)
            if not ok:
                bad += 1
                print(f"  MISMATCH {name}.{k}: scorch {got} vs DuckDB {v}")
        for k, (v, rel) in approx.items():
            got = c["quantiles"].get(k.split(".")[1]) if k.startswith("quantiles.") else c.get(k)
            if not close(None if got is None else float(got), None if v is None else float(v), rel):
                bad += 1
                print(f"  OFF {name}.{k}: scorch {got} vs DuckDB {v} (bound {rel})")
        print(f"{name:>24}: distinct {c['distinct']:>11,} uniqueness {c['uniqueness']!s:>22} "
              f"({c['frequencies']}) = DuckDB" + ("" if bad == 0 else f" [{bad} off so far]"), flush=True)
    keys = manifest["keys"]
    kd, ko = con.execute("SELECT count(*), count(*) FILTER (WHERE k > 1) FROM "
                         "(SELECT customer_id, count(*) k FROM t GROUP BY 1)").fetchall()[0]
    if (keys["distinct"], keys["duplicated"]) != (kd, ko):
        bad += 1
        print(f"  MISMATCH key check: scorch {keys['distinct']}/{keys['duplicated']} vs DuckDB {kd}/{ko}")
    print(f"\nDuckDB recomputation: {time.perf_counter() - t:.0f} s; {bad} figure(s) off")
    return 1 if bad or rc != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
