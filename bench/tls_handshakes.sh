#!/usr/bin/env bash
# Full TLS 1.3 handshakes per second on one client core against one nginx worker on the other
# core (same ECDSA P-256 certificate; session tickets and the session cache off, so every
# handshake is full): churnlab-churn (https, one request per connection, client closes) against
# wrk -H 'Connection: close' over https in ABBA order, then churnlab verifying the certificate
# (neither peer does), openssl s_time -new, churnlab's resumed handshakes (tickets on), and full
# and resumed TLS 1.2 handshakes. nginx's access log ($ssl_session_reused) says whether each
# handshake was full. Last, the client CPU per full handshake against what `openssl speed` says
# its crypto costs (two X25519 operations and one ECDSA P-256 verify), and against OpenSSL's own
# floor (bench/tls_floor.cc: the client side of a handshake in memory, no sockets).
# Every client runs in a network namespace of its own, made for it, with a fresh nginx: no client
# meets another's TIME_WAIT sockets (which slow the kernel's port search in connect()) or the
# host's other sockets. Loopback only; every run is bounded in time; each namespace is removed.
# Usage: sudo bench/tls_handshakes.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) == 0 ]] || { echo "tls_handshakes: needs root (a network namespace per client)" >&2; exit 2; }
bash scripts/install-deps.sh --bench >/dev/null
bash scripts/build.sh >/dev/null
ulimit -n "$(ulimit -Hn)"
BIN=$PWD/build/bin
SECS=${1:-${BENCH_SECONDS:-8}}
CONC=64
source scripts/lib.sh
nproc_cpus=$(nproc)
client_cpu=0
server_cpu=$((nproc_cpus > 1 ? 1 : 0))

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
full_port=8443
resume_port=8444
tls12_port=8445
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 8192; }
http {
  log_format reuse '\$server_port \$ssl_protocol \$ssl_session_reused';
  access_log $work/access.log reuse buffer=256k;
  client_body_temp_path $work;
  proxy_temp_path $work;
  fastcgi_temp_path $work;
  uwsgi_temp_path $work;
  scgi_temp_path $work;
  ssl_certificate $work/cert.pem;
  ssl_certificate_key $work/key.pem;
  server {
    listen 127.0.0.1:$full_port ssl backlog=4096;
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
    ssl_session_cache off;
    location / { return 200 "churnlab bench\n"; }
  }
  server {
    listen 127.0.0.1:$resume_port ssl backlog=4096;
    ssl_protocols TLSv1.3;
    ssl_session_tickets on;
    location / { return 200 "churnlab bench\n"; }
  }
  server {
    listen 127.0.0.1:$tls12_port ssl backlog=4096;
    ssl_protocols TLSv1.2;
    ssl_session_tickets on;
    location / { return 200 "churnlab bench\n"; }
  }
}
NGINX
ns=""
ns_made=0
trap 'exit 1' INT TERM  # the EXIT trap then removes the namespaces (make_namespace)
# fresh_ns: the last client's namespace dropped, a new one with nginx in it, its worker on the
# server's CPU.
fresh_ns() {
  [[ -z $ns ]] || drop_namespace "$ns"
  ns="cl-tls-$$-$((ns_made++))"
  make_namespace "$ns"
  : >"$work/access.log"
  rm -f "$work/nginx.pid"
  ip netns exec "$ns" taskset -c $server_cpu nginx -c "$work/nginx.conf" -p "$work" \
    -e "$work/nginx-error.log" &
  for _ in $(seq 100); do
    ip netns exec "$ns" ss -Htln "( sport = :$tls12_port )" | grep -q . && [[ -n $(worker_pid) ]] &&
      return 0
    sleep 0.05
  done
  echo "tls_handshakes: nginx did not start in $ns: $(cat "$work/nginx-error.log")" >&2
  exit 1
}
worker_pid() { [[ -s $work/nginx.pid ]] && pgrep -P "$(cat "$work/nginx.pid")" | head -1; }
worker_ticks() {  # CPU ticks nginx's worker has used
  awk '{print $14 + $15}' "/proc/$(worker_pid)/stat"
}
# cpu_of CMD...: runs CMD on the client core; prints its output, then "cpu SECONDS" (user+sys)
# and "server SHARE", the share of the run's wall time nginx's worker was on its CPU.
cpu_of() {
  local before start
  before=$(worker_ticks)
  start=$(date +%s%N)
  /usr/bin/time -f 'cpu %U %S' -o "$work/time.txt" ip netns exec "$ns" taskset -c $client_cpu "$@"
  awk '{printf "cpu %.3f\n", $2 + $3}' "$work/time.txt"
  awk -v t="$(worker_ticks)" -v b="$before" -v hz="$(getconf CLK_TCK)" -v s="$start" -v e="$(date +%s%N)" \
    'BEGIN {printf "server %.0f%%\n", 100 * (t - b) / hz / ((e - s) / 1e9)}'
}
reused_share() {  # reused_share PORT: "full F resumed R" from this namespace's nginx's log
  kill -USR1 "$(cat "$work/nginx.pid")"  # reopen: flushes the buffer
  sleep 0.3
  awk -v p="$1" '$1 == p { if ($3 == "r") r++; else f++ } END { printf "full %d resumed %d", f, r }' \
    "$work/access.log"
}
churn() {  # churn PORT FLAGS... -> "RATE CPU_SECONDS HANDSHAKES"
  local port=$1
  shift
  cpu_of "$BIN/churnlab-churn" --progress=false --threads=1 --duration=${SECS}s \
    --target=127.0.0.1:$port --protocol=https --concurrency=$CONC "$@" >"$work/churn.out"
  awk '/achieved/ {r = $2} /^cpu/ {c = $2} /^server/ {s = $2}
       /tls handshakes/ {h = $3; sub(":", "", h)} END {print r, c, h, s}' "$work/churn.out"
}

