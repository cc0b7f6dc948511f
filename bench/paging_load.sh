#!/usr/bin/env bash
# Does paging through a big run store hold up agents' telemetry? A store of 10,000 runs (made by
# bench/runs_list.sh), then churnlab-fleet-sim (200 fake agents, 20 s, one dashboard page) on a
# copy of it with 0 and with 20 clients paging through the store (ListRuns 100 at a time and
# GetRun, in a loop), in the order 0, 20, 20, 0; prints each run's telemetry-to-update delays.
# Loopback only; the simulator stops what it starts.
# Usage: bench/paging_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
store=$(mktemp --suffix=.db)
trap 'rm -f "$store"' EXIT
RUNS_LIST_STORE=$store RUNS_LIST_REPEAT=1 bash bench/runs_list.sh 10000 >/dev/null
for pagers in 0 20 20 0; do
  echo "== $pagers clients paging through 10,000 stored runs"
  build/bin/churnlab-fleet-sim --agents=200 --seconds=20 --db="$store" --pagers="$pagers" |
    grep -E 'CPU|telemetry ->|paging'
done
