"""Benchmark peer: pandas + PyTorch, the common script a user would write.

Reads the files with pandas (pyarrow engine), applies the fitted preprocessing
with pandas/numpy (same steps and fitted values as scorch), scores with the
TorchScript model and writes Parquet with pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import peer_common as pc


def step(s: pd.Series, kind: str, opts, fitted: dict, out: str):
    fk = fitted["kind"]
    if kind == "cast":
        return s.astype("float64")
    if kind == "fill_null":
        return s.fillna(opts.get("value") if fk == "none" else fitted["value"])
    if kind == "clip":
        return s.astype("float64").clip(lower=opts.get("min"), upper=opts.get("max"))
    if kind == "log1p":
        return np.log1p(s.astype("float64"))
    if kind == "standardize":
        return (s.astype("float64") - fitted["mean"]) / fitted["std"]
    if kind == "min_max":
        lo, hi = fitted["min"], fitted["max"]
        return (s.astype("float64") - lo) / (hi - lo if hi > lo else 1.0)
    if kind == "ordinal":
        cats = fitted["categories"]
        return s.map({c: float(i + 1) for i, c in enumerate(cats)}).fillna(0.0)
    if kind == "one_hot":
        cats = fitted["categories"]
        cols = {f"{out}={c}": (s == c).astype("float64") for c in cats}
        cols[f"{out}=__unknown__"] = (~s.isin(cats)).astype("float64")
        return cols
    if kind == "bucketize":
        x = s.astype("float64").to_numpy()
        return pd.Series(np.zeros(len(x)) if not fitted["boundaries"] else
                         sum((x >= b).astype("float64") for b in fitted["boundaries"]), index=s.index)
    raise ValueError(kind)


def preprocess(df: pd.DataFrame, state: dict) -> np.ndarray:
    for d in state["spec"].get("derived", []):
        df[d["name"]] = df.eval(d["sql"])
    cols: dict[str, pd.Series] = {}
    for feat, fitted in zip(state["spec"]["features"], state["fitted"]):
        out = feat.get("name") or feat["column"]
        s = df[feat["column"]]
        wide = None
        for st, fs in zip(feat.get("steps", []), fitted):
            kind, opts = (st, None) if isinstance(st, str) else next(iter(st.items()))
            r = step(s, kind, opts or {}, fs, out)
            if isinstance(r, dict):
                wide = r
            else:
                s = r
        if wide is not None:
            cols.update(wide)
        else:
            cols[out] = s.astype("float64")
    assert list(cols) == state["feature_names"]
    return np.column_stack([cols[n].to_numpy() for n in state["feature_names"]]).astype(np.float32)


def main() -> int:
    a = pc.args(__doc__)
    t = pc.Timer()
    df = pd.concat(
        [pd.read_parquet(f, columns=pc.needed_columns(a.state), engine="pyarrow") for f in a.files],
        ignore_index=True,
    )
    t.lap("read")
    x = preprocess(df, a.state)
    keys = df["customer_id"].to_numpy()
    del df
    t.lap("preprocess")
    scores = pc.score(a.model, x, a.batch)
    del x
    t.lap("infer")
    out = pd.DataFrame({"customer_id": keys, "churn_probability": scores})
    out["model_name"] = "churn_wide"
    out["model_version"] = "1.0.0"
    out.to_parquet(a.out, compression="zstd", index=False)
    t.lap("write")
    t.report(len(keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
