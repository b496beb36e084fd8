#!/usr/bin/env bash
# Against a running kind cluster (create-cluster.sh, install.sh, build-fixture.sh, deploy-fixture.sh):
# the `needs kind` tests of the knative target, then the acceptance suite with HARNESS_TARGET=knative, then
# `harness run` writing the report. Extra arguments go to `harness run`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$root"
export HARNESS_TARGET=knative
export HARNESS_KNATIVE_NAMESPACE=${HARNESS_KNATIVE_NAMESPACE:-default}
export HARNESS_KNATIVE_INGRESS=${HARNESS_KNATIVE_INGRESS:-http://127.0.0.1:31080}
export HARNESS_KNATIVE_PROMETHEUS=${HARNESS_KNATIVE_PROMETHEUS:-http://127.0.0.1:30090}
export HARNESS_RUN_ID=${HARNESS_RUN_ID:-kind-$(date -u +%Y%m%dT%H%M%SZ)}
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
status=0
cargo nextest run -p harness --profile ci --test knative_kind --run-ignored ignored-only || status=1
cargo nextest run --profile acceptance || status=1
cargo run --quiet -p harness --bin harness -- run --out "target/harness/$HARNESS_RUN_ID" "$@" || status=1
exit $status
