"""Write the benchmark's model bundle: a wider MLP on the example churn features.

The weights are random (the benchmark measures speed, not accuracy); the
preprocessing is the example bundle's fitted state, so every peer applies the
same 43 features. Writes ``model.pt`` (TorchScript), ``preprocess.state.json``
and ``bundle.yaml`` into ``--out``.

    python bench/make_wide_model.py --out /tmp/scorch-bench/models/churn_wide/1.0.0 --hidden 256,128
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import scorch_prep  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", default="models/churn/1.0.0", help="bundle whose preprocessing to reuse")
    ap.add_argument("--hidden", default="256,128", help="hidden layer widths, comma-separated")
    a = ap.parse_args()
    hidden = [int(h) for h in a.hidden.split(",")]
    state_src = os.path.join(a.base, "preprocess.state.json")
    with open(state_src, encoding="utf-8") as f:
        state = json.load(f)
    n_in = len(state["feature_names"])
    torch.manual_seed(11)
    layers: list[torch.nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, 1))

    class Wide(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(*layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.net(x)).squeeze(-1)

    model = Wide().eval()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "model.pt")
    with torch.no_grad():
        torch.jit.trace(model, torch.zeros(2, n_in)).save(path)
    shutil.copyfile(state_src, os.path.join(a.out, "preprocess.state.json"))
    arch = "-".join(str(x) for x in [n_in, *hidden, 1])
    scorch_prep.write_bundle(a.out, "churn_wide", "1.0.0", f"benchmark MLP {arch}, random weights", state)
    print(f"wrote {a.out} (MLP {arch})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
