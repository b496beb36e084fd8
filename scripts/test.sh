#!/usr/bin/env bash
# The whole test suite: the harness's own unit and integration tests (against real local servers and the
# Docker engine), with JUnit in target/nextest/ci/junit.xml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
cargo nextest run --workspace --profile ci -E 'not binary(acceptance)' "$@"
