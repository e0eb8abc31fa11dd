#!/usr/bin/env bash
# Drops what test runs leave behind if a test process died before its own
# cleanup ran (each test drops its PostgreSQL schema and Redis keys itself):
# schemas named hubbub_test_* in the database `test`, and Redis keys under
# hubbub-test-*. Touches nothing else. Prints what it removed.
set -euo pipefail

schemas=$(psql -h 127.0.0.1 -U postgres -d test -Atqc \
  "select nspname from pg_namespace where nspname like 'hubbub\_test\_%'" 2>/dev/null || true)
if [ -n "$schemas" ]; then
  echo "clean-test-state: dropping $(echo "$schemas" | wc -l) leftover schema(s)" >&2
  for s in $schemas; do
    psql -h 127.0.0.1 -U postgres -d test -qc "drop schema if exists \"$s\" cascade" >/dev/null
  done
fi

if command -v redis-cli >/dev/null; then
  keys=$(redis-cli -h 127.0.0.1 -p 6379 --scan --pattern 'hubbub-test-*' 2>/dev/null || true)
  if [ -n "$keys" ]; then
    echo "clean-test-state: deleting $(echo "$keys" | wc -l) leftover Redis key(s)" >&2
    echo "$keys" | xargs -n 100 redis-cli -h 127.0.0.1 -p 6379 del >/dev/null
  fi
fi
