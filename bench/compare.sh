#!/usr/bin/env bash
# Benchmarks hubbub against the two reference peers with one load generator
# (crates/hubbub-bench), and writes the results into docs/BENCHMARKS.md.
#
# Usage: bench/compare.sh [--quick] [--out FILE]
#
#   --quick     tiny versions of every scenario (e.g. 50 clients), for smoke
#               testing; writes to $BENCH_WORK/BENCHMARKS.quick.md unless --out
#   --out FILE  where to write the markdown (default docs/BENCHMARKS.md)
#
# It builds hubbub and hubbub-bench (release), builds the Go chat and installs
# the Node socket.io chat from $SHARED/peers into $BENCH_WORK (default
# /tmp/hubbub-bench), then runs the scenarios against hubbub TCP, hubbub
# Socket.IO, the Go chat and the Node chat, one server at a time on fixed
# loopback ports. Every run gets a freshly started server process (so memory
# baselines are clean and no run inherits another's backlog), which is stopped
# after the run. Only 127.0.0.1 is ever loaded.
#
# Environment: SHARED (default: <repo>/../shared), BENCH_WORK,
# HUBBUB_TCP_PORT (7101), HUBBUB_HTTP_PORT (7102), GO_PORT (7001),
# NODE_PORT (7002), HUBBUB_EXTRA_ARGS (more hubbub flags, e.g. "--store memory").
#
# The output file is regenerated between its BEGIN/END markers; text outside
# them is kept.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

QUICK=0
OUT=
ARGS=("$@")
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "$0")" && git rev-parse --show-toplevel)
cd "$ROOT"
SHARED=${SHARED:-$ROOT/../shared}
PEERS=$(cd "$SHARED/peers" 2> /dev/null && pwd || echo "$SHARED/peers")
WORK=${BENCH_WORK:-/tmp/hubbub-bench}
# A path as the report names it: relative to the repository, so that no
# machine's absolute paths end up in docs/BENCHMARKS.md.
relative() { realpath -m --relative-to="$ROOT" "$1"; }
HOST=127.0.0.1
HUBBUB_TCP_PORT=${HUBBUB_TCP_PORT:-7101}
HUBBUB_HTTP_PORT=${HUBBUB_HTTP_PORT:-7102}
GO_PORT=${GO_PORT:-7001}
NODE_PORT=${NODE_PORT:-7002}
read -r -a HUBBUB_EXTRA <<< "${HUBBUB_EXTRA_ARGS:-}"
# More hubbub flags for the next run only (the ingest scenario's stores).
RUN_EXTRA=()
if [ -z "$OUT" ]; then
  if [ "$QUICK" = 1 ]; then OUT=$WORK/BENCHMARKS.quick.md; else OUT=$ROOT/docs/BENCHMARKS.md; fi
fi

mkdir -p "$WORK"
RESULTS=$WORK/results
LOGS=$WORK/logs
rm -rf "$RESULTS" "$LOGS"
mkdir -p "$RESULTS" "$LOGS"
COMMANDS=$WORK/commands.txt
PROBLEMS=$WORK/problems.txt
: > "$COMMANDS"
: > "$PROBLEMS"

log() { printf '%s\n' "$*" >&2; }
json_escape() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n\t' '  '; }
load_average() { cut -d' ' -f1-3 /proc/loadavg; }

LOAD_BEFORE=$(load_average)
if awk -v l="${LOAD_BEFORE%% *}" 'BEGIN { exit !(l >= 1.0) }'; then
  log "warning: load average is $LOAD_BEFORE; other work on this machine will skew the numbers"
fi

# --- builds --------------------------------------------------------------
log "== building hubbub and hubbub-bench (release)"
cargo build --release -p hubbub >&2
cargo build --release -p hubbub-bench >&2
HUBBUB=$ROOT/target/release/hubbub
BENCH=$ROOT/target/release/hubbub-bench

GO_SKIP=
GO_BIN=$WORK/gopl-chat
if [ ! -d "$PEERS/gopl-chat" ]; then
  GO_SKIP="peer sources not found at $PEERS/gopl-chat"
