# Shared by scripts/kind/*.sh: pinned versions, the kubeconfig of the kind cluster, and a bounded wait.
# shellcheck shell=bash
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=versions.env
source "$root/scripts/kind/versions.env"
export KUBECONFIG=${KUBECONFIG:-$root/target/kind/kubeconfig}
bin="$root/target/kind/bin"
export PATH="$bin:$PATH"

log() { printf '[kind] %s\n' "$*" >&2; }

# wait_for DESCRIPTION TIMEOUT_S COMMAND...: runs COMMAND every 3 s until it succeeds or TIMEOUT_S passed.
wait_for() {
  local what=$1 timeout=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      return 1
    fi
    sleep 3
  done
}
