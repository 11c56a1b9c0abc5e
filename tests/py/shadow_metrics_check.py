"""Checks scorch's shadow-comparison statistics (examples/shadow_metrics.rs)
against scipy 1.17 and numpy on the same rows, within 1e-9 relative: Pearson,
Spearman (with ties), AUC (Mann-Whitney U / n1 n0, ties counted 1/2, as
sklearn's roc_auc_score), log loss (probabilities clipped to machine epsilon, as
sklearn), Brier, agreement at 0.5 and top-10% Jaccard.

    python tests/py/shadow_metrics_check.py SHADOW_METRICS_BINARY WORKDIR
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import mannwhitneyu, pearsonr, spearmanr

binary, work = sys.argv[1], Path(sys.argv[2])
work.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(6)
worst = 0.0
for case, n in (("continuous", 50000), ("ties", 20000), ("small", 7)):
    a = rng.beta(2, 5, n)
    b = np.clip(a + rng.normal(0, 0.05, n), 0, 1)
    if case == "ties":
        a, b = np.round(a, 2), np.round(b, 1)
    y = rng.uniform(size=n) < a
    if case == "small":
        y[:2] = [True, False]
    path = work / f"{case}.parquet"
    pl.DataFrame({"a": a, "b": b, "y": y}).write_parquet(path)
    got = json.loads(subprocess.run([binary, str(path)], capture_output=True, text=True, check=True).stdout)
    n1, n0 = y.sum(), (~y).sum()
    eps = np.finfo(np.float64).eps
    pc = np.clip(a, eps, 1 - eps)
    top = int(np.ceil(0.1 * n))
    ta = set(np.lexsort((np.arange(n), -a))[:top])
    tb = set(np.lexsort((np.arange(n), -b))[:top])
    want = {
        "pearson": pearsonr(a, b).statistic,
        "spearman": spearmanr(a, b).statistic,
        "auc_a": mannwhitneyu(a[y], a[~y]).statistic / (n1 * n0),
        "auc_b": mannwhitneyu(b[y], b[~y]).statistic / (n1 * n0),
        "log_loss_a": -np.mean(np.where(y, np.log(pc), np.log(1 - pc))),
        "brier_a": np.mean((a - y) ** 2),
        "agreement": np.mean((a >= 0.5) == (b >= 0.5)),
        "top_k_jaccard_10": len(ta & tb) / len(ta | tb),
    }
    for k, w in want.items():
        g = got[k]
        d = abs(g - float(w)) / max(abs(float(w)), 1e-300)
        worst = max(worst, d)
        if d > 1e-9:
            sys.exit(f"{case} {k}: scorch {g!r}, reference {float(w)!r}")
print(f"max relative difference {worst:.3e}")