elif ! command -v go > /dev/null; then
  GO_SKIP="go is not installed (apt-get install -y golang-go)"
else
  log "== building the Go chat into $GO_BIN"
  rm -rf "$WORK/gopl-chat-src"
  cp -r "$PEERS/gopl-chat" "$WORK/gopl-chat-src"
  chmod -R u+w "$WORK/gopl-chat-src"
  if ! (cd "$WORK/gopl-chat-src" && go build -o "$GO_BIN" .) > "$LOGS/go-build.log" 2>&1; then
    GO_SKIP="go build failed: $(tail -n 3 "$LOGS/go-build.log")"
  fi
fi

NODE_SKIP=
NODE_DIR=$WORK/socketio-chat
if [ ! -d "$PEERS/socketio-chat" ]; then
  NODE_SKIP="peer sources not found at $PEERS/socketio-chat"
elif ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  NODE_SKIP="node/npm are not installed"
else
  log "== installing the Node socket.io chat into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp "$PEERS/socketio-chat/app.js" "$PEERS/socketio-chat/package.json" "$NODE_DIR/"
  chmod u+w "$NODE_DIR/app.js" "$NODE_DIR/package.json"
  if ! (cd "$NODE_DIR" && npm install --no-audit --no-fund) > "$LOGS/npm-install.log" 2>&1; then
    NODE_SKIP="npm install failed: $(tail -n 3 "$LOGS/npm-install.log")"
  fi
fi

# --- servers -------------------------------------------------------------
SERVER_PID=
SERVER_NAME=

# Whether something listens on 127.0.0.1:PORT (ss does not connect; the
# fallback does, which the servers see as a client that comes and goes).
if command -v ss > /dev/null; then
  port_listening() { ss -Hltn "sport = :$1" 2> /dev/null | grep -q .; }
else
  port_listening() { (exec 3<> "/dev/tcp/$HOST/$1") 2> /dev/null; }
fi

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  if kill -0 "$SERVER_PID" 2> /dev/null; then
    kill -TERM "$SERVER_PID" 2> /dev/null || true
    for _ in $(seq 150); do
      kill -0 "$SERVER_PID" 2> /dev/null || break
      sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2> /dev/null; then
      echo "$SERVER_NAME (pid $SERVER_PID) did not stop within 15 s of SIGTERM; killed" >> "$PROBLEMS"
      kill -KILL "$SERVER_PID" 2> /dev/null || true
    fi
  fi
  wait "$SERVER_PID" 2> /dev/null || true
  SERVER_PID=
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# start_server hubbub|go|node: starts it in the background, waits until it listens.
start_server() {
  local ports
  SERVER_NAME=$1
  case "$1" in
    hubbub) ports="$HUBBUB_TCP_PORT $HUBBUB_HTTP_PORT" ;;
    go) ports=$GO_PORT ;;
    node) ports=$NODE_PORT ;;
  esac
  for port in $ports; do
    if port_listening "$port"; then
      log "compare.sh: port $port is already in use; stop whatever listens there"
      exit 1
    fi
  done
  case "$1" in
    hubbub)
      rm -rf "$WORK/hubbub-data"
      "$HUBBUB" --tcp-addr "$HOST:$HUBBUB_TCP_PORT" --http-addr "$HOST:$HUBBUB_HTTP_PORT" --admin-addr "$HOST:0" \
        --flood-rate 0 --max-connections-per-ip 0 --max-connections 0 \
        --data-dir "$WORK/hubbub-data" "${HUBBUB_EXTRA[@]}" "${RUN_EXTRA[@]}" >> "$LOGS/hubbub.log" 2>&1 &
      ;;
    go) CHAT_ADDR=$HOST:$GO_PORT "$GO_BIN" >> "$LOGS/go.log" 2>&1 & ;;
    node) (cd "$NODE_DIR" && PORT=$NODE_PORT exec node app.js) >> "$LOGS/node.log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  for port in $ports; do
    for _ in $(seq 200); do
      port_listening "$port" && break
      kill -0 "$SERVER_PID" 2> /dev/null || break
      sleep 0.05
    done
    if ! port_listening "$port"; then
      log "compare.sh: $1 did not start listening on $port (see $LOGS/$1.log)"
      exit 1
    fi
  done
}

