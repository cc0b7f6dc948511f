#!/usr/bin/env bash
# The run store's listing at size: one real run's stored row copied to N runs (10,000 by
# default, each its own id and start), then `churnlab runs` timed against a coordinator on that
# store, the first page (20 runs) and a full page (1,000), each RUNS_LIST_REPEAT times (median
# and worst, in ms), and the same first page on a store of 10 runs: a page costs what its rows
# do, not what the store holds. Loopback only; everything it starts is stopped on exit.
# With RUNS_LIST_STORE=FILE (an absolute path) the store of N runs is kept there
# (bench/paging_load.sh starts from it).
# Usage: bench/runs_list.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
repeat=${RUNS_LIST_REPEAT:-15}
bin=$PWD/build/bin
source scripts/lib.sh
cd "$work"

# coordinator DB: a coordinator on DB in the background ($c its gRPC address, $coordinator).
coordinator() {
  rm -f grpc
  "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen= --address-file=grpc \
    --db="$1" >>coordinator.log 2>&1 &
  coordinator=$!
  pids+=($!)
  wait_file grpc
  c=$(cat grpc)
}

# One real run, so that the copies are what a coordinator stores.
bg "$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=target >target.log 2>&1
wait_file target
coordinator seed.db
bg "$bin/churnlab-agent" --coordinator="$c" --name=a1 --source-ips=127.0.0.2 >agent.log 2>&1
for _ in $(seq 100); do "$bin/churnlab" agents --coordinator="$c" 2>/dev/null | grep -q '^a1 ' && break; sleep 0.1; done
"$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --rate=100 --duration=1s \
  --tag=bench=runs-list >seed-run.log
kill "$coordinator"
wait "$coordinator" 2>/dev/null || true

# copy SEED N OUT: OUT holds N copies of SEED's run, one a second apart.
copy() {
  python3 - "$1" "$2" "$3" <<'PY'
import sqlite3, shutil, sys
seed, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
shutil.copy(seed, out)
db = sqlite3.connect(out)
name, state, verdict, report = db.execute(
    "SELECT name, state, verdict, report_json FROM runs").fetchone()
db.execute("DELETE FROM runs")
rows = []
for i in range(n):
    h, m, s = i // 3600, i // 60 % 60, i % 60
    run_id = f"r-20261201-{h:02d}{m:02d}{s:02d}-{i % 65536:04x}"
    rows.append((run_id, name, state, f"2026-12-01T{h:02d}:{m:02d}:{s:02d}Z", verdict, report))
db.executemany("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?)", rows)
db.commit()
PY
}

# ms_of LIMIT: the median and the worst of `repeat` listings of one page, in ms.
ms_of() {
  local times=()
  for _ in $(seq "$repeat"); do
    local t0 t1
    t0=$(date +%s%N)
    "$bin/churnlab" runs --coordinator="$c" --limit="$1" >page.txt
    t1=$(date +%s%N)
    times+=($(((t1 - t0) / 1000000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)], a[NR]}'
}

for size in 10 "$n"; do
  copy seed.db "$size" "store-$size.db"
  coordinator "store-$size.db"
  read -r first_med first_max < <(ms_of 20)
  read -r full_med full_max < <(ms_of 1000)
  rows=$(grep -c '^r-' page.txt || true)
  echo "store of $size runs ($(du -k "store-$size.db" | cut -f1) KiB): first page (20) median" \
    "${first_med} ms, worst ${first_max} ms; a page of 1000 (listed $rows) median ${full_med} ms," \
    "worst ${full_max} ms"
  kill "$coordinator"
  wait "$coordinator" 2>/dev/null || true
done
if [[ -n ${RUNS_LIST_STORE:-} ]]; then cp "store-$n.db" "$RUNS_LIST_STORE"; fi
