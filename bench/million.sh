#!/usr/bin/env bash
# COUNT concurrent connections (default 1,000,000) from one host to one ip:port, held open,
# through the real binaries: a coordinator, a target, an agent and `churnlab run --hold`, all in
# a network namespace of their own with enough loopback source addresses (28,232 ports each).
# Prints the time to reach COUNT, the kernel's count at both ends (ss), kernel memory per
# connection (/proc/meminfo Slab, /proc/slabinfo, /proc/net/sockstat), user-space memory per
# connection of the agent and the target (RSS and RssAnon of every process), and the report's
# per-source port use beside the kernel's. Refuses when memory or the fd limits cannot allow
# COUNT; stops by itself within 10 minutes; removes the namespace and every process it started.
# Usage: sudo [BIND=engine] bench/million.sh [COUNT]     (the build must exist: bash scripts/build.sh)
#   BIND=no-port (the default): the kernel picks each port inside connect(); BIND=engine: the
#   engine picks it (bind mode engine), so each source can be filled to 90% and more.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000000}
BIN=${BIN:-build/bin}
BIND=${BIND:-no-port}
PORT_LOW=32768 PORT_HIGH=60999
PORTS=$((PORT_HIGH - PORT_LOW + 1))
case $BIND in
  # Sources filled to a quarter at most: connect()'s search for a free port slows as a source's
  # range fills (here the time inside connect() grew from ~0.2 s at 26% full to 1.3 s at 42%,
  # p99, 51 engine processes on 2 cores), and the run must open COUNT within REACH_S.
  no-port) PER_IP=$((PORTS / 4)) ;;
  # No search: 92% of each source's ports (the processes' slices differ by a port, so the
  # fullest slice stays under 100%).
  engine) PER_IP=$((PORTS * 92 / 100)) ;;
  *) echo "million: BIND=$BIND: give no-port or engine" >&2; exit 2 ;;
esac
IPS=$(((COUNT + PER_IP - 1) / PER_IP))
# How long the run may take to open COUNT: 4,000 a second and a minute (this 2-core VM opened
# 5,800 to 7,000 a second); the 10-minute bound below still holds for 1,000,000.
REACH_S=$((COUNT / 4000 + 60))
NS=churnlab-million-$$
die() { echo "million: $*" >&2; exit 2; }

[[ $COUNT =~ ^[0-9]+$ ]] && ((COUNT >= 1000 && COUNT <= 1000000)) ||
  die "COUNT=$COUNT: give 1000..1000000 (the spec's concurrency is at most 1,000,000)"
[[ $(id -u) == 0 ]] || die "needs root (a network namespace and its sysctls)"
for b in churnlab-coordinator churnlab-target churnlab-agent churnlab-churn churnlab; do
  [[ -x $BIN/$b ]] || die "$BIN/$b missing: build first (bash scripts/build.sh)"
done

# --- what the host allows -------------------------------------------------------------------
# Both ends live on this host: two sockets per connection, ~2.3 KiB of kernel memory each
# (tcp_sock, inode, dentry, file, epoll item) plus < 1 KiB of user space; 8 KiB with margin.
avail_kib=$(awk '/^MemAvailable/ {print $2}' /proc/meminfo)
need_kib=$((COUNT * 8))
((avail_kib > need_kib)) || die "$COUNT connections need about $((need_kib / 1024)) MiB \
(two sockets each, both ends on this host); MemAvailable is $((avail_kib / 1024)) MiB"
hard=$(ulimit -Hn)
nr_open=$(cat /proc/sys/fs/nr_open)
((hard > 1000)) || die "the hard fd limit is $hard: too low even for several processes"
per_process=$((hard - 64))
processes=$(((COUNT + per_process - 1) / per_process))
read -r files_used _ files_max </proc/sys/fs/file-nr
((files_max - files_used > 2 * COUNT + 20000)) || die "fs.file-max is $files_max with \
$files_used in use: $((2 * COUNT)) more sockets do not fit (it is global; raise it first)"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo),\
 kernel $(uname -r); fd limit $hard per process (fs.nr_open $nr_open): $processes engine and\
 $processes server processes"
echo "run: $COUNT connections held, $IPS source IPs x $PORTS ports toward 127.0.0.1:9000," \
  "bind mode $BIND ($((100 * COUNT / (IPS * PORTS)))% of each source's ports)"

