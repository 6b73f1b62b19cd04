#!/usr/bin/env bash
# Services due and child indicators at scale (docs/BENCHMARKS.md, "Child record").
#
#   bench/children.sh N [DATABASE_URL]
#
# Seeds N synthetic children under six (with immunisations and growth visits) into a fresh
# database, then measures with /usr/bin/time -v: the full services-due recompute (twice: the
# first build, then a daily run with nothing changed), the incremental update per event (1,000
# events: p50/p95), and the indicators of two districts and of the country.
# Needs a release build (`cargo build --release`); BIN overrides the binary's path.
set -euo pipefail
N=${1:?number of children}
URL=${2:-sqlite://$(mktemp -d)/children.db}
BIN=${BIN:-target/release/inkingi}
MONTH=$(date -u +%Y-%m)
export INKINGI_DATABASE_URL=$URL
TIMES=$(mktemp)
# Runs the binary under /usr/bin/time -v (stdout kept unless QUIET=1), then prints the time,
# CPU and peak memory lines.
run() {
  echo "== $*"
  if [ "${QUIET:-0}" = 1 ]; then /usr/bin/time -v -o "$TIMES" "$BIN" "$@" > /dev/null
  else /usr/bin/time -v -o "$TIMES" "$BIN" "$@"; fi
  grep -E "Elapsed|User time|System time|Maximum resident" "$TIMES"
}
uptime
run migrate
run children seed-synthetic --children "$N"
run children recompute
# Again the same day: the daily run on an unchanged registry writes only what changed.
run children recompute
uptime
run children bench-incremental --events 1000
QUIET=1 run children indicators --area 11 --month "$MONTH"
QUIET=1 run children indicators --area 36 --month "$MONTH"
QUIET=1 run children indicators --month "$MONTH"
uptime
