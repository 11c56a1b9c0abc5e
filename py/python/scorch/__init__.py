"""scorch: batch scoring with the preprocessing the model was trained with.

The training half of training/serving parity. Every function here runs scorch's
own Rust code (the extension module ``scorch._native``), so a model trained on
``to_matrix``'s output is served exactly those features by ``scorch run``::

    import scorch
    state = scorch.fit("preprocess/features.yaml", train)        # a frame or a Parquet path
    X = scorch.to_matrix(train, state)                            # float32, rows x features
    model = train_my_model(X, y)                                  # any torch.nn.Module
    scorch.save_bundle("models/my_model/1.0.0", model, state,
                       outputs=["score"], name="my_model", version="1.0.0")

Frames may be polars, pandas or pyarrow tables, or a Parquet file, folder or glob
(read as ``scorch preprocess fit --data`` reads it). Errors are ``ScorchError``,
with the message and exit code the command line gives.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "ScorchError",
    "State",
    "fit",
    "load_state",
    "apply",
    "to_matrix",
    "save_bundle",
    "check_bundle",
    "profile_bundle",
    "schema",
    "__version__",
]

#: The torch release whose libtorch scorch is built against.
TORCH_VERSION = "2.13.0"


class ScorchError(Exception):
    """An error of scorch's, with the exit code the command line would give
    (2 configuration, 3 data, 4 model or bundle, 1 internal)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


_extension = None


def _ext():
    """The extension module ``scorch._native``, loaded on first use, after torch's
    libtorch."""
    global _extension
    if _extension is None:
        _load_libtorch()
        from . import _native

        _extension = _native
    return _extension


def _load_libtorch() -> None:
    # The extension links libtorch; it takes the one of the installed torch package
    # (no rpath, no LD_LIBRARY_PATH): loading it here by path, globally, lets the
    # dynamic loader resolve the extension's libtorch against it. Importing torch
    # first does the same, only slower; both give one libtorch per process.
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"scorch needs torch=={TORCH_VERSION}: pip install torch=={TORCH_VERSION}")
    version = importlib.metadata.version("torch").split("+")[0]
    if version != TORCH_VERSION:
        raise ImportError(
            f"scorch is built against libtorch {TORCH_VERSION}, but torch {version} is installed: "
            f"pip install torch=={TORCH_VERSION}"
        )
    import ctypes

    lib = os.path.join(list(spec.submodule_search_locations)[0], "lib")
    # libtorch.so and the CUDA half are loaded later, from the same folder, only
    # when a run asks for CUDA or an AOTInductor package (src/infer/libtorch.rs).
    for name in ("libc10.so", "libtorch_cpu.so"):
        path = os.path.join(lib, name)
        if os.path.exists(path):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def __getattr__(name: str):
    if name == "__version__":
        return importlib.metadata.version("scorch")
    raise AttributeError(name)


class State:
    """A fitted preprocessing state: the spec and every value learned from the
    training data, sealed by a content hash (what ``scorch preprocess fit`` writes
    and a bundle's ``preprocess.state.json`` holds)."""

    def __init__(self, text: str):
        self._text = _ext().check_state(text)
        self._doc = json.loads(self._text)

    @property
    def feature_names(self) -> list[str]:
        """The model's input columns, in order."""
        return list(self._doc["feature_names"])

    @property
    def content_hash(self) -> str:
        """``sha256:…`` over the spec and the fitted values."""
        return self._doc["content_hash"]

    @property
    def spec(self) -> dict[str, Any]:
        """The preprocessing spec that was fitted."""
        return self._doc["spec"]

    def to_json(self) -> str:
        """The state as ``scorch preprocess fit`` writes it."""
        return self._text

    def save(self, path: str | os.PathLike) -> None:
        """Writes the state file (JSON)."""
        Path(path).write_text(self._text, encoding="utf-8")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, State) and other.content_hash == self.content_hash

    def __hash__(self) -> int:
        return hash(self.content_hash)

    def __repr__(self) -> str:
        s = self.spec
        return f"State({s['name']} {s['version']}, {len(self.feature_names)} features, {self.content_hash[:19]}…)"


def load_state(path: str | os.PathLike) -> State:
    """Reads a state file and checks its hash."""
    return State(Path(path).read_text(encoding="utf-8"))


def _frame(data: Any):
    """``(argument for the extension, kind)``: a path string, or Parquet bytes of a
    frame and the frame's kind (for returning the same kind)."""
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data), "path"
    module = type(data).__module__.split(".")[0]
    buf = io.BytesIO()
    if module == "polars":
        import polars as pl

        if isinstance(data, pl.LazyFrame):
            data = data.collect()
        data.write_parquet(buf, compression="uncompressed", statistics=False)
        return buf.getvalue(), "polars"
    import pyarrow as pa
    import pyarrow.parquet as pq

    if module == "pandas":
        table, kind = pa.Table.from_pandas(data, preserve_index=False), "pandas"
    elif isinstance(data, pa.RecordBatch):
        table, kind = pa.Table.from_batches([data]), "pyarrow"
    elif isinstance(data, pa.Table):
        table, kind = data, "pyarrow"
    elif hasattr(data, "__arrow_c_stream__"):
        table, kind = pa.table(data), "pyarrow"
    else:
        raise TypeError(
            f"expected a polars, pandas or pyarrow frame or a Parquet path, not {type(data).__name__}"
        )
    pq.write_table(table, buf, compression="none")
    return buf.getvalue(), kind


