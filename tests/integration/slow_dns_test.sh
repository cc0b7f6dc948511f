#!/usr/bin/env bash
# A resolver that never answers, in a network namespace of this test's own (its resolv.conf, by
# `ip netns exec`'s /etc/netns/NAME/ bind mount, names a UDP port on its loopback that reads and
# never replies; glibc alone would wait 30 s):
#  1. churnlab-churn gives up on the name after 5 s (kResolveTimeout), exit 2, saying so.
#  2. An agent resolves a shard's names on the shard's thread: while the lookup hangs it is busy
#     with the run and tells the coordinator it is alive (the report says it refused, not that it
#     was lost for silence), and after 5 s it refuses the shard naming the name, so the run ends
#     (exit 1) instead of waiting on DNS.
# Usage: slow_dns_test.sh BIN_DIR
source "$(dirname "$0")/../support/shell_test.sh" slow_dns_test "$@"
if [[ $(id -u) -ne 0 ]]; then
  echo "slow_dns_test: skipped (needs root for a network namespace)"
  exit 0
fi
own_namespace cl-dns
printf 'nameserver 127.0.0.1\noptions timeout:30 attempts:1\n' >"/etc/netns/$ns/resolv.conf"
# The silent resolver: takes every query, answers none, for at most 2 minutes.
bg in_ns /usr/bin/python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
s.settimeout(1)
end = time.monotonic() + 120
while time.monotonic() < end:
    try: s.recvfrom(4096)
    except socket.timeout: pass
'
# Bound before the first lookup: a query to a port nobody holds fails at once (ICMP), and then
# nothing here waits. Python's start takes a while on a busy host.
for _ in $(seq 100); do
  [[ -n $(in_ns ss -Hlun 'sport = :53') ]] && break
  sleep 0.1
done
[[ -n $(in_ns ss -Hlun 'sport = :53') ]] || fail "the silent resolver did not start"

# 1. churnlab-churn.
start=$(now_ms)
code=0
in_ns "$bin/churnlab-churn" --target=slow.example:80 --allow-targets=127.0.0.0/8 --rate=10 \
  --duration=1s >churn.out 2>&1 || code=$?
took=$(($(now_ms) - start))
echo "churnlab-churn: exit $code after $took ms: $(head -c 200 churn.out)"
((code == 2)) || fail "churnlab-churn: exit $code, want 2: $(cat churn.out)"
grep -q "slow.example: cannot resolve it: no answer within 5s" churn.out ||
  fail "churnlab-churn did not say the name went unanswered: $(cat churn.out)"
((took >= 4500 && took < 15000)) || fail "churnlab-churn gave up after $took ms, want about 5 s"

# 2. An agent.
bg in_ns "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen= \
  --address-file=grpc.addr >coordinator.log 2>&1
need_file grpc.addr
c=$(cat grpc.addr)
bg in_ns "$bin/churnlab-agent" --coordinator="$c" --name=a1 --source-ips=127.0.0.2 >a1.log 2>&1
for _ in $(seq 100); do in_ns "$bin/churnlab" agents --coordinator="$c" 2>/dev/null |
  grep -q '^a1 ' && break; sleep 0.1; done
start=$(now_ms)
in_ns "$bin/churnlab" run --coordinator="$c" --target=slow.example:80 --rate=10 --duration=2s \
  --report=run.json >run.out 2>&1 &
runner=$!
pids+=("$runner")
# Mid-lookup (the 5 s after the shard reached it): the agent is busy with the run.
busy=0
for _ in $(seq 100); do
  in_ns "$bin/churnlab" agents --coordinator="$c" >agents.out 2>&1 || fail "agents: $(cat agents.out)"
  grep -q '^a1 .* r-[0-9]' agents.out && { busy=1; break; }
  sleep 0.1
done
((busy == 1)) || fail "a1 was never listed busy with the run: $(cat agents.out)"
code=0
wait "$runner" || code=$?
took=$(($(now_ms) - start))
echo "the run: exit $code after $took ms; $(grep -o 'refused[^"]*' run.json | head -1)"
((code == 1)) || fail "the run: exit $code, want 1: $(cat run.out)"
grep -q "no answer within 5s" run.json || fail "the report does not say why: $(cat run.out)"
# It told the coordinator it was alive while it waited: refused, not lost for silence.
! grep -q "no telemetry for" run.json || fail "the agent was lost while it resolved: $(cat run.out)"
grep -q "run r-.*: refused\|refused run" a1.log || fail "the agent did not log its refusal"
((took < 20000)) || fail "the run took $took ms"
echo "slow_dns_test: ok"
