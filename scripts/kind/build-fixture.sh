#!/usr/bin/env bash
# Builds the Knative fixture function (fixtures/knative/fn: a static binary on FROM scratch) as
# $FIXTURE_IMAGE and loads it into the kind cluster's node (no registry). LOAD=0 only builds the image.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
target=$(uname -m)-unknown-linux-gnu
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
  --manifest-path "$root/fixtures/knative/fn/Cargo.toml" --target "$target" --target-dir "$root/target/knative-fn"
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$root/target/knative-fn/$target/release/fixture-knative" "$root/fixtures/knative/fn/Dockerfile" "$ctx/"
docker build --quiet -t "$FIXTURE_IMAGE" "$ctx"
if [ "${LOAD:-1}" = 1 ]; then
  kind load docker-image "$FIXTURE_IMAGE" --name "$KIND_CLUSTER"
fi
log "built $FIXTURE_IMAGE"
