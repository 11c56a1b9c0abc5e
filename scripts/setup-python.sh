#!/usr/bin/env bash
# Creates (once) the Python venv that provides libtorch for the build and the
# Python tools for training and tests (python/requirements.txt), in a cache folder
# outside the clone. A no-op when the venv exists and matches the requirements.
#   usage: scripts/setup-python.sh VENV_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
exec "$here/scripts/setup-venv.sh" setup-python "${1:?usage: setup-python.sh VENV_DIR}" \
  "$here/python/requirements.txt" \
  "python -c \"import torch, polars, pyarrow, duckdb, numpy, pandas, scipy; assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__\"" \
  "torch 2.13.0 and tools (about 2 minutes, 2.7 GB download, 5 GB on disk)"
