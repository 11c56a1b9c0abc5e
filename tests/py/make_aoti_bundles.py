"""Builds the AOTInductor bundles of tests/aoti.rs from the example bundle.

    make_aoti_bundles.py EXAMPLE_BUNDLE OUT

OUT/good     the example model's weights exported with torch.export and compiled
             with aoti_compile_and_package for CPU (python/train_churn.py --from-bundle)
OUT/narrow   a package whose model takes 5 features fewer than the bundle lists
OUT/two_inputs  a package whose model takes two tensors (scorch passes one matrix)
OUT/cuda     good's package with its metadata saying it was compiled for CUDA:
             scorch decides the device from that metadata before it loads the
             compiled library (no GPU or CUDA compiler here to build a real one)
OUT/corrupt  good's package cut in half (with the bundle's sha256 updated, so it
             gets past the hash check)
"""

import json
import os
import shutil
import sys
import zipfile

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "python"))
import scorch_prep  # noqa: E402
import train_churn  # noqa: E402

example, out = sys.argv[1:3]
torch.manual_seed(5)
good = os.path.join(out, "good")
assert train_churn.main(["--from-bundle", example, "--format", "aoti", "--out", good]) == 0


def variant(name: str) -> str:
    """A copy of the good bundle; returns its folder."""
    d = os.path.join(out, name)
    shutil.copytree(good, d)
    return d


def reseal(d: str) -> None:
    """Points bundle.yaml's model_sha256 at the (changed) package."""
    path = os.path.join(d, "bundle.yaml")
    lines = open(path, encoding="utf-8").read().splitlines()
    digest = scorch_prep.sha256(os.path.join(d, "model.pt2"))
    lines = [f'model_sha256: "{digest}"' if l.startswith("model_sha256:") else l for l in lines]
    open(path, "w", encoding="utf-8").write("\n".join(lines) + "\n")


# narrow: a real package for 5 fewer inputs than the bundle's features.
d = variant("narrow")
k = len(scorch_prep.load_state(os.path.join(d, "preprocess.state.json"))["feature_names"])
os.remove(os.path.join(d, "model.pt2"))
train_churn.export(train_churn.ChurnMLP(k - 5), k - 5, d, "aoti")
reseal(d)

# two_inputs: forward(x, y).
class TwoInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(k, 1)

    def forward(self, x, y):
        return torch.sigmoid(self.linear(x) + self.linear(y)).squeeze(-1)


d = variant("two_inputs")
os.remove(os.path.join(d, "model.pt2"))
batch = torch.export.Dim("batch", min=1)
with torch.no_grad():
    program = torch.export.export(
        TwoInputs().eval(), (torch.zeros(4, k), torch.zeros(4, k)), dynamic_shapes=({0: batch}, {0: batch})
    )
    torch._inductor.aoti_compile_and_package(program, package_path=os.path.join(d, "model.pt2"))
reseal(d)

# cuda: the same archive with AOTI_DEVICE_KEY = cuda in its metadata.
d = variant("cuda")
src = os.path.join(good, "model.pt2")
dst = os.path.join(d, "model.pt2")
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
    for item in zin.infolist():
        data = zin.read(item.filename)
        if item.filename.endswith("_metadata.json"):
            meta = json.loads(data)
            meta.update({"AOTI_DEVICE_KEY": "cuda", "AOTI_COMPUTE_CAPABILITY": "90"})
            data = json.dumps(meta).encode()
        zout.writestr(item, data)
reseal(d)

# corrupt: the first half of the archive.
d = variant("corrupt")
data = open(src, "rb").read()
open(os.path.join(d, "model.pt2"), "wb").write(data[: len(data) // 2])
reseal(d)
print("built", sorted(os.listdir(out)))
