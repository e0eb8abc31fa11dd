#!/usr/bin/env bash
# Measures what a cluster costs: the same load against one hubbub node and
# against three nodes sharing PostgreSQL and Redis, with the clients spread
# over the nodes (client i on node i mod 3, so most deliveries cross nodes).
# Writes the results into docs/BENCHMARKS.md between its CLUSTER markers.
#
# Usage: bench/cluster.sh [--quick] [--repeat N] [--out FILE]
#
#   --quick     small runs (90 clients), for smoke testing; writes to
#               $BENCH_WORK/BENCHMARKS.cluster-quick.md unless --out
#   --repeat N  run every setup N times (default 3; 1 with --quick) and
#               report the median with the range: single runs on a shared
#               2-core machine vary a lot
#   --out FILE  where to write the markdown (default docs/BENCHMARKS.md)
#   --scenarios "burst rate ingest"
#               which scenarios to run (default all three); the tables of
#               the others are left out of the markdown
#
# Needs PostgreSQL (DATABASE, default postgres://postgres@127.0.0.1:5432/test;
# each setup gets a fresh schema) and Redis (REDIS, default
# redis://127.0.0.1:6379; each setup gets a fresh key prefix). Nodes listen
# on 127.0.0.1 ports from BASE_PORT (default 7300). Every run starts fresh
# nodes and stops them afterwards.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

QUICK=0
OUT=
REPEAT=
SCENARIOS="burst rate ingest"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT=${2:?--out needs a file}; shift ;;
    --repeat) REPEAT=${2:?--repeat needs a number}; shift ;;
    --scenarios) SCENARIOS=${2:?--scenarios needs a list}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

