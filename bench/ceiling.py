"""Benchmark ceilings: what reading alone and the model alone cost.

``read``: polars reads the same columns of the same files into memory.
``forward``: the TorchScript model scores an in-memory float32 tensor of the
same shape, in the same batches, with the same thread count.
Prints one JSON line: {"what": ..., "rows": ..., "seconds": ...}.

    python bench/ceiling.py read --data 'DIR/*.parquet' --bundle DIR
    python bench/ceiling.py forward --rows 5000000 --bundle DIR --threads 2 --batch 4096
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time

import numpy as np
import polars as pl
import torch

import peer_common as pc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["read", "forward"])
    ap.add_argument("--data")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=4096)
    a = ap.parse_args()
    with open(os.path.join(a.bundle, "preprocess.state.json"), encoding="utf-8") as f:
        state = json.load(f)
    if a.what == "read":
        files = sorted(glob.glob(a.data))
        t = time.perf_counter()
        df = pl.read_parquet(files, columns=pc.needed_columns(state), hive_partitioning=False)
        secs = time.perf_counter() - t
        rows = df.height
    else:
        torch.set_num_threads(a.threads)
        model = torch.jit.load(os.path.join(a.bundle, "model.pt")).eval()
        x = np.random.default_rng(1).standard_normal((a.rows, len(state["feature_names"])), dtype=np.float32)
        t = time.perf_counter()
        pc.score(model, x, a.batch)
        secs = time.perf_counter() - t
        rows = a.rows
    print(json.dumps({"what": a.what, "rows": rows, "seconds": round(secs, 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
