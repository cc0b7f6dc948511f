#!/usr/bin/env bash
# Client CPU per connection: CPU-seconds (user + system, /usr/bin/time) per 1,000
# connect/request/close cycles against one nginx worker (HTTP, the client asks Connection: close
# and nginx closes first), every client on one core and nginx's worker on the other, in one run:
# churnlab-churn (bind modes no-port and engine), wrk -H 'Connection: close', and
# bench/reference_loop.cc (the fewest syscalls that do the job). Then churnlab-churn again with
# its source's port range 90% full (another churnlab-churn holds 9,000 of 10,000 ports toward the
# same nginx): bind mode engine against no-port. Everything runs in a network namespace of its
# own (its port range is 50000-59999); removed at the end. Usage: sudo bench/cpu_per_connection.sh [SECONDS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-5}
BIN=$PWD/build/bin
[[ $(id -u) == 0 ]] || { echo "cpu_per_connection: needs root (a network namespace)" >&2; exit 2; }
command -v nginx >/dev/null && command -v wrk >/dev/null ||
  { echo "cpu_per_connection: needs nginx and wrk (scripts/install-deps.sh --bench)" >&2; exit 2; }
source scripts/lib.sh
source bench/nginx_conf.sh
ns="cl-cpu-$$"
trap 'exit 1' INT TERM  # the EXIT trap then removes the namespace
make_namespace "$ns"
in_ns sysctl -q -w net.ipv4.ip_local_port_range="50000 59999" >/dev/null
client_cpu=0
server_cpu=$(($(nproc) > 1 ? 1 : 0))
nginx_conf "$work" 127.0.0.1:8080
bg in_ns taskset -c $server_cpu nginx -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"
for _ in $(seq 100); do in_ns ss -Htln '( sport = :8080 )' | grep -q . && break; sleep 0.05; done

# measure NAME CMD...: runs CMD on the client core; CONNECTIONS (its output's count, by the
# caller's parser in $parse) and its CPU; prints a row.
measure() {
  local name=$1 parse=$2
  shift 2
  /usr/bin/time -f "%U %S" -o "$work/time.txt" ip netns exec "$ns" taskset -c $client_cpu "$@" \
    >"$work/out.txt" 2>&1 || true
  local n cpu
  n=$($parse "$work/out.txt")
  cpu=$(awk '{printf "%.3f", $1 + $2}' "$work/time.txt")
  awk -v name="$name" -v n="$n" -v cpu="$cpu" -v s="$SECS" 'BEGIN {
    printf "%-44s %9d %9.0f/s %8.3f s %10.1f us\n", name, n, n / s, cpu, (n > 0 ? 1e6 * cpu / n : 0) }'
}
json_ok() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"].get("succeeded", 0))' "$1"; }
wrk_ok() { awk '/requests in/ {print $1}' "$1"; }
ref_ok() { awk '/^reference:/ {gsub(/\(/, "", $5); print $5}' "$1"; }
churn=("$BIN/churnlab-churn" --target=127.0.0.1:8080 --protocol=http --close=server-fin
  --concurrency=64 --duration="${SECS}s" --progress=false --json)

echo "machine: $(nproc) cores, kernel $(uname -r); clients on CPU $client_cpu, nginx's one worker on CPU $server_cpu; ${SECS} s each"
printf '%-44s %9s %11s %10s %13s\n' client connections rate "CPU" "CPU/conn"
for round in 1 2; do
  measure "churnlab-churn (no-port, 127.0.0.1)" json_ok "${churn[@]}" --source-ips=127.0.0.1
  measure "churnlab-churn (engine, 127.0.0.1)" json_ok "${churn[@]}" --source-ips=127.0.0.1 --bind=engine
  measure "wrk -t1 -c64 -H 'Connection: close'" wrk_ok \
    wrk -t1 -c64 -d "${SECS}s" -H 'Connection: close' http://127.0.0.1:8080/
  measure "reference loop (http, 64 in flight)" ref_ok \
    "$BIN/churnlab-reference-loop" 127.0.0.1:8080 64 "$SECS" http
done

# 90% of the source's ports held toward nginx by another process (bind mode engine, so the held
# ports are bind()'s: the plan of the measured process leaves them out, as the kernel would).
echo "with 127.0.0.2's range 90% full (9,000 of 10,000 ports held toward nginx by another process):"
bg in_ns "$BIN/churnlab-churn" --target=127.0.0.1:8080 --source-ips=127.0.0.2 --bind=engine \
  --protocol=http --concurrency=9000 --max-connections=9000 --hold=600s --duration=60s \
  --progress=false >"$work/holder.log" 2>&1
for _ in $(seq 300); do
  (($(in_ns ss -Htn state established '( dport = :8080 and src 127.0.0.2 )' | wc -l) >= 9000)) && break
  sleep 0.2
done
echo "  held: $(in_ns ss -Htn state established '( dport = :8080 and src 127.0.0.2 )' | wc -l)"
for round in 1 2; do
  measure "churnlab-churn (no-port, 90% full)" json_ok "${churn[@]}" --source-ips=127.0.0.2
  measure "churnlab-churn (engine, 90% full)" json_ok "${churn[@]}" --source-ips=127.0.0.2 --bind=engine
done
