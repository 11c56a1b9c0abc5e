#!/usr/bin/env bash
# End-to-end check of the CUDA path, for a machine with an NVIDIA GPU.
# Scores the example day on the CPU (f32) and on CUDA (f32, bf16, f16), and with
# the example model exported as an AOTInductor package compiled for CUDA
# (`device: auto`, which follows the package); compares every CUDA run's scores
# with the CPU's, checks that `device: auto` picks CUDA, and prints rows/s. Exit 0
# only if every check holds.
#   scripts/check-cuda.sh [SCORCH_BIN] [PYTHON]
# Run from the repository root after `make build data`.
set -euo pipefail
bin=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/scorch/target}/debug/scorch}
py=${2:-$HOME/.cache/scorch/torch-2.13.0/bin/python}
date=2026-11-28
work=$(mktemp -d /tmp/scorch-cuda-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$py" -c 'import torch; assert torch.cuda.is_available(), "torch sees no CUDA device"; print("GPU:", torch.cuda.get_device_name(0))'
run() { # name device precision [batch] [bundle]
  sed "s|path: output/churn_scores|path: $work/$1|; s|model: models/churn/1.0.0|model: ${5:-models/churn/1.0.0}|" \
    jobs/churn_daily.yaml > "$work/$1.yaml"
  "$bin" --quiet run "$work/$1.yaml" --date "$date" --no-progress --device "$2" --precision "$3" \
    --batch-size "${4:-4096}"
}
run cpu cpu f32
run cuda_f32 cuda f32 65536
run cuda_bf16 cuda bf16 65536
run cuda_f16 cuda f16 65536
run auto auto f32 65536
"$py" python/train_churn.py --from-bundle models/churn/1.0.0 --format aoti --device cuda --out "$work/aoti_bundle"
run aoti_cuda auto f32 65536 "$work/aoti_bundle"
"$py" - "$work" "$date" <<'PY'
import glob, json, sys
import numpy as np, polars as pl
work, date = sys.argv[1:3]
def load(name):
    part = f"{work}/{name}/ds={date}"
    df = pl.read_parquet(sorted(glob.glob(f"{part}/*.parquet")))
    m = json.load(open(f"{part}/_manifest.json"))
    return df["churn_probability"].to_numpy(), m
base, _ = load("cpu")
ok = True
print(f"{'run':<10}{'device':>10}{'max |diff| vs cpu':>20}{'flips@0.5':>11}{'rows/s':>14}")
for name, bound in [("cpu", 0.0), ("cuda_f32", 1e-5), ("cuda_bf16", 2e-2), ("cuda_f16", 5e-3), ("auto", 1e-5), ("aoti_cuda", 1e-5)]:
    s, m = load(name)
    d = float(np.max(np.abs(s - base)))
    flips = int(((s > 0.5) != (base > 0.5)).sum())
    print(f"{name:<10}{m['inference']['device']:>10}{d:>20.2e}{flips:>11}{m['rows_per_second']['total']:>14,.0f}")
    ok &= d <= bound
ok &= load("auto")[1]["inference"]["device"].startswith("cuda")
ok &= load("aoti_cuda")[1]["inference"]["device"].startswith("cuda")
ok &= load("aoti_cuda")[1]["model"]["format"] == "aoti"
print("CUDA path:", "OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
PY