def _unframe(parquet: bytes, kind: str):
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(parquet))
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    if kind == "pandas":
        return table.to_pandas()
    return table


def _state_text(state: State | str | os.PathLike) -> str:
    if isinstance(state, State):
        return state.to_json()
    return load_state(state).to_json()


def fit(spec: str | os.PathLike, data: Any) -> State:
    """Fits the preprocessing spec (a YAML file) on training data, exactly as
    ``scorch preprocess fit --spec SPEC --data DATA`` does."""
    return State(_ext().fit(os.fspath(spec), _frame(data)[0]))


def apply(data: Any, state: State | str | os.PathLike, keep: str | Iterable[str] = ()):
    """The ``keep`` columns (a name or names of input columns), then the features
    (Float64, in model order), as ``scorch preprocess apply``. Returns the kind of
    frame it was given (a pyarrow Table for a path)."""
    arg, kind = _frame(data)
    keep = [keep] if isinstance(keep, str) else list(keep)
    return _unframe(_ext().apply(arg, _state_text(state), keep), kind)


def to_matrix(data: Any, state: State | str | os.PathLike):
    """The float32 matrix (rows x features, a numpy array) that ``scorch run``
    gives the model for these rows: bit for bit what serving sees. A null, NaN or
    infinite feature raises ``ScorchError`` (exit code 3), as it fails a run."""
    import numpy as np

    buf, rows, cols = _ext().to_matrix(_frame(data)[0], _state_text(state))
    return np.frombuffer(buf, dtype="<f4").reshape(rows, cols)


def _outputs(outputs: Any) -> list[str]:
    if outputs is None:
        return []
    if isinstance(outputs, str):
        return [outputs]
    if isinstance(outputs, dict):
        out = []
        for name, shape in outputs.items():
            dims = [] if shape in (None, (), []) else ([shape] if isinstance(shape, int) else list(shape))
            out.append(f"{name}:[{','.join(str(d) for d in dims)}]")
        return out
    return [str(o) for o in outputs]


def save_bundle(
    dir: str | os.PathLike,
    model: Any,
    state: State | str | os.PathLike,
    *,
    name: str,
    version: str,
    outputs: Any = None,
    format: str = "torchscript",
    description: str | None = None,
    example: Any = None,
    overwrite: bool = False,
    reference: Any = None,
    labels: str | None = None,
    calibration: Any = None,
    labels_data: Any = None,
    labels_on: str | Iterable[str] = (),
    score: str | None = None,
    thresholds: Iterable[float] | None = None,
) -> str:
    """Exports ``model`` into the bundle folder ``dir``, probes it for its output
    shapes and writes a bundle that ``scorch run`` loads (``bundle.yaml``, the model
    file, ``preprocess.state.json``), then checks it as ``scorch bundle check``
    does. Returns that check's summary (and with ``reference``, the profile's).

    - ``model``: a ``torch.nn.Module`` (traced for ``format="torchscript"``, or
      ``torch.export``-ed with a dynamic batch dimension and compiled with
      AOTInductor for ``format="aoti"``), a ``torch.jit.ScriptModule``, or the
      path of a model file already exported.
    - ``outputs``: the score column names, in the order the model returns them:
      ``["score"]``, ``["probs:3"]`` or ``{"probs": 3}``. Default ``score`` (or
      ``score_0``, ``score_1``, …).
    - ``example``: an input batch for tracing or export (default: 2 rows of zeros
      of the state's width).
    - ``overwrite``: replace an existing ``bundle.yaml`` in ``dir``.
    - ``reference`` and the arguments after it: profile the new bundle, as
      :func:`profile_bundle` does (drift reference, PCA for multivariate drift
      and, with ``labels``, the calibration for performance estimated without
      labels).
    """
    if reference is None and any(
        v not in (None, ()) for v in (labels, calibration, labels_data, labels_on, score, thresholds)
    ):
        raise ScorchError("labels, calibration, labels_data, labels_on, score and thresholds need reference=", 2)
    if format not in ("torchscript", "aoti"):
        raise ValueError(f'format must be "torchscript" or "aoti", not {format!r}')
    native = _ext()
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    st = state if isinstance(state, State) else load_state(state)
    if (dir / "bundle.yaml").exists() and not overwrite:
        raise ScorchError(f"{dir / 'bundle.yaml'} exists: pass overwrite=True to replace it", 2)
    state_path = dir / "preprocess.state.json"
    st.save(state_path)
    if isinstance(model, (str, os.PathLike)):
        model_path = Path(model)
    else:
        model_path = _export(model, dir, format, len(st.feature_names), example)
    summary = native.create_bundle(
        os.fspath(dir),
        os.fspath(model_path),
        os.fspath(state_path),
        name,
        version,
        _outputs(outputs),
        format,
        description,
        True,
    )
    if reference is not None:
        summary += "\n" + profile_bundle(
            dir,
            reference,
            labels=labels,
            calibration=calibration,
            labels_data=labels_data,
            labels_on=labels_on,
            score=score,
            thresholds=thresholds,
        )
    return summary


