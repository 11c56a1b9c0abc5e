"""Reads each table scorch wrote as a hive-partitioned dataset, the way users do.

    hive_read.py TABLE [TABLE ...]

For every table folder: pyarrow (`pq.read_table(folder)`), DuckDB
(`read_parquet('<folder>/ds=*/*.parquet', hive_partitioning=true)`) and Polars
(`scan_parquet('<folder>/**/*.parquet', hive_partitioning=True)` over the ds=
folders), and Spark's rule checked by hand: no data file holds a column named like
a partition folder. Prints one JSON object: table -> {reader: rows, "ds": [dates]}.
"""

import json
import pathlib
import sys

import duckdb
import polars as pl
import pyarrow.dataset as pads
import pyarrow.parquet as pq


def main() -> int:
    out = {}
    for t in sys.argv[1:]:
        root = pathlib.Path(t)
        files = sorted(root.glob("ds=*/*.parquet"))
        for f in files:
            cols = pq.read_schema(f).names
            assert "ds" not in cols, f"{f}: a data column `ds` inside a ds= folder"
        table = pq.read_table(root)
        assert "ds" in table.column_names, table.column_names
        dates = sorted({str(d) for d in table.column("ds").to_pylist()})
        con = duckdb.connect()
        duck = con.execute(
            f"SELECT count(*), count(DISTINCT ds) FROM read_parquet('{root}/ds=*/*.parquet', hive_partitioning=true)"
        ).fetchone()
        dataset = pads.dataset(root, format="parquet", partitioning="hive")
        lazy = pl.scan_parquet(f"{root}/ds=*/*.parquet", hive_partitioning=True)
        polars_rows = lazy.select(pl.len()).collect().item()
        polars_dates = sorted({str(d) for d in lazy.select("ds").collect().to_series().to_list()})
        assert polars_dates == dates, (polars_dates, dates)
        out[root.name] = {
            "pyarrow": table.num_rows,
            "pyarrow_dataset": dataset.count_rows(),
            "duckdb": duck[0],
            "duckdb_dates": duck[1],
            "polars": polars_rows,
            "ds": dates,
        }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
