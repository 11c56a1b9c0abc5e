"""Puts non-finite values and empty strings into Parquet files, in place.

    corrupt_day.py DIR [EVERY]

Every Parquet file under DIR: in the float columns `age` and `data_usage_gb`, row i
with i % EVERY == 0 becomes +inf, == 1 -inf, == 2 NaN; in the string column `plan`,
row i % EVERY == 3 becomes "". Prints the counts as JSON (per column: non_finite,
empty), for the test to compare with the report.
"""

import json
import math
import pathlib
import sys

import polars as pl


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    every = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    counts = {"age": 0, "data_usage_gb": 0, "plan_empty": 0}
    for f in sorted(root.rglob("*.parquet")):
        df = pl.read_parquet(f, hive_partitioning=False)
        i = pl.int_range(pl.len()) % every
        out = df.with_columns(
            [
                pl.when(i == 0)
                .then(math.inf)
                .when(i == 1)
                .then(-math.inf)
                .when(i == 2)
                .then(math.nan)
                .otherwise(pl.col(c))
                .cast(pl.Float64)
                .alias(c)
                for c in ("age", "data_usage_gb")
            ]
            + [pl.when(i == 3).then(pl.lit("")).otherwise(pl.col("plan")).alias("plan")]
        )
        for c in ("age", "data_usage_gb"):
            counts[c] += out.select(pl.col(c).is_infinite() | pl.col(c).is_nan()).sum().item()
        counts["plan_empty"] += out.select((pl.col("plan") == "").sum()).item()
        out.write_parquet(f)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
