#!/usr/bin/env bash
# The Airflow DAG factory running its tasks in the scorch image (SCORCH_IMAGE):
# a throwaway Airflow home and a copy of the example project, then `airflow dags
# test` of the daily churn DAG, which must score its partition inside the image.
#   usage: scripts/image-airflow.sh AIRFLOW_BIN_DIR IMAGE
set -euo pipefail
airflow_bin=${1:?usage: image-airflow.sh AIRFLOW_BIN_DIR IMAGE}; image=${2:?}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/scorch-image-airflow.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/project"
cp -r "$here"/{jobs,preprocess,schemas,sql,models,profiles.yaml} "$work/project/"
cp -r "$here/data" "$work/project/data"
export AIRFLOW_HOME="$work/airflow" AIRFLOW__CORE__DAGS_FOLDER="$here/airflow" \
  AIRFLOW__CORE__LOAD_EXAMPLES=False SCORCH_PROJECT="$work/project" \
  SCORCH_IMAGE="$image" SCORCH_CONTAINER_CLI="$here/scripts/podman.sh" SCORCH_RETRIES=0
"$airflow_bin/airflow" db migrate >/dev/null
# The 2026-11-29 02:00 UTC fire scores ds=2026-11-28 (ds_offset_days: -1).
"$airflow_bin/airflow" dags test scorch_churn_daily 2026-11-29T02:00:00+00:00 > "$work/dags-test.log" 2>&1 || {
  tail -n 40 "$work/dags-test.log"; exit 1; }
part="$work/project/output/churn_scores/ds=2026-11-28"
test -f "$part/_manifest.json" || { echo "no partition at $part"; tail -n 40 "$work/dags-test.log"; exit 1; }
echo "airflow dags test scorch_churn_daily ran in $image: $(ls "$part" | grep -c parquet) Parquet file(s), manifest $(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m['status'], m['rows']['written'], 'rows', m['model']['name'], m['model']['version'])" "$part/_manifest.json")"
