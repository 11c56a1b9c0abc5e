#!/usr/bin/env bash
# Benchmark: read ~GB GB of Parquet from local S3-compatible servers and the same
# files from local disk, as scorch sources do; prints wall time, the CPU seconds of
# the reader and of the server, and the ratios.
#   bench/s3_read.sh READ_BENCH_BIN PYTHON S3S_FS S3RVER [GB]
# Servers: s3s-fs (crates.io; the test suite's server) and s3rver (npm). Both run on
# this machine's cores, beside the reader, so the server's CPU time is part of the
# S3 figure: the script prints the lower bound that this sets on 2 cores.
set -euo pipefail
bin=${1:?read_bench binary}; py=${2:?python}; s3s=${3:?s3s-fs}; s3rver=${4:?s3rver}; gb=${5:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${SCORCH_BENCH_DIR:-/tmp/scorch-bench-s3}
data=$work/local/features
days=$(( gb * 46 ))
runs=${RUNS:-5}
if [ ! -f "$work/.done-$gb" ]; then
  rm -rf "$work"; mkdir -p "$work/local"
  echo "generating ~${gb} GB of Parquet ($days days x 1,000,000 rows)..." >&2
  "$py" "$here/python/make_churn_data.py" --out "$work/gen" --days "$days" --rows 1000000 --customers 2000000 --label-lag "$days" >/dev/null
  mv "$work/gen/features" "$data"; rm -rf "$work/gen"
  touch "$work/.done-$gb"
fi
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.1; done; echo "server on port $1 did not start" >&2; exit 1; }
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # user + system, in clock ticks
hz=$(getconf CLK_TCK)
# one timed read: prints "wall reader_cpu server_cpu" in seconds
timed() {
  local server=$1; shift
  local s0=0 s1=0
  [ "$server" != none ] && s0=$(cpu_ticks "$server")
  local t
  t=$( { /usr/bin/time -f '%e %U %S' "$bin" "$@" >/dev/null; } 2>&1 | tail -n 1)
  [ "$server" != none ] && s1=$(cpu_ticks "$server")
  echo "$t $(( s1 - s0 ))" | awk -v hz="$hz" '{printf "%s %.2f %.2f\n", $1, $2 + $3, $4 / hz}'
}
median() { sort -n -k1,1 | awk '{a[NR]=$0} END {print a[int((NR + 1) / 2)]}'; }

"$bin" "$data" | sed 's/^/local:   /' >&2     # warms the page cache
local_r=$(for _ in $(seq "$runs"); do timed none "$data"; done | median)

rm -rf "$work/s3s"; mkdir -p "$work/s3s/lake"
port=$(free_port)
"$s3s" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret "$work/s3s" >/dev/null 2>&1 &
s3s_pid=$!; pids+=("$s3s_pid"); wait_port "$port"
opts=(aws_endpoint=http://127.0.0.1:$port aws_allow_http=true aws_region=us-east-1
      aws_access_key_id=bench aws_secret_access_key=bench-secret)
# Objects go in through each server's PUT path, as a user's pipeline would put them.
"$bin" --put "$data" "s3://lake/features" "${opts[@]}" >&2
s3s_r=$(for _ in $(seq "$runs"); do timed "$s3s_pid" "s3://lake/features" "${opts[@]}"; done | median)
"$bin" "s3://lake/features" "${opts[@]}" | sed 's/^/s3s-fs:  /' >&2
kill "$s3s_pid"; rm -rf "$work/s3s"

rm -rf "$work/s3rver"; mkdir -p "$work/s3rver"
port=$(free_port)
"$s3rver" -d "$work/s3rver" -a 127.0.0.1 -p "$port" -s --configure-bucket lake >/dev/null 2>&1 &
node_pid=$!; pids+=("$node_pid"); wait_port "$port"   # the script execs node: same pid
opts=(aws_endpoint=http://127.0.0.1:$port aws_allow_http=true aws_region=us-east-1
      aws_access_key_id=S3RVER aws_secret_access_key=S3RVER)
"$bin" --put "$data" "s3://lake/features" "${opts[@]}" >&2
s3rver_r=$(for _ in $(seq "$runs"); do timed "$node_pid" "s3://lake/features" "${opts[@]}"; done | median)
"$bin" "s3://lake/features" "${opts[@]}" | sed 's/^/s3rver:  /' >&2
kill "$node_pid"; rm -rf "$work/s3rver"

"$py" - "$local_r" "$s3s_r" "$s3rver_r" "$(nproc)" <<'PY'
import sys
local, s3s, s3rver = (list(map(float, a.split())) for a in sys.argv[1:4])
cores = int(sys.argv[4])
print(f"read all columns of the same files, median of runs ({cores} cores):")
print(f"{'source':<22}{'wall s':>8}{'reader CPU s':>14}{'server CPU s':>14}{'wall ratio':>12}{'floor':>8}")
print(f"{'local disk':<22}{local[0]:>8.2f}{local[1]:>14.2f}{'':>14}{1.0:>12.2f}{'':>8}")
for name, r in (("S3: s3s-fs 0.14", s3s), ("S3: s3rver 3.7", s3rver)):
    # The lowest wall time these CPU seconds allow on this many cores, over local's wall.
    floor = max((r[1] + r[2]) / cores, r[1] / cores) / local[0]
    print(f"{name:<22}{r[0]:>8.2f}{r[1]:>14.2f}{r[2]:>14.2f}{r[0] / local[0]:>12.2f}{floor:>8.2f}")
print("floor: (reader + server CPU seconds) / cores / local wall: the ratio a perfect reader would reach with that server on these cores")
PY
