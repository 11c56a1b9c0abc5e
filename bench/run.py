"""`make bench`: scorch end to end against the Python scripts a user would write.

On one machine, in one run, for the same rows, model, preprocessing, thread
count and output: scorch; pandas + PyTorch; polars + PyTorch; and the ceilings
(Parquet read of the same columns alone; the model alone on an in-memory tensor,
through Python torch and through scorch's engine). Each is a separate process,
timed from start to exit with its peak RSS (/usr/bin/time). Prints medians of
--runs runs and the ratios the targets are stated in, and checks that the
streaming run's scores equal a one-chunk (non-streaming) run's and the peers'.

    python bench/run.py --scorch BIN --forward-bench BIN [--rows 5000000] [--big-rows 20000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import polars as pl

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable


def sh(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Runs cmd; returns (wall seconds, peak RSS MiB, stdout)."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    rss_kb = int(p.stderr.strip().splitlines()[-1])
    return wall, rss_kb / 1024, p.stdout


def make_data(work: str, rows: int) -> str:
    per_file = 1_000_000
    days = max(1, rows // per_file)
    # Each day has its own customers: `customer_id` is the key of all days read together.
    out = os.path.join(work, f"data-{rows}-disjoint")
    if not os.path.exists(os.path.join(out, ".done")):
        print(f"generating {rows:,} rows ({days} files) in {out} ...", file=sys.stderr)
        subprocess.run([PY, os.path.join(ROOT, "python", "make_churn_data.py"), "--out", out, "--days", str(days),
                        "--rows", str(min(rows, per_file)), "--customers", str(max(2 * per_file, rows)),
                        "--label-lag", str(days), "--disjoint-days"], check=True, stdout=subprocess.DEVNULL)
        open(os.path.join(out, ".done"), "w").close()
    return os.path.join(out, "features", "ds=*", "*.parquet")


def write_job(work: str, name: str, data_glob: str, bundle: str, extra: str = "") -> str:
    path = os.path.join(work, f"{name}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"""name: {name}
source:
  parquet:
    path: {data_glob}
    hive_partitioning: false
keys: [customer_id]
model: {bundle}
output:
  path: {os.path.join(work, 'out', name)}
