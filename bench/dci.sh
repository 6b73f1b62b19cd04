#!/usr/bin/env bash
# DCI benchmarks (issue "Interoperability"), on SQLite:
#  1. sync search latency (p50/p95/p99) with 50 concurrent clients, by national ID and by
#     predicate, on a generated registry of $HOUSEHOLDS households;
#  2. notification fan-out: $FANOUT households registered, each notified to 10 subscriber
#     simulators (`inkingi simulate subscriber`);
#  3. a backlog of $BACKLOG households × 10 subscribers notifications (100,000 jobs by default)
#     built while every subscriber is down ($OUTAGE seconds), then drained: time from the end of
#     the outage until every subscriber has every event, with duplicates and reorderings counted.
# Usage: bench/dci.sh  (env: HOUSEHOLDS, FANOUT, BACKLOG, OUTAGE, CONCURRENCY, DURATION)
# Needs: a release build (cargo build --release) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release/inkingi"
HOUSEHOLDS="${HOUSEHOLDS:-100000}"
FANOUT="${FANOUT:-2000}"
BACKLOG="${BACKLOG:-10000}"
OUTAGE="${OUTAGE:-60}"
DURATION="${DURATION:-30}"
export INKINGI_WORKER__CONCURRENCY="${CONCURRENCY:-16}"
work=$(mktemp -d)
db="sqlite://$work/bench.db"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
ink() { "$BIN" --database-url "$db" --log-level warn "$@"; }
say() { echo "[$(date -u +%H:%M:%S)] $*"; }

# Starts serve (extra flags in $@), waits for /readyz; sets $pid and $srv.
start() {
  local log="$work/serve.$RANDOM.log"
  # Not through `ink`: a function run in the background is a subshell, and $! its pid.
  "$BIN" --database-url "$db" --log-level warn serve --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  pid=$!; pids+=("$pid")
  for _ in $(seq 1 3000); do
    srv=$(sed -n 's/^inkingi listening on //p' "$log" | head -n1)
    if [ -n "$srv" ] && curl -fs "$srv/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.01
  done
  echo "server did not become ready" >&2; cat "$log" >&2; return 1
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; }

import_generated() { # households seed; sets $imported (the generator injects some bad rows)
  ink generate --households "$1" --seed "$2" --out "$work/g$2" >/dev/null
  local out
  out=$(ink import --households "$work/g$2/households.csv" --members "$work/g$2/members.csv" \
    --source "bench$2" --errors "$work/errors$2.csv" --quiet 2>&1 | grep -v 'slow statement')
  echo "$out"
  imported=$(echo "$out" | sed -n 's/^imported \([0-9]*\) households.*/\1/p' | tail -n1)
}

say "generating and importing $HOUSEHOLDS households"
ink migrate >/dev/null
t0=$(date +%s); import_generated "$HOUSEHOLDS" 2026; say "imported in $(( $(date +%s) - t0 )) s"
ink users add --username bench.client --role national_officer --area national >/dev/null
export INKINGI_BENCH_TOKEN
INKINGI_BENCH_TOKEN=$(ink tokens create --username bench.client --scope read \
  --scope purpose:registration 2>/dev/null | tail -n1)

start --no-worker
say "load: $(uptime)"
"$BIN" dci-bench search --url "$srv" --dir "$work/g2026" --clients 50 --duration-secs "$DURATION"
say "load: $(uptime)"
"$BIN" dci-bench search --url "$srv" --dir "$work/g2026" --clients 50 --duration-secs "$DURATION" --predicate
say "load: $(uptime)"

# Ten subscribers on fixed ports, so they can be restarted (in an outage) under the same URLs.
subs=(); sim_pids=()
sims() { # extra simulator flags
  sim_pids=()
  for i in $(seq 1 10); do
    "$BIN" simulate subscriber --listen "127.0.0.1:$((19100 + i))" --seed "$i" "$@" \
      >"$work/sim$i.log" 2>&1 &
    sim_pids+=("$!"); pids+=("$!")
  done
  for i in $(seq 1 10); do
    until curl -fs "http://127.0.0.1:$((19100 + i))/stats" >/dev/null 2>&1; do sleep 0.05; done
  done
}
stop_sims() { for p in "${sim_pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done; }
sims
for i in $(seq 1 10); do
  subs+=("http://127.0.0.1:$((19100 + i))")
  "$BIN" dci-bench subscribe --url "$srv" --sender-uri "http://127.0.0.1:$((19100 + i))/dci" >/dev/null
done
list=$(IFS=,; echo "${subs[*]}")
stop

# Every imported household queued a targeting.rescore job; run them first so the DCI phases
# measure notifications, not the import's scoring (itself a backlog of $HOUSEHOLDS jobs).
pending() { curl -fs "$srv/metrics" | awk '/^job_queue_depth\{/ && /status="(queued|running)"/ {s+=$2} END {print s+0}'; }
start
t0=$(date +%s)
sleep 3
until [ "$(pending)" = 0 ] || [ $(( $(date +%s) - t0 )) -ge "${RESCORE_WAIT:-600}" ]; do sleep 2; done
say "import's rescore jobs ($HOUSEHOLDS): $(pending) left after $(( $(date +%s) - t0 )) s; load: $(uptime)"
stop

say "fan-out: $FANOUT households registered, 10 subscribers"
import_generated "$FANOUT" 7
start
"$BIN" dci-bench wait --subscribers "$list" --expect "$imported"
say "load: $(uptime)"
stop; stop_sims

say "backlog: $BACKLOG households × 10 subscribers, subscribers down for $OUTAGE s"
sims --outage-after 0 --outage-secs "$OUTAGE"
import_generated "$BACKLOG" 8
start
sleep "$OUTAGE"
depth=$(curl -fs "$srv/metrics" | awk '/^job_queue_depth\{.*queue="dci-notify".*status="queued"/ {print $2}')
say "outage over; dci-notify jobs queued: ${depth:-?}; draining"
"$BIN" dci-bench wait --subscribers "$list" --expect "$imported"
say "load: $(uptime)"
curl -fs "$srv/metrics" | grep -E '^job_queue_depth\{.*dci-notify' || true
stop
