"""The Python package against the CLI (run in the wheel test's fresh venv).

    package_parity.py SPEC TRAIN_GLOB DATA_GLOB CLI_STATE CLI_APPLY_PARQUET

- scorch.fit on the same files gives the CLI's state (same content hash), and on a
  pyarrow table of them the same hash too;
- scorch.apply gives the CLI's Parquet, every value to the bit, and returns the
  kind of frame it was given;
- scorch.to_matrix is apply's features as float32, bit for bit;
- errors carry the CLI's exit codes;
- save_bundle writes bundles that `bundle check` opens and runs, in both formats;
  with reference= and labels= it profiles them as `scorch profile` does, and
  profile_bundle gives the same profile from Parquet paths as from frames.
"""

import glob
import json
import os
import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import torch

import scorch

spec, train_glob, data_glob, cli_state, cli_apply = sys.argv[1:6]

# fit
cli = json.load(open(cli_state))
state = scorch.fit(spec, train_glob)
doc = json.loads(state.to_json())
assert doc["content_hash"] == cli["content_hash"], (doc["content_hash"], cli["content_hash"])
assert doc["fitted"] == cli["fitted"] and doc["feature_names"] == cli["feature_names"]
train_table = ds.dataset(sorted(glob.glob(train_glob)), format="parquet").to_table()
from_table = scorch.fit(spec, train_table)
assert from_table.content_hash == cli["content_hash"], "fit on a pyarrow table differs from the CLI's"
assert from_table == state and scorch.load_state(cli_state) == state
print("fit: same content hash", state.content_hash)

# apply
expected = pq.read_table(cli_apply)
got = scorch.apply(data_glob, state, keep=["customer_id", "ds"])
assert isinstance(got, pa.Table)
assert got.schema.names == expected.schema.names, (got.schema.names, expected.schema.names)
for name in expected.schema.names:
    a, b = got[name].combine_chunks(), expected[name].combine_chunks()
    if pa.types.is_floating(a.type):
        assert np.array_equal(a.to_numpy().view(np.uint64), b.to_numpy().view(np.uint64)), name
    else:
        assert a.equals(b), name
print("apply:", got.num_rows, "rows x", got.num_columns, "columns, bit-identical")

# the kind of frame in is the kind out
frame = ds.dataset(sorted(glob.glob(data_glob)), format="parquet").to_table()
as_pandas = scorch.apply(frame.to_pandas(), state)
assert type(as_pandas).__module__.startswith("pandas"), type(as_pandas)
assert list(as_pandas.columns) == state.feature_names
# one column name as a string is one kept column, not its letters
one = scorch.apply(frame, state, keep="customer_id")
assert one.schema.names == ["customer_id", *state.feature_names], one.schema.names

# to_matrix: apply's features as float32
X = scorch.to_matrix(data_glob, state)
assert X.dtype == np.float32 and X.shape == (got.num_rows, len(state.feature_names)), X.shape
want = np.column_stack([got[n].to_numpy() for n in state.feature_names]).astype(np.float32)
assert np.array_equal(X.view(np.uint32), want.view(np.uint32))
X2 = scorch.to_matrix(frame, state)
assert X2.shape == X.shape
print("to_matrix:", X.shape, "bit-identical to apply's features as float32")

# errors carry the exit codes
broken = frame.set_column(frame.schema.get_field_index("monthly_charges"), "monthly_charges",
                          pa.array([float("nan")] * frame.num_rows))
try:
    scorch.to_matrix(broken, state)
    raise AssertionError("a NaN feature was accepted")
except scorch.ScorchError as e:
    assert e.exit_code == 3 and "monthly_charges" in str(e), (e.exit_code, str(e))
try:
    scorch.fit("/nonexistent/spec.yaml", frame)
    raise AssertionError("a missing spec was accepted")
except scorch.ScorchError as e:
    assert e.exit_code == 2, (e.exit_code, str(e))
print("errors: exit codes 3 and 2")


# save_bundle, both formats, a vector output
class Two(torch.nn.Module):
    def __init__(self, k):
        super().__init__()
        self.lin = torch.nn.Linear(k, 3)

    def forward(self, x):
        return torch.softmax(self.lin(x), dim=1), torch.sigmoid(x.sum(dim=1))


torch.manual_seed(0)
model = Two(len(state.feature_names))
with tempfile.TemporaryDirectory() as tmp:
    for fmt in ("torchscript", "aoti"):
        out = os.path.join(tmp, fmt)
        summary = scorch.save_bundle(out, model, state, name="two", version="1.0.0",
                                     outputs={"probs": 3, "score": None}, format=fmt)
        assert summary.startswith("ok  "), summary
        assert "probs [3], score []" in summary, summary
        assert scorch.check_bundle(out).startswith("ok  ")
        try:
            scorch.save_bundle(out, model, state, name="two", version="1.0.0", format=fmt)
            raise AssertionError("an existing bundle was replaced")
        except scorch.ScorchError as e:
            assert e.exit_code == 2 and "overwrite=True" in str(e), str(e)
    # wrong output count is a usage error naming the model's outputs
    try:
        scorch.save_bundle(os.path.join(tmp, "bad"), model, state, name="two", version="1.0.0",
                           outputs=["only_one"])
        raise AssertionError("a wrong output count was accepted")
    except scorch.ScorchError as e:
        assert e.exit_code == 2 and "2 output(s)" in str(e), str(e)


