#!/usr/bin/env bash
# Benchmark: a PostgreSQL query returning ROWS rows (default 5,000,000) scored by
# scorch; prints rows/s and peak RSS. Not a test: it prints figures.
#   bench/pg_rss.sh SCORCH_BIN PYTHON [ROWS]
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
cat > profiles.yaml <<YAML
bench:
  postgres:
    host: 127.0.0.1
    port: $port
    user: scorch
    password: \${SCORCH_PG_PASSWORD}
    dbname: warehouse
    sslmode: disable
YAML
cat > jobs/big.yaml <<YAML
name: bench_pg
source:
  postgres:
    profile: bench
    query: sql/big.sql
keys: [customer_id]
model: $here/models/churn/1.0.0
output:
  path: output/bench_pg
YAML
/usr/bin/time -f "%e %M" -o time.txt "$bin" -q run jobs/big.yaml --date 2026-11-28
read -r wall rss_kb < time.txt
"$py" - "$wall" "$rss_kb" "$rows" output/bench_pg/ds=2026-11-28/_manifest.json <<'PY'
import json, sys
wall, rss_kb, rows, manifest = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
m = json.load(open(manifest))
assert m["rows"]["written"] == rows, m["rows"]
st = m["stages"]
print(f"postgres -> scorch, {rows:,} rows: wall {wall:.1f} s, {rows / wall:,.0f} rows/s, peak RSS {rss_kb / 1024:.0f} MiB")
print("  stage seconds: " + ", ".join(f"{k} {st[k]:.2f}" for k in ["read", "preprocess", "tensorize", "infer", "write"]))
PY
