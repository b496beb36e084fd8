#!/usr/bin/env bash
# Deletes the knative target's kind cluster (and nothing else).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  kind delete cluster --name "$KIND_CLUSTER" --kubeconfig "$KUBECONFIG"
fi