# --- runs ----------------------------------------------------------------
# skip SCENARIO LABEL REASON: a row without numbers.
skip() {
  printf '{"scenario":"%s","server":"%s","failure":"%s"}\n' \
    "$1" "$(json_escape "$2")" "$(json_escape "$3")" >> "$RESULTS/$1.jsonl"
}

# run SCENARIO LABEL SERVER PROTO [hubbub-bench options…]: one run on a fresh server.
run() {
  local scenario=$1 label=$2 server=$3 proto=$4 addr out rc=0
  shift 4
  case "$server/$proto" in
    hubbub/tcp) addr=$HOST:$HUBBUB_TCP_PORT ;;
    hubbub/socketio) addr=$HOST:$HUBBUB_HTTP_PORT ;;
    go/tcp) addr=$HOST:$GO_PORT ;;
    node/socketio) addr=$HOST:$NODE_PORT ;;
  esac
  start_server "$server"
  local args=(--json --proto "$proto" --addr "$addr" --pid "$SERVER_PID" --scenario "$scenario" --server "$label" "$@")
  { printf 'hubbub-bench'; printf ' %q' "${args[@]}"; printf '\n'; } >> "$COMMANDS"
  log "== $scenario: $label"
  out=$("$BENCH" "${args[@]}" 2>> "$LOGS/bench.log") || rc=$?
  if [ -n "$out" ]; then
    echo "$out" >> "$RESULTS/$scenario.jsonl"
    if command -v jq > /dev/null; then
      jq -r '"   \(.connected) connected; \(.received)/\(.expected) delivered, lost \(.lost), \(.deliveries_per_sec|floor)/s, p99 \(.latency_ms.p99 // "-") ms; RSS \(.rss.idle_kib // "-") KiB idle, \(.rss.per_connection_bytes // "-") B/conn\(if .timed_out then "; TIMED OUT" else "" end)"' <<< "$out" >&2
    fi
  else
    skip "$scenario" "$label" "hubbub-bench exited with status $rc (see $LOGS/bench.log)"
  fi
  if ! kill -0 "$SERVER_PID" 2> /dev/null; then
    echo "$label exited during the $scenario run (see its log)" >> "$PROBLEMS"
  fi
  stop_server
}

if [ "$QUICK" = 1 ]; then
  FAN_CLIENTS=50 FAN_SENDERS=5 FAN_MESSAGES=20
  RATE_CLIENTS=50 RATE_SENDERS=5 RATE_MESSAGES=20 RATE=50
  IDLE_CLIENTS=200 IDLE_ROOMS=20 IDLE_SETTLE=10
  STORM_CLIENTS=200 BIG_CLIENTS=300
  ROOMS_CLIENTS=100 ROOMS=10 ROOMS_MESSAGES=2 ROOMS_RATE=100
  INGEST_CLIENTS=50 INGEST_MESSAGES=20
  TIMEOUT_SCALE=4
else
  FAN_CLIENTS=1000 FAN_SENDERS=10 FAN_MESSAGES=100
  RATE_CLIENTS=1000 RATE_SENDERS=10 RATE_MESSAGES=100 RATE=100
  IDLE_CLIENTS=5000 IDLE_ROOMS=500 IDLE_SETTLE=60
  STORM_CLIENTS=10000 BIG_CLIENTS=19000
  ROOMS_CLIENTS=5000 ROOMS=500 ROOMS_MESSAGES=5 ROOMS_RATE=1000
  INGEST_CLIENTS=1000 INGEST_MESSAGES=100
  TIMEOUT_SCALE=1
