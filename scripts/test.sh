#!/usr/bin/env bash
# Runs every test of hubbub: formatting and lints, the Rust unit and
# integration tests (real servers on port 0), the interop tests with the
# official Socket.IO clients and a headless browser, and the README's run
# command exactly as written. Installs what those need.
#
# Needs PostgreSQL (127.0.0.1:5432, trust auth, database `test`) and Redis
# (127.0.0.1:6379): starts them when installed but down, and says which is
# missing otherwise (scripts/services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# A build from scratch gains nothing from incremental compilation, which
# would keep gigabytes of state beside the binaries.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

echo "== services (PostgreSQL, Redis)"
bash scripts/services.sh
# What a killed earlier run could not clean up; tests clean up after themselves.
bash scripts/clean-test-state.sh

echo "== cargo fmt / clippy"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== nothing left behind"
left_schemas=$(psql -h 127.0.0.1 -U postgres -d test -Atqc \
  "select count(*) from pg_namespace where nspname like 'hubbub\_test\_%'")
left_keys=$(redis-cli -h 127.0.0.1 -p 6379 --scan --pattern 'hubbub-test-*' | wc -l)
if [ "$left_schemas" != 0 ] || [ "$left_keys" != 0 ]; then
  echo "test.sh: the tests left $left_schemas PostgreSQL schema(s) and $left_keys Redis key(s) behind" >&2
  bash scripts/clean-test-state.sh
  exit 1
fi

if [ -f scripts/interop-tests.sh ]; then
  echo "== interop tests (official clients, browser)"
  bash scripts/test-deps.sh
  cargo build --locked --bin hubbub
  bash scripts/interop-tests.sh
fi

echo "== the README's run command, as written"
bash scripts/check-run-command.sh

if [ -f scripts/check-deploy.sh ]; then
  echo "== deploy/hubbub.service"
  bash scripts/check-deploy.sh
fi
echo "== all tests passed"