# --- the namespace ---------------------------------------------------------------------------
pids=()
work=$(mktemp -d)
cleanup() {
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$NS" 2>/dev/null || true
  # The logs stay for a look afterwards; only the last run's.
  rm -rf /tmp/churnlab-million-logs && mkdir -p /tmp/churnlab-million-logs &&
    cp "$work"/*.log /tmp/churnlab-million-logs/ 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "million: stopped" >&2; exit 1' INT TERM
# The 10-minute bound, whatever happens below.
(
  exec >/dev/null 2>&1
  sleep 570 &
  trap 'kill $!; exit' TERM
  wait $!
  kill -TERM $$
) &
pids+=($!)
SECONDS=0

ip netns add "$NS"
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up
sources=()
for ((i = 1; i <= IPS; i++)); do
  ip=127.0.$((1 + (i - 1) / 254)).$((1 + (i - 1) % 254))  # 127.0.1.1 .. 127.0.1.254, 127.0.2.1 ...
  in_ns ip addr add "$ip/32" dev lo
  sources+=("$ip")
done
# Inside the namespace only: a host-wide setting is never changed.
for kv in "net.ipv4.ip_local_port_range=$PORT_LOW $PORT_HIGH" net.core.somaxconn=65535 \
  net.ipv4.tcp_max_syn_backlog=65535 net.ipv4.tcp_max_orphans=$((2 * COUNT)) \
  net.ipv4.tcp_tw_reuse=1; do
  in_ns sysctl -q -w "$kv" >/dev/null 2>&1 || echo "(could not set $kv in the namespace)"
done
if in_ns test -e /proc/sys/net/netfilter/nf_conntrack_count; then
  echo "conntrack in the namespace: $(in_ns cat /proc/sys/net/netfilter/nf_conntrack_count) entries (no rules load it)"
fi

C=127.0.0.1:7400
ip netns exec "$NS" "$BIN/churnlab-coordinator" --grpc-listen=$C --http-listen=127.0.0.1:7401 \
  --db="$work/runs.db" >"$work/coordinator.log" 2>&1 &
pids+=($!)
ip netns exec "$NS" "$BIN/churnlab-target" --listen=127.0.0.1:9000 --connections="$COUNT" --threads=1 \
  --backlog=65535 --coordinator=$C --name=target >"$work/target.log" 2>&1 &
target_pid=$!
pids+=($target_pid)
ip netns exec "$NS" "$BIN/churnlab-agent" --coordinator=$C --name=agent \
  --source-ips="$(IFS=,; echo "${sources[*]}")" >"$work/agent.log" 2>&1 &
agent_pid=$!
pids+=($agent_pid)
for _ in $(seq 100); do
  in_ns "$BIN/churnlab" agents --coordinator=$C 2>/dev/null | grep -q '^agent ' && break
  sleep 0.2
done
grep -h "fd limit" "$work/agent.log" "$work/target.log" | sed 's/^/  /'

# Figures before the run, to take differences from.
slab_kib() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
slabinfo() { awk 'NR > 2 {print $1, $2 * $4}' /proc/slabinfo; }
slab_before=$(slab_kib)
slabinfo >"$work/slab.before"

# --- the run ---------------------------------------------------------------------------------
started=$(date +%s.%N)
ip netns exec "$NS" "$BIN/churnlab" run --coordinator=$C --name=million --target=127.0.0.1:9000 \
  --concurrency="$COUNT" --hold=3600s --duration="${REACH_S}s" --close=rst --bind="$BIND" \
  --connect-timeout=5s --threshold='error_rate < 1' --report="$work/report.json" \
  >"$work/run.log" 2>&1 &
run_pid=$!
pids+=($run_pid)
# ESTABLISHED sockets in the namespace, both ends (/proc/net/snmp CurrEstab): 2 x COUNT when
# every connection is up.
established() { in_ns awk '/^Tcp:/ && ++n == 2 {print $10}' /proc/net/snmp; }
reached=""
while kill -0 $run_pid 2>/dev/null; do
  now=$(established)
  if ((now >= 2 * COUNT)); then reached=$(date +%s.%N); break; fi
  # The run opens connections only for its duration: after it and a connect timeout, no more.
  (($(date +%s) - ${started%.*} > REACH_S + 10)) && break
  sleep 0.2
done
run_id=$(awk '/^run r-/ {print $2; exit}' "$work/run.log")
[[ -n $reached ]] || {
  tail -n 5 "$work/run.log"
  if kill -0 $run_pid 2>/dev/null; then
    die "$((now / 2)) of $COUNT connections were open when the run's ${REACH_S} s to open them \
ended (is something else using the cores? load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  fi
  die "the run ended with $((now / 2)) of $COUNT connections open (its report is above)"
}
reach_s=$(echo "$reached - $started" | bc)
printf 'reached %d connections in %.1f s (%.0f connections/s), from `churnlab run` to the kernel count\n' \
  "$COUNT" "$reach_s" "$(echo "$COUNT / $reach_s" | bc -l)"

# --- the kernel's count, both ends -----------------------------------------------------------
echo "ss -s (in the namespace):"
in_ns ss -s | sed -n '1p;/^TCP/p' | sed 's/^/  /'
in_ns ss -Htn state established '( dport = :9000 )' | awk '{split($3, a, ":"); print a[1]}' |
  sort | uniq -c | awk '{print $2, $1}' >"$work/kernel.sources"
client=$(awk '{s += $2} END {print s}' "$work/kernel.sources")
server=$(in_ns ss -Htn state established '( sport = :9000 )' | wc -l)
echo "ESTABLISHED: client side $client, server side $server"
sockstat=$(in_ns grep '^TCP:' /proc/net/sockstat)
echo "/proc/net/sockstat: $sockstat"

# --- memory per connection --------------------------------------------------------------------
slab_after=$(slab_kib)
slabinfo >"$work/slab.after"
echo "kernel memory: Slab +$(((slab_after - slab_before) / 1024)) MiB = $(((slab_after - slab_before) * 1024 / COUNT)) bytes per connection (both ends, two sockets)"
echo "  largest slab caches' growth, bytes per connection:"
awk -v n="$COUNT" 'NR == FNR {b[$1] = $2; next} {d = $2 - b[$1]; if (d > 0) print d / n, $1}' \
  "$work/slab.before" "$work/slab.after" | sort -rn | head -n 8 |
  awk '{printf "    %-24s %7.0f\n", $2, $1}'
tcp_mem_pages=$(echo "$sockstat" | awk '{for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1)}')
echo "  socket buffers (sockstat mem): $tcp_mem_pages pages = $((tcp_mem_pages * 4096 / COUNT)) bytes per connection"
# Every process of a role: the one started and its children (engine or server processes).
mem_of() {
  local pid rss pss anon total_rss=0 total_pss=0 total_anon=0 n=0
  for pid in $1 $(pgrep -P "$1"); do
    read -r rss anon < <(awk '/^VmRSS/ {r = $2} /^RssAnon/ {a = $2} END {print r, a}' "/proc/$pid/status")
    pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
    total_rss=$((total_rss + rss)) total_pss=$((total_pss + pss)) total_anon=$((total_anon + anon))
    n=$((n + 1))
  done
  printf '%-7s %3d processes: RSS %5d MiB = %4d B/conn; PSS %5d MiB = %4d B/conn; RssAnon %5d MiB = %4d B/conn\n' \
    "$2" "$n" $((total_rss / 1024)) $((total_rss * 1024 / COUNT)) $((total_pss / 1024)) \
    $((total_pss * 1024 / COUNT)) $((total_anon / 1024)) $((total_anon * 1024 / COUNT))
}
echo "user-space memory:"
mem_of "$agent_pid" agent | sed 's/^/  /'
mem_of "$target_pid" target | sed 's/^/  /'

# --- the report beside the kernel --------------------------------------------------------------
# The agent's socket census is spaced out on a host with millions of sockets (it costs ~0.5 us a
# socket): wait until it has seen the connections held, then end the run.
report_ports() {
  in_ns "$BIN/churnlab" report "$run_id" --coordinator=$C --format=json 2>/dev/null |
    jq '[.agents[].sources[].peak_ports_in_use] | add // 0'
}
for _ in $(seq 60); do
  (($(report_ports) >= client * 99 / 100)) && break
  sleep 2
done
in_ns "$BIN/churnlab" cancel "$run_id" --coordinator=$C >/dev/null
wait $run_pid || true
jq -r '.agents[].sources[] | "\(.ip) \(.peak_ports_in_use)"' "$work/report.json" |
  sort >"$work/report.sources"
echo "per source: kernel ESTABLISHED at the peak vs the report's peak ports in use"
join "$work/kernel.sources" "$work/report.sources" | awk '
  {d = ($2 > 0) ? 100 * ($3 - $2) / $2 : 0; if (d < 0) d = -d; if (d > worst) worst = d
   k += $2; r += $3; printf "  %-12s %8d %8d\n", $1, $2, $3}
  END {printf "  %-12s %8d %8d   (largest difference %.2f%%)\n", "total", k, r, worst}'
jq -r '"report: attempted \(.totals.attempted), succeeded \(.totals.succeeded), failed \(.totals.failed); peak in flight \([.series[].in_flight] | max)"' \
  "$work/report.json"
jq -r '.concurrency | "report: peak \(.peak_established) established (\(.peak_in_flight) by the engines), \(.kernel_bytes_per_connection | floor) B kernel + \(.user_bytes_per_connection | floor) B user per connection, limited by \(.limiter)\n  \(.projection)"' "$work/report.json"
grep -h "engine processes\|processes" "$work/agent.log" "$work/target.log" | head -n 3 | sed 's/^/  /'
grep -E "^ +(latency|connect)" "$work/run.log" | head -n 4 | sed 's/^/  /'
jq -r '.latency.connect_call | "time inside connect(): p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, max \(.max_ms) ms"' \
  "$work/report.json"
echo "done in ${SECONDS} s"