fi
RATE_SECS=$(awk -v s="$RATE_SENDERS" -v m="$RATE_MESSAGES" -v r="$RATE" 'BEGIN { printf "%g", s * m / r }')
ROOMS_SECS=$(awk -v c="$ROOMS_CLIENTS" -v m="$ROOMS_MESSAGES" -v r="$ROOMS_RATE" 'BEGIN { printf "%g", c * m / r }')
t() { echo $(($1 / TIMEOUT_SCALE)); }

FAN=(--clients "$FAN_CLIENTS" --senders "$FAN_SENDERS" --messages "$FAN_MESSAGES" --rate 0 --timeout "$(t 120)")
FIXED=(--clients "$RATE_CLIENTS" --senders "$RATE_SENDERS" --messages "$RATE_MESSAGES" --rate "$RATE" --timeout "$(t 120)")
IDLE=(--clients "$IDLE_CLIENTS" --idle-only --settle-max "$IDLE_SETTLE" --timeout "$(t 240)")
MANY=(--clients "$ROOMS_CLIENTS" --rooms "$ROOMS" --senders "$ROOMS_CLIENTS" --messages "$ROOMS_MESSAGES" --rate "$ROOMS_RATE" --timeout "$(t 180)")
# Everyone connects at once (1000 connects in flight), then one message to all.
STORM=(--clients "$STORM_CLIENTS" --senders 1 --messages 1 --connect-concurrency 1000 --timeout "$(t 180)")
BIG=(--clients "$BIG_CLIENTS" --senders 1 --messages 1 --connect-concurrency 1000 --timeout "$(t 240)")
INGEST=(--clients "$INGEST_CLIENTS" --rooms "$INGEST_CLIENTS" --senders "$INGEST_CLIENTS" --messages "$INGEST_MESSAGES" --rate 0 --timeout "$(t 180)")
ONE_ROOM="one room only: the peer has no rooms"
# The PostgreSQL the ingest scenario commits to (a schema of its own, dropped after).
BENCH_PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}
BENCH_PG_SCHEMA=hubbub_bench_ingest

# One server at a time: every scenario of a server, then the next server.
run fanout "hubbub TCP" hubbub tcp "${FAN[@]}"
run fixed "hubbub TCP" hubbub tcp "${FIXED[@]}"
run idle "hubbub TCP, one room" hubbub tcp "${IDLE[@]}"
run idle "hubbub TCP, rooms of 10" hubbub tcp "${IDLE[@]}" --rooms "$IDLE_ROOMS"
run rooms "hubbub TCP" hubbub tcp "${MANY[@]}"
run storm "hubbub TCP" hubbub tcp "${STORM[@]}"
run storm "hubbub TCP, $BIG_CLIENTS connections" hubbub tcp "${BIG[@]}"

# Ingest: every message committed before it is relayed, one store at a time.
run ingest "hubbub TCP, SQLite (default)" hubbub tcp "${INGEST[@]}"
RUN_EXTRA=(--store memory)
run ingest "hubbub TCP, --store memory" hubbub tcp "${INGEST[@]}"
RUN_EXTRA=()
if command -v psql > /dev/null && psql "$BENCH_PG" -qc "DROP SCHEMA IF EXISTS $BENCH_PG_SCHEMA CASCADE; CREATE SCHEMA $BENCH_PG_SCHEMA" 2> "$LOGS/psql.log"; then
  RUN_EXTRA=(--database-url "$BENCH_PG?options=-csearch_path%3D$BENCH_PG_SCHEMA")
  run ingest "hubbub TCP, PostgreSQL (local)" hubbub tcp "${INGEST[@]}"
  RUN_EXTRA=()
  psql "$BENCH_PG" -qc "DROP SCHEMA IF EXISTS $BENCH_PG_SCHEMA CASCADE" 2>> "$LOGS/psql.log" || true
else
  skip ingest "hubbub TCP, PostgreSQL (local)" "no PostgreSQL at $BENCH_PG ($(head -n 1 "$LOGS/psql.log" 2> /dev/null))"
fi

