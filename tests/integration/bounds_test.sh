#!/usr/bin/env bash
# The engine's hard bounds on the real binaries, with the kernel as the witness (root: each part
# runs in a network namespace of its own, so its counters are the run's alone):
#  1. churnlab-churn --rate=1000000 --duration=1s --max-in-flight=5 from a source whose 10 ports
#     are all held in TIME_WAIT ends by itself within 2 s (it used to fail connects until killed).
#  2. A coordinator run at 2,500 conn/s for 6 s into an 8,000-port range (connect() slows as the
#     range fills, then fails with EADDRNOTAVAIL): once `churnlab run` returns, the agent's
#     namespace makes no connect (ActiveOpens still for 3 s) and the agent holds no more fds than
#     before the run; no connect-timeout is reported while the kernel retransmitted no SYN; the
#     report's attempted equals the kernel's ActiveOpens plus the EADDRNOTAVAIL failures (2%),
#     and it says that connect() slowed as the range filled exactly when its series shows it.
#  3. The agent stopped (SIGSTOP) for 1 s mid-run: on SIGCONT it does not fire the starts it
#     missed (the kernel's ActiveOpens in the ~0.3 s after the resume, as the shell timed it, stay
#     near the rate), the report counts them as late-skipped, and its attempted matches ActiveOpens
#     within 2%.
#  4. A closed-model run past the agent's fd limit (ulimit -n 300, concurrency 500, each
#     connection held 500 ms by the target): the agent splits its shard over engine processes and
#     says so, as the preflight said it would; no process of it holds more fds than the limit (/proc/PID/fd); ss
#     shows 500 open at once; no EMFILE; the report names the limit the kernel
#     enforced (/proc/PID/limits) and its attempted matches ActiveOpens within 2%.
#  5. One engine (churnlab-churn) over its fd limit retries EMFILE at a bounded pace (it used to
#     count 880,011 in 12.5 s).
#  6. The agent stopped (SIGSTOP) 2.6 s into a 12 s run and resumed after the coordinator had
#     ended the run (it lost the agent): no SYN toward the target leaves its namespace after the
#     resume (nftables counter), though the engine's own duration has not ended (it used to run
#     on to it), and the report says what it cannot count.
#  7. One of the agent's engine processes stopped, then the coordinator killed, or stopped as if
#     behind a partition: the other processes, loading until then, start nothing once the
#     dead-man limit has passed (no SYN 4 to 7 s after), and the stopped one has been killed.
#  8. Seed 002's "B's bind() takes A's ports": churnlab-churn in bind mode bind from 127.0.0.3
#     leaves 990 of the 1,000-port range in TIME_WAIT; then a no-port run from 127.0.0.2 finds no port
#     (the kernel's connect() skips every port bind() took, whatever the address), and the
#     report says the ports were taken elsewhere, not that more source IPs would help, with the
#     ports of the range its census found held before the run (ss agrees within 2%). Which of
#     them bind() took, the agent asks the kernel's port choice (a silent probe): its count
#     against ss's count of 127.0.0.3's TIME_WAIT within 2%, the budget counting only the rest.
#  9. One of the agent's engine processes stopped while the coordinator lives: within the
#     agent's answer deadline (2 s) plus a poll the agent kills it (SIGKILL) and goes on; the
#     other processes keep loading (SYNs after the kill), the run ends on time, and the report
#     names 1 of the processes lost.
# 10. Every bind mode (none, no-port, bind, bind-any) at 2,000/s for 2 s: once `churnlab run`
#     has returned, the namespace sends no SYN toward the target (nftables, 2 s), and the
#     report's attempted matches the SYNs the run sent within 2%.
# Usage: bounds_test.sh BIN_DIR [PART...]   (PART: 1 to 10; all when none is named)
source "$(dirname "$0")/../support/shell_test.sh" bounds_test "$@"
select_parts "1 2 3 4 5 6 7 8 9 10" "${@:2}"
if [[ $(id -u) -ne 0 ]]; then
  echo "bounds_test: skipped: needs root to create network namespaces (ip netns add)"
  exit 77
