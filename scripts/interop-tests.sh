#!/usr/bin/env bash
# Interop tests: official Socket.IO clients (Node and Python), a TCP client and
# the web page in headless Chromium, against a hubbub binary.
#   HUBBUB_BIN   server binary (default: target/debug/hubbub); build it first
# Each suite runs with a hard time limit; every test starts and stops its own servers.
set -uo pipefail
cd "$(dirname "$0")/.."
export HUBBUB_BIN="${HUBBUB_BIN:-target/debug/hubbub}"
export PYTHONDONTWRITEBYTECODE=1

if [ ! -x "$HUBBUB_BIN" ]; then
  echo "interop-tests: $HUBBUB_BIN not found or not executable (build it first)" >&2
  exit 1
fi
bash scripts/test-deps.sh || { echo "interop-tests: installing test dependencies failed" >&2; exit 1; }

status=0
echo "== node: tests/interop/node" >&2
timeout -k 10 600 node --test --test-concurrency=1 --test-timeout=180000 tests/interop/node/ || status=1
echo "== python: tests/interop/python" >&2
timeout -k 10 600 target/pyenv/bin/python -m pytest -q -p no:cacheprovider tests/interop/python || status=1

if [ "$status" -ne 0 ]; then echo "interop-tests: FAILED" >&2; else echo "interop-tests: all passed" >&2; fi
exit "$status"
