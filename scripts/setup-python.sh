#!/usr/bin/env bash
# Creates (once) the Python venv that provides libtorch for the build and the
# Python tools for training and tests, in a cache folder outside the clone.
# A no-op when the venv exists and matches python/requirements.txt.
#   usage: scripts/setup-python.sh VENV_DIR
set -euo pipefail
venv=${1:?usage: setup-python.sh VENV_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
req="$here/python/requirements.txt"
stamp="$venv/.scorch-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
command -v python3 >/dev/null || { echo "setup-python: python3 is required (apt-get install -y python3 python3-venv)" >&2; exit 1; }
echo "setup-python: installing torch 2.13.0 and tools into $venv (once; about 2 minutes, 2.7 GB download, 5 GB on disk)" >&2
mkdir -p "$(dirname "$venv")"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/python" -c "import torch, polars, pyarrow, duckdb, numpy, pandas, scipy; assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__"
cp "$req" "$stamp"
echo "setup-python: ready: $venv" >&2