def profile_bundle(
    dir: str | os.PathLike,
    data: Any,
    *,
    labels: str | None = None,
    calibration: Any = None,
    labels_data: Any = None,
    labels_on: str | Iterable[str] = (),
    score: str | None = None,
    thresholds: Iterable[float] | None = None,
    bins: int = 10,
    sketch: int | None = None,
    html: str | os.PathLike | None = None,
) -> str:
    """Profiles the bundle in ``dir`` as ``scorch profile`` does; returns its summary.

    - ``data``: the training data (a Parquet path or glob, or a polars, pandas or
      pyarrow frame): every input column and the model's scores on it, for drift
      reports; a PCA of the model's features, for multivariate drift.
    - ``labels``: the label column (booleans or 0/1) to calibrate the model's score
      on, for performance estimated without labels (``report.performance``); it is
      a column of ``calibration`` (held-out labelled rows the model was not trained
      on; default ``data``), or of ``labels_data`` joined on ``labels_on``.
    - ``score``: the score column calibrated (default: the model's first);
      ``thresholds``: where the reference precision, recall and F1 are measured
      (default ``[0.5]``).
    - ``bins``, ``sketch``: quantile bins and sketch points per numeric column.
    - ``html``: also write the profile as a self-contained page there (columns,
      reference performance and reliability diagram, PCA).
    """
    import tempfile

    if labels is None and any(v not in (None, ()) for v in (calibration, labels_data, labels_on, score, thresholds)):
        raise ScorchError("calibration, labels_data, labels_on, score and thresholds need labels=", 2)
    with tempfile.TemporaryDirectory(prefix="scorch-profile-") as tmp:
        frames: dict[str, str] = {}

        def path_of(what: str, d: Any) -> str:
            # Frames cross as Parquet files, read as the command line reads them.
            arg, kind = _frame(d)
            if kind == "path":
                return arg
            p = os.path.join(tmp, f"{what}.parquet")
            with open(p, "wb") as f:
                f.write(arg)
            frames[p] = f"the `{what}` frame"
            return p

        kwargs: dict[str, Any] = {"bins": bins, "sketch": sketch}
        if html is not None:
            kwargs["html"] = os.fspath(html)
        if labels is not None:
            kwargs["labels"] = labels
            if calibration is not None:
                kwargs["calibration_data"] = path_of("calibration", calibration)
            if labels_data is not None:
                kwargs["labels_data"] = path_of("labels", labels_data)
            kwargs["labels_on"] = [labels_on] if isinstance(labels_on, str) else list(labels_on)
            kwargs["score"] = score
            if thresholds is not None:
                kwargs["thresholds"] = [float(t) for t in thresholds]
        data_path = path_of("data", data)
        try:
            return _ext().profile_bundle(os.fspath(dir), data_path, **kwargs).rstrip("\n")
        except ScorchError as e:
            # Name a frame as the caller passed it, not by its temporary file.
            message = str(e)
            for p, name in frames.items():
                message = message.replace(p, name)
            if message == str(e):
                raise
            raise ScorchError(message, e.exit_code) from None


def _export(model: Any, dir: Path, format: str, n_features: int, example: Any) -> Path:
    import torch

    x = example if example is not None else torch.zeros(2, n_features)
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with torch.no_grad():
            if format == "torchscript":
                path = dir / "model.pt"
                scripted = model if isinstance(model, torch.jit.ScriptModule) else torch.jit.trace(model, x)
                scripted.save(os.fspath(path))
                return path
            path = dir / "model.pt2"
            # Any number of rows: runs score batches of `inference.batch_size` and a
            # shorter last one.
            batch = torch.export.Dim("batch", min=1)
            if x.shape[0] < 2:
                x = torch.cat([x, x])
            program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
            torch._inductor.aoti_compile_and_package(program, package_path=os.fspath(path))
            return path
    finally:
        if was_training:
            model.train()


def check_bundle(dir: str | os.PathLike) -> str:
    """Opens a bundle as a run does and runs its model on a probe (``scorch bundle
    check``); returns the summary, raises ``ScorchError`` on a problem."""
    return _ext().check_bundle(os.fspath(dir))


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a kind of YAML file: ``job``, ``bundle``,
    ``preprocessing``, ``contract`` or ``profiles`` (``scorch schema KIND``)."""
    return json.loads(_ext().json_schema(kind))
