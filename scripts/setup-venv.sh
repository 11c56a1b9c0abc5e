#!/usr/bin/env bash
# Creates (once) a Python venv in the cache folder from a pinned requirements file,
# then runs a check in it. A no-op when the venv exists and its stamp matches the
# requirements file. Used by setup-python.sh and setup-airflow.sh.
#   usage: scripts/setup-venv.sh NAME VENV_DIR REQUIREMENTS CHECK_COMMAND WHAT
#   (CHECK_COMMAND is run with the venv's bin folder first on the PATH)
set -euo pipefail
name=${1:?usage: setup-venv.sh NAME VENV_DIR REQUIREMENTS CHECK_COMMAND WHAT}
venv=${2:?}; req=${3:?}; check=${4:?}; what=${5:?}
stamp="$venv/.scorch-requirements"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
command -v python3 >/dev/null || { echo "$name: python3 is required (apt-get install -y python3 python3-venv)" >&2; exit 1; }
echo "$name: installing $what into $venv (once)" >&2
mkdir -p "$(dirname "$venv")"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
PATH="$venv/bin:$PATH" bash -c "$check"
cp "$req" "$stamp"
echo "$name: ready: $venv" >&2