inference:
  batch_size: 4096
  threads: 0
  device: cpu
{extra}""")
    return path


def scorch_scores(work: str, name: str) -> np.ndarray:
    files = sorted(glob.glob(os.path.join(work, "out", name, "ds=2026-11-28", "*.parquet")))
    return pl.read_parquet(files)["churn_probability"].to_numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scorch", required=True)
    ap.add_argument("--forward-bench", required=True)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--big-rows", type=int, default=20_000_000, help="rows of the memory check (0: skip)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hidden", default="256,128", help="hidden widths of the benchmark model")
    ap.add_argument("--work", default=os.environ.get("SCORCH_BENCH_DIR", "/tmp/scorch-bench"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    threads = os.cpu_count() or 1
    bundle = os.path.join(a.work, "models", "churn_wide", a.hidden.replace(",", "-"))
    if not os.path.exists(os.path.join(bundle, "bundle.yaml")):
        subprocess.run([PY, os.path.join(HERE, "make_wide_model.py"), "--out", bundle, "--hidden", a.hidden,
                        "--base", os.path.join(ROOT, "models", "churn", "1.0.0")], check=True)
    data = make_data(a.work, a.rows)
    job = write_job(a.work, "bench", data, bundle)
    one_chunk = write_job(a.work, "bench_one_chunk", data, bundle, f"  chunk_rows: {a.rows + 4096}\n")
    run_scorch = [a.scorch, "--quiet", "run", "--no-progress", "--date", "2026-11-28"]
    peer_args = ["--data", data, "--bundle", bundle, "--threads", str(threads), "--batch", "4096"]

    commands = {
        "scorch": run_scorch + [job],
        "pandas + torch": [PY, os.path.join(HERE, "peer_pandas.py"), *peer_args, "--out", os.path.join(a.work, "pandas.parquet")],
        "polars + torch": [PY, os.path.join(HERE, "peer_polars.py"), *peer_args, "--out", os.path.join(a.work, "polars.parquet")],
        "read alone (polars)": [PY, os.path.join(HERE, "ceiling.py"), "read", "--data", data, "--bundle", bundle],
        "forward alone (torch)": [PY, os.path.join(HERE, "ceiling.py"), "forward", "--rows", str(a.rows), "--bundle", bundle,
                                  "--threads", str(threads), "--batch", "4096"],
        "forward alone (scorch engine)": [a.forward_bench, bundle, str(a.rows), str(threads), "4096"],
    }
    results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in commands}
    for i in range(a.runs):
        for name, cmd in commands.items():
            wall, rss, out = sh(cmd)
            if name.startswith(("read alone", "forward alone")):
                inner = json.loads(out.strip().splitlines()[-1])["seconds"]
            elif name == "scorch":
                runs_dir = os.path.join(a.work, "out", "bench", "_runs")
                latest = max(glob.glob(os.path.join(runs_dir, "*.json")), key=os.path.getmtime)
                inner = json.load(open(latest, encoding="utf-8"))["stages"]["total"]
            else:
                inner = sum(json.loads(out.strip().splitlines()[-1])["stages"].values())
            results[name].append((wall, rss, inner))
            print(f"run {i + 1}/{a.runs} {name}: {wall:.2f} s, {rss:.0f} MiB", file=sys.stderr)

    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
               statistics.median(x[2] for x in v)) for k, v in results.items()}

    # Same scores: streaming vs one chunk, and vs the polars peer.
    sh(run_scorch + [one_chunk])
    s_stream, s_one = scorch_scores(a.work, "bench"), scorch_scores(a.work, "bench_one_chunk")
    identical = s_stream.shape == s_one.shape and bool(np.array_equal(s_stream, s_one))
    peer = pl.read_parquet(os.path.join(a.work, "polars.parquet"))["churn_probability"].to_numpy()
    peer_diff = float(np.max(np.abs(peer - s_stream))) if peer.shape == s_stream.shape else float("nan")
    _, one_rss, _ = sh(run_scorch + [one_chunk])

    big = None
    if a.big_rows:
        big_data = make_data(a.work, a.big_rows)
        big_job = write_job(a.work, "bench_big", big_data, bundle)
        runs = [sh(run_scorch + [big_job]) for _ in range(a.runs)]
        big = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))

    n = a.rows
    sc_wall, sc_rss, _ = med["scorch"]
    read_s = med["read alone (polars)"][2]
    fwd_s = min(med["forward alone (torch)"][2], med["forward alone (scorch engine)"][2])
    sc_inner = med["scorch"][2]
    lines = [
        f"scorch benchmark: {n:,} rows, model {os.path.basename(bundle)} (MLP 43-{a.hidden.replace(',', '-')}-1), "
        f"{threads} threads, batch 4096, median of {a.runs} runs, {time.strftime('%Y-%m-%d')}",
        "",
        "| what | process wall s | in-process s | rows/s (wall) | peak RSS MiB | scorch speed-up (wall) |",
        "|---|---|---|---|---|---|",
    ]
    for name, (wall, rss, inner) in med.items():
        up = "" if name == "scorch" or name.startswith(("read", "forward")) else f"{wall / sc_wall:.2f}x"
        lines.append(f"| {name} | {wall:.2f} | {inner:.2f} | {n / wall:,.0f} | {rss:.0f} | {up} |")
    lines += [
        "",
        "in-process: scorch's manifest `total` (after start-up: loading libtorch, the model, listing inputs); the "
        "peers' timed stages (after `import torch`); the ceilings' timed section.",
        "",
        f"- scorch vs pandas + torch: {med['pandas + torch'][0] / sc_wall:.2f}x rows/s by process wall "
        f"({med['pandas + torch'][2] / sc_inner:.2f}x in-process) (target >= 3)",
        f"- scorch vs polars + torch: {med['polars + torch'][0] / sc_wall:.2f}x rows/s by process wall "
        f"({med['polars + torch'][2] / sc_inner:.2f}x in-process) (target >= 1.5)",
        f"- scorch / (read alone + forward alone), ceilings in-process: process wall {sc_wall:.2f} / ({read_s:.2f} + "
        f"{fwd_s:.2f}) = {sc_wall / (read_s + fwd_s):.2f}; in-process {sc_inner:.2f} / {read_s + fwd_s:.2f} = "
        f"{sc_inner / (read_s + fwd_s):.2f} (target <= 1.3)",
        f"- streaming scores identical to a one-chunk run: {'yes' if identical else 'NO'} "
        f"({len(s_stream):,} rows; one-chunk run peak RSS {one_rss:.0f} MiB)",
        f"- max |scorch - polars peer| score difference: {peer_diff:.2e}",
    ]
    if big:
        lines.append(f"- peak RSS: {sc_rss:.0f} MiB at {n:,} rows, {big[1]:.0f} MiB at {a.big_rows:,} rows "
                     f"({(big[1] / sc_rss - 1) * 100:+.1f}%; target <= 1024 MiB and within 10%); "
                     f"{a.big_rows / big[0]:,.0f} rows/s")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(a.work, "results.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
