#!/usr/bin/env bash
# What each node of a 3-node cluster spends when every room lives on one
# node: 3000 TCP clients in 300 rooms of 10 (client i on node i mod N, in
# room i mod 300, so each room's clients share a node), every client sending
# 10 messages, 3000 messages/s in all. Prints each node's CPU time during the
# load (utime + stime from /proc) and the load generator's delivery numbers.
#
# Usage: bench/cluster-rooms.sh [BINARY [LABEL]]
#   BINARY  the hubbub binary (default target/release/hubbub; build it first,
#           and hubbub-bench: cargo build --release -p hubbub -p hubbub-bench)
#   ADDRS   (environment) the nodes the clients use, comma-separated; the
#           default is all three; "127.0.0.1:7400,127.0.0.1:7401" leaves the
#           third node without clients, to see what it spends on others' rooms
#
# Needs PostgreSQL (127.0.0.1:5432, database test; a schema of its own,
# dropped after) and Redis (127.0.0.1:6379; a key prefix of its own, deleted
# after). Nodes listen on 127.0.0.1:7400-7402 (TCP) and 7410-7412 (HTTP).
set -u
cd "$(dirname "$0")/.."
BIN=${1:-target/release/hubbub}
LABEL=${2:-hubbub}
BENCH=target/release/hubbub-bench
ulimit -n 20000
PREFIX=hubbub-bench-rooms-$$
SCHEMA=hubbub_bench_rooms
psql -h 127.0.0.1 -U postgres -d test -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE; CREATE SCHEMA $SCHEMA" > /dev/null 2>&1
DB="postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3D$SCHEMA"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2> /dev/null; done
  wait
  psql -h 127.0.0.1 -U postgres -d test -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" > /dev/null 2>&1
  redis-cli --scan --pattern "$PREFIX:*" | xargs -r redis-cli del > /dev/null
}
trap cleanup EXIT
for n in 0 1 2; do
  "$BIN" --store postgres --database-url "$DB" --redis-url redis://127.0.0.1:6379 \
    --cluster-prefix "$PREFIX" --node-id "rooms-n$n" \
    --tcp-addr "127.0.0.1:$((7400 + n))" --http-addr "127.0.0.1:$((7410 + n))" --admin-addr 127.0.0.1:0 \
    --flood-rate 0 --max-connections-per-ip 0 --max-connections 0 > "/tmp/hubbub-bench-rooms-n$n.log" 2>&1 &
  PIDS+=($!)
done
sleep 3
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
BEFORE=()
for p in "${PIDS[@]}"; do BEFORE+=("$(cpu "$p")"); done
"$BENCH" --proto tcp --addr "${ADDRS:-127.0.0.1:7400,127.0.0.1:7401,127.0.0.1:7402}" \
  --clients 3000 --rooms 300 --senders 3000 --messages 10 --rate 3000 --timeout 120
TICK=$(getconf CLK_TCK)
for n in 0 1 2; do
  after=$(cpu "${PIDS[$n]}")
  echo "$LABEL node $n CPU during the load: $(((after - BEFORE[n]) * 1000 / TICK)) ms"
done
