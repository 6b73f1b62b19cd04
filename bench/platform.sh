#!/usr/bin/env bash
# Platform benchmarks (issue "Platform foundation"): binary size, cold start to ready, idle RSS,
# and /healthz and /api/v1/areas?parent=… throughput and latency with 50 connections (wrk), on
# SQLite and PostgreSQL. Usage: bench/platform.sh [postgres-admin-url]
# Needs: a release build (cargo build --release), wrk, curl, psql for the PostgreSQL half.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release/inkingi"
PG_ADMIN="${1:-postgres://postgres@127.0.0.1:5432/postgres}"
DURATION="${WRK_DURATION:-15s}"
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "binary: $(stat -c %s "$BIN") bytes ($(du -h "$BIN" | cut -f1))"

ms() { date +%s%3N; }

# Starts serve, waits for /readyz; sets $pid, $srv and $ready_ms (milliseconds to ready).
start() {
  local log="$work/serve.log"
  local t0; t0=$(ms)
  "$BIN" --database-url "$1" --log-level warn serve --listen 127.0.0.1:0 --no-worker >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 2000); do
    srv=$(sed -n 's/^inkingi listening on //p' "$log" | head -n1)
    if [ -n "$srv" ] && curl -fs "$srv/readyz" >/dev/null 2>&1; then
      ready_ms=$(( $(ms) - t0 )); return 0
    fi
    sleep 0.005
  done
  echo "server did not become ready" >&2; cat "$log" >&2; return 1
}

stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

wrk_line() {
  # requests/s and p99 from wrk --latency
  wrk -t2 -c50 -d"$DURATION" --latency "$1" | awk '
    /Requests\/sec/ {rps=$2}
    /^ +99%/ {p99=$2}
    /^ +50%/ {p50=$2}
    /Non-2xx/ {bad=$NF}
    END {printf "%s req/s, p50 %s, p99 %s%s\n", rps, p50, p99, (bad ? ", NON-2XX " bad : "")}'
}

bench_backend() {
  local name=$1 db=$2
  echo "== $name"
  "$BIN" --database-url "$db" --log-level warn migrate >/dev/null
  local starts=()
  for _ in 1 2 3 4 5; do start "$db"; starts+=("$ready_ms"); stop; done
  echo "cold start to ready (ms, 5 runs, migrated database): ${starts[*]}"
  start "$db"
  sleep 3
  echo "idle RSS: $(awk '/VmRSS/ {print $2 " " $3}' /proc/$pid/status)"
  echo "GET /healthz: $(wrk_line "$srv/healthz")"
  echo "GET /api/v1/areas?parent=11: $(wrk_line "$srv/api/v1/areas?parent=11")"
  echo "GET /api/v1/areas?parent=110101 (villages of a cell): $(wrk_line "$srv/api/v1/areas?parent=110101")"
  echo "RSS after load: $(awk '/VmRSS/ {print $2 " " $3}' /proc/$pid/status)"
  stop
}

bench_backend sqlite "sqlite://$work/bench.db"
if psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS inkingi_bench WITH (FORCE)" -c "CREATE DATABASE inkingi_bench" >/dev/null 2>&1; then
  pg_url="${PG_ADMIN%/*}/inkingi_bench"
  bench_backend postgres "$pg_url"
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS inkingi_bench WITH (FORCE)" >/dev/null
else
  echo "PostgreSQL at the given URL is not reachable: skipped"
fi