run fanout "hubbub Socket.IO" hubbub socketio "${FAN[@]}"
run fixed "hubbub Socket.IO" hubbub socketio "${FIXED[@]}"
run idle "hubbub Socket.IO, one room" hubbub socketio "${IDLE[@]}"
run idle "hubbub Socket.IO, rooms of 10" hubbub socketio "${IDLE[@]}" --rooms "$IDLE_ROOMS"
run rooms "hubbub Socket.IO" hubbub socketio "${MANY[@]}"
run storm "hubbub Socket.IO" hubbub socketio "${STORM[@]}"

for scenario in fanout fixed idle rooms storm; do
  if [ -n "$GO_SKIP" ]; then
    skip "$scenario" "Go chat (TCP)" "$GO_SKIP"
  elif [ "$scenario" = rooms ]; then
    skip rooms "Go chat (TCP)" "$ONE_ROOM"
  else
    case $scenario in
      fanout) run fanout "Go chat (TCP)" go tcp "${FAN[@]}" ;;
      fixed) run fixed "Go chat (TCP)" go tcp "${FIXED[@]}" ;;
      idle) run idle "Go chat (TCP)" go tcp "${IDLE[@]}" ;;
      storm) run storm "Go chat (TCP)" go tcp "${STORM[@]}" ;;
    esac
  fi
done

for scenario in fanout fixed idle rooms storm; do
  if [ -n "$NODE_SKIP" ]; then
    skip "$scenario" "Node socket.io chat" "$NODE_SKIP"
  elif [ "$scenario" = rooms ]; then
    skip rooms "Node socket.io chat" "$ONE_ROOM"
  else
    case $scenario in
      fanout) run fanout "Node socket.io chat" node socketio "${FAN[@]}" ;;
      fixed) run fixed "Node socket.io chat" node socketio "${FIXED[@]}" ;;
      idle) run idle "Node socket.io chat" node socketio "${IDLE[@]}" ;;
      storm) run storm "Node socket.io chat" node socketio "${STORM[@]}" ;;
    esac
  fi
done
LOAD_AFTER=$(load_average)

# --- the markdown --------------------------------------------------------
table() { "$BENCH" report --no-headings "$RESULTS/$1.jsonl"; }

server_log_summary() {
  local file lines
  for file in "$LOGS"/hubbub.log "$LOGS"/go.log "$LOGS"/node.log; do
    [ -f "$file" ] || continue
    lines=$(grep -E 'WARN|ERROR|panic|Error|error' "$file" || true)
    if [ -n "$lines" ]; then
      printf -- '- `%s`: %s warning/error lines; the first ones:\n\n```\n%s\n```\n\n' \
        "$(basename "$file")" "$(wc -l <<< "$lines")" "$(head -n 8 <<< "$lines" | cut -c1-300)"
    else
      printf -- '- `%s`: no warnings or errors.\n' "$(basename "$file")"
    fi
  done
  if [ -s "$PROBLEMS" ]; then
    printf '\nProblems seen by the script:\n\n'
    sed 's/^/- /' "$PROBLEMS"
  fi
}

