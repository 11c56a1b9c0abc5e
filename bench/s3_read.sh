#!/usr/bin/env bash
# Benchmark: read ~GB GB of Parquet from a local S3-compatible server (s3s-fs) and
# the same files from local disk, as scorch sources do; prints both and the ratio.
#   bench/s3_read.sh READ_BENCH_BIN PYTHON S3S_FS [GB]
set -euo pipefail
bin=${1:?read_bench binary}; py=${2:?python}; s3s=${3:?s3s-fs}; gb=${4:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${SCORCH_BENCH_DIR:-/tmp/scorch-bench-s3}
data=$work/local/features
days=$(( gb * 46 ))
if [ ! -f "$work/.done-$gb" ]; then
  rm -rf "$work"; mkdir -p "$work/local"
  echo "generating ~${gb} GB of Parquet ($days days x 1,000,000 rows)..." >&2
  "$py" "$here/python/make_churn_data.py" --out "$work/gen" --days "$days" --rows 1000000 --customers 2000000 --label-lag "$days" >/dev/null
  mv "$work/gen/features" "$data"; rm -rf "$work/gen"
  touch "$work/.done-$gb"
fi
rm -rf "$work/root"; mkdir -p "$work/root/lake"
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$s3s" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret "$work/root" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
opts=(aws_endpoint=http://127.0.0.1:$port aws_allow_http=true aws_region=us-east-1
      aws_access_key_id=bench aws_secret_access_key=bench-secret)
# Objects go in through the server's PUT path, as a user's pipeline would put them.
"$bin" --put "$data" "s3://lake/features" "${opts[@]}" >&2
best() { sort -n | head -n 1; }
run() { /usr/bin/time -f %e "$bin" "$@" 2>&1 >/dev/null | tail -n 1; }
"$bin" "$data" | sed 's/^/local: /' >&2     # warm the page cache
local_s=$(for _ in 1 2 3; do run "$data"; done | best)
s3_s=$(for _ in 1 2 3; do run "s3://lake/features" "${opts[@]}"; done | best)
"$bin" "s3://lake/features" "${opts[@]}" | sed 's/^/s3:    /' >&2
"$py" -c "
l, s = $local_s, $s3_s
print(f'read all columns, best of 3: local disk {l:.2f} s, local S3 server {s:.2f} s, ratio {s / l:.2f}x')"
