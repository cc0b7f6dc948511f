#!/usr/bin/env bash
# Full TLS 1.3 handshakes per second on one client core against one nginx worker on the other
# core (same ECDSA P-256 certificate; session tickets and the session cache off, so every
# handshake is full), in one run: churnlab-churn (https, one request per connection, client
# closes; without and with certificate verification, which neither peer does), wrk -H
# 'Connection: close' over https, and openssl s_time -new. nginx's access log
# ($ssl_session_reused) says whether each peer's handshakes were full. Then churnlab's resumed
# handshakes (tickets on) on the same cores, full and resumed TLS 1.2 handshakes (tickets on), and
# the client CPU per full handshake against what
# `openssl speed` says its crypto costs (two X25519 operations and one ECDSA P-256 verify).
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
drop_ns() {
  [[ -n $ns ]] || return 0
  ip netns pids "$ns" | xargs -r kill 2>/dev/null || true
  for _ in $(seq 100); do [[ -z $(ip netns pids "$ns") ]] && break; sleep 0.05; done
  ip netns del "$ns"
  ns=""
}
trap 'drop_ns; cleanup' EXIT
trap 'exit 1' INT TERM  # the EXIT trap then removes the namespace
# fresh_ns: a new namespace (lo up) with nginx in it, its worker on the server's CPU.
fresh_ns() {
  drop_ns
  ns="cl-tls-$$-$((ns_made++))"
  ip netns add "$ns"
  ip netns exec "$ns" ip link set lo up
  : >"$work/access.log"
  rm -f "$work/nginx.pid"
  ip netns exec "$ns" taskset -c $server_cpu nginx -c "$work/nginx.conf" -p "$work" \
    -e "$work/nginx-error.log" &
  for _ in $(seq 100); do
    ip netns exec "$ns" ss -Htln "( sport = :$tls12_port )" | grep -q . && [[ -s $work/nginx.pid ]] && break
    sleep 0.05
  done
}
worker_pid() { pgrep -P "$(cat "$work/nginx.pid")" | head -1; }
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
# wrk and s_time verify no certificate: churnlab does without (--insecure) and with (--target-ca).
read -r eng_rate eng_cpu eng_hs eng_srv < <(churn $full_port --insecure)
eng_log=$(reused_share $full_port)
fresh_ns
read -r ver_rate ver_cpu ver_hs ver_srv < <(churn $full_port --target-ca="$work/cert.pem")
ver_log=$(reused_share $full_port)
fresh_ns
wrk_out=$(cpu_of wrk -t1 -c$CONC -d${SECS}s -H 'Connection: close' "https://127.0.0.1:$full_port/")
wrk_rate=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$wrk_out")
wrk_cpu=$(awk '/^cpu/ {print $2}' <<<"$wrk_out")
wrk_srv=$(awk '/^server/ {print $2}' <<<"$wrk_out")
wrk_log=$(reused_share $full_port)
fresh_ns
stime_out=$(cpu_of openssl s_time -connect 127.0.0.1:$full_port -new -time "$SECS" 2>&1)
# "N connections in T real seconds" (its other line counts per user-CPU second, not wall).
stime_rate=$(awk '/connections in [0-9]+ real seconds/ {printf "%.0f", $1 / $4}' <<<"$stime_out")
stime_n=$(awk '/connections in [0-9]+ real seconds/ {print $1}' <<<"$stime_out")
stime_cpu=$(awk '/^cpu/ {print $2}' <<<"$stime_out")
stime_srv=$(awk '/^server/ {print $2}' <<<"$stime_out")
stime_log=$(reused_share $full_port)
fresh_ns
read -r res_rate res_cpu res_hs res_srv < <(churn $resume_port --insecure --tls-resumption=1)
res_log=$(reused_share $resume_port)
# TLS 1.2, where a resumed handshake needs no key exchange (TLS 1.3's resumption keeps an
# X25519 exchange on both sides: psk_dhe_ke, the only mode nginx and OpenSSL's client offer).
fresh_ns
read -r t12_rate t12_cpu t12_hs t12_srv < <(churn $tls12_port --insecure)
t12_log=$(reused_share $tls12_port)
fresh_ns
read -r r12_rate r12_cpu r12_hs r12_srv < <(churn $tls12_port --insecure --tls-resumption=1)
r12_log=$(reused_share $tls12_port)

x25519=$(openssl speed -seconds 2 ecdhx25519 2>/dev/null | awk '/X25519/ {print $NF}' | tail -1)
verify=$(openssl speed -seconds 2 ecdsap256 2>/dev/null | awk '/256 bits ecdsa/ {print $NF}' | tail -1)
crypto_us=$(awk -v x="$x25519" -v v="$verify" 'BEGIN {printf "%.1f", 1e6 * (2 / x + 1 / v)}')
us_per() { awk -v c="$1" -v n="$2" 'BEGIN {printf "%.0f", (n > 0 ? 1e6 * c / n : 0)}'; }
per_hs_us=$(us_per "$eng_cpu" "$eng_hs")
wrk_n=$(awk '{print $2}' <<<"$wrk_log")
best=$(( wrk_rate > stime_rate ? wrk_rate : stime_rate ))
printf '  %-38s %6s conn/s  client CPU %6ss = %5s us/conn  nginx worker %4s  nginx logged: %s\n' \
  "churnlab-churn (full, --insecure)" "$eng_rate" "$eng_cpu" "$per_hs_us" "$eng_srv" "$eng_log" \
  "churnlab-churn (full, --target-ca)" "$ver_rate" "$ver_cpu" "$(us_per "$ver_cpu" "$ver_hs")" "$ver_srv" "$ver_log" \
  "wrk -H 'Connection: close'" "$wrk_rate" "$wrk_cpu" "$(us_per "$wrk_cpu" "$wrk_n")" "$wrk_srv" "$wrk_log" \
  "openssl s_time -new (one at a time)" "$stime_rate" "$stime_cpu" "$(us_per "$stime_cpu" "$stime_n")" "$stime_srv" "(no request: nothing logged)" \
  "churnlab-churn (resumed, --insecure)" "$res_rate" "$res_cpu" "$(us_per "$res_cpu" "$res_hs")" "$res_srv" "$res_log" \
  "churnlab-churn (TLS 1.2, full)" "$t12_rate" "$t12_cpu" "$(us_per "$t12_cpu" "$t12_hs")" "$t12_srv" "$t12_log" \
  "churnlab-churn (TLS 1.2, resumed)" "$r12_rate" "$r12_cpu" "$(us_per "$r12_cpu" "$r12_hs")" "$r12_srv" "$r12_log"
echo "  churnlab / best peer: $(awk -v a="$eng_rate" -v b="$best" 'BEGIN {printf "%.2fx", a / b}')"
echo "  resumed / full: TLS 1.3 $(awk -v a="$res_rate" -v b="$eng_rate" 'BEGIN {printf "%.2fx", a / b}'), TLS 1.2 $(awk -v a="$r12_rate" -v b="$t12_rate" 'BEGIN {printf "%.2fx", a / b}')"
echo "  client CPU per full handshake (--insecure): ${per_hs_us} us (whole process: TCP, HTTP, TLS); openssl speed's crypto: ${crypto_us} us (2 x X25519 at ${x25519}/s + 1 ECDSA P-256 verify at ${verify}/s), ratio $(awk -v a="$per_hs_us" -v b="$crypto_us" 'BEGIN {printf "%.2f", a / b}')"
