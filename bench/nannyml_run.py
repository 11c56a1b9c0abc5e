"""NannyML's side of `make bench-nannyml` (runs in its own venv: `make nannyml`).

Reads the reference (the model's feature matrix, and the calibration rows' scores
and labels) and the analysis rows (feature matrix and scores) with pandas, then
times NannyML 0.13's CBPE (ROC AUC and F1 at the threshold) and its data
reconstruction drift (PCA reconstruction error) with the analysis as one chunk.

    python bench/nannyml_run.py CONFIG.json OUT.json

CONFIG: {"reference_features", "reference_scores", "reference_labels" (one
scores file and one labels file per day, in the same order),
"analysis_features", "analysis_scores", "key", "score", "label", "threshold"}
(paths are Parquet files or lists of them).
"""

import json
import os
import sys
import time
import warnings

import pandas as pd

warnings.filterwarnings("ignore")
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"
import nannyml as nml  # noqa: E402

cfg = json.load(open(sys.argv[1]))
key, score, label, t = cfg["key"], cfg["score"], cfg["label"], cfg["threshold"]


def read(paths, columns=None) -> pd.DataFrame:
    paths = paths if isinstance(paths, list) else [paths]
    return pd.concat([pd.read_parquet(p, columns=columns) for p in paths], ignore_index=True)


t0 = time.perf_counter()
ref_x = read(cfg["reference_features"])
features = [c for c in ref_x.columns if c != key]
ref_x = ref_x[features].astype("float64")
# Scores and labels join day by day (a customer appears on several days).
cref = pd.concat(
    [
        pd.read_parquet(s, columns=[key, score]).merge(pd.read_parquet(lab, columns=[key, label]), on=key)
        for s, lab in zip(cfg["reference_scores"], cfg["reference_labels"])
    ],
    ignore_index=True,
)
cur_x = read(cfg["analysis_features"])[features].astype("float64")
cur_s = read(cfg["analysis_scores"], [score])
read_s = time.perf_counter() - t0

t1 = time.perf_counter()
calc = nml.DataReconstructionDriftCalculator(column_names=features, chunk_size=len(cur_x))
calc.fit(ref_x)
rec = calc.calculate(cur_x).filter(period="analysis").to_df()
rec_s = time.perf_counter() - t1

t2 = time.perf_counter()
cref["y_pred"] = (cref[score] >= t).astype(int)
cref[label] = cref[label].astype(int)
cur_s["y_pred"] = (cur_s[score] >= t).astype(int)
est = nml.CBPE(
    y_pred_proba=score,
    y_pred="y_pred",
    y_true=label,
    problem_type="classification_binary",
    metrics=["roc_auc", "f1"],
    chunk_size=len(cur_s),
)
est.fit(cref)
e = est.estimate(cur_s).filter(period="analysis").to_df()
cbpe_s = time.perf_counter() - t2

json.dump(
    {
        "rows": len(cur_x),
        "features": len(features),
        "read_seconds": read_s,
        "reconstruction_seconds": rec_s,
        "cbpe_seconds": cbpe_s,
        "reconstruction_error": float(rec[("reconstruction_error", "value")].iloc[0]),
        "roc_auc": float(e[("roc_auc", "value")].iloc[0]),
        "f1": float(e[("f1", "value")].iloc[0]),
    },
    open(sys.argv[2], "w"),
)
