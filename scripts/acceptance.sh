#!/usr/bin/env bash
# The main job: the SRE-002 suite against the embedded local target. Prints the criterion table and writes
# report.json, report.md and junit.xml into target/harness/<run-id>/ (or --out DIR).
# Extra arguments go to `harness run` (for example --only AC2 or --profile fixtures/criteria/securebase.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet -p harness --bin harness
exec target/debug/harness run --profile fixtures/criteria/sre-002.yaml --target local "$@"
