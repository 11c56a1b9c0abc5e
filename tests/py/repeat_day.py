"""Makes a big day out of an example day: the rows repeated with new, unique keys.

    repeat_day.py SRC_DAY_DIR OUT_DAY_DIR TIMES FILES [DUPLICATES]

Copy k (0 <= k < TIMES) of every row gets customer_id + k * 10**9, so every key is
unique; the rows are written as FILES Parquet files. With DUPLICATES > 0, that many
rows spread over the day take the key of another row. Prints JSON: rows, the
duplicated keys, and DuckDB's exact figures over the written files (distinct keys
and keys that occur once) for the test to compare with scorch's report.
"""

import json
import os
import sys

import duckdb
import polars as pl

src, out, times, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
dups = int(sys.argv[5]) if len(sys.argv) > 5 else 0
day = pl.read_parquet(os.path.join(src, "*.parquet"))
big = pl.concat(
    [day.with_columns(pl.col("customer_id") + k * 10**9) for k in range(times)]
)
ids = big["customer_id"].to_list()
duplicated = []
n = len(ids)
for i in range(dups):
    a, b = (i * 7919 + 13) % n, (i * 104729 + n // 2) % n
    ids[a] = ids[b]
    duplicated.append(ids[b])
big = big.with_columns(pl.Series("customer_id", ids, dtype=big["customer_id"].dtype))
os.makedirs(out, exist_ok=True)
per = -(-n // files)
for f in range(files):
    big.slice(f * per, per).write_parquet(os.path.join(out, f"part-{f}.parquet"))
distinct, once = duckdb.sql(
    f"select count(*), count(*) filter (where n = 1) from "
    f"(select customer_id, count(*) n from read_parquet('{out}/*.parquet') group by 1)"
).fetchall()[0]
print(json.dumps({"rows": n, "duplicated": sorted(set(duplicated)), "distinct": distinct, "once": once}))
