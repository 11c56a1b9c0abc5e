"""Writes the feature matrix of a fitted state applied by polars-python.

    features_python.py STATE_JSON DATA_GLOB OUT_PARQUET KEEP_COLUMN
"""

import sys

import polars as pl

import scorch_prep

state_path, data, out, keep = sys.argv[1:5]
state = scorch_prep.load_state(state_path)
frame = pl.scan_parquet(data, hive_partitioning=True)
scorch_prep.apply(frame, state, keep=[keep]).collect().write_parquet(out)
