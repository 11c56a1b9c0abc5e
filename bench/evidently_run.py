"""Evidently's side of `make bench-drift` (runs in its own venv: Evidently 0.7
needs pandas < 3). Reads the two Parquet files with pandas, then times one
Evidently Report with the PSI and KS drift presets and the data summary preset
(column quality metrics) — the statistics `scorch drift` computes in one pass.

    python bench/evidently_run.py REFERENCE.parquet CURRENT.parquet OUT.json
"""

import json
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset, DataSummaryPreset

ref_path, cur_path, out = sys.argv[1:4]
t0 = time.perf_counter()
ref = pd.read_parquet(ref_path)
cur = pd.read_parquet(cur_path)
read_s = time.perf_counter() - t0
definition = DataDefinition(numerical_columns=list(ref.columns))
t1 = time.perf_counter()
reference = Dataset.from_pandas(ref, data_definition=definition)
current = Dataset.from_pandas(cur, data_definition=definition)
report = Report([DataDriftPreset(method="psi"), DataDriftPreset(method="ks"), DataSummaryPreset()])
snapshot = report.run(current_data=current, reference_data=reference)
compute_s = time.perf_counter() - t1
values: dict = {}
for m in snapshot.dict()["metrics"]:
    cfg = m["config"]
    if str(cfg.get("type", "")).endswith("ValueDrift"):
        values.setdefault(cfg["column"], {})[cfg["method"]] = float(m["value"])
with open(out, "w") as f:
    json.dump({"read_seconds": read_s, "compute_seconds": compute_s, "columns": values}, f)
