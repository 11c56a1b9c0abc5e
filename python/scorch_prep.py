"""Apply a scorch preprocessing state with polars-python (training/serving parity).

scorch fits a preprocessing spec once (``scorch preprocess fit``) and applies the
fitted state at serving time in Rust. Training code applies the *same* state with
this module, so the model is trained on exactly the features it will be served.
Every step builds the same Polars expression as ``src/preprocess/mod.rs``; a test
(``tests/it/parity.rs``) checks that both give the same feature matrix.

    import polars as pl, scorch_prep
    state = scorch_prep.load_state("models/churn/1.0.0/preprocess.state.json")
    X = scorch_prep.apply(pl.scan_parquet("data/churn/features/**/*.parquet"), state).collect()
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import polars as pl

UNKNOWN = "__unknown__"
CAST = {
    "float64": pl.Float64,
    "float32": pl.Float32,
    "int64": pl.Int64,
    "int32": pl.Int32,
    "boolean": pl.Boolean,
    "string": pl.String,
}


def load_state(path: str) -> dict[str, Any]:
    """Reads a fitted state file (JSON written by ``scorch preprocess fit``)."""
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    if state.get("format_version") != 1:
        raise ValueError(f"{path}: unsupported format_version {state.get('format_version')}")
    return state


def _step_kind(step: Any) -> tuple[str, Any]:
    # Unit steps serialize as a string ("log1p"), the others as {"kind": options}.
    if isinstance(step, str):
        return step, None
    ((kind, opts),) = step.items()
    return kind, opts


def _step(e: pl.Expr, step: Any, fitted: dict[str, Any], out: str) -> list[pl.Expr] | pl.Expr:
    kind, opts = _step_kind(step)
    fk = fitted["kind"]
    if kind == "cast":
        return e.cast(CAST[opts], strict=True)
    if kind == "fill_null":
        value = opts.get("value") if fk == "none" else fitted["value"]
        return e.fill_null(pl.lit(value))
    if kind == "clip":
        x = e.cast(pl.Float64)
        lo, hi = opts.get("min"), opts.get("max")
        return x.clip(lower_bound=lo, upper_bound=hi)
    if kind == "log1p":
        return e.cast(pl.Float64).log1p()
    if kind == "standardize":
        return (e.cast(pl.Float64) - fitted["mean"]) / fitted["std"]
    if kind == "min_max":
        lo, hi = fitted["min"], fitted["max"]
        rng = hi - lo if hi > lo else 1.0
        return (e.cast(pl.Float64) - lo) / rng
    if kind == "ordinal":
        cats = fitted["categories"]
        codes = [float(i) for i in range(1, len(cats) + 1)]
        return (
            e.cast(pl.String)
            .replace_strict(pl.Series(cats, dtype=pl.String), pl.Series(codes, dtype=pl.Float64), default=0.0, return_dtype=pl.Float64)
            .fill_null(0.0)
        )
    if kind == "one_hot":
        cats = fitted["categories"]
        s = e.cast(pl.String)
        cols = [s.eq(pl.lit(c)).fill_null(False).cast(pl.Float64).alias(f"{out}={c}") for c in cats]
        cols.append(
            s.is_in(pl.Series(cats, dtype=pl.String)).not_().fill_null(True).cast(pl.Float64).alias(f"{out}={UNKNOWN}")
        )
        return cols
    if kind == "bucketize":
        x = e.cast(pl.Float64)
        bs = fitted["boundaries"]
        acc = None
        for b in bs:
            term = (x >= b).cast(pl.Float64)
            acc = term if acc is None else acc + term
        return acc if acc is not None else x * 0.0
    raise ValueError(f"unknown step {kind!r}")


def feature_exprs(state: dict[str, Any]) -> list[pl.Expr]:
    """The feature expressions, in model input order."""
    exprs: list[pl.Expr] = []
    for feat, fitted in zip(state["spec"]["features"], state["fitted"]):
        out = feat.get("name") or feat["column"]
        e = pl.col(feat["column"])
        wide = None
        for step, fs in zip(feat.get("steps", []), fitted):
            r = _step(e, step, fs, out)
            if isinstance(r, list):
                wide = r
            else:
                e = r
        if wide is not None:
            exprs.extend(wide)
        else:
            exprs.append(e.cast(pl.Float64).alias(out))
    return exprs


def apply(frame: pl.LazyFrame | pl.DataFrame, state: dict[str, Any], keep: list[str] | None = None) -> pl.LazyFrame:
    """Derived columns, then ``keep`` columns, then the features (Float64, model order)."""
    lf = frame.lazy()
    for d in state["spec"].get("derived", []):
        lf = lf.with_columns(pl.sql_expr(d["sql"]).alias(d["name"]))
    out = lf.select([pl.col(k) for k in (keep or [])] + feature_exprs(state))
    names = out.collect_schema().names()[len(keep or []):]
    if names != state["feature_names"]:
        raise ValueError("state feature names do not match the spec's features")
    return out


def to_matrix(frame: pl.LazyFrame | pl.DataFrame, state: dict[str, Any]):
    """Applies the state and returns a float32 numpy matrix (rows × features)."""
    df = apply(frame, state).collect()
    return df.to_numpy().astype("float32", copy=False)


def sha256(path: str) -> str:
    """Hex SHA-256 of a file (what a bundle's ``model_sha256`` holds)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_bundle(
    out: str,
    name: str,
    version: str,
    description: str,
    state: dict[str, Any],
    header: str = "",
    model_file: str = "model.pt",
    fmt: str = "torchscript",
) -> None:
    """Writes ``out/bundle.yaml`` for the model file ``out/<model_file>`` in format
    ``fmt`` (``torchscript`` or ``aoti``; one output, ``churn_probability``) and the
    fitted state in ``out/preprocess.state.json``."""
    bundle = {
        "name": name,
        "version": version,
        "description": description,
        "format": fmt,
        "model_file": model_file,
        "model_sha256": sha256(os.path.join(out, model_file)),
        "features": state["feature_names"],
        "outputs": [{"name": "churn_probability", "shape": []}],
        "preprocessing": {
            "name": state["spec"]["name"],
            "version": state["spec"]["version"],
            "state_file": "preprocess.state.json",
            "state_hash": state["content_hash"],
        },
    }
    # YAML is a superset of JSON; keep one key per line for readable diffs.
    with open(os.path.join(out, "bundle.yaml"), "w", encoding="utf-8") as f:
        f.write(header)
        for k, v in bundle.items():
            f.write(f"{k}: {json.dumps(v)}\n")
