"""NannyML's numbers on the same data as a scorch test, for comparison.

Runs in its own venv (`make nannyml`: PyPI's nannyml, whose pins clash with the
main venv's). Reads a JSON config:

    {"reference_features": "ref.parquet",      # the model's feature matrix of the
                                               # reference rows (scorch preprocess apply)
     "reference_scores": ["day1.parquet", ...], # scores of the calibration rows
     "reference_labels": ["lab1.parquet", ...], # their labels (same order of days)
     "key": "customer_id", "score": "churn_probability", "label": "churned",
     "threshold": 0.5, "reference_chunks": 20,
     "days": [{"ds": "...", "features": "f.parquet", "scores": "s.parquet"}, ...]}

and prints one JSON object:

    {"reference_chunk_errors": [...], "reference_chunk_rows": N,
     "reference_threshold": [lower, upper],      # for chunks of reference_chunk_rows
     "days": {"<ds>": {"reconstruction_error": x, "roc_auc": x, "f1": x,
                       "rows": n}}, "calibrated": bool, "seconds": s}

    python tests/py/nannyml_check.py CONFIG.json
"""

import json
import os
import sys
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # no calls home (and no network here)
import nannyml as nml  # noqa: E402

cfg = json.load(open(sys.argv[1]))
key, score, label, t = cfg["key"], cfg["score"], cfg["label"], cfg["threshold"]
start = time.perf_counter()

# Multivariate drift: NannyML's data reconstruction on the feature matrix.
ref = pd.read_parquet(cfg["reference_features"]).astype("float64")
features = [c for c in ref.columns if c != key]
ref_rows = len(ref)
chunk_rows = ref_rows // cfg["reference_chunks"]
ref = ref.iloc[: chunk_rows * cfg["reference_chunks"]]
calc = nml.DataReconstructionDriftCalculator(column_names=features, chunk_size=chunk_rows)
calc.fit(ref)
ref_res = calc.calculate(ref).filter(period="analysis").to_df()
chunk_errors = ref_res[("reconstruction_error", "value")].tolist()
lower = ref_res[("reconstruction_error", "lower_threshold")].iloc[0]
upper = ref_res[("reconstruction_error", "upper_threshold")].iloc[0]

# CBPE: the calibration rows' scores and labels are the reference.
def scored(scores: str, labels: str) -> pd.DataFrame:
    s = pd.read_parquet(scores, columns=[key, score])
    lab = pd.read_parquet(labels, columns=[key, label])
    return s.merge(lab, on=key, how="inner")


cref = pd.concat([scored(s, l) for s, l in zip(cfg["reference_scores"], cfg["reference_labels"])], ignore_index=True)
cref["y_pred"] = (cref[score] >= t).astype(int)
cref[label] = cref[label].astype(int)
days = {}
for d in cfg["days"]:
    f = pd.read_parquet(d["features"]).astype("float64")
    one = nml.DataReconstructionDriftCalculator(column_names=features, chunk_size=len(f))
    one.fit(ref)
    r = one.calculate(f).filter(period="analysis").to_df()
    s = pd.read_parquet(d["scores"], columns=[key, score])
    s["y_pred"] = (s[score] >= t).astype(int)
    est = nml.CBPE(
        y_pred_proba=score,
        y_pred="y_pred",
        y_true=label,
        problem_type="classification_binary",
        metrics=["roc_auc", "f1"],
        chunk_size=len(s),
    )
    est.fit(cref)
    e = est.estimate(s).filter(period="analysis").to_df()
    days[d["ds"]] = {
        "rows": len(f),
        "reconstruction_error": float(r[("reconstruction_error", "value")].iloc[0]),
        "roc_auc": float(e[("roc_auc", "value")].iloc[0]),
        "roc_auc_sampling_error": float(e[("roc_auc", "sampling_error")].iloc[0]),
        "f1": float(e[("f1", "value")].iloc[0]),
    }
print(
    json.dumps(
        {
            "reference_chunk_errors": chunk_errors,
            "reference_chunk_rows": chunk_rows,
            "reference_threshold": [lower, upper],
            "days": days,
            "calibrated": bool(est.needs_calibration),
            "seconds": time.perf_counter() - start,
        }
    )
)