ROOT=$(cd "$(dirname "$0")" && git rev-parse --show-toplevel)
cd "$ROOT"
WORK=${BENCH_WORK:-/tmp/hubbub-bench}
DATABASE=${DATABASE:-postgres://postgres@127.0.0.1:5432/test}
REDIS=${REDIS:-redis://127.0.0.1:6379}
BASE_PORT=${BASE_PORT:-7300}
HOST=127.0.0.1
if [ -z "$OUT" ]; then
  if [ "$QUICK" = 1 ]; then OUT=$WORK/BENCHMARKS.cluster-quick.md; else OUT=$ROOT/docs/BENCHMARKS.md; fi
fi
if [ "$QUICK" = 1 ]; then
  CLIENTS=90 SENDERS=9 BURST=20 RATE=30 RATED=30 REPEAT=${REPEAT:-1}
  INGEST_CLIENTS=60 INGEST_MESSAGES=20
else
  CLIENTS=900 SENDERS=9 BURST=1000 RATE=90 RATED=100 REPEAT=${REPEAT:-3}
  INGEST_CLIENTS=1000 INGEST_MESSAGES=100
fi
wants() { [[ " $SCENARIOS " == *" $1 "* ]]; }

mkdir -p "$WORK"
RESULTS=$WORK/cluster-results.jsonl
LOGS=$WORK/cluster-logs
: > "$RESULTS"
rm -rf "$LOGS"
mkdir -p "$LOGS"
log() { printf '%s\n' "$*" >&2; }

log "== building hubbub and hubbub-bench (release)"
cargo build --release -p hubbub -p hubbub-bench >&2
HUBBUB=$ROOT/target/release/hubbub
BENCH=$ROOT/target/release/hubbub-bench

PIDS=()
stop_nodes() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
  PIDS=()
}
trap stop_nodes EXIT
trap 'stop_nodes; exit 130' INT TERM

# start_nodes N REDIS?: N nodes on a fresh schema (and prefix, with Redis).
start_nodes() {
  local count=$1 with_redis=$2 schema prefix i
  schema="bench_$(date +%s%N)"
  prefix="bench-$(date +%s%N)"
  psql -q "${DATABASE}" -c "CREATE SCHEMA $schema" > /dev/null
  for i in $(seq 0 $((count - 1))); do
    local args=(--tcp-addr "$HOST:$((BASE_PORT + 2 * i))" --http-addr "$HOST:$((BASE_PORT + 2 * i + 1))"
      --admin-addr "$HOST:0"
      --flood-rate 0 --max-connections 0 --max-connections-per-ip 0
      --store postgres --database-url "$DATABASE?options=-csearch_path%3D$schema")
    if [ "$with_redis" = redis ]; then
      args+=(--redis-url "$REDIS" --cluster-prefix "$prefix" --node-id "bench$i")
    fi
    "$HUBBUB" "${args[@]}" >> "$LOGS/node$i.log" 2>&1 &
    PIDS+=($!)
  done
  for i in $(seq 0 $((count - 1))); do
    for _ in $(seq 100); do
      if grep -q "hubbub listening" "$LOGS/node$i.log" \
        && { [ "$with_redis" != redis ] || grep -q "subscribed to the cluster" "$LOGS/node$i.log"; }; then
        break
      fi
      sleep 0.1
    done
  done
}

# addrs N tcp|socketio: the nodes' listener addresses, comma-separated.
addrs() {
  local count=$1 proto=$2 i out=
  for i in $(seq 0 $((count - 1))); do
    if [ "$proto" = tcp ]; then out+="$HOST:$((BASE_PORT + 2 * i)),"; else out+="$HOST:$((BASE_PORT + 2 * i + 1)),"; fi
  done
  echo "${out%,}"
}

# run SETUP NODES redis|none PROTO SCENARIO [bench options…]
run() {
  local setup=$1 count=$2 with_redis=$3 proto=$4 scenario=$5
  shift 5
  log "== $scenario: $setup, $proto"
  start_nodes "$count" "$with_redis"
  local cmd=("$BENCH" --proto "$proto" --addr "$(addrs "$count" "$proto")"
    --json --timeout 120 --scenario "$scenario" --server "$setup" "$@")
  echo "${cmd[*]}" | sed "s|$ROOT/||" >> "$WORK/cluster-commands.txt"
  "${cmd[@]}" >> "$RESULTS" 2>> "$LOGS/bench.log" || true
  stop_nodes
}

: > "$WORK/cluster-commands.txt"
# Rounds interleave the setups, so a slow minute of the machine hits all of them.
for round in $(seq "$REPEAT"); do
  ONE_ROOM=(--clients "$CLIENTS" --senders "$SENDERS")
  for proto in tcp socketio; do
    if wants burst; then
      run "1 node" 1 none "$proto" burst "${ONE_ROOM[@]}" --messages "$BURST"
      run "1 node + Redis" 1 redis "$proto" burst "${ONE_ROOM[@]}" --messages "$BURST"
      run "3 nodes" 3 redis "$proto" burst "${ONE_ROOM[@]}" --messages "$BURST"
    fi
    if wants rate; then
      run "1 node" 1 none "$proto" rate "${ONE_ROOM[@]}" --messages "$RATED" --rate "$RATE"
      run "1 node + Redis" 1 redis "$proto" rate "${ONE_ROOM[@]}" --messages "$RATED" --rate "$RATE"
      run "3 nodes" 3 redis "$proto" rate "${ONE_ROOM[@]}" --messages "$RATED" --rate "$RATE"
    fi
  done
  if wants ingest; then
    # Every client alone in its room: commit throughput, no cross-node fan-out.
    INGEST=(--clients "$INGEST_CLIENTS" --rooms "$INGEST_CLIENTS" --senders "$INGEST_CLIENTS"
      --messages "$INGEST_MESSAGES" --rate 0)
    run "1 node" 1 none tcp ingest "${INGEST[@]}"
    run "2 nodes" 2 redis tcp ingest "${INGEST[@]}"
    run "3 nodes" 3 redis tcp ingest "${INGEST[@]}"
  fi
  if [ "$round" = 1 ]; then cp "$WORK/cluster-commands.txt" "$WORK/cluster-commands-1.txt"; fi
done

python3 - "$RESULTS" "$OUT" "$WORK/cluster-commands-1.txt" "$CLIENTS" "$SENDERS" "$BURST" "$RATE" "$RATED" "$REPEAT" "$INGEST_CLIENTS" "$INGEST_MESSAGES" << 'EOF'
import json, sys, os, datetime, subprocess, statistics
results, out, commands, clients, senders, burst, rate, rated, repeat, ingest_clients, ingest_messages = sys.argv[1:12]
rows = [json.loads(l) for l in open(results) if l.strip()]
def table(scenario):
    lines = ["| setup | protocol | runs | received / expected (all runs) | lost | deliveries/s median (range) | p50 ms median | p99 ms median (range) |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    groups = {}
    for r in rows:
        if r.get("scenario") == scenario:
            groups.setdefault((r["server"], r["proto"]), []).append(r)
    for (server, proto), runs in groups.items():
        rates = [r["deliveries_per_sec"] for r in runs]
        p50 = [(r.get("latency_ms") or {}).get("p50", 0) for r in runs]
        p99 = [(r.get("latency_ms") or {}).get("p99", 0) for r in runs]
        lines.append("| {} | {} | {} | {} / {} | {} | {:.0f} ({:.0f}–{:.0f}) | {:.1f} | {:.1f} ({:.1f}–{:.1f}) |".format(
            server, "Socket.IO" if proto == "socketio" else "TCP", len(runs),
            sum(r["received"] for r in runs), sum(r["expected"] for r in runs),
            sum(r["lost"] for r in runs),
            statistics.median(rates), min(rates), max(rates),
            statistics.median(p50), statistics.median(p99), min(p99), max(p99)))
    return "\n".join(lines)
def section(scenario, heading):
    if not any(r.get("scenario") == scenario for r in rows):
        return ""
    return heading + "\n\n" + table(scenario) + "\n"
cpu = subprocess.run(["sh", "-c", "nproc; grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                     capture_output=True, text=True).stdout.split("\n")
body = f"""<!-- BEGIN CLUSTER generated by bench/cluster.sh: do not edit by hand; re-run the script -->
## Cluster: three nodes vs one

Run on {datetime.date.today()} by `bench/cluster.sh`, on this machine ({cpu[0].strip()} cores,{cpu[1]}):
every node, PostgreSQL, Redis and the load generator share those cores, so three nodes here
measure the cost of the cluster path, not added capacity.

Setups: **1 node** = one hubbub on PostgreSQL, no Redis; **1 node + Redis** = the same node in
cluster mode alone (its messages still go through Redis and back, for nobody); **3 nodes** = three
hubbub processes on one PostgreSQL schema and one Redis, the {clients} clients spread round-robin
(client i on node i mod 3), so two thirds of all deliveries cross nodes through Redis. All in one
room; the senders are the first {senders} clients (three per node).

{section("burst", f"### Burst: {senders} senders × {burst} messages, as fast as they can")}
{section("rate", f"### Fixed rate: {rate} messages/s in total, {rated} per sender")}
{section("ingest", f"### Ingest: {ingest_clients} clients, each alone in its room, {ingest_messages} messages each, as fast as they can (TCP)" + chr(10) + chr(10) + "Every message is committed to the shared PostgreSQL before it is relayed; with rooms of one, nothing crosses nodes, so this is what the cluster can commit. deliveries/s = messages/s here.")}
Each setup ran {repeat} times (rounds interleaved, fresh nodes, schema and key prefix every
run); the tables give the median and the range. Commands (one round):

```
{open(commands).read().strip()}
```
<!-- END CLUSTER generated by bench/cluster.sh -->"""
text = open(out).read() if os.path.exists(out) else ""
begin, end = "<!-- BEGIN CLUSTER", "<!-- END CLUSTER generated by bench/cluster.sh -->"
if begin in text:
    head = text[:text.index(begin)]
    tail = text[text.index(end) + len(end):]
    text = head + body + tail
else:
    text = text.rstrip("\n") + "\n\n" + body + "\n"
open(out, "w").write(text)
print(f"wrote {out}", file=sys.stderr)
EOF
