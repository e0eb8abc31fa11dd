#!/usr/bin/env bash
# Runs the README's run command exactly as written (the first ```sh block
# under "## Run it"), with the listeners and data directory chosen through
# HUBBUB_* environment variables, then checks what a new user would: a line
# client gets `You are ADDR`, a browser gets the page, `-- --help` works,
# and SIGTERM stops the server with exit status 0.
set -euo pipefail
cd "$(dirname "$0")/.."

cmd=$(awk '/^## Run it/{s=1; next} /^## /{s=0} s && /^```sh/{b=1; next} b && /^```/{exit} b{print}' README.md)
if [ -z "$cmd" ] || [ "$(printf '%s\n' "$cmd" | wc -l)" -ne 1 ]; then
  echo "check-run-command: README.md's '## Run it' section must hold one command in a \`\`\`sh block (found: '$cmd')" >&2
  exit 1
fi
echo "check-run-command: README run command: $cmd" >&2

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The --help form of the same command (`cargo run --release -- --help`).
if ! bash -c "$cmd -- --help" >"$work/help.txt" 2>"$work/help.err"; then
  echo "check-run-command: '$cmd -- --help' failed:" >&2
  tail -n 20 "$work/help.err" >&2
  exit 1
fi
grep -q -- '--tcp-addr' "$work/help.txt" || { echo "check-run-command: --help does not list --tcp-addr" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tcp_port=$(free_port)
http_port=$(free_port)

# `exec` so that $pid is the command itself: cargo run replaces itself with
# the server (exec on Unix), so SIGTERM reaches the server.
admin_port=$(free_port)
HUBBUB_TCP_ADDR="127.0.0.1:$tcp_port" HUBBUB_HTTP_ADDR="127.0.0.1:$http_port" HUBBUB_ADMIN_ADDR="127.0.0.1:$admin_port" \
  HUBBUB_DATA_DIR="$work/data" bash -c "exec $cmd" >"$work/out.log" 2>&1 &
pid=$!

# The release build may take minutes on a fresh machine.
for _ in $(seq 1800); do
  grep -q "hubbub listening" "$work/out.log" && break
  kill -0 "$pid" 2>/dev/null || { echo "check-run-command: the server exited before listening:" >&2; tail -n 30 "$work/out.log" >&2; exit 1; }
  sleep 0.5
done
grep -q "hubbub listening" "$work/out.log" || { echo "check-run-command: no 'hubbub listening' within 15 min" >&2; tail -n 30 "$work/out.log" >&2; exit 1; }

# A line client, as `nc 127.0.0.1 PORT` would be.
exec 3<>"/dev/tcp/127.0.0.1/$tcp_port"
IFS= read -r -t 10 greeting <&3 || true
exec 3>&-
case "$greeting" in
  "You are 127.0.0.1:"*) echo "check-run-command: line client got: $greeting" >&2 ;;
  *) echo "check-run-command: line client got '$greeting', want 'You are 127.0.0.1:…'" >&2; exit 1 ;;
esac

# A browser, as far as the page goes.
page=$(curl -fsS --max-time 10 "http://127.0.0.1:$http_port/")
case "$page" in
  *"<html"*socket.io*) echo "check-run-command: GET / served the chat page (${#page} bytes)" >&2 ;;
  *) echo "check-run-command: GET / did not serve the chat page" >&2; exit 1 ;;
esac

# The admin listener answers (readiness, metrics).
ready=$(curl -fsS --max-time 10 "http://127.0.0.1:$admin_port/readyz")
[ "$ready" = "ready" ] || { echo "check-run-command: /readyz said '$ready'" >&2; exit 1; }
metrics=$(curl -fsS --max-time 10 "http://127.0.0.1:$admin_port/metrics")
grep -q '^hubbub_connections_accepted_total' <<< "$metrics" \
  || { echo "check-run-command: /metrics lacks hubbub_connections_accepted_total" >&2; exit 1; }

# The start-up log names where history lives and which listeners are up.
grep -q "history store open.*$work/data/hubbub.db" "$work/out.log" || { echo "check-run-command: the log does not say where history lives:" >&2; cat "$work/out.log" >&2; exit 1; }

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
if [ "$status" -ne 0 ]; then
  echo "check-run-command: after SIGTERM the server exited with $status, want 0:" >&2
  tail -n 20 "$work/out.log" >&2
  exit 1
fi
echo "check-run-command: ok ('$cmd' served, stopped on SIGTERM with status 0)" >&2
