#!/usr/bin/env bash
# podman, as `make image` and `make image-demo` call it. On a machine where the
# container runtime may not set resource limits (crun/runc fail with "setrlimit
# ... Operation not permitted", as in this project's build VMs), it runs podman
# with an OCI runtime that drops them (deploy/container/oci-runtime-without-rlimits);
# elsewhere it is plain podman. The check runs once per cache folder.
#   usage: scripts/podman.sh PODMAN_ARGS...
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${SCORCH_CACHE:-$HOME/.cache/scorch}/podman
mkdir -p "$cache"
probe_image=${SCORCH_PODMAN_PROBE_IMAGE:-localhost/scorch-base:bookworm}
if [ -z "${CONTAINERS_CONF:-}" ] && [ ! -f "$cache/mode" ]; then
  if err=$(podman run --rm "$probe_image" true 2>&1); then
    echo plain > "$cache/mode"
  elif grep -qi "rlimit" <<<"$err"; then
    echo no-rlimits > "$cache/mode"
  else
    echo "podman cannot run a container here: $err" >&2
    exit 1
  fi
fi
if [ -z "${CONTAINERS_CONF:-}" ] && [ "$(cat "$cache/mode")" = no-rlimits ]; then
  runtime="$here/deploy/container/oci-runtime-without-rlimits"
  cat > "$cache/containers.conf" <<CONF
[engine]
runtime = "runc"
[engine.runtimes]
runc = ["$runtime"]
CONF
  command -v runc >/dev/null || { echo "scripts/podman.sh: needs runc (apt-get install -y runc)" >&2; exit 1; }
  export CONTAINERS_CONF="$cache/containers.conf" SCORCH_OCI_RUNTIME=$(command -v runc)
fi
exec podman "$@"
