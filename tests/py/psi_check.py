"""Recomputes every column's PSI of a scorch run report with numpy, from the
bundle's reference profile and the same input rows, and checks they agree within
1e-9 (relative). Prints the largest difference.

    python tests/py/psi_check.py REFERENCE_PROFILE REPORT_JSON 'DATA_GLOB'
"""

import json
import sys

import numpy as np
import polars as pl

EPS = 1e-4


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    r = np.maximum(ref / max(ref.sum(), 1), EPS)
    c = np.maximum(cur / max(cur.sum(), 1), EPS)
    return float(np.sum((c - r) * np.log(c / r)))


profile = json.load(open(sys.argv[1]))
report = json.load(open(sys.argv[2]))
df = pl.read_parquet(sys.argv[3], hive_partitioning=False)
got = {d["column"]: d["psi"] for d in report["drift"]}
worst = 0.0
for col in profile["columns"]:
    name = col["name"]
    s = df[name]
    if col["kind"] == "numeric":
        x = s.cast(pl.Float64).to_numpy()
        null = np.isnan(x)
        edges = np.array(col["edges"], dtype=np.float64)
        cur = np.bincount(np.searchsorted(edges, x[~null], side="right"), minlength=len(edges) + 1)
        cur = np.append(cur, null.sum())
        ref = np.array(col["counts"] + [col["nulls"]], dtype=np.float64)
    else:
        cats = sorted(col["categories"])  # the profile keeps them sorted
        vals = s.cast(pl.String).to_list()
        counts = {}
        for v in vals:
            counts[v] = counts.get(v, 0) + 1
        cur = [counts.get(c, 0) for c in cats]
        other = sum(n for v, n in counts.items() if v is not None and v not in col["categories"])
        cur = np.array(cur + [other, counts.get(None, 0)], dtype=np.float64)
        ref = np.array([col["categories"][c] for c in cats] + [0, col["nulls"]], dtype=np.float64)
    want = psi(ref, np.asarray(cur, dtype=np.float64))
    diff = abs(want - got[name]) / max(abs(want), 1e-12)
    worst = max(worst, diff)
    if diff > 1e-9:
        sys.exit(f"{name}: scorch psi {got[name]!r}, numpy {want!r}")
print(f"max relative difference {worst:.3e} over {len(profile['columns'])} columns")
