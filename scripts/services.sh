#!/usr/bin/env bash
# The services the test suite talks to: PostgreSQL (127.0.0.1:5432, trust
# auth, database `test`) and Redis (127.0.0.1:6379). Starts either one that
# is installed but down, waits for it, and fails with one line naming what is
# missing otherwise.
set -euo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for PORT: up to 20 s.
wait_for() {
  for _ in $(seq 100); do
    up "$1" && return 0
    sleep 0.2
  done
  return 1
}

missing=()
for tool in psql redis-cli curl python3; do
  command -v "$tool" >/dev/null || missing+=("the command $tool (the tests and checks call it)")
done

if ! up 6379; then
  if command -v redis-server >/dev/null; then
    echo "services: starting Redis on 127.0.0.1:6379" >&2
    mkdir -p /tmp/hubbub-redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
      --appendonly no --dir /tmp/hubbub-redis --logfile /tmp/hubbub-redis/redis.log >/dev/null || true
  fi
  wait_for 6379 || missing+=("Redis on 127.0.0.1:6379 (install redis-server, or start it)")
fi

if ! up 5432; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "services: starting PostgreSQL on 127.0.0.1:5432" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >/dev/null 2>&1 || true
  fi
  wait_for 5432 || missing+=("PostgreSQL on 127.0.0.1:5432 (install postgresql, or start it)")
fi

if up 5432 && command -v psql >/dev/null; then
  if ! psql -h 127.0.0.1 -U postgres -d test -Atqc 'select 1' >/dev/null 2>&1; then
    missing+=("PostgreSQL database 'test' reachable as user postgres without a password (createdb -U postgres test; trust auth for 127.0.0.1)")
  fi
fi

if [ "${#missing[@]}" -gt 0 ]; then
  for m in "${missing[@]}"; do echo "services: missing: $m" >&2; done
  exit 1
fi
