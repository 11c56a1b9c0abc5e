#!/usr/bin/env bash
# Creates (once) a venv with real Apache Airflow (from PyPI, pinned in
# airflow/requirements.txt) for the DAG factory's tests, in the cache folder.
#   usage: scripts/setup-airflow.sh VENV_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
exec "$here/scripts/setup-venv.sh" setup-airflow "${1:?usage: setup-airflow.sh VENV_DIR}" \
  "$here/airflow/requirements.txt" "airflow version >/dev/null" \
  "$(cat "$here/airflow/requirements.txt") (about 2-3 minutes)"
