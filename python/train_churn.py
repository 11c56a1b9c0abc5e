"""Train the example churn model and write its scorch bundle.

1. fits ``preprocess/churn_features.yaml`` on the training days with
   ``scorch preprocess fit`` (the fitted state is what serving applies);
2. applies that state with ``scorch_prep`` (polars-python, same expressions);
3. trains a small MLP with torch on the labelled days;
4. exports it (``--format``) as TorchScript (``model.pt``, the default) or as an
   AOTInductor package (``model.pt2``: ``torch.export`` with a dynamic batch
   dimension, then ``torch._inductor.aoti_compile_and_package``) and writes
   ``models/churn/<version>/``: the model file, ``preprocess.state.json`` and
   ``bundle.yaml`` with the model's format, sha256, its ordered features, outputs
   and pinned preprocessing.

    python python/train_churn.py --scorch target/debug/scorch --data data/churn --out models/churn/1.0.0
    python python/train_churn.py --scorch target/debug/scorch --data data/churn --out models/churn/2.0.0 \
        --version 2.0.0 --arch wide_deep --epochs 10 --seed 11

``--from-bundle DIR`` skips training: it loads the weights of a bundle this script
wrote (its TorchScript ``model.pt``) into ``--arch`` and exports them again in
``--format`` into ``--out``, with the same preprocessing state and reference
profile — the same model in the other format:

    python python/train_churn.py --from-bundle models/churn/1.0.0 --format aoti --out /tmp/churn-aoti

An AOTInductor package is compiled for one device kind (``--device``) and, on CPU,
for the vector instructions of the machine that compiles it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import polars as pl
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scorch_prep  # noqa: E402


class ChurnMLP(torch.nn.Module):
    def __init__(self, n_in: int, hidden: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden // 2),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden // 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One churn probability per row: shape [n].
        return torch.sigmoid(self.net(x)).squeeze(-1)


class ChurnWideDeep(torch.nn.Module):
    """Wide & deep: a linear term on the raw features plus a wider GELU MLP with
    layer normalisation (the 2.0.0 challenger's architecture)."""

    def __init__(self, n_in: int, hidden: int = 128):
        super().__init__()
        self.wide = torch.nn.Linear(n_in, 1)
        self.deep = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden),
            torch.nn.LayerNorm(hidden),
            torch.nn.GELU(),
            torch.nn.Linear(hidden, hidden // 2),
            torch.nn.GELU(),
            torch.nn.Linear(hidden // 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.wide(x) + self.deep(x)).squeeze(-1)


def export(model: torch.nn.Module, n_features: int, out: str, fmt: str, device: str = "cpu") -> str:
    """Writes ``model`` into ``out`` as TorchScript (``model.pt``) or as an AOTInductor
    package (``model.pt2``) for ``device``; returns the file name."""
    model.eval()
    if fmt == "torchscript":
        with torch.no_grad():
            scripted = torch.jit.trace(model, torch.zeros(2, n_features))
        scripted.save(os.path.join(out, "model.pt"))
        return "model.pt"
    model = model.to(device)
    # Any number of rows: scorch scores batches of `inference.batch_size` rows and a
    # shorter last batch.
    batch = torch.export.Dim("batch", min=1)
    example = (torch.zeros(4, n_features, device=device),)
    with torch.no_grad():
        program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
        torch._inductor.aoti_compile_and_package(program, package_path=os.path.join(out, "model.pt2"))
    return "model.pt2"


def reexport(a: argparse.Namespace) -> int:
    """``--from-bundle``: the weights of a bundle's TorchScript model in ``--format``."""
    src = a.from_bundle
    with open(os.path.join(src, "bundle.yaml"), encoding="utf-8") as f:
        # Bundles this script writes hold one JSON value per key and line.
        spec = {
            k: json.loads(v)
            for k, v in (line.split(": ", 1) for line in f if line.strip() and not line.startswith("#"))
        }
    os.makedirs(a.out, exist_ok=True)
    state_file = spec["preprocessing"]["state_file"]
    shutil.copy(os.path.join(src, state_file), os.path.join(a.out, "preprocess.state.json"))
    state = scorch_prep.load_state(os.path.join(a.out, "preprocess.state.json"))
    cls, _ = ARCHITECTURES[a.arch]
    model = cls(len(state["feature_names"]))
    model.load_state_dict(torch.jit.load(os.path.join(src, spec["model_file"])).state_dict())
    model_file = export(model, len(state["feature_names"]), a.out, a.format, a.device)
    scorch_prep.write_bundle(
        a.out,
        spec["name"],
        a.version if a.version_set else spec["version"],
        f"{spec.get('description', '')} (re-exported as {a.format} from {src})",
        state,
        header="# Written by python/train_churn.py --from-bundle; edit the script, not this file.\n",
        model_file=model_file,
        fmt=a.format,
    )
    if "reference_profile" in spec:
        ref = spec["reference_profile"]
        shutil.copy(os.path.join(src, ref["file"]), os.path.join(a.out, ref["file"]))
        with open(os.path.join(a.out, "bundle.yaml"), "a", encoding="utf-8") as f:
            f.write(f"reference_profile: {json.dumps(ref)}\n")
    print(f"wrote bundle {a.out} ({a.format}, {model_file})")
    return 0


ARCHITECTURES = {
    # name: (class, description of the layers for bundle.yaml)
    "mlp": (ChurnMLP, "MLP {n}-64-32-1"),
    "wide_deep": (ChurnWideDeep, "wide & deep: linear {n}-1 + GELU MLP {n}-128-64-1 with LayerNorm"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scorch", help="path of the scorch binary (needed to train)")
    ap.add_argument("--data", default="data/churn", help="dataset folder (make_churn_data.py output)")
    ap.add_argument("--spec", default="preprocess/churn_features.yaml")
    ap.add_argument("--train-days", default="2026-10-*", help="glob of the training days' ds values")
    ap.add_argument(
        "--calibration-days", default="2026-11-0[1-5]", help="glob of the held-out labelled days the score is calibrated on"
    )
    ap.add_argument("--out", default="models/churn/1.0.0", help="bundle folder to write")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--arch", choices=sorted(ARCHITECTURES), default="mlp", help="network architecture")
    ap.add_argument("--format", choices=["torchscript", "aoti"], default="torchscript", help="model file format")
    ap.add_argument("--device", default="cpu", help="device an aoti package is compiled for (cpu or cuda)")
    ap.add_argument("--from-bundle", help="re-export this bundle's weights instead of training")
    a = ap.parse_args(argv)
    a.version_set = "--version" in (argv if argv is not None else sys.argv)
    if a.from_bundle:
        return reexport(a)
    if not a.scorch:
        ap.error("--scorch is required to train")

    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    feat_glob = os.path.join(a.data, "features", f"ds={a.train_days}", "*.parquet")
    state_path = os.path.join(a.out, "preprocess.state.json")
    subprocess.run(
        [a.scorch, "--quiet", "preprocess", "fit", "--spec", a.spec, "--data", feat_glob, "--out", state_path],
        check=True,
    )
    state = scorch_prep.load_state(state_path)

    feats = pl.scan_parquet(feat_glob, hive_partitioning=True)
    labels = pl.scan_parquet(os.path.join(a.data, "labels", "**", "*.parquet"), hive_partitioning=True)
    joined = feats.join(labels, on=["customer_id", "ds"], how="inner").collect()
    X = scorch_prep.to_matrix(joined, state)
    y = joined["churned"].cast(pl.Float32).to_numpy()
    print(f"training on {X.shape[0]} rows × {X.shape[1]} features, churn rate {y.mean():.3f}")

    n = X.shape[0]
    idx = np.random.permutation(n)
    split = int(n * 0.9)
    tr, va = idx[:split], idx[split:]
    Xt, yt = torch.from_numpy(X[tr]), torch.from_numpy(y[tr])
    Xv, yv = torch.from_numpy(X[va]), torch.from_numpy(y[va])
    cls, layers = ARCHITECTURES[a.arch]
    model = cls(X.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = torch.nn.BCELoss()
    for epoch in range(a.epochs):
        model.train()
        perm = torch.randperm(len(tr))
        for i in range(0, len(tr), 1024):
            b = perm[i : i + 1024]
            opt.zero_grad()
            loss = loss_fn(model(Xt[b]), yt[b])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            pv = model(Xv)
            vl = loss_fn(pv, yv).item()
            acc = ((pv > 0.5).float() == yv).float().mean().item()
        print(f"epoch {epoch + 1}: validation log loss {vl:.4f}, accuracy {acc:.4f}")

    model_file = export(model, X.shape[1], a.out, a.format, a.device)

    scorch_prep.write_bundle(
        a.out,
        "churn",
        a.version,
        f"{layers.format(n=X.shape[1])} trained on {a.train_days} ({X.shape[0]} rows); validation log loss {vl:.4f}",
        state,
        header="# Written by python/train_churn.py; edit the script, not this file.\n",
        model_file=model_file,
        fmt=a.format,
    )
    # The reference profile of the training days, for drift reports, with the score
    # calibrated on held-out labelled days, for performance estimated without labels.
    subprocess.run(
        [
            a.scorch, "--quiet", "profile", "--bundle", a.out, "--data", feat_glob,
            "--labels", "churned",
            "--calibration-data", os.path.join(a.data, "features", f"ds={a.calibration_days}", "*.parquet"),
            "--labels-data", os.path.join(a.data, "labels", "**", "*.parquet"),
            "--labels-on", "customer_id,ds",
            "--thresholds", "0.3,0.5",
        ],
        check=True,
    )
    print(f"wrote bundle {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
