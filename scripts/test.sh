#!/usr/bin/env bash
# Runs every test of hubbub: formatting and lints, the Rust unit and
# integration tests (real servers on port 0), then the interop tests with the
# official Socket.IO clients and a headless browser. Installs what those need.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

if [ -f scripts/interop-tests.sh ]; then
  echo "== interop tests (official clients, browser)"
  bash scripts/test-deps.sh
  cargo build --locked --bin hubbub
  bash scripts/interop-tests.sh
fi
