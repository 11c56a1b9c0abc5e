"""Reads a Delta table scorch wrote with independent readers (the `deltalake`
package and Polars' `read_delta`) and prints what they see as JSON, for
tests/delta.rs to compare with scorch's own run manifests.

    delta_read.py TABLE_URI [--endpoint http://127.0.0.1:PORT] [--at VERSION ...]
"""

import argparse
import json
import os

import polars as pl
from deltalake import DeltaTable


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("uri")
    ap.add_argument("--endpoint")
    ap.add_argument("--at", type=int, action="append", default=[])
    a = ap.parse_args()
    opts = None
    if a.endpoint:
        opts = {
            "AWS_ENDPOINT_URL": a.endpoint,
            "AWS_ACCESS_KEY_ID": os.environ["S3_KEY"],
            "AWS_SECRET_ACCESS_KEY": os.environ["S3_SECRET"],
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
    t = DeltaTable(a.uri, storage_options=opts)
    history = [
        {
            "version": h.get("version"),
            "operation": h.get("operation"),
            "run_id": h.get("scorch.run_id"),
            "ds": h.get("scorch.ds"),
            "model": h.get("scorch.model_name"),
            "model_version": h.get("scorch.model_version"),
            "preprocessing_state_hash": h.get("scorch.preprocessing_state_hash"),
        }
        for h in t.history()
    ]

    def summary(version):
        df = pl.read_delta(a.uri, version=version, storage_options=opts)
        per = (
            df.group_by("ds")
            .agg(pl.len().alias("rows"), pl.col("run_id").unique().sort().alias("run_ids"))
            .sort("ds")
        )
        return {
            str(r["ds"]): {"rows": r["rows"], "run_ids": r["run_ids"]}
            for r in per.iter_rows(named=True)
        }

    # deltalake's own reader, independently of Polars: rows per date now.
    arrow = t.to_pyarrow_table()
    dl_rows = {}
    for ds in arrow.column("ds").to_pylist():
        dl_rows[str(ds)] = dl_rows.get(str(ds), 0) + 1
    files = sorted(t.file_uris())
    print(
        json.dumps(
            {
                "version": t.version(),
                "history": history,
                "files": [f.split("/", 3)[-1] if "://" in f else f for f in files],
                "deltalake_rows": dl_rows,
                "now": summary(None),
                "at": {str(v): summary(v) for v in a.at},
                "columns": arrow.column_names,
            }
        )
    )


if __name__ == "__main__":
    main()
