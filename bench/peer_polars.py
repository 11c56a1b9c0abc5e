"""Benchmark peer: polars + PyTorch, the strongest script a user would write.

Reads the files with polars, applies the fitted preprocessing with the same
Polars expressions as scorch (``python/scorch_prep.py``), converts to a float32
numpy matrix, scores with the TorchScript model and writes Parquet with polars.
"""

from __future__ import annotations

import os
import sys

import polars as pl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import peer_common as pc  # noqa: E402
import scorch_prep  # noqa: E402


def main() -> int:
    a = pc.args(__doc__)
    t = pc.Timer()
    df = pl.read_parquet(a.files, columns=pc.needed_columns(a.state), hive_partitioning=False)
    t.lap("read")
    x = scorch_prep.apply(df, a.state, keep=["customer_id"]).collect()
    keys = x["customer_id"]
    x = x.drop("customer_id").to_numpy().astype("float32", copy=False)
    t.lap("preprocess")
    scores = pc.score(a.model, x, a.batch)
    del x
    t.lap("infer")
    pl.DataFrame({"customer_id": keys, "churn_probability": scores}).with_columns(
        model_name=pl.lit("churn_wide"), model_version=pl.lit("1.0.0")
    ).write_parquet(a.out, compression="zstd", compression_level=3)
    t.lap("write")
    t.report(len(keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
