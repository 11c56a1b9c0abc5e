#!/usr/bin/env bash
# Benchmark: a PostgreSQL query returning ROWS rows (default 5,000,000) scored by
# scorch, read by the native `postgres` source, then by the `adbc` source through
# the ADBC PostgreSQL driver (without and with a bound parameter); prints rows/s
# and peak RSS of each. Not a test: it prints figures.
#   bench/pg_rss.sh SCORCH_BIN PYTHON [ROWS]
# The ADBC runs need the drivers (`make adbc-drivers`; $SCORCH_ADBC_DRIVERS).
set -euo pipefail
bin=${1:?scorch binary}; py=${2:?python}; rows=${3:-5000000}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/scorch-bench-pg.XXXXXX)
chmod 755 "$work"   # the server runs as `postgres` when we are root
pgdir=$work/pg; port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export SCORCH_PG_PASSWORD=bench-pw
cleanup() { "$here/scripts/pg-local.sh" stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"
"$py" "$here/python/make_churn_data.py" --out data/churn --days 10 --rows 100000 --customers 1000000 >/dev/null
"$here/scripts/pg-local.sh" start "$pgdir" "$port"
"$here/scripts/pg-local.sh" load "$pgdir" "$port" "$py"
# Grow the table to $rows rows by repeating it with shifted customer ids.
PGPASSWORD=$SCORCH_PG_PASSWORD psql -h 127.0.0.1 -p "$port" -U scorch -d warehouse -qX -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE big AS
SELECT f.customer_id + k * 10000000 AS customer_id, f.age, f.tenure_months, f.monthly_charges, f.total_charges,
       f.num_support_calls, f.num_logins_30d, f.avg_session_minutes, f.days_since_last_login, f.plan, f.region,
       f.payment_method, f.contract, f.device_os, f.has_partner, f.paperless_billing, f.discount_pct,
       f.num_products, f.late_payments_12m, f.nps_score, f.data_usage_gb
FROM churn_features f, generate_series(0, ($rows / 1000000) + 1) AS k
LIMIT $rows;
SQL
mkdir -p sql jobs
echo "SELECT * FROM big" > sql/big.sql
echo "SELECT * FROM big WHERE customer_id >= {{ params.min_id }}::int8" > sql/big_param.sql
cat > profiles.yaml <<YAML
bench:
  postgres:
    host: 127.0.0.1
    port: $port
    user: scorch
    password: \${SCORCH_PG_PASSWORD}
    dbname: warehouse
    sslmode: disable
bench_adbc:
  adbc:
    driver: postgresql
    uri: postgresql://scorch:\${SCORCH_PG_PASSWORD}@127.0.0.1:$port/warehouse
YAML
job() { # name kind profile sql [params]
  cat > "jobs/$1.yaml" <<YAML
name: $1
source:
  $2:
    profile: $3
    query: $4
${5:-}
keys: [customer_id]
model: $here/models/churn/1.0.0
output:
  path: output/$1
YAML
}
job bench_pg postgres bench sql/big.sql
job bench_adbc adbc bench_adbc sql/big.sql
job bench_adbc_param adbc bench_adbc sql/big_param.sql "    params: {min_id: '0'}"
for j in bench_pg bench_adbc bench_adbc_param; do
  /usr/bin/time -f "%e %M" -o time.txt "$bin" -q run "jobs/$j.yaml" --date 2026-11-28
  read -r wall rss_kb < time.txt
  "$py" - "$j" "$wall" "$rss_kb" "$rows" "output/$j/ds=2026-11-28/_manifest.json" <<'PY'
import json, sys
job, wall, rss_kb, rows, manifest = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
m = json.load(open(manifest))
assert m["rows"]["written"] == rows, m["rows"]
st = m["stages"]
what = {"bench_pg": "postgres source", "bench_adbc": "adbc source (PostgreSQL driver)",
        "bench_adbc_param": "adbc source, one bound parameter"}[job]
print(f"{what} -> scorch, {rows:,} rows: wall {wall:.1f} s, {rows / wall:,.0f} rows/s, peak RSS {rss_kb / 1024:.0f} MiB")
print("  stage seconds: " + ", ".join(f"{k} {st[k]:.2f}" for k in ["read", "preprocess", "tensorize", "infer", "write"]))
PY
done
