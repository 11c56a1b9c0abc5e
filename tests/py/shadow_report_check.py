"""Recomputes a `scorch shadow` comparison report from the shadow table and the
labels with numpy/scipy, and checks every number (1e-9 relative) — overall and per
segment: agreement and positive rates per threshold, mean/max |diff|, Pearson,
Spearman, top-k Jaccard, PSI over the champion's deciles, KS, and with labels AUC
(Mann-Whitney U / n1 n0), log loss, Brier, accuracy and their differences. Also
checks that each bootstrap interval contains its point difference.

    python tests/py/shadow_report_check.py REPORT_JSON SHADOW_TABLE LABELS_ROOT SEGMENT
"""

import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import ks_2samp, mannwhitneyu, pearsonr, spearmanr

report_path, table, labels_root, segment = sys.argv[1:5]
r = json.loads(Path(report_path).read_text())
score = r["score"]
frames = []
for run in r["runs"]:
    ds = run["ds"]
    df = pl.read_parquet(f"{table}/ds={ds}/*.parquet")
    assert df.height == run["rows"], (ds, df.height, run["rows"])
    lab = Path(labels_root) / f"ds={ds}"
    if lab.exists():
        labels = pl.read_parquet(f"{lab}/*.parquet").select("customer_id", "churned")
        df = df.join(labels, on="customer_id", how="left", maintain_order="left")
    else:
        df = df.with_columns(pl.lit(None, dtype=pl.Boolean).alias("churned"))
    frames.append(df.with_columns(pl.lit(ds).alias("ds")))
all_rows = pl.concat(frames, how="vertical_relaxed")

worst = 0.0


def close(name, got, want):
    global worst
    if want is None or (isinstance(want, float) and np.isnan(want)):
        assert got is None, f"{name}: got {got}, want none"
        return
    assert got is not None, f"{name}: missing (want {want})"
    err = abs(got - want) / max(1.0, abs(want))
    worst = max(worst, err)
    assert err <= 1e-9, f"{name}: scorch {got!r} vs numpy/scipy {want!r}"


def check(section, df, where):
    a = df[f"champion_{score}"].cast(pl.Float64).to_numpy()
    b = df[f"challenger_{score}"].cast(pl.Float64).to_numpy()
    n = len(a)
    assert section["rows"] == n, where
    d = np.abs(a - b)
    close(f"{where} mean_abs_diff", section["mean_abs_diff"], d.mean())
    close(f"{where} max_abs_diff", section["max_abs_diff"], d.max())
    close(f"{where} pearson", section["pearson"], pearsonr(a, b).statistic)
    close(f"{where} spearman", section["spearman"], spearmanr(a, b).statistic)
    for at in section["agreement"]:
        t = at["threshold"]
        close(f"{where} agreement@{t}", at["agreement"], np.mean((a >= t) == (b >= t)))
        close(f"{where} champion_positive_rate@{t}", at["champion_positive_rate"], np.mean(a >= t))
    for tk in section["top_k"]:
        m = int(np.ceil(tk["k"] * n))
        ta = set(np.lexsort((np.arange(n), -a))[:m])
        tb = set(np.lexsort((np.arange(n), -b))[:m])
        close(f"{where} jaccard@{tk['k']}", tk["jaccard"], len(ta & tb) / len(ta | tb))
    edges = []
    for i in range(1, 10):
        q = np.quantile(a, i / 10)
        if not edges or q > edges[-1]:
            edges.append(q)
    ca = np.bincount(np.searchsorted(edges, a, side="right"), minlength=len(edges) + 1) / n
    cb = np.bincount(np.searchsorted(edges, b, side="right"), minlength=len(edges) + 1) / n
    ca, cb = np.maximum(ca, 1e-4), np.maximum(cb, 1e-4)
    close(f"{where} psi", section["psi"], float(np.sum((cb - ca) * np.log(cb / ca))))
    close(f"{where} ks", section["ks"], ks_2samp(a, b).statistic)
    y_all = df["churned"].to_numpy()
    labelled = ~df["churned"].is_null().to_numpy()
    assert section["labelled_rows"] == labelled.sum(), where
    if labelled.sum() == 0:
        assert "labelled" not in section, where
        return 0
    y = y_all[labelled].astype(bool)
    la, lb = a[labelled], b[labelled]
    n1, n0 = y.sum(), (~y).sum()
    eps = np.finfo(np.float64).eps
    lab = section["labelled"]
    want = {}
    for who, p in (("champion", la), ("challenger", lb)):
        pc = np.clip(p, eps, 1 - eps)
        q = {
            "auc": mannwhitneyu(p[y], p[~y]).statistic / (n1 * n0),
            "log_loss": -np.mean(np.where(y, np.log(pc), np.log(1 - pc))),
            "brier": np.mean((p - y) ** 2),
        }
        for k, v in q.items():
            close(f"{where} {who} {k}", lab[who][k], v)
        for t, acc in zip(r["thresholds"], lab[who]["accuracy"]):
            close(f"{where} {who} accuracy@{t}", acc, np.mean((p >= t) == y))
        want[who] = q
    for dlt in lab["deltas"]:
        if dlt["metric"] in want["champion"]:
            m = dlt["metric"]
            close(f"{where} delta {m}", dlt["delta"], want["challenger"][m] - want["champion"][m])
        if dlt["ci_low"] is not None:
            assert dlt["ci_low"] <= dlt["delta"] + 1e-12 <= dlt["ci_high"] + 2e-12, (where, dlt)
    return int(labelled.sum())


labelled = check(r["overall"], all_rows, "overall")
assert labelled > 0, "the test data should have labelled rows"
segs = [s for s in r["segments"] if s["column"] == segment]
assert segs, "segments missing"
for s in segs:
    if s["value"] == "null":
        sub = all_rows.filter(pl.col(segment).is_null())
    else:
        sub = all_rows.filter(pl.col(segment).cast(pl.String) == s["value"])
    check(s, sub, f"{segment}={s['value']}")
# The most disagreeing row is the row with the largest |diff|.
d = np.abs(all_rows[f"champion_{score}"].cast(pl.Float64) - all_rows[f"challenger_{score}"].cast(pl.Float64)).to_numpy()
close("top disagreement", r["disagreements"][0]["abs_diff"], float(d.max()))
print(f"max relative difference {worst:.3e} over {all_rows.height} rows ({labelled} labelled), {len(segs)} segments")