generate() {
  local dirty rev socketio_version go_version
  rev=$(git rev-parse --short HEAD)
  dirty=$(git status --porcelain -- crates/hubbub | wc -l)
  go_version=$( (command -v go > /dev/null && go version) || echo "not installed")
  socketio_version=$(sed -n 's/^ *"version": *"\(.*\)".*/\1/p' "$NODE_DIR/node_modules/socket.io/package.json" 2> /dev/null | head -n 1)
  cat << EOF
<!-- BEGIN generated by bench/compare.sh: do not edit by hand; re-run the script -->

_Generated by \`bench/compare.sh${ARGS[*]:+ ${ARGS[*]}}\` on $(date -u '+%Y-%m-%d %H:%M UTC')$([ "$QUICK" = 1 ] && echo " — **quick mode: tiny smoke-test sizes, not benchmark numbers**")._

## Setup

- Machine: $(nproc) cores (\`nproc\`), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), Linux $(uname -r).
- Load average (1, 5, 15 min) before the runs: $LOAD_BEFORE; after: $LOAD_AFTER.
- Memory (\`free -g\`):

  \`\`\`
$(free -g | sed 's/^/  /')
  \`\`\`

- hubbub: commit $rev$([ "$dirty" -gt 0 ] && echo " plus $dirty uncommitted file(s) under crates/hubbub"), release build, its default history store, run as
  \`hubbub --tcp-addr $HOST:$HUBBUB_TCP_PORT --http-addr $HOST:$HUBBUB_HTTP_PORT --flood-rate 0 --max-connections-per-ip 0 --max-connections 0 --data-dir \$BENCH_WORK/hubbub-data${HUBBUB_EXTRA_ARGS:+ $HUBBUB_EXTRA_ARGS}\`
  (flood control and the connection caps off: every client comes from 127.0.0.1, and the default cap is 256 per IP).
- Go chat (\`$(relative "$PEERS")/gopl-chat\`): $go_version$([ -n "$GO_SKIP" ] && echo " — **not run: $GO_SKIP**").
- Node socket.io chat (\`$(relative "$PEERS")/socketio-chat\`): node $(node --version 2> /dev/null || echo "not installed"), socket.io ${socketio_version:-?}$([ -n "$NODE_SKIP" ] && echo " — **not run: $NODE_SKIP**").
- Load generator: \`hubbub-bench\` (crates/hubbub-bench), the same for every server: tokio, one task per connection
  (two for senders), TCP_NODELAY, a minimal Socket.IO v5 client over WebSocket (tokio-tungstenite).
  It runs on the same $(nproc) cores as the server, so every number here is "server + clients on one box";
  the CPU columns show how the time was split.
- Every run starts a fresh server process on a fixed loopback port and stops it afterwards.

## How to read the tables

- A client connects (Socket.IO: WebSocket, \`40\` → \`40{…}\`); with rooms, it joins its room first
  (hubbub TCP \`/join rK\`; hubbub Socket.IO \`join\` then \`leave lobby\`). The load starts only once every
  client is connected and the server has been quiet (no byte to any client) for 0.5 s, so the
  connects' join announcements are not mixed into the load.
- Each message is the chat text \`bench RUN SENDER SEQ MICROS\` padded with \`x\` to 64 bytes. Receivers
  find it in \`NAME: text\` (TCP) or \`42["notice",{"message":"NICK:text"}]\` (Socket.IO; hubbub also emits
  a \`message\` event per chat, which is not counted) and record latency = receive time − MICROS.
- **Deliveries** are counted at the receivers; deliveries/s = received ÷ (last delivery − first send).
  **Expected** = messages sent by connected senders × clients in the sender's room (every server relays
  to the sender too). **Lost** = expected − received, after the senders are done and nothing has arrived
  for 5 s (or at the run's timeout).
- Latency for "as fast as possible" runs is from the moment the sender wrote the message; for fixed-rate
  runs it is from the moment the message was **due**, so a sender held back by the server (TCP
  backpressure) is charged for the wait (no coordinated omission).
- RSS is the server's VmRSS from /proc: before the first connect, with all clients connected and quiet
  ("idle"), and the highest 50 ms sample during the load ("peak"). RSS per connection = (idle − before) ÷
  connections. Node's number includes whatever its GC has not returned yet.

## Results

### 1. Saturating fan-out

$FAN_CLIENTS clients in one room; $FAN_SENDERS of them send $FAN_MESSAGES messages each, back to back
($((FAN_SENDERS * FAN_MESSAGES)) messages, $((FAN_SENDERS * FAN_MESSAGES * FAN_CLIENTS)) deliveries expected).

$(table fanout)

### 2. Fixed rate

$RATE_CLIENTS clients in one room; $RATE_SENDERS senders together send $RATE messages/s for ${RATE_SECS} s
($RATE × $RATE_CLIENTS = $((RATE * RATE_CLIENTS)) deliveries/s offered).

$(table fixed)

### 3. Idle memory

$IDLE_CLIENTS connections that send nothing; RSS read once the server has been quiet for 0.5 s, or after
$IDLE_SETTLE s of waiting. On the Go chat every connect is announced to everyone already there:
$IDLE_CLIENTS connects make about $((IDLE_CLIENTS * IDLE_CLIENTS / 2)) announcements, and a server still
delivering them when RSS is read shows "not quiet" (its RSS then includes queued announcements). hubbub
announces the first 100 one by one, then summarizes (section 6). The hubbub rows "rooms of 10" put the
same connections in $IDLE_ROOMS rooms (each client joins its room right after connecting, at most 200
connects in flight), which measures the connections without that storm. The Node chat announces nothing.
"Sent to clients" is what the clients received in all (greetings, announcements, pings).

$(table idle)

### 4. Many rooms (hubbub only)

$ROOMS_CLIENTS clients in $ROOMS rooms of $((ROOMS_CLIENTS / ROOMS)); every client sends $ROOMS_MESSAGES messages,
$ROOMS_RATE messages/s in total over ${ROOMS_SECS} s. The peers have a single room, so they cannot run this.

$(table rooms)

### 5. History at line rate (hubbub only)

$INGEST_CLIENTS clients, each alone in its own room, each sending $INGEST_MESSAGES messages as fast as it can
($((INGEST_CLIENTS * INGEST_MESSAGES)) messages): the cost of taking messages in when every one is committed
to history before it is relayed or acknowledged. One row per history store; the notes give the bytes the
server had written to storage per message (\`write_bytes\` of /proc/PID/io: table, index and WAL pages).
The PostgreSQL row is the hubbub process only (the database server's own CPU and writes are not counted).

$(table ingest)

### 6. Join storm and the biggest room

$STORM_CLIENTS clients connect at once into one room (1000 connects in flight, as when every client of a
restarted server comes back), then one of them sends one message. "Shed": connections the server closed
early (too slow while the storm's announcements queued). "Quiet after": from the last connect until no
client had received a byte for 0.5 s (those 0.5 s included). hubbub summarizes presence in a room past 100 connections
(\`* 37 joined, 4 left (5012 here)\`); the Go chat announces every arrival to everyone
(\`ADDR has joined us\`); the Node chat announces nothing. The row with $BIG_CLIENTS connections is the
most this machine's open-files limit (20,000 per process) leaves room for, on hubbub TCP.

$(table storm)

## Server logs

$(server_log_summary)

## Commands

Every run, as run (\`--pid\` is the fresh server's):

\`\`\`
$(cat "$COMMANDS")
\`\`\`

<!-- END generated by bench/compare.sh -->
EOF
}

GENERATED=$WORK/generated.md
generate > "$GENERATED"
mkdir -p "$(dirname "$OUT")"
BEGIN='<!-- BEGIN generated by bench/compare.sh'
END='<!-- END generated by bench/compare.sh -->'
if [ -f "$OUT" ] && grep -qF "$BEGIN" "$OUT" && grep -qF "$END" "$OUT"; then
  awk -v begin="$BEGIN" -v end="$END" -v gen="$GENERATED" '
    index($0, begin) == 1 { while ((getline line < gen) > 0) print line; skipping = 1; next }
    skipping && index($0, end) == 1 { skipping = 0; next }
    !skipping { print }
  ' "$OUT" > "$OUT.tmp"
  mv "$OUT.tmp" "$OUT"
else
  {
    printf '# Benchmarks\n\n'
    printf 'hubbub against the two servers it starts from, the Go chat of *The Go Programming Language*\n'
    printf '(TCP) and the seed'"'"'s Node socket.io chat, under the same load generator on the same machine.\n'
    printf 'Re-run with `bench/compare.sh` (about 10 minutes; `--quick` for a smoke test); one run with\n'
    printf 'other options: `cargo run --release -p hubbub-bench -- --help`.\n\n'
    cat "$GENERATED"
  } > "$OUT"
fi
log "== wrote $OUT"
