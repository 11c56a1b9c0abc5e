#!/usr/bin/env bash
# A local S3-compatible server (s3s-fs) for the example object-store job.
#   scripts/s3-local.sh start DIR PORT S3S_FS   serve DIR (buckets are its folders) on 127.0.0.1:PORT
#   scripts/s3-local.sh stop DIR
# Keys: $SCORCH_S3_KEY / $SCORCH_S3_SECRET.
set -euo pipefail
cmd=${1:?usage: s3-local.sh start|stop DIR [PORT] [S3S_FS]}
dir=${2:?DIR}
case "$cmd" in
  start)
    port=${3:?PORT}; bin=${4:?S3S_FS}
    mkdir -p "$dir"
    if [ -f "$dir/.pid" ] && kill -0 "$(cat "$dir/.pid")" 2>/dev/null; then exit 0; fi
    nohup "$bin" --host 127.0.0.1 --port "$port" --access-key "${SCORCH_S3_KEY:?}" --secret-key "${SCORCH_S3_SECRET:?}" "$dir" \
      >"$dir/.log" 2>&1 &
    echo $! > "$dir/.pid"
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    echo "s3-local: S3 server on http://127.0.0.1:$port serving $dir" >&2
    ;;
  stop)
    [ -f "$dir/.pid" ] && kill "$(cat "$dir/.pid")" 2>/dev/null || true
    rm -f "$dir/.pid"
    ;;
  *) echo "usage: s3-local.sh start|stop DIR [PORT] [S3S_FS]" >&2; exit 2 ;;
esac
