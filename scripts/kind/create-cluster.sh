#!/usr/bin/env bash
# Creates the kind cluster of the knative target from kind-config.yaml with the pinned node image, installing
# pinned kind and kubectl binaries under target/kind/bin when missing. Writes the kubeconfig to $KUBECONFIG
# (default target/kind/kubeconfig). Idempotent: an existing cluster of that name is kept.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$bin"
arch=$(uname -m | sed -e 's/x86_64/amd64/' -e 's/aarch64/arm64/')
if ! kind version 2>/dev/null | grep -q "${KIND_VERSION}"; then
  log "installing kind ${KIND_VERSION}"
  curl -fsSLo "$bin/kind" "https://kind.sigs.k8s.io/dl/${KIND_VERSION}/kind-linux-${arch}"
  chmod +x "$bin/kind"
fi
if ! kubectl version --client 2>/dev/null | grep -q "${KUBECTL_VERSION}"; then
  log "installing kubectl ${KUBECTL_VERSION}"
  curl -fsSLo "$bin/kubectl" "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl"
  chmod +x "$bin/kubectl"
fi
if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  log "cluster $KIND_CLUSTER exists"
  kind export kubeconfig --name "$KIND_CLUSTER" --kubeconfig "$KUBECONFIG"
else
  log "creating cluster $KIND_CLUSTER ($KIND_NODE_IMAGE)"
  mkdir -p "$(dirname "$KUBECONFIG")"
  kind create cluster --name "$KIND_CLUSTER" --image "$KIND_NODE_IMAGE" --config "$root/kind-config.yaml" \
    --kubeconfig "$KUBECONFIG" --wait 180s
fi
kubectl cluster-info
log "KUBECONFIG=$KUBECONFIG (context kind-$KIND_CLUSTER)"
