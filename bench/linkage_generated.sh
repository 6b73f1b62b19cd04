#!/usr/bin/env bash
# Record linkage on generated people (issue: record linkage engine, targets "national run" and
# "side by side with Splink on 1 M generated people"). Usage:
#
#   [PEOPLE=FILE] [OUT=DIR2] bench/linkage_generated.sh DIR [splink]
#
# DIR holds the files of `inkingi generate` (households.csv, members.csv, truth.csv). The script
# joins them into DIR/people.csv (bench/generated_people.py; not timed), deduplicates it with
# `inkingi match dedupe` and config/linkage/registry.toml under /usr/bin/time -v, and scores
# the clusters against DIR/truth.csv with `inkingi match evaluate`. With `splink`, Splink
# (bench/splink_febrl.py generated) runs on the same file right after, scored the same way.
# Load averages are printed before and after each timed run: the machine may be shared.
# Needs: a release build (cargo build --release -p inkingi), python with splink and duckdb.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release/inkingi"
DIR="$1"
MODE="${2:-}"
OUT="${OUT:-$DIR/out}"
PEOPLE="${PEOPLE:-$DIR/people.csv}"  # e.g. on a RAM disk when the data disk is short of space
mkdir -p "$OUT"

load() { echo "load average ($1): $(cut -d' ' -f1-3 /proc/loadavg)"; }

# The time -v lines worth keeping: wall, CPU and peak memory.
timed() {
  local name="$1"; shift
  load "before $name"
  /usr/bin/time -v "$@" 2> >(tee "$OUT/$name.time" >&2)
  load "after $name"
  grep -E 'Elapsed|User time|System time|Maximum resident' "$OUT/$name.time" | sed "s/^/$name: /"
}

[ -s "$PEOPLE" ] || python bench/generated_people.py "$DIR" "$PEOPLE"

timed inkingi "$BIN" match dedupe --input "$PEOPLE" --id-column member_key \
  --config config/linkage/registry.toml --out "$OUT/inkingi"
"$BIN" match evaluate --truth "$DIR/truth.csv" --id-column member_key --entity-column entity_id \
  --clusters "$OUT/inkingi/clusters.csv"

if [ "$MODE" = splink ]; then
  timed splink python bench/splink_febrl.py generated "$PEOPLE" "$OUT/splink"
  "$BIN" match evaluate --truth "$DIR/truth.csv" --id-column member_key --entity-column entity_id \
    --clusters "$OUT/splink/clusters.csv"
fi
