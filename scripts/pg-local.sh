#!/usr/bin/env bash
# A local PostgreSQL server for the example warehouse job, in the cache folder.
#   scripts/pg-local.sh start DIR PORT     initdb (once) and start on 127.0.0.1:PORT
#   scripts/pg-local.sh load DIR PORT PY   (re)load data/churn/features into table churn_features
#   scripts/pg-local.sh stop DIR
# User `scorch`, password $SCORCH_PG_PASSWORD (default scorch-demo), database `warehouse`.
set -euo pipefail
cmd=${1:?usage: pg-local.sh start|load|stop DIR [PORT] [PYTHON]}
dir=${2:?DIR}
port=${3:-54329}
pw=${SCORCH_PG_PASSWORD:-scorch-demo}
bindir=$(pg_config --bindir 2>/dev/null || true)
[ -x "$bindir/initdb" ] || bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ ! -x "$bindir/initdb" ]; then
  echo "pg-local: PostgreSQL server binaries not found; installing (apt-get install -y postgresql)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
case "$cmd" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      printf '%s' "$pw" > "$dir/pw"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir/pw"
      as_pg "$bindir/initdb" -D "$dir/data" -U scorch --pwfile "$dir/pw" --auth-host=scram-sha-256 --auth-local=trust -E UTF8 >/dev/null
      rm -f "$dir/pw"
    fi
    if ! as_pg "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_pg "$bindir/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -l "$dir/log" -w start >/dev/null
    fi
    PGPASSWORD=$pw psql -h 127.0.0.1 -p "$port" -U scorch -d postgres -qAtX -c "SELECT 1 FROM pg_database WHERE datname='warehouse'" | grep -q 1 \
      || PGPASSWORD=$pw psql -h 127.0.0.1 -p "$port" -U scorch -d postgres -qX -c "CREATE DATABASE warehouse"
    echo "pg-local: PostgreSQL on 127.0.0.1:$port (data in $dir)" >&2
    ;;
  load)
    py=${4:?PYTHON}
    csv="$dir/churn_features.csv"
    "$py" -c "import polars as pl; pl.read_parquet('data/churn/features/*/*.parquet', hive_partitioning=True).write_csv('$csv')"
    PGPASSWORD=$pw psql -h 127.0.0.1 -p "$port" -U scorch -d warehouse -qX -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS churn_features;
CREATE TABLE churn_features (customer_id bigint, age float8, tenure_months bigint, monthly_charges float8,
  total_charges float8, num_support_calls bigint, num_logins_30d bigint, avg_session_minutes float8,
  days_since_last_login bigint, plan text, region text, payment_method text, contract text, device_os text,
  has_partner boolean, paperless_billing boolean, discount_pct float8, num_products bigint,
  late_payments_12m bigint, nps_score bigint, data_usage_gb float8, ds date);
\copy churn_features FROM '$csv' CSV HEADER
CREATE INDEX ON churn_features (ds);
ANALYZE churn_features;
SQL
    rm -f "$csv"
    echo "pg-local: loaded $(PGPASSWORD=$pw psql -h 127.0.0.1 -p "$port" -U scorch -d warehouse -qAtX -c 'SELECT count(*) FROM churn_features') rows into churn_features" >&2
    ;;
  stop)
    [ -f "$dir/data/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    ;;
  *) echo "usage: pg-local.sh start|load|stop DIR [PORT] [PYTHON]" >&2; exit 2 ;;
esac