# save_bundle(reference=, labels=, ...) profiles the bundle as `scorch profile`
# does; frames and Parquet paths give the same profile.
class One(torch.nn.Module):
    def __init__(self, k):
        super().__init__()
        self.lin = torch.nn.Linear(k, 1)

    def forward(self, x):
        return torch.sigmoid(self.lin(x)).squeeze(1)


def pinned_profile(bundle):
    line = next(l for l in open(os.path.join(bundle, "bundle.yaml")) if l.startswith("reference_profile: "))
    pin = json.loads(line[len("reference_profile: "):])
    return json.load(open(os.path.join(bundle, pin["file"])))


one = One(len(state.feature_names))
rng = np.random.default_rng(1)
cal = frame.append_column("churned", pa.array(rng.random(frame.num_rows) < 0.3))
with tempfile.TemporaryDirectory() as tmp:
    a = os.path.join(tmp, "a")
    summary = scorch.save_bundle(a, one, state, name="one", version="1.0.0", outputs=["p"], reference=frame,
                                 labels="churned", calibration=cal.to_pandas(), thresholds=[0.3, 0.5])
    assert summary.startswith("ok  "), summary
    assert "calibrated p on %d labelled rows" % frame.num_rows in summary, summary
    assert "multivariate drift reference: " in summary, summary
    cal_path = os.path.join(tmp, "cal.parquet")
    pq.write_table(cal, cal_path)
    b = os.path.join(tmp, "b")
    scorch.save_bundle(b, os.path.join(a, "model.pt"), state, name="one", version="1.0.0", outputs=["p"])
    page = os.path.join(tmp, "profile.html")
    text = scorch.profile_bundle(b, data_glob, labels="churned", calibration=cal_path, thresholds=(0.3, 0.5),
                                 html=page)
    assert text.startswith("profiled %d rows" % frame.num_rows) and ("page: " + page) in text, text
    assert "reliability diagram" in open(page).read()
    pa_, pb_ = pinned_profile(a), pinned_profile(b)
    assert pa_["columns"] == pb_["columns"]
    assert pa_["reconstruction"] == pb_["reconstruction"]
    assert pa_["performance"]["calibration"] == pb_["performance"]["calibration"]
    assert pa_["performance"]["realized"] == pb_["performance"]["realized"]
    assert scorch.check_bundle(b).startswith("ok  ")
    # Bad arguments: the command line's exit codes.
    for kwargs, code, words in [
        ({"calibration": cal_path}, 2, "need labels="),
        ({"labels": "churned", "thresholds": [1.5]}, 2, "1.5"),
        ({"labels": "no_such_label"}, 3, "no_such_label"),
        ({"labels": "churned", "thresholds": [0.5, 0.5]}, 2, "0.5 is listed twice"),
        # A frame is named as the caller passed it, not by a temporary file.
        ({"labels": "churned", "calibration": cal.set_column(
            cal.schema.get_field_index("churned"), "churned",
            pa.array(["yes" if v else "no" for v in cal.column("churned").to_pylist()]))},
         3, "the `calibration` frame: label column `churned` is not numeric or boolean"),
    ]:
        try:
            scorch.profile_bundle(b, data_glob, **kwargs)
            raise AssertionError(f"accepted {kwargs}")
        except scorch.ScorchError as e:
            assert e.exit_code == code and words in str(e), (kwargs, e.exit_code, str(e))
            assert "scorch-profile-" not in str(e), str(e)
    try:
        scorch.save_bundle(os.path.join(tmp, "c"), one, state, name="one", version="1.0.0", outputs=["p"],
                           labels="churned")
        raise AssertionError("labels without a reference were accepted")
    except scorch.ScorchError as e:
        assert e.exit_code == 2 and "need reference=" in str(e), str(e)
print("profile_bundle: frames and paths give the same profile (PCA, calibration); exit codes 2 and 3")

# An AOTInductor package made scorch load libtorch.so: from the torch package's
# folder, where libtorch_cpu.so came from, not from the build's.
mapped = {l.split()[-1] for l in open("/proc/self/maps") if l.rstrip().endswith("/libtorch.so")}
want = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch.so")
assert mapped == {want}, (mapped, want)
print("save_bundle: torchscript and aoti bundles check; libtorch.so from", os.path.dirname(want))
print("parity: ok")