fi

namespaces=()
remove_namespaces() {
  for ns in "${namespaces[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap 'cleanup; remove_namespaces' EXIT
# new_namespace TAG PORT_RANGE: a namespace of this test's own, lo up, no TIME_WAIT reuse.
new_namespace() {
  ns="bounds-$1-$$"
  ip netns add "$ns"
  namespaces+=("$ns")
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="$2" net.ipv4.tcp_tw_reuse=0
}
in_ns() { ip netns exec "$ns" "$@"; }
# counter NAME: a TCP counter of the namespace (/proc/net/snmp, /proc/net/netstat).
counter() {
  in_ns cat /proc/net/snmp /proc/net/netstat | awk -v k="$1" '
    /^(Tcp|TcpExt):/ { if (!h[$1]) { h[$1] = 1; for (i = 2; i <= NF; i++) n[$1, i] = $i; next }
                       for (i = 2; i <= NF; i++) if (n[$1, i] == k) print $i }'
}
# fds PID: how many descriptors PID holds; nothing when it has gone (an engine process can exit
# between pgrep and the look).
fds() {
  local listed
  listed=$(ls "/proc/$1/fd" 2>/dev/null) || return 0
  wc -l <<<"$listed"
}
# count_syns PORT: counts the SYNs the namespace sends toward PORT (an nftables table of its own,
# gone with the namespace); syns: the count so far.
count_syns() {
  in_ns nft add table inet bounds_syn
  in_ns nft add chain inet bounds_syn out '{ type filter hook output priority 0; }'
  in_ns nft add rule inet bounds_syn out tcp dport "$1" 'tcp flags & (syn | ack) == syn' counter
}
# syns: SYNs that opened a connection (a stopped process's socket in SYN_SENT is retransmitted by
# the kernel, which is no new connect(), so TCPSynRetrans is taken off).
syns() {
  local sent
  sent=$(in_ns nft list chain inet bounds_syn out |
    awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
  echo $((sent - $(counter TCPSynRetrans)))
}

# start_lab TAG PORT_RANGE [FD_LIMIT [TARGET_FLAG]]: coordinator, target and one agent (source
# 127.0.0.2) in a namespace; the agent with that many fds at most when given.
start_lab() {
  new_namespace "$1" "$2"
  rm -f grpc http target
  in_ns "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen=127.0.0.1:0 \
    --address-file=grpc --http-address-file=http --db="$work/$1.db" >"$1-coordinator.log" 2>&1 &
  pids+=($!)
  in_ns "$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=target ${4:-} \
    >"$1-target.log" 2>&1 &
  pids+=($!)
  need_file grpc
  need_file http
  need_file target
  c=$(cat grpc)
  # The coordinator itself: $! is the subshell that runs in_ns (a function) in the background,
  # and killing it leaves the coordinator running.
  coordinator_pid=$(pgrep -n -f -- "churnlab-coordinator .*--db=$work/$1.db" || true)
  [[ -n $coordinator_pid ]] || fail "no churnlab-coordinator process for $1"
  local limit=()
  [[ -n ${3:-} ]] && limit=(prlimit --nofile="$3")
  in_ns "${limit[@]}" "$bin/churnlab-agent" --coordinator="$c" --name=a1 \
    --source-ips=127.0.0.2 >"$1-agent.log" 2>&1 &
  pids+=($!)
  attached() { [[ $listed == *$'\n'"a1 "* || $listed == "a1 "* ]]; }
  for _ in $(seq 100); do
    listed=$(in_ns "$bin/churnlab" agents --coordinator="$c" 2>/dev/null || true)
    attached && break
    sleep 0.1
  done
  attached || fail "the agent did not attach"
  # Looked up once it is there (a lookup in the loop above once came back empty under load,
  # and the test blamed an agent that had attached).
  agent=$(pgrep -n -f "churnlab-agent --coordinator=$c" || true)
  [[ -n $agent ]] || fail "no churnlab-agent process for $c"
}

# stop_an_engine_process: once the agent runs its shard in 2 or more engine processes
# ($engines), a second later, stops the first of them ($child).
stop_an_engine_process() {
  engines=0
  for _ in $(seq 100); do
    engines=$({ pgrep -P "$agent" || true; } | wc -l)
    ((engines >= 2)) && break
    sleep 0.1
  done
  ((engines >= 2)) || fail "the agent started no engine processes past its fd limit"
  sleep 1
  # Counted again: the first look can come while the agent is still starting them.
  engines=$(pgrep -P "$agent" | wc -l)
  child=$(pgrep -P "$agent" | head -n 1)
  kill -STOP "$child"
}
# stopped_child_then SIGNAL: one engine process stopped, then the coordinator sent SIGNAL: KILL
# (its connections close, the agent sees it at once) or STOP (silent, as behind a partition: only
# the lapsing leases and the link's keepalive stop the load).
stopped_child_then() {
  start_lab "child-$1" "20000 59999" 300
  target_port=$(cat target)
  count_syns "${target_port##*:}"
  in_ns "$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --concurrency=1000 \
    --duration=30s >"child-$1-run.log" 2>&1 &
  pids+=($!)
  local child before stopped sent a b d
  stop_an_engine_process
  before=$(syns)
  sleep 0.5
  stopped=$(syns)
  kill -"$1" "$coordinator_pid"
  sent=$(syns)
  sleep 4  # the dead-man limit (3 s after the last answered ping), and a second
  a=$(syns)
  sleep 3
  b=$(syns)
  # The agent has killed the stopped one by now (no answer within 2 s: part 9).
  local state
  state=$(awk '{print $3}' "/proc/$child/stat" 2>/dev/null || echo gone)
  [[ $state != T ]] || fail "$1: the stopped engine process was not killed in 7 s"
  kill -CONT "$child" 2>/dev/null || true
  sleep 1
  d=$(syns)
  kill -CONT "$coordinator_pid" 2>/dev/null || true
  echo "   $1: $engines engine processes, one stopped: SYNs +$((stopped - before)) in the 0.5 s" \
    "before the coordinator's SIG$1, +$((a - sent)) in the 4 s after, +$((b - a)) from 4 to 7 s" \
    "after, +$((d - b)) in the second after the stopped one resumed"
  # The others were loading with one stopped, so silence later is the dead-man switch's doing.
  ((stopped > before)) || fail "$1: no SYN with one engine process stopped: the others were not loading"
  ((b == a)) || fail "$1: $((b - a)) SYNs 4 to 7 s after the coordinator's SIG$1"
  ((d == b)) || fail "$1: $((d - b)) SYNs after the stopped engine process resumed"
}

part_1() {
  echo "== 1. a million per second into an exhausted source ends at its duration"
  new_namespace churn "40000 40009"
  in_ns "$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=t1 >t1.log 2>&1 &
  pids+=($!)
  need_file t1
  in_ns "$bin/churnlab-churn" --target="$(cat t1)" --rate=100 --duration=0.3s >fill.log 2>&1 ||
    fail "filling the 10 ports failed"
  t0=$(now_ms)
  in_ns timeout 20 "$bin/churnlab-churn" --target="$(cat t1)" --rate=1000000 --duration=1s \
    --max-in-flight=5 --progress=false >exhausted.log 2>&1 || fail "churnlab-churn exited $?"
  took=$(($(now_ms) - t0))
  echo "   ended after $took ms: $(grep -o 'attempted [0-9]*.*late-skipped starts [0-9]*' exhausted.log)"
  ((took < 2000)) || fail "a 1 s run took $took ms"
  grep -q EADDRNOTAVAIL exhausted.log || fail "the source was not exhausted"
}

part_2() {
  echo "== 2. no connect after the end of a run that fills its port range (8,000 ports)"
  start_lab fill "30000 37999"
  fds_before=$(fds "$agent")
  opens_before=$(counter ActiveOpens)
  retrans_before=$(counter TCPSynRetrans)
  in_ns "$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --rate=2500 --duration=6s \
    --report=fill.json >fill-run.log 2>&1 || true
  opens_end=$(counter ActiveOpens)
  sleep 3
  opens_later=$(counter ActiveOpens)
  fds_after=$(fds "$agent")
  [[ -n $fds_before && -n $fds_after ]] || fail "the agent exited during the fill run"
  attempted=$(json fill.json 'r["totals"]["attempted"]')
  no_port=$(json fill.json 'r.get("errors", {}).get("EADDRNOTAVAIL", 0)')
  timeouts=$(json fill.json 'r.get("errors", {}).get("connect-timeout", 0)')
  retrans=$(($(counter TCPSynRetrans) - retrans_before))
  echo "   ActiveOpens +$((opens_end - opens_before)) in the run, +$((opens_later - opens_end)) in the" \
    "3 s after it; agent fds $fds_before before, $fds_after after; report: attempted $attempted," \
    "EADDRNOTAVAIL $no_port, connect-timeout $timeouts; kernel SYN retransmits $retrans;" \
    "in connect() p99 $(json fill.json 'r["latency"]["connect_call"]["p99_ms"]') ms"
  json fill.json '"\n".join("   - " + o for o in r.get("observations", []))'
  ((opens_later == opens_end)) || fail "$((opens_later - opens_end)) connects after the run's end"
  ((fds_after <= fds_before + 2)) || fail "the agent holds $fds_after fds after the run ($fds_before before)"
  ((retrans > 0 || timeouts == 0)) || fail "$timeouts connect timeouts reported, no SYN retransmitted"
  # The slowdown is the kernel's to show or not (its port search got 5x slower in most runs here,
  # in some not at all): the report says so exactly when its own series shows it, the fastest
  # second under 40% full against the slowest from half full.
  slowed=$(json fill.json 'int((lambda low, high: bool(low and high and max(high) >= 5 * min(low)))(
    [p.get("connect_call_p99_ms", 0) for p in r.get("series", [])
     if p.get("max_port_fill", 0) < 0.4 and p.get("connect_call_p99_ms", 0) > 0],
    [p.get("connect_call_p99_ms", 0) for p in r.get("series", []) if p.get("max_port_fill", 0) >= 0.5]))')
  said=$(json fill.json 'int(any("connect() slowed from a p99" in o for o in r.get("observations", [])))')
  echo "   the series shows a 5x slowdown: $slowed; the report says so: $said"
  [[ $said == "$slowed" ]] ||
    fail "the report's word on connect() slowing ($said) does not match its series ($slowed): (t, fullest source's fill, p99 in connect(), handshake p99):
  $(json fill.json '"\n".join("%s %.2f %.3f %.3f" % (p.get("t_s", 0), p.get("max_port_fill", 0), p.get("connect_call_p99_ms", 0), p.get("connect_p99_ms", 0)) for p in r.get("series", []))')"
  # Every attempt either sent a SYN (ActiveOpens; the CLI's own gRPC connection adds one) or found
  # no port; 2% for the few other control connections.
  kernel=$((opens_end - opens_before + no_port))
  python3 -c "import sys; a, k = $attempted, $kernel; sys.exit(abs(a - k) > 0.02 * k)" ||
    fail "report attempted $attempted, kernel $kernel"
}

part_3() {
  echo "== 3. a stopped agent does not catch up when it resumes"
  start_lab stop "20000 59999"
  opens_before=$(counter ActiveOpens)
  in_ns "$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --rate=1000 --duration=5s \
    --connect-timeout=100ms --report=stop.json >stop-run.log 2>&1 &
  run=$!
  sleep 2
  kill -STOP "$agent"
  sleep 1
  before_resume=$(counter ActiveOpens)
  resumed_at=$(now_ms)
  kill -CONT "$agent"
  sleep 0.3
  burst=$(($(counter ActiveOpens) - before_resume))
  window=$(($(now_ms) - resumed_at))  # 0.3 s, or longer where the machine is busy
  wait "$run" || fail "the run failed: $(tail -n 3 stop-run.log)"
  opens=$(($(counter ActiveOpens) - opens_before))
  attempted=$(json stop.json 'r["totals"]["attempted"]')
  late=$(json stop.json 'r["totals"].get("late_starts", 0)')
  echo "   ActiveOpens +$burst in the $window ms after SIGCONT; report: attempted $attempted," \
    "late-skipped $late; kernel ActiveOpens +$opens"
  # The window at 1,000/s, plus the starts due in the last 100 ms before the resume (the connect
  # timeout) and 200 for the shell's timing; catching up would add ~900 more. A shell held for
  # over 1.5 s says nothing either way (the run's 2 s left would hide a catch-up).
  ((window <= 1500)) || fail "the shell took $window ms to look 0.3 s after the resume: inconclusive"
  ((burst < window + 300)) || fail "$burst connects in the $window ms after the resume: it caught up"
  ((late >= 700)) || fail "only $late starts counted as late-skipped after a 1 s stop"
  python3 -c "import sys; a, k = $attempted, $opens; sys.exit(abs(a - k) > 0.02 * k)" ||
    fail "report attempted $attempted, kernel ActiveOpens $opens"
}

part_4() {
  echo "== 4. a closed-model run past the agent's fd limit: engine processes, each within the limit"
  # Answers after 500 ms, so the 500 connections are all open at once.
  start_lab fds "20000 59999" 300 --delay=500ms
  limit=$(awk '/Max open files/ {print $4}' "/proc/$agent/limits")
  opens_before=$(counter ActiveOpens)
  in_ns "$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --concurrency=500 \
    --duration=3s --report=fds.json >fds-run.log 2>&1 &
  run=$!
  most=0
  engines=0
  open_most=0  # the most connections to the target established at once, by ss
  local target_port
  target_port=$(cat target)
  target_port=${target_port##*:}
  while kill -0 "$run" 2>/dev/null; do
    n=$(in_ns ss -Htn state established "( dport = :$target_port )" | wc -l)
    ((n > open_most)) && open_most=$n
    children=$(pgrep -P "$agent" || true)
    for p in $agent $children; do
      n=$(fds "$p")
      [[ -z $n ]] && continue  # it exited after pgrep listed it
      ((n > most)) && most=$n
    done
    k=$(echo $children | wc -w)
    ((k > engines)) && engines=$k
    sleep 0.1
  done
  wait "$run" || true
  opens=$(($(counter ActiveOpens) - opens_before))
  attempted=$(json fds.json 'r["totals"]["attempted"]')
  emfile=$(json fds.json 'r.get("errors", {}).get("EMFILE", 0)')
  reported=$(json fds.json 'r["agents"][0].get("fd_limit", 0)')
  echo "   kernel: limit $limit, $engines engine processes, at most $most fds in one process," \
    "at most $open_most connections established at once, ActiveOpens +$opens; report: fd_limit" \
    "$reported, attempted $attempted, EMFILE $emfile"
  ((engines >= 2)) || fail "the agent did not start engine processes past its fd limit"
  grep -q "past this process's fd limit of $limit" fds-agent.log || fail "the agent did not say why it started engine processes"
  grep -q "past its fd limit $limit: it runs them in $engines engine processes" fds-run.log ||
    fail "the preflight did not say the shard runs in $engines engine processes: $(head -n 5 fds-run.log)"
  ((most <= limit)) || fail "a process of the agent held $most fds over its limit $limit"
  ((reported == limit)) || fail "the report says fd limit $reported, the kernel $limit"
  ((emfile == 0)) || fail "$emfile EMFILE although the shard was split"
  # More open at once, as ss saw them, than one process at its limit could hold: 500 asked, each
  # waiting 500 ms for its answer (a look can fall while some are between one connection and the
  # next; 419 was the most seen once with the test command's seven slots on 2 cores, the engine
  # held off a second at a time).
  ((open_most > limit)) ||
    fail "at most $open_most connections were open at once, no more than one process's $limit"
  python3 -c "import sys; a, k = $attempted, $opens; sys.exit(abs(a - k) > 0.02 * k)" ||
    fail "report attempted $attempted, kernel $opens"
}

part_5() {
  echo "== 5. EMFILE at one engine's fd limit, at a bounded pace"
  # A target that answers after 500 ms, so that 500 connections would be open at once.
  new_namespace emfile "20000 59999"
  in_ns "$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=t5 --delay=500ms >t5.log 2>&1 &
  pids+=($!)
  need_file t5
  in_ns prlimit --nofile=300 "$bin/churnlab-churn" --target="$(cat t5)" --concurrency=500 \
    --duration=3s --progress=false >emfile.log 2>&1 || true
  emfile=$(grep -o 'EMFILE [0-9]*' emfile.log | head -n 1 | awk '{print $2}')
  echo "   churnlab-churn under ulimit -n 300: ${emfile:-0} EMFILE in 3 s"
  ((${emfile:-0} > 0)) || fail "no EMFILE over the fd limit: $(tail -n 8 emfile.log)"
  # Hold-backs of 1 ms at least after each immediate failure: at most ~1,000 a second.
  ((emfile < 4000)) || fail "$emfile EMFILE in 3 s: the closed model spins"
}

part_6() {
  echo "== 6. an agent stopped until its run had ended starts nothing when it resumes"
  start_lab resume "20000 59999"
  target_port=$(cat target)
  count_syns "${target_port##*:}"
  in_ns "$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --rate=500 --duration=12s \
    --report=resume.json >resume-run.log 2>&1 &
  run=$!
  sleep 2.6
  kill -STOP "$agent"
  stopped=$(syns)
  wait "$run" || true  # a run that lost its agent fails
  ended=$(syns)
  kill -CONT "$agent"
  sleep 3
  after=$(syns)
  attempted=$(json resume.json 'r["totals"]["attempted"]')
  echo "   SYNs: $stopped by the stop, $ended when the run ended ($(json resume.json \
    'r["agents"][0].get("lost_after_s", 0)') s in, the agent lost), $after 3 s after SIGCONT;" \
    "report: attempted $attempted"
  ((after == ended)) || fail "$((after - ended)) SYNs toward the target after the resume, once the run had ended"
  ((ended == stopped)) || fail "$((ended - stopped)) SYNs while the agent was stopped"
  # Its last telemetry came up to a second before the stop: at 500/s at most ~500 are uncounted.
  ((attempted <= stopped && attempted >= stopped - 600)) ||
    fail "report attempted $attempted, SYNs before the stop $stopped"
  # Matched in the shell, not by `| grep -q`: under pipefail, grep leaving at the first match can
  # fail the pipeline with the writer's SIGPIPE.
  [[ $(json resume.json '"\n".join(r.get("observations", []))') == *"is in no count"* ]] ||
    fail "the report does not say that what the lost agent did after its last telemetry is uncounted"
}

part_7() {
  echo "== 7. a stopped engine process does not keep the others loading without a coordinator"
  stopped_child_then KILL
  stopped_child_then STOP
}

part_8() {
  echo "== 8. ports bind() took from another address are no source's"
  start_lab elsewhere "40000 40999"
  # 990 of the 1,000 ports: the CLI's own connection to the coordinator needs one of the rest.
  in_ns "$bin/churnlab-churn" --target="$(cat target)" --source-ips=127.0.0.3 --bind=bind \
    --rate=990 --duration=1s --progress=false >elsewhere-fill.log 2>&1 || true
  held=$(in_ns ss -Htan state time-wait src 127.0.0.3 | wc -l)
  range_held=$(in_ns ss -Htan '( sport >= :40000 and sport <= :40999 )' |
    awk '{n = split($4, a, ":"); print a[n]}' | sort -u | wc -l)
  # The idle agent's census reaches the coordinator in its hello: every 2 s on a quiet host, later
  # on a busy one (its cadence follows its own CPU cost), so wait for it rather than a fixed time.
  # curl's own connections take ports from outside the range: each leaves one in TIME_WAIT, and
  # the 10 that bind() left free were gone after 10 looks (CI waited 60 s for them to come back).
  census_held() {
    in_ns curl -sf --max-time 5 --local-port 30000-30999 "http://$(cat http)/api/agents?name=a1" |
      python3 -c 'import json,sys; a=json.load(sys.stdin)["agents"][0]["hello"]; print(a.get("range_held", {}).get("in_use", 0))' \
        2>/dev/null || echo 0
  }
  waited=$(now_ms)
  # The value the loop saw decides: asking again could meet a busy coordinator (a 503 reads as 0).
  seen=0
  while (($(now_ms) - waited < 30000)); do
    seen=$(census_held)
    ((seen >= held)) && break
    sleep 0.5
  done
  ((seen >= held)) || fail "the idle agent's census never showed the $held held ports in 30 s (last: $seen)"
  echo "   the idle agent's census showed them $(($(now_ms) - waited)) ms after the bind() run"
  in_ns "$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --rate=100 --duration=1s \
    --report=elsewhere.json >elsewhere-run.log 2>&1 || true
  warned=$(grep -o 'warning: agent [^:]*: bind() had taken [0-9]* of its 1000 ports on its host' \
    elsewhere-run.log || true)
  failed=$(json elsewhere.json 'r.get("errors", {}).get("EADDRNOTAVAIL", 0)')
  said=$(json elsewhere.json '[o for o in r.get("observations", []) if "EADDRNOTAVAIL" in o][0]')
  at_start=$(json elsewhere.json 'r["agents"][0].get("ports_at_start", {}).get("in_use", 0)')
  bind_taken=$(json elsewhere.json 'r["agents"][0].get("ports_at_start", {}).get("bind_taken", 0)')
  budget_ports=$(json elsewhere.json 'r["tuple_budget"]["sources"][0]["ports"]')
  noted=$(json elsewhere.json '[n for n in r["tuple_budget"].get("notes", []) if "bind() had taken" in n]')
  echo "   127.0.0.3's bind() left $held ports in TIME_WAIT ($range_held of the range held by" \
    "ss's count before the run; the report's census at start: $at_start); the no-port run from" \
    "127.0.0.2: EADDRNOTAVAIL $failed; the report: ${said:0:160}..."
  # 990 asked; a busy machine makes fewer (953 once, the rest skipped late). The no-port run's
  # 100 then find the ports bind() left (one for the CLI's own connection): the rest fail.
  ((held >= 900)) || fail "bind mode bind left only $held ports in TIME_WAIT"
  ((failed >= 100 - (1000 - held) - 5)) ||
    fail "only $failed connects found no port, with $held of the 1000 ports bind()'s"
  [[ $said == *"taken elsewhere on this host"* && $said != *"More source IPs"* ]] ||
    fail "the report blames the source: $said"
  # The census at start against ss's count just before the run (the CLI's own connection to the
  # coordinator takes one more port of the range): within 2%.
  ((at_start * 100 >= range_held * 98 && at_start * 100 <= range_held * 102 + 300)) ||
    fail "the census at start says $at_start ports of the range were held, ss $range_held"
  [[ $said == *"before the run, sockets on the host held $at_start ports"* ]] ||
    fail "the report does not say what the host held before the run: $said"
  # Which ports bind() took, as the kernel's own port choice answered the agent: 127.0.0.3's
  # TIME_WAIT by ss (all bind()'s), and the budget counts only the rest.
  echo "   bind() had taken $bind_taken ports of the range by the agent's census ($held by ss);" \
    "the budget counts $budget_ports ports for 127.0.0.2"
  ((bind_taken * 100 >= held * 98 && bind_taken * 100 <= held * 102)) ||
    fail "the census says bind() had taken $bind_taken ports, ss $held"
  ((budget_ports + bind_taken <= 1000 && budget_ports + bind_taken >= 990)) ||
    fail "the budget counts $budget_ports ports beside $bind_taken taken by bind()"
  [[ $noted == *"bind() had taken $bind_taken ports"* ]] ||
    fail "the budget does not say bind() took the range before the run: $noted"
  # Before any traffic: StartRun's preflight, from the idle agent's census in its hello.
  echo "   before the run, churnlab run said: ${warned:-nothing}"
  [[ -n $warned ]] || fail "the preflight did not say the host held the range: $(cat elsewhere-run.log)"
}

part_9() {
  echo "== 9. a stopped engine process is killed, and the others run on"
  start_lab wedged "20000 59999" 300
  target_port=$(cat target)
  count_syns "${target_port##*:}"
  started=$(now_ms)
  in_ns "$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --concurrency=1000 \
    --duration=8s --report=wedged.json >wedged-run.log 2>&1 &
  run=$!
  pids+=($run)
  stop_an_engine_process
  stopped_at=$(now_ms)
  state=T
  while [[ $state == T ]] && (($(now_ms) - stopped_at < 5000)); do
    sleep 0.1
    state=$(awk '{print $3}' "/proc/$child/stat" 2>/dev/null || echo gone)
  done
  killed_after=$(($(now_ms) - stopped_at))
  at_kill=$(syns)
  sleep 1
  later=$(syns)
  wait "$run" || true
  took=$(($(now_ms) - started))
  lost=$(json wedged.json 'r["agents"][0].get("engine_processes_lost", 0)')
  of=$(json wedged.json 'r["agents"][0].get("engine_processes", 0)')
  said=$(json wedged.json '[o for o in r.get("observations", []) if "engine processes were lost" in o]')
  echo "   $engines engine processes, one stopped: state $state ${killed_after} ms later; SYNs +$((later -
    at_kill)) in the second after; the run took $took ms; report: $lost of $of lost"
  [[ $state != T ]] || fail "the stopped engine process was still stopped after 5 s"
  ((later > at_kill)) || fail "no SYN in the second after the kill: the other processes stopped"
  ((took < 16000)) || fail "an 8 s run took $took ms"
  ((lost == 1 && of == engines)) || fail "the report says $lost of $of processes lost, not 1 of $engines"
  [[ $said == *"1 of its $engines engine processes were lost"* ]] ||
    fail "the report does not name the lost process: $said"
  grep -q "1 of $engines engine processes lost" wedged-agent.log ||
    fail "the agent did not log the lost process"
}

part_10() {
  echo "== 10. no SYN after a run's end, in every bind mode"
  start_lab modes "20000 59999"
  target_port=$(cat target)
  count_syns "${target_port##*:}"
  for mode in none no-port bind bind-any; do
    before=$(syns)
    in_ns "$bin/churnlab" run --coordinator="$c" --target="$(cat target)" --rate=2000 \
      --duration=2s --bind="$mode" --report="mode-$mode.json" >"mode-$mode.log" 2>&1 || true
    ended=$(syns)
    sleep 2
    later=$(syns)
    attempted=$(json "mode-$mode.json" 'r["totals"]["attempted"]')
    echo "   $mode: SYNs +$((ended - before)) in the run, +$((later - ended)) in the 2 s after it;" \
      "report: attempted $attempted"
    ((later == ended)) || fail "$mode: $((later - ended)) SYNs after the run had ended"
    python3 -c "import sys; a, k = $attempted, $((ended - before)); sys.exit(k == 0 or abs(a - k) > 0.02 * k)" ||
      fail "$mode: report attempted $attempted, SYNs $((ended - before))"
  done
}

run_parts
