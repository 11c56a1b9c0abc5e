"""Checks a scored partition the way a user's tools would read it.

    check_output.py PARTITION_DIR FEATURES_GLOB BUNDLE_DIR

- pyarrow reads it: the columns and types scorch documents, and the footer metadata;
- DuckDB reads it and counts the same rows;
- Python torch scores the same input rows with the bundle's TorchScript model and
  the same fitted preprocessing (scorch_prep); the scores must match scorch's.

Prints one JSON object with the figures; exits 1 when a check fails.
"""

import json
import os
import sys

import duckdb
import polars as pl
import pyarrow.parquet as pq
import torch

import scorch_prep

part, features_glob, bundle = sys.argv[1:4]
files = sorted(os.path.join(part, f) for f in os.listdir(part) if f.endswith(".parquet"))
# The file's own columns, and what a dataset reader sees (hive `ds` from the path).
file_schema = pq.ParquetFile(files[0]).schema_arrow
cols = file_schema.names
types = {f.name: str(f.type) for f in file_schema}
table = pq.read_table(part.rsplit("/ds=", 1)[0], partitioning="hive")
meta = {k.decode(): v.decode() for k, v in (pq.read_metadata(files[0]).metadata or {}).items()}
duck_rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{part}/*.parquet')").fetchall()[0][0]
duck_ids = duckdb.sql(f"SELECT count(DISTINCT customer_id) FROM read_parquet('{part}/*.parquet')").fetchall()[0][0]

state = scorch_prep.load_state(os.path.join(bundle, "preprocess.state.json"))
raw = pl.read_parquet(features_glob, hive_partitioning=True)
X = scorch_prep.to_matrix(raw, state)
torch.set_num_threads(1)
model = torch.jit.load(os.path.join(bundle, "model.pt"))
with torch.no_grad():
    py_scores = model(torch.from_numpy(X)).numpy().reshape(-1)
ours = pl.from_arrow(table).select("customer_id", "churn_probability")
theirs = pl.DataFrame({"customer_id": raw["customer_id"], "py": py_scores})
joined = ours.join(theirs, on="customer_id", how="inner")
diff = (joined["churn_probability"].cast(pl.Float64) - joined["py"].cast(pl.Float64)).abs().max()

result = {
    "columns": cols,
    "dataset_columns": table.column_names,
    "types": types,
    "rows": table.num_rows,
    "duckdb_rows": duck_rows,
    "duckdb_distinct_ids": duck_ids,
    "input_rows": raw.height,
    "joined_rows": joined.height,
    "max_abs_diff": float(diff) if diff is not None else None,
    "metadata": {k: v for k, v in meta.items() if k.startswith("scorch.")},
}
print(json.dumps(result))
ok = (
    table.num_rows == raw.height == joined.height == duck_rows
    and result["max_abs_diff"] is not None
    and result["max_abs_diff"] <= 1e-5
)
sys.exit(0 if ok else 1)