echo "TLS 1.3 handshakes on loopback: client on CPU $client_cpu, nginx (1 worker) on CPU $server_cpu, ${SECS}s each, $CONC in flight, a namespace and nginx of its own for each client"
fresh_ns
# The worker inherits the master's CPU (taskset); say so from the kernel's side.
echo "nginx worker: $(grep Cpus_allowed_list "/proc/$(worker_pid)/status")"
us_per() { awk -v c="$1" -v n="$2" 'BEGIN {printf "%.0f", (n > 0 ? 1e6 * c / n : 0)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
# row NAME RATE CPU_SECONDS CONNECTIONS SERVER_SHARE LOG: one line of the table.
row() {
  printf '  %-40s %6s conn/s  client CPU %6ss = %5s us/conn  nginx worker %4s  nginx logged: %s\n' \
    "$1" "$2" "$3" "$(us_per "$3" "$4")" "$5" "$6"
}
# churn_row NAME PORT FLAGS...: churnlab-churn in a fresh namespace; its row; sets rate and us.
churn_row() {
  local name=$1 port=$2 r c h srv
  shift 2
  fresh_ns
  read -r r c h srv < <(churn "$port" "$@")
  row "$name" "$r" "$c" "$h" "$srv" "$(reused_share "$port")"
  rate=$r
  us=$(us_per "$c" "$h")
}
# wrk_row NAME: wrk in a fresh namespace against the full-handshake port; its row; sets rate.
wrk_row() {
  local out log
  fresh_ns
  out=$(cpu_of wrk -t1 -c$CONC -d${SECS}s -H 'Connection: close' "https://127.0.0.1:$full_port/")
  log=$(reused_share $full_port)
  rate=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  row "$1" "$rate" "$(awk '/^cpu/ {print $2}' <<<"$out")" "$(awk '{print $2}' <<<"$log")" \
    "$(awk '/^server/ {print $2}' <<<"$out")" "$log"
}

# churnlab against wrk in ABBA order, each pair's ratio; wrk and s_time verify no certificate, so
# churnlab does without (--insecure), and once with (--target-ca).
churn_row "churnlab-churn (full, --insecure) A1" $full_port --insecure
c1=$rate
c1_us=$us
wrk_row "wrk -H 'Connection: close' B1"
w1=$rate
wrk_row "wrk -H 'Connection: close' B2"
w2=$rate
churn_row "churnlab-churn (full, --insecure) A2" $full_port --insecure
c2=$rate
c2_us=$us
churn_row "churnlab-churn (resumed, --insecure)" $resume_port --insecure --tls-resumption=1
r13=$rate
churn_row "churnlab-churn (full, --target-ca)" $full_port --target-ca="$work/cert.pem"
fresh_ns
stime_out=$(cpu_of openssl s_time -connect 127.0.0.1:$full_port -new -time "$SECS" 2>&1)
# "N connections in T real seconds" (its other line counts per user-CPU second, not wall).
row "openssl s_time -new (one at a time)" \
  "$(awk '/connections in [0-9]+ real seconds/ {printf "%.0f", $1 / $4}' <<<"$stime_out")" \
  "$(awk '/^cpu/ {print $2}' <<<"$stime_out")" \
  "$(awk '/connections in [0-9]+ real seconds/ {print $1}' <<<"$stime_out")" \
  "$(awk '/^server/ {print $2}' <<<"$stime_out")" "(no request: nothing logged)"
# TLS 1.2, where a resumed handshake needs no key exchange (TLS 1.3's resumption keeps an
# X25519 exchange on both sides: psk_dhe_ke, the only mode nginx and OpenSSL's client offer).
churn_row "churnlab-churn (TLS 1.2, full)" $tls12_port --insecure
t12=$rate
churn_row "churnlab-churn (TLS 1.2, resumed)" $tls12_port --insecure --tls-resumption=1
r12=$rate

x25519=$(openssl speed -seconds 2 ecdhx25519 2>/dev/null | awk '/X25519/ {print $NF}' | tail -1)
verify=$(openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/256 bits ecdsa/ {print $NF}' | tail -1)
crypto_us=$(awk -v x="$x25519" -v v="$verify" 'BEGIN {printf "%.1f", 1e6 * (2 / x + 1 / v)}')
floor_out=$(taskset -c $client_cpu "$BIN/churnlab-tls-floor" 2000)
floor_us=$(awk '/built-in key methods/ {print $4}' <<<"$floor_out")
echo "  churnlab / wrk, ABBA pairs: $(ratio "$c1" "$w1")x (A1/B1), $(ratio "$c2" "$w2")x (A2/B2)"
echo "  resumed / full: TLS 1.3 $(ratio "$r13" "$c2")x, TLS 1.2 $(ratio "$r12" "$t12")x"
echo "  client CPU per full handshake (--insecure, whole process: TCP, HTTP, TLS): ${c1_us} and ${c2_us} us;" \
  "openssl speed's crypto ${crypto_us} us (2 x X25519 at ${x25519}/s + 1 ECDSA P-256 verify at ${verify}/s):" \
  "$(ratio "$c1_us" "$crypto_us")x and $(ratio "$c2_us" "$crypto_us")x"
echo "  OpenSSL's own floor, the client side of a full handshake in memory (no sockets, churnlab-tls-floor):" \
  "${floor_us} us with the built-in key methods, $(ratio "$floor_us" "$crypto_us")x the crypto"
sed 's/^/    /' <<<"$floor_out"
