"""Recomputes every column's drift statistics of a scorch run report from the
bundle's reference profile and the same input rows — PSI with numpy, the
Jensen-Shannon distance with scipy.spatial.distance.jensenshannon, the chi-square
test of categorical columns with scipy.stats.chi2_contingency — and checks that
they agree within 1e-9 (relative). Prints the largest difference.

    python tests/py/drift_check.py REFERENCE_PROFILE REPORT_JSON 'DATA_GLOB' ['SCORES_GLOB' ['REFERENCE_GLOB']]

Score columns (the profile's `scores`) are read from SCORES_GLOB, the run's output.
With REFERENCE_GLOB (the profiled data), the sketch-based KS statistic and
Wasserstein distance of every input column are checked against scipy's exact
values on the full data: the exact KS statistic must lie in
[ks_statistic, ks_statistic + ks_error], the exact normalised Wasserstein distance
within wasserstein_error of the reported one, and the p-value must be scipy's for
the reported statistic and the two sample sizes.
"""

import json
import sys

import numpy as np
import polars as pl
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, kstwo, wasserstein_distance

EPS = 1e-4


def psi(ref: np.ndarray, cur: np.ndarray) -> float:
    r = np.maximum(ref / max(ref.sum(), 1), EPS)
    c = np.maximum(cur / max(cur.sum(), 1), EPS)
    return float(np.sum((c - r) * np.log(c / r)))


profile = json.load(open(sys.argv[1]))
report = json.load(open(sys.argv[2]))
df = pl.read_parquet(sys.argv[3], hive_partitioning=False)
if profile.get("scores"):
    scores = pl.read_parquet(sys.argv[4], hive_partitioning=False)
    df = df.with_columns([scores[c] for c in profile["scores"]])
got = {d["column"]: d for d in report["drift"]}
worst = 0.0


def close(name: str, what: str, scorch: float, want: float) -> None:
    global worst
    diff = abs(want - scorch) / max(abs(want), 1e-300)
    if want == scorch:
        diff = 0.0
    worst = max(worst, diff)
    if diff > 1e-9:
        sys.exit(f"{name} {what}: scorch {scorch!r}, reference {want!r}")


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
    cur = np.asarray(cur, dtype=np.float64)
    d = got[name]
    close(name, "psi", d["psi"], psi(ref, cur))
    close(name, "js_distance", d["js_distance"], float(jensenshannon(ref, cur)))
    if col["kind"] != "numeric":
        table = np.array([ref, cur])
        table = table[:, table.sum(axis=0) > 0]
        res = chi2_contingency(table, correction=True)
        close(name, "chi2 statistic", d["chi2"]["statistic"], float(res.statistic))
        close(name, "chi2 p-value", d["chi2"]["p_value"], float(res.pvalue))
        assert d["chi2"]["dof"] == res.dof, (name, d["chi2"]["dof"], res.dof)
print(f"max relative difference {worst:.3e} over {len(profile['columns'])} columns")

if len(sys.argv) > 5:
    ref_df = pl.read_parquet(sys.argv[5], hive_partitioning=False)
    checked, ks_err, w_err = 0, 0.0, 0.0
    for col in profile["columns"]:
        name = col["name"]
        if col["kind"] != "numeric" or name in profile.get("scores", []):
            continue
        d = got[name]
        r = ref_df[name].cast(pl.Float64).to_numpy()
        c = df[name].cast(pl.Float64).to_numpy()
        r, c = r[~np.isnan(r)], c[~np.isnan(c)]
        exact = float(ks_2samp(r, c).statistic)
        lo, err = d["ks_statistic"], d["ks_error"]
        if not (lo - 1e-12 <= exact <= lo + err + 1e-12):
            sys.exit(f"{name}: exact KS {exact} outside [{lo}, {lo + err}]")
        # The p-value is scipy's for the reported statistic and sizes.
        m, n = sorted([len(r), len(c)], reverse=True)
        if m > 10000:
            close(name, "ks p-value", d["ks_p_value"], float(kstwo.sf(lo, np.round(m * n / (m + n)))))
        w = wasserstein_distance(r, c) / max(np.std(r), 0.001)
        if abs(w - d["wasserstein"]) > d["wasserstein_error"] + 1e-12:
            sys.exit(f"{name}: exact Wasserstein {w}, reported {d['wasserstein']} ± {d['wasserstein_error']}")
        checked += 1
        ks_err, w_err = max(ks_err, err), max(w_err, d["wasserstein_error"])
    assert checked > 0
    print(f"sketch bounds hold on {checked} columns: KS error <= {ks_err:.2e}, Wasserstein error <= {w_err:.2e}")
