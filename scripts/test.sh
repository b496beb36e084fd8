#!/usr/bin/env bash
# The whole test suite: the harness's own unit and integration tests (against real local servers and the
# Docker engine), with JUnit in target/nextest/ci/junit.xml; then the main job (the whole SRE-002 profile on the
# local target, the same run as scripts/acceptance.sh, from the same build), which fails the suite when a check is
# left undecided (an error, a check without evidence, a measured check without a figure). A threshold missed on a
# busy machine is a decision and does not fail it. Extra arguments go to `cargo nextest run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# .config/nextest.toml needs nextest 0.9.143 (junit.report-skipped).
have=$(cargo nextest --version 2>/dev/null | sed -n 's/^cargo-nextest \([0-9.]*\).*/\1/p' || true)
if [ -z "$have" ] || [ "$(printf '%s\n' 0.9.143 "$have" | sort -V | head -1)" != 0.9.143 ]; then
  cargo install --locked cargo-nextest
fi
status=0
# Both steps build in the `test` profile (Cargo.toml): the main job reuses the tests' build.
cargo nextest run --workspace --profile ci -E 'not binary(acceptance)' "$@" || status=$?
# The main job runs after the tests, alone, so that its measurements do not share the two cores with them.
out="target/harness/${HARNESS_RUN_ID:-ci-$(date -u +%Y%m%dT%H%M%SZ)-$$}"
echo "test: the main job (sre-002 on the local target) into $out"
# The harness binary the tests just built (the `test` profile writes target/debug): `cargo run -p harness` alone
# would resolve other features and rebuild a hundred crates.
bin=target/debug/harness
[ -x "$bin" ] || cargo build --quiet --profile test -p harness --bin harness
"$bin" run --profile fixtures/criteria/sre-002.yaml --target local --fail-on undecided --out "$out" || status=$?
exit "$status"
