#!/usr/bin/env bash
# Creates (once) a venv with real Apache Airflow (from PyPI, pinned in
# airflow/requirements.txt) for the DAG factory's tests, in the cache folder.
# A no-op when the venv exists and matches the pin.
#   usage: scripts/setup-airflow.sh VENV_DIR
set -euo pipefail
venv=${1:?usage: setup-airflow.sh VENV_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
req="$here/airflow/requirements.txt"
stamp="$venv/.scorch-requirements"
if [ -x "$venv/bin/airflow" ] && [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
command -v python3 >/dev/null || { echo "setup-airflow: python3 is required" >&2; exit 1; }
echo "setup-airflow: installing $(cat "$req") into $venv (once; about 2-3 minutes)" >&2
mkdir -p "$(dirname "$venv")"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
"$venv/bin/airflow" version >/dev/null
cp "$req" "$stamp"
echo "setup-airflow: ready: $venv" >&2
