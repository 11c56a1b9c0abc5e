"""`make bench-drift`: quality + drift on ROWS × COLS, scorch next to Evidently.

Writes a reference and a current Parquet file (float columns of several
distributions; the first half of the columns drift a little in the current
data, the rest do not), then times

- `scorch drift --binning evidently` (exact KS and Wasserstein, PSI and
  Jensen-Shannon with Evidently's binning, and both sides' column metrics), and
- Evidently (bench/evidently_run.py in its own venv): one Report with the PSI and
  KS drift presets and the data summary preset,

and prints wall time, the compute time without reading Parquet, peak memory,
and the largest differences between the two tools' PSI values and KS p-values.

    python bench/drift_bench.py SCORCH_BIN EVIDENTLY_PYTHON WORKDIR [ROWS] [COLS]
"""

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

scorch, ev_python, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
rows = int(sys.argv[4]) if len(sys.argv) > 4 else 10_000_000
cols = int(sys.argv[5]) if len(sys.argv) > 5 else 20
work.mkdir(parents=True, exist_ok=True)
here = Path(__file__).resolve().parent
ref_path, cur_path = work / f"reference-{rows}x{cols}.parquet", work / f"current-{rows}x{cols}.parquet"


def make(path: Path, seed: int, drift: bool) -> None:
    if path.exists():
        return
    rng = np.random.default_rng(seed)
    data = {}
    for i in range(cols):
        shift = 0.02 * (i + 1) if drift and i < cols // 2 else 0.0
        kind = i % 4
        if kind == 0:
            x = rng.normal(shift, 1.0, rows)
        elif kind == 1:
            x = rng.lognormal(shift, 0.5, rows)
        elif kind == 2:
            x = rng.uniform(shift, 1.0 + shift, rows)
        else:
            x = rng.exponential(1.0 + shift, rows)
        data[f"f{i:02d}"] = x
    pl.DataFrame(data).write_parquet(path, row_group_size=1_000_000)


def timed(cmd: list) -> tuple[float, float]:
    """Runs cmd; returns (wall seconds, peak RSS MiB of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024


make(ref_path, 1, False)
make(cur_path, 2, True)
print(f"data: {rows:,} rows x {cols} float columns per side ({ref_path.parent})", flush=True)

s_out = work / "scorch.json"
s_wall, s_rss = timed(
    [scorch, "--quiet", "drift", "--reference", str(ref_path), "--current", str(cur_path),
     "--binning", "evidently", "--out", str(s_out)]
)
s = json.loads(s_out.read_text())
print(f"scorch:    {s_wall:8.2f} s wall, {s['compute_seconds']:8.2f} s compute, {s_rss:7.0f} MiB peak", flush=True)

e_out = work / "evidently.json"
e_wall, e_rss = timed([ev_python, str(here / "evidently_run.py"), str(ref_path), str(cur_path), str(e_out)])
e = json.loads(e_out.read_text())
print(f"evidently: {e_wall:8.2f} s wall, {e['compute_seconds']:8.2f} s compute, {e_rss:7.0f} MiB peak", flush=True)

psi_diff = ks_diff = 0.0
for c in s["columns"]:
    ev = e["columns"][c["column"]]
    psi_diff = max(psi_diff, abs(c["psi"] - ev["psi"]) / max(abs(ev["psi"]), 1e-300))
    a, b = c["ks_p_value"], ev["ks"]
    if a != b:
        ks_diff = max(ks_diff, abs(a - b) / max(abs(b), 1e-300))
print(f"speed-up:  {e_wall / s_wall:.1f}x wall, {e['compute_seconds'] / s['compute_seconds']:.1f}x compute")
print(f"equal values: PSI max relative difference {psi_diff:.2e}, KS p-value {ks_diff:.2e} over {len(s['columns'])} columns")
