#!/usr/bin/env bash
# FHIR bundle ingestion rate including linkage (issue: integrated child record, benchmarks).
# Generates and imports a registry of $HOUSEHOLDS households into a fresh database, signs in
# a health worker scoped to the district with the most children under six, starts the server
# (with its worker, which evaluates the services due that each new fact queues), and posts one
# transaction Bundle per child of that district from $CLIENTS clients (bench/fhir_load.py:
# a Patient without the registry's id, linked by the linkage engine; the doses due by age; a
# weight). Then it posts the same bundles again (a re-sent feed: every resource already
# stored), and prints the linkage outcomes.
# Usage: bench/fhir.sh [DATABASE_URL]  (env: HOUSEHOLDS, CLIENTS, LIMIT)
# Needs: a release build (cargo build --release -p inkingi), python3, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release/inkingi"
HOUSEHOLDS="${HOUSEHOLDS:-100000}"
CLIENTS="${CLIENTS:-8}"
work=$(mktemp -d)
db="${1:-sqlite://$work/bench.db}"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
ink() { "$BIN" --database-url "$db" --log-level warn "$@"; }
say() { echo "[$(date -u +%H:%M:%S)] $*"; }

say "generating and importing $HOUSEHOLDS households"
ink migrate >/dev/null
ink generate --households "$HOUSEHOLDS" --seed 2028 --out "$work/g" >/dev/null
ink import --households "$work/g/households.csv" --members "$work/g/members.csv" \
  --source bench --errors "$work/errors.csv" --quiet 2>&1 | grep -v 'slow statement' | tail -n1
district=$(python3 bench/fhir_load.py district "$work/g")
ink users add --username bench.nurse --role health_worker --area "$district" >/dev/null
token=$(ink tokens create --username bench.nurse --scope read --scope write \
  --scope purpose:healthcare 2>/dev/null | tail -n1)

log="$work/serve.log"
"$BIN" --database-url "$db" --log-level warn serve --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!; pids+=("$pid")
for _ in $(seq 1 3000); do
  srv=$(sed -n 's/^inkingi listening on //p' "$log" | head -n1)
  if [ -n "$srv" ] && curl -fs "$srv/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.01
done
[ -n "$srv" ] || { echo "server did not start" >&2; cat "$log" >&2; exit 1; }

cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # server's user + system clock ticks
for round in first re-sent; do
  say "$round: load $(cut -d' ' -f1-3 /proc/loadavg)"
  before=$(cpu)
  python3 bench/fhir_load.py run --url "$srv" --token "$token" --dir "$work/g" \
    --district "$district" --clients "$CLIENTS" ${LIMIT:+--limit "$LIMIT"}
  echo "server CPU: $(awk -v a="$before" -v b="$(cpu)" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.2f", (b - a) / hz }') s; load $(cut -d' ' -f1-3 /proc/loadavg)"
done
grep -E 'VmHWM' "/proc/$pid/status" | sed 's/^/server /'
case "$db" in
  sqlite://*) q() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall())' "${db#sqlite://}" "$1"; } ;;
  *) q() { psql "$db" -Atc "$1"; } ;;
esac
echo "patients by link method: $(q "SELECT coalesce(link_method, 'review'), count(*) FROM child_source_people GROUP BY 1 ORDER BY 1")"
