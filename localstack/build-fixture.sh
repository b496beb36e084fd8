#!/usr/bin/env bash
# Builds the fixture function as a Lambda `provided.al2023` zip (a static `bootstrap` executable) into
# localstack/build/function.zip, which the init hook deploys.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p fixture-fn --target x86_64-unknown-linux-gnu
mkdir -p localstack/build
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp target/x86_64-unknown-linux-gnu/release/fixture-fn "$tmp/bootstrap"
chmod 755 "$tmp/bootstrap"
(cd "$tmp" && python3 -m zipfile -c function.zip bootstrap)
mv "$tmp/function.zip" localstack/build/function.zip
echo "wrote localstack/build/function.zip"
