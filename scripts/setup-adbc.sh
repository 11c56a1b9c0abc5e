#!/usr/bin/env bash
# Installs (once) the ADBC drivers' shared libraries that `source.adbc` loads,
# from PyPI's adbc-driver-* wheels (self-contained .so files; no Python is needed
# to use them), into a cache folder outside the clone. A no-op when the folder
# holds these versions.
#   usage: scripts/setup-adbc.sh DIR PYTHON
set -euo pipefail
dir=${1:?usage: setup-adbc.sh DIR PYTHON}
python=${2:?usage: setup-adbc.sh DIR PYTHON}
# Pinned: the versions the tests ran with.
wheels=(
  adbc-driver-postgresql==1.13.0
  adbc-driver-sqlite==1.13.0
  adbc-driver-flightsql==1.13.0
  adbc-driver-snowflake==1.11.0
  adbc-driver-bigquery==1.11.0
)
want="${wheels[*]}"
if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$want" ]; then
  exit 0
fi
echo "setup-adbc: installing ADBC drivers (about 70 MB download, 140 MB on disk) into $dir (once)"
rm -rf "$dir.tmp"
"$python" -m pip install --quiet --no-deps --only-binary=:all: --target "$dir.tmp" "${wheels[@]}"
for n in postgresql sqlite flightsql snowflake bigquery; do
  test -f "$dir.tmp/adbc_driver_$n/libadbc_driver_$n.so" || {
    echo "setup-adbc: the adbc-driver-$n wheel has no libadbc_driver_$n.so" >&2
    exit 1
  }
done
echo "$want" > "$dir.tmp/.installed"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
echo "setup-adbc: ready: $dir"
