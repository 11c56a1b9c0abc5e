"""What both Python peers share: arguments, the model loop and the output write.

Each peer is the script a user would write without scorch: read the day's
Parquet, apply the model's preprocessing, run the TorchScript model in batches
under ``torch.inference_mode()`` with the same thread count, and write keys +
scores as a zstd Parquet file. Prints one JSON line with its timings.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time

import numpy as np
import torch


def args(doc: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--data", required=True, help="glob of the input Parquet files")
    ap.add_argument("--bundle", required=True, help="model bundle folder")
    ap.add_argument("--out", required=True, help="output Parquet file")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=4096)
    a = ap.parse_args()
    a.files = sorted(glob.glob(a.data))
    torch.set_num_threads(a.threads)
    with open(os.path.join(a.bundle, "preprocess.state.json"), encoding="utf-8") as f:
        a.state = json.load(f)
    a.model = torch.jit.load(os.path.join(a.bundle, "model.pt"))
    a.model.eval()
    return a


def needed_columns(state: dict) -> list[str]:
    derived = {d["name"] for d in state["spec"].get("derived", [])}
    cols = ["customer_id"]
    import re

    for d in state["spec"].get("derived", []):
        for name in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", d["sql"]):
            if name not in cols and name not in derived:
                cols.append(name)
    for f in state["spec"]["features"]:
        if f["column"] not in cols and f["column"] not in derived:
            cols.append(f["column"])
    return cols


def score(model, x: np.ndarray, batch: int) -> np.ndarray:
    out = np.empty(x.shape[0], dtype=np.float32)
    t = torch.from_numpy(x)
    with torch.inference_mode():
        for i in range(0, x.shape[0], batch):
            out[i : i + batch] = model(t[i : i + batch]).numpy()
    return out


class Timer:
    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.stages: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.stages[name] = round(now - self.t, 3)
        self.t = now

    def report(self, rows: int) -> None:
        print(json.dumps({"rows": rows, "stages": self.stages}))
