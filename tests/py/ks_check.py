"""Runs `scorch drift` (exact mode) on many pairs of samples and checks every
statistic against scipy 1.17 on the same values, within 1e-9 relative:
ks_2samp (statistic and p-value, through all of scipy's regimes: exact lattice
counting for equal and unequal sizes, and the asymptotic kstwo distribution's
Durbin-matrix, Pomeranz, Smirnov and Pelz-Good branches), wasserstein_distance
(plain and divided by max(std, 0.001), as Evidently), PSI over the reference's
quantile bins (edges as numpy.quantile), jensenshannon, and PSI with Evidently's
binning (numpy Sturges bins over both samples, Evidently's empty-share rule).

    python tests/py/ks_check.py SCORCH_BINARY WORKDIR

Covers ties, a constant column, NaN and nulls, an all-null sample, and a
categorical column (chi2_contingency). Prints the largest difference.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, norm, wasserstein_distance

scorch, work = sys.argv[1], Path(sys.argv[2])
work.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(20261130)
worst = 0.0
EPS = 1e-4


def close(case, what, got, want, tol=1e-9):
    global worst
    if want is None or got is None:
        if want is not got:
            sys.exit(f"{case} {what}: scorch {got!r}, scipy {want!r}")
        return
    if got == want:
        return
    diff = abs(got - want) / max(abs(want), 1e-300)
    worst = max(worst, diff)
    if diff > tol:
        sys.exit(f"{case} {what}: scorch {got!r}, scipy {want!r} (relative {diff:.2e})")


def psi(r, c):
    r = np.maximum(r / max(r.sum(), 1), EPS)
    c = np.maximum(c / max(c.sum(), 1), EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def evidently_psi(r, c):
    # evidently.legacy.calculations.stattests.utils.get_binned_data + psi
    bins = np.histogram_bin_edges(np.concatenate([r, c]), bins="sturges")
    rp = np.histogram(r, bins)[0] / len(r)
    cp = np.histogram(c, bins)[0] / len(c)
    for p in (rp, cp):
        m = min(p[p != 0])
        np.place(p, p == 0, m / 10**6 if m <= 0.0001 else 0.0001)
    return float(np.sum((rp - cp) * np.log(rp / cp))), bins


def run(case, ref, cur, binning="quantile"):
    rp, cp = work / f"{case}-ref.parquet", work / f"{case}-cur.parquet"
    # NaN stays NaN, except in cases named "nulls": there it becomes a Parquet null.
    nulls = case.startswith("nulls")
    for path, x in ((rp, ref), (cp, cur)):
        df = pl.DataFrame({"x": x})
        if nulls:
            df = df.with_columns(pl.col("x").fill_nan(None))
        df.write_parquet(path)
    out = subprocess.run(
        [scorch, "drift", "--reference", str(rp), "--current", str(cp), "--binning", binning],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"{case}: scorch drift exited {out.returncode}: {out.stderr}")
    return json.loads(out.stdout)["columns"][0]


def check_numeric(case, ref, cur, regime=None):
    ref = np.asarray(ref, dtype=np.float64)
    cur = np.asarray(cur, dtype=np.float64)
    d = run(case, ref, cur)
    r, c = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    assert d["reference_values"] == len(r) and d["current_values"] == len(c), (case, d)
    if len(r) == 0 or len(c) == 0:
        for k in ("ks_statistic", "ks_p_value", "wasserstein", "psi"):
            close(case, k, d.get(k), None)
        return
    k = ks_2samp(r, c)
    close(case, "ks statistic", d["ks_statistic"], float(k.statistic))
    close(case, "ks p-value", d["ks_p_value"], float(k.pvalue))
    if regime:
        # Which branch of kstwo.sf this case exercises (documentation of coverage).
        m, n = sorted([len(r), len(c)], reverse=True)
        en = round(m * n / (m + n))
        x = float(k.statistic)
        assert regime(en, x), (case, en, x, en * x * x)
    w = wasserstein_distance(r, c)
    close(case, "wasserstein", d["wasserstein_distance"], float(w))
    close(case, "wasserstein normed", d["wasserstein"], float(w / max(np.std(r), 0.001)))
    edges = np.array(d["edges"])
    want_edges = []
    for i in range(1, 10):
        q = float(np.quantile(r, i / 10))
        if not want_edges or q > want_edges[-1]:
            want_edges.append(q)
    assert len(edges) == len(want_edges), (case, edges, want_edges)
    for a, b in zip(edges, want_edges):
        close(case, "edge", float(a), b, 1e-12)
    rc = np.bincount(np.searchsorted(edges, r, side="right"), minlength=len(edges) + 1)
    cc = np.bincount(np.searchsorted(edges, c, side="right"), minlength=len(edges) + 1)
    close(case, "psi", d["psi"], psi(rc.astype(float), cc.astype(float)))
    close(case, "js", d["js_distance"], float(jensenshannon(rc, cc)))
    if len(np.unique(r)) > 20:
        e = run(case + "-ev", ref, cur, "evidently")
        want, bins = evidently_psi(r, c)
        assert len(e["edges"]) == len(bins), (case, len(e["edges"]), len(bins))
        close(case, "evidently psi", e["psi"], want)


N = rng.normal
check_numeric("exact-unequal", N(0, 1, 3000), N(0.1, 1, 2000))
check_numeric("exact-equal", N(0, 1, 500), N(0.3, 1, 500))
check_numeric("exact-tiny-p", N(0, 1, 4000), N(1.5, 1, 2500))
check_numeric("exact-identical", np.arange(100.0), np.arange(100.0))
check_numeric("exact-disjoint", np.arange(50.0), np.arange(60.0) + 100)
check_numeric("ties", rng.poisson(3, 8000), rng.poisson(3.2, 6000))
check_numeric("constant-reference", np.full(1000, 5.0), N(5, 0.1, 800))
check_numeric("constant-both", np.full(700, 2.0), np.full(900, 2.0))
ref = N(0, 1, 5000)
ref[::10] = np.nan
check_numeric("nan", ref, N(0, 1.2, 3000))
ref = N(0, 1, 5000)
ref[::7] = np.nan
cur = N(0.2, 1, 3000)
cur[::5] = np.nan
check_numeric("nulls", ref, cur)
check_numeric("empty-current", N(0, 1, 100), np.full(50, np.nan))
# Asymptotic branches of kstwo.sf(d, n), n = round(m·n/(m+n)):
# Asymptotic branches of kstwo.sf(d, n), n = round(m·n/(m+n)), on deterministic
# samples (normal quantile grids, one shifted) so each case stays in its branch.
def grid(n, shift=0.0):
    return norm.ppf((np.arange(n) + 0.5) / n) + shift


def dmtw(en, x):
    return en * x * x < 2.2 and en <= 100000 and en * x**1.5 <= 1.4


def pelz_good(en, x):
    return en > 140 and en * x * x < 2.2 and not dmtw(en, x)


check_numeric("dmtw", grid(30000), grid(20000, 0.005), lambda en, x: en > 140 and dmtw(en, x))
check_numeric("pelz-good", grid(30000), grid(20000, 0.02), pelz_good)
check_numeric("smirnov", grid(30000), grid(20000, 0.05), lambda en, x: 2.2 <= en * x * x < 370)
check_numeric("zero", grid(30000), grid(20000, 2.0), lambda en, x: en * x * x >= 370)
check_numeric("large-pelz-good", N(0, 1, 300000), N(0, 1, 200000), lambda en, x: en > 100000 and pelz_good(en, x))
check_numeric(
    "large-smirnov", grid(300000), grid(200000, 0.02), lambda en, x: en > 100000 and 2.2 <= en * x * x < 370
)
# Above n = 1e6 scipy's smirnov switches to an approximation; scorch follows.
check_numeric(
    "huge-smirnov", grid(2600000), grid(2600000, 0.01), lambda en, x: en > 1000000 and 2.2 <= en * x * x < 370
)
check_numeric(
    "dmtw-small-n", grid(20000), grid(120, 0.1), lambda en, x: en <= 140 and en * x > 1 and en * x * x <= 0.754693
)
check_numeric(
    "pomeranz", grid(20000), grid(120, 0.3), lambda en, x: en <= 140 and 0.754693 < en * x * x <= 4
)
check_numeric(
    "smirnov-small-n", grid(20000), grid(120, 1.0), lambda en, x: en <= 140 and en * x * x > 4 and x < 0.5
)
check_numeric("ruben-gambino", grid(20000), grid(120, 0.001), lambda en, x: en * x <= 1)
check_numeric("uniform-vs-beta", rng.uniform(size=12000), rng.beta(2, 2, size=15000))

# A categorical column.
rp, cp = work / "cat-ref.parquet", work / "cat-cur.parquet"
pl.DataFrame({"x": rng.choice(["a", "b", "c", None], 5000, p=[0.5, 0.3, 0.15, 0.05])}).write_parquet(rp)
pl.DataFrame({"x": rng.choice(["a", "b", "d"], 3000, p=[0.4, 0.4, 0.2])}).write_parquet(cp)
out = subprocess.run([scorch, "drift", "--reference", str(rp), "--current", str(cp)], capture_output=True, text=True)
d = json.loads(out.stdout)["columns"][0]
r = pl.read_parquet(rp)["x"].to_list()
c = pl.read_parquet(cp)["x"].to_list()
cats = sorted({v for v in r if v is not None})
rv = [r.count(k) for k in cats] + [0, r.count(None)]
cv = [c.count(k) for k in cats] + [sum(1 for v in c if v is not None and v not in cats), c.count(None)]
table = np.array([rv, cv], dtype=float)
table = table[:, table.sum(axis=0) > 0]
res = chi2_contingency(table, correction=True)
close("categorical", "chi2", d["chi2"]["statistic"], float(res.statistic))
close("categorical", "chi2 p", d["chi2"]["p_value"], float(res.pvalue))
close("categorical", "psi", d["psi"], psi(np.array(rv, float), np.array(cv, float)))
close("categorical", "js", d["js_distance"], float(jensenshannon(rv, cv)))
assert d["new_categories"] == 1, d
print(f"max relative difference {worst:.3e}")
