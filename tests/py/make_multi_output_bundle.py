"""Builds a bundle whose model returns a tuple (a [n] score and a [n, 2] vector),
reusing the example bundle's preprocessing, and the scores Python torch gives.

    make_multi_output_bundle.py EXAMPLE_BUNDLE OUT_BUNDLE FEATURES_GLOB EXPECTED_PARQUET [FORMAT]

FORMAT is torchscript (model.pt, the default) or aoti (the same model exported with
torch.export and compiled into model.pt2; bundle.yaml then leaves `format` to the
file's extension).
"""

import hashlib
import json
import os
import shutil
import sys

import polars as pl
import torch

import scorch_prep

example, out, features_glob, expected = sys.argv[1:5]
fmt = sys.argv[5] if len(sys.argv) > 5 else "torchscript"
os.makedirs(out, exist_ok=True)
shutil.copy(os.path.join(example, "preprocess.state.json"), out)
state = scorch_prep.load_state(os.path.join(out, "preprocess.state.json"))
k = len(state["feature_names"])


class TwoHeads(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(k, 1)
        self.b = torch.nn.Linear(k, 2)

    def forward(self, x):
        return torch.sigmoid(self.a(x)).squeeze(-1), self.b(x)


torch.manual_seed(3)
m = TwoHeads().eval()
with torch.no_grad():
    traced = torch.jit.trace(m, torch.zeros(2, k))
if fmt == "aoti":
    model_file = "model.pt2"
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.export.export(m, (torch.zeros(4, k),), dynamic_shapes=({0: batch},))
        torch._inductor.aoti_compile_and_package(program, package_path=os.path.join(out, model_file))
else:
    model_file = "model.pt"
    traced.save(os.path.join(out, model_file))
model_path = os.path.join(out, model_file)
digest = hashlib.sha256(open(model_path, "rb").read()).hexdigest()
with open(os.path.join(out, "bundle.yaml"), "w") as f:
    f.write(f"name: two_heads\nversion: 0.1.0\nmodel_file: {model_file}\n")
    f.write(f"model_sha256: {digest}\n")
    f.write(f"features: {json.dumps(state['feature_names'])}\n")
    f.write("outputs:\n  - {name: p, shape: []}\n  - {name: logits, shape: [2]}\n")
    f.write(
        "preprocessing: "
        + json.dumps(
            {
                "name": state["spec"]["name"],
                "version": state["spec"]["version"],
                "state_file": "preprocess.state.json",
                "state_hash": state["content_hash"],
            }
        )
        + "\n"
    )

raw = pl.read_parquet(features_glob, hive_partitioning=True)
X = torch.from_numpy(scorch_prep.to_matrix(raw, state))
with torch.no_grad():
    p, logits = traced(X)
pl.DataFrame(
    {
        "customer_id": raw["customer_id"],
        "p": p.numpy(),
        "logits_0": logits[:, 0].numpy(),
        "logits_1": logits[:, 1].numpy(),
    }
).write_parquet(expected)
