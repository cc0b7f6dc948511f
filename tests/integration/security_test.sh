#!/usr/bin/env bash
# Token and TLS on real binaries over loopback:
#  - with --token-file, a call without the token or with a wrong one is refused (UNAUTHENTICATED,
#    nothing changes: no agent attaches, no run starts), the right token works, for the CLI, an
#    agent and the dashboard's write actions (HTTP 401 without it);
#  - mutual TLS with a test CA made here: a client with a certificate signed by it works; one
#    without a client certificate, or speaking plaintext, is refused;
#  - the coordinator refuses a non-loopback listen address without a token unless --insecure;
#  - hostile input (a huge target list, a message over gRPC's 4 MiB, an oversized HTTP body)
#    gets a clear error and the coordinator keeps serving;
#  - the HTTP side: with a token every read (API, /api/events, series.csv, /metrics) needs it
#    unless --public-read, /metrics takes its own --metrics-token-file too, a cross-site POST is
#    refused (403) with and without a token; with TLS and a CA the HTTP port speaks only TLS and
#    wants a client certificate (a loopback plaintext port only on request); 2,000 event streams
#    and 100 slow-header connections leave /api/runs answering within a second, one stream over
#    the cap gets 503 and the slow ones are closed at the request deadline;
#  - the coordinator raises its soft fd limit to the hard one at start, so 1,500 idle HTTP
#    clients cannot stop the gRPC port from accepting.
# Usage: security_test.sh BIN_DIR
source "$(dirname "$0")/../support/shell_test.sh" security_test "$@"
expect() {  # expect CODE DESCRIPTION CMD...: runs CMD, checks its exit code
  local want=$1 what=$2 got=0
  shift 2
  "$@" >out.txt 2>&1 || got=$?
  [[ $got -eq $want ]] || fail "$what: exit $got, wanted $want: $(cat out.txt)"
  echo "ok: $what (exit $got)"
}
start_coordinator() {  # start_coordinator NAME FLAGS...
  local name=$1
  shift
  rm -f "$name.grpc" "$name.http"
  "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen=127.0.0.1:0 \
    --address-file="$name.grpc" --http-address-file="$name.http" --db="$name.db" "$@" \
    >"$name.log" 2>&1 &
  pids+=($!)
  need_file "$name.grpc"
  need_file "$name.http"
}

echo "== bearer token"
printf 's3cret\n' >token
printf 'guess\n' >wrong
start_coordinator tok --token-file=token
c=$(cat tok.grpc)
h=$(cat tok.http)
expect 3 "CLI without the token is refused" "$bin/churnlab" agents --coordinator="$c"
grep -q "needs a token" out.txt || fail "no word of the missing token: $(cat out.txt)"
expect 3 "CLI with a wrong token is refused" "$bin/churnlab" agents --coordinator="$c" --token-file=wrong
expect 0 "CLI with the token works" "$bin/churnlab" agents --coordinator="$c" --token-file=token
expect 3 "StartRun without the token is refused" "$bin/churnlab" run --coordinator="$c" \
  --target=127.0.0.1:9 --rate=1 --duration=1s
"$bin/churnlab-agent" --coordinator="$c" --name=intruder --source-ips=127.0.0.2 >intruder.log 2>&1 &
pids+=($!)
"$bin/churnlab-agent" --coordinator="$c" --name=member --source-ips=127.0.0.3 \
  --token-file=token >member.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  "$bin/churnlab" agents --coordinator="$c" --token-file=token | grep -q '^member ' && break
  sleep 0.1
done
sleep 1
"$bin/churnlab" agents --coordinator="$c" --token-file=token >agents.txt
grep -q '^member ' agents.txt || fail "the agent with the token did not attach"
! grep -q '^intruder ' agents.txt || fail "the agent without the token attached"
grep -q "needs a token" intruder.log || fail "the refused agent does not say why"
echo "ok: the agent with the token attached, the one without did not (and says why)"
"$bin/churnlab" runs --coordinator="$c" --token-file=token >runs.txt
grep -q '^r-' runs.txt && fail "a refused call started a run"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$h/api/runs" -d '{}')
[[ $code == 401 ]] || fail "dashboard POST without the token: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer guess' \
  -d '{}' "http://$h/api/runs/r-x/cancel")
[[ $code == 401 ]] || fail "dashboard cancel with a wrong token: HTTP $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer s3cret' \
  -d '{}' "http://$h/api/runs/r-none/cancel")
[[ $code == 404 ]] || fail "dashboard cancel with the token: HTTP $code, wanted 404 (no such run)"
echo "ok: dashboard write actions need the token (401 without, through with it)"

echo "== mutual TLS"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=churnlab-test-ca \
  -keyout ca.key -out ca.pem 2>/dev/null
for who in server client; do
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout $who.key -out $who.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >$who.ext
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile $who.ext -out $who.pem 2>/dev/null
done
start_coordinator tls --token-file=token --tls-cert=server.pem --tls-key=server.key --tls-ca=ca.pem
c=$(cat tls.grpc)
expect 0 "client with a CA-signed certificate and the token works" "$bin/churnlab" agents \
  --coordinator="$c" --token-file=token --tls-ca=ca.pem --tls-cert=client.pem --tls-key=client.key
expect 3 "client without a certificate is refused" "$bin/churnlab" agents --coordinator="$c" \
  --token-file=token --tls-ca=ca.pem
expect 3 "plaintext client is refused" "$bin/churnlab" agents --coordinator="$c" --token-file=token
expect 2 "a certificate without its key is bad input" "$bin/churnlab" agents --coordinator="$c" \
  --tls-ca=ca.pem --tls-cert=client.pem

echo "== bad input"
python3 -c "
import json
json.dump({'targets': ['127.0.0.1:%d' % (1000 + i) for i in range(5000)], 'rate': 10,
           'duration': '1s'}, open('huge.json', 'w'))
json.dump({'name': 'x' * 5000000, 'targets': ['127.0.0.1:9'], 'rate': 10, 'duration': '1s'},
          open('big.json', 'w'))"
c=$(cat tok.grpc)
h=$(cat tok.http)
expect 2 "a 5,000-target spec is bad input" "$bin/churnlab" run --coordinator="$c" \
  --token-file=token --spec=huge.json
grep -q "at most 1000" out.txt || fail "the refusal does not give the limit: $(cat out.txt)"
expect 2 "a 5 MB spec is bad input, named by its size limit" "$bin/churnlab" run \
  --coordinator="$c" --token-file=token --spec=big.json
grep -q "size limit of 1048576 bytes" out.txt || fail "no word of the size: $(cat out.txt)"
head -c 1000000 /dev/zero | tr '\0' 'a' >body.txt
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
  -H 'Authorization: Bearer s3cret' --data-binary @body.txt "http://$h/api/runs" || true)
[[ $code == 413 ]] || fail "a 1 MB POST got HTTP $code, wanted 413"
expect 0 "the coordinator still serves" "$bin/churnlab" agents --coordinator="$c" --token-file=token

echo "== HTTP: reads need the token"
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" || true; }
h=$(cat tok.http)
for path in /api/agents /api/runs /api/runs/r-none /api/runs/r-none/series.csv /api/events \
  /metrics; do
  code=$(http_code "http://$h$path")
  [[ $code == 401 ]] || fail "GET $path without the token: HTTP $code, wanted 401"
done
code=$(http_code -H 'Authorization: Bearer guess' "http://$h/api/runs")
[[ $code == 401 ]] || fail "GET /api/runs with a wrong token: HTTP $code"
for path in /api/agents /api/runs /metrics; do
  code=$(http_code -H 'Authorization: Bearer s3cret' "http://$h$path")
  [[ $code == 200 ]] || fail "GET $path with the token: HTTP $code"
done
code=$(http_code -H 'Authorization: Bearer s3cret' "http://$h/api/runs/r-none")
[[ $code == 404 ]] || fail "GET /api/runs/r-none with the token: HTTP $code, wanted 404"
code=$(http_code "http://$h/api/events?token=s3cret")  # curl times out on the open stream
[[ $code == 200 ]] || fail "GET /api/events?token=: HTTP $code"
code=$(http_code "http://$h/api/runs?token=s3cret")
[[ $code == 401 ]] || fail "?token= opened /api/runs (only the event stream takes it): HTTP $code"
code=$(http_code "http://$h/")
[[ $code == 200 || $code == 404 ]] || fail "the page's files: HTTP $code"
echo "ok: reads, /api/events and /metrics answer 401 without the token, 200 with it"

printf 'scrape\n' >metrics.token
start_coordinator pub --token-file=token --public-read --metrics-token-file=metrics.token
h=$(cat pub.http)
for path in /api/agents /api/runs /metrics; do
  code=$(http_code "http://$h$path")
  [[ $code == 200 ]] || fail "--public-read: GET $path: HTTP $code"
done
code=$(http_code -X POST -d '{}' "http://$h/api/runs")
[[ $code == 401 ]] || fail "--public-read let a POST through without the token: HTTP $code"
start_coordinator met --token-file=token --metrics-token-file=metrics.token
h=$(cat met.http)
code=$(http_code -H 'Authorization: Bearer scrape' "http://$h/metrics")
[[ $code == 200 ]] || fail "/metrics with the metrics token: HTTP $code"
code=$(http_code -H 'Authorization: Bearer scrape' "http://$h/api/runs")
[[ $code == 401 ]] || fail "the metrics token opened /api/runs: HTTP $code"
code=$(http_code "http://$h/metrics")
[[ $code == 401 ]] || fail "/metrics without a token: HTTP $code"
echo "ok: --public-read opens reads only; the metrics token opens /metrics only"

echo "== HTTP: cross-site writes"
start_coordinator open
for name in tok open; do
  h=$(cat $name.http)
  code=$(http_code -X POST -H 'Origin: http://evil.example' -H 'Content-Type: text/plain' \
    -H 'Authorization: Bearer s3cret' -d '{"targets":["127.0.0.1:9"],"rate":1,"duration":"1s"}' \
    "http://$h/api/runs")
  [[ $code == 403 ]] || fail "$name: cross-site POST /api/runs: HTTP $code, wanted 403"
  code=$(http_code -X POST -H "Host: evil.example:${h##*:}" -d '{}' "http://$h/api/runs/r-x/cancel")
  [[ $code == 403 ]] || fail "$name: POST naming another Host (DNS rebinding): HTTP $code"
done
h=$(cat open.http)
code=$(http_code -X POST -H "Origin: http://$h" -d '{}' "http://$h/api/runs")
[[ $code == 400 ]] || fail "same-origin POST: HTTP $code, wanted 400 (the empty spec)"
"$bin/churnlab" runs --coordinator="$(cat open.grpc)" >runs.txt
! grep -q '^r-' runs.txt || fail "a refused cross-site POST started a run"
echo "ok: a cross-site POST is refused (403) with and without a token; same-origin passes"
# DNS rebinding reads: a tokenless coordinator answers reads only to its own names.
for path in /api/agents /api/runs /metrics; do
  code=$(http_code -H "Host: evil.example:${h##*:}" "http://$h$path")
  [[ $code == 403 ]] || fail "a read naming another Host ($path, DNS rebinding): HTTP $code"
  code=$(http_code -H "Host: localhost:${h##*:}" "http://$h$path")
  [[ $code == 200 ]] || fail "a read naming localhost ($path): HTTP $code"
done
headers=$(curl -s -D - -o /dev/null "http://$h/")
for want in "frame-ancestors 'none'" "X-Frame-Options: DENY" "X-Content-Type-Options: nosniff"; do
  grep -qiF "$want" <<<"$headers" || fail "the page is sent without $want: $headers"
done
echo "ok: reads naming another Host are refused (403) without a token; no site may frame the page"

echo "== HTTP over TLS"
start_coordinator htls --token-file=token --tls-cert=server.pem --tls-key=server.key \
  --tls-ca=ca.pem --http-plaintext-listen=127.0.0.1:0 --http-plaintext-address-file=htls.plain
need_file htls.plain
h=$(cat htls.http)
code=$(http_code --cacert ca.pem --cert client.pem --key client.key \
  -H 'Authorization: Bearer s3cret' "https://$h/api/runs")
[[ $code == 200 ]] || fail "HTTPS with a client certificate and the token: HTTP $code"
code=$(http_code --cacert ca.pem -H 'Authorization: Bearer s3cret' -X POST \
  -d '{"targets":["127.0.0.1:9"],"rate":1,"duration":"1s"}' "https://$h/api/runs")
[[ $code == 000 ]] || fail "HTTPS without a client certificate got HTTP $code"
code=$(http_code -H 'Authorization: Bearer s3cret' "http://$h/api/runs")
[[ $code == 000 ]] || fail "plaintext HTTP on the TLS port got HTTP $code"
code=$(http_code -H 'Authorization: Bearer s3cret' "http://$(cat htls.plain)/api/runs")
[[ $code == 200 ]] || fail "the loopback plaintext port with the token: HTTP $code"
code=$(http_code "http://$(cat htls.plain)/api/runs")
[[ $code == 401 ]] || fail "the loopback plaintext port without the token: HTTP $code"
expect 2 "a non-loopback plaintext HTTP port is refused" "$bin/churnlab-coordinator" \
  --grpc-listen=127.0.0.1:0 --http-listen=127.0.0.1:0 --db=z.db --token-file=token \
  --tls-cert=server.pem --tls-key=server.key --http-plaintext-listen=0.0.0.0:0
echo "ok: with TLS and a CA the HTTP port wants TLS and a client certificate"

echo "== HTTP: streams and slow clients do not stall it"
ulimit -n "$(ulimit -Hn)"
start_coordinator flood --token-file=token --http-max-streams=2000 --http-request-timeout=3s
python3 "$(dirname "$0")/http_flood.py" "$(cat flood.http)" 2000 100 3 s3cret >flood.txt 2>&1 ||
  fail "$(cat flood.txt)"
cat flood.txt
echo "ok: 2,000 streams and 100 slow clients leave the API answering"

echo "== the coordinator's fd limit"
# Started at a soft limit of 1,024, it raises its own to the hard one: 1,500 idle HTTP clients
# then leave the gRPC port accepting (at 1,024 it stopped: no CLI could cancel, no agent attach).
(
  ulimit -S -n 1024
  exec "$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen=127.0.0.1:0 \
    --address-file=fd.grpc --http-address-file=fd.http --db=fd.db
) >fd.log 2>&1 &
fd_pid=$!
pids+=("$fd_pid")
need_file fd.grpc
need_file fd.http
read -r soft hard < <(awk '/Max open files/ {print $4, $5}' "/proc/$fd_pid/limits")
[[ $soft == "$hard" ]] && ((soft > 1024)) ||
  fail "the coordinator kept a soft fd limit of $soft (hard $hard): $(cat fd.log)"
grep -q "soft 1024 -> $soft" fd.log || fail "it did not say so: $(cat fd.log)"
python3 - "$(cat fd.http)" "$bin/churnlab" "$(cat fd.grpc)" <<'PY' || fail "idle HTTP clients blocked the gRPC port"
import resource, socket, subprocess, sys
host, port = sys.argv[1].rsplit(":", 1)
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
idle = [socket.create_connection((host, int(port))) for _ in range(1500)]
r = subprocess.run([sys.argv[2], "runs", "--coordinator=" + sys.argv[3]], capture_output=True, timeout=20)
print("   1,500 idle HTTP connections held; `churnlab runs` exit", r.returncode)
sys.exit(r.returncode)
PY
echo "ok: soft fd limit $soft (hard $hard); the gRPC port accepts beside 1,500 idle HTTP clients"

echo "== listen address"
expect 2 "non-loopback listen without a token is refused" "$bin/churnlab-coordinator" \
  --grpc-listen=0.0.0.0:0 --http-listen= --db=x.db
grep -q -- "--insecure" out.txt || fail "the refusal does not name --insecure: $(cat out.txt)"
"$bin/churnlab-coordinator" --grpc-listen=0.0.0.0:0 --http-listen= --db=y.db --insecure \
  --address-file=insecure.grpc >insecure.log 2>&1 &
pids+=($!)
need_file insecure.grpc
echo "ok: --insecure lets it listen on 0.0.0.0"
# ---- issue 12, points 6 and 7: every hello bounded, a strict spec parser, IPv4-mapped targets
# against the allow-list, user-supplied strings escaped on the terminal. (Kept as one block.)
echo "== bounded hellos and strict specs"
c=$(cat tok.grpc)
h=$(cat tok.http)
agents() { "$bin/churnlab" agents --coordinator="$c" --token-file=token; }
ips=$(python3 -c "print(','.join('127.1.%d.%d' % (i // 256, i % 256) for i in range(5000)))")
"$bin/churnlab-agent" --coordinator="$c" --token-file=token --name=wide --source-ips="$ips" \
  >wide.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "hello.source_ips" wide.log && break; sleep 0.1; done
grep -q "hello.source_ips: 5000 items; at most 4096" wide.log ||
  fail "a 5,000-address hello was not refused naming the field: $(tail -n 3 wide.log)"
[[ $'\n'$(agents) == *$'\n'"wide "* ]] && fail "the 5,000-address agent attached"
echo "ok: a 5,000-address hello is refused, naming hello.source_ips and the limit"

printf '{"targets":["127.0.0.1:9"],"duration":"1s","rate":1,"rate":1e6}' >dup.json
expect 2 "a key given twice is bad input" "$bin/churnlab" run --coordinator="$c" \
  --token-file=token --spec=dup.json
grep -q "rate: given twice" out.txt || fail "the refusal does not name rate: $(cat out.txt)"
code=$(curl -s -o dup.out -w '%{http_code}' -X POST -H 'Authorization: Bearer s3cret' \
  --data-binary @dup.json "http://$h/api/runs")
[[ $code == 400 ]] && grep -q "rate: given twice" dup.out ||
  fail "POST /api/runs with a key twice: HTTP $code $(cat dup.out)"
echo "ok: POST /api/runs with a key twice is HTTP 400 naming rate"
python3 -c "
open('deep.json', 'w').write('{\"targets\":' + '[' * 200000 + ']' * 200000 +
                             ',\"rate\":1,\"duration\":\"1s\"}')
open('huge10.json', 'w').write('{\"targets\":[\"127.0.0.1:9\"],\"rate\":1,\"duration\":\"1s\",'
                               '\"name\":\"' + 'x' * 10000000 + '\"}')"
expect 2 "a 200,000-deep nested list is bad input" "$bin/churnlab" run --coordinator="$c" \
  --token-file=token --spec=deep.json
grep -q "targets: an array inside the list" out.txt || fail "not named: $(cat out.txt)"
expect 2 "a 10 MB spec is bad input" "$bin/churnlab" run --coordinator="$c" --token-file=token \
  --spec=huge10.json
grep -q "over the size limit of 1048576 bytes" out.txt || fail "the size limit is not named: $(cat out.txt)"

echo "== IPv4-mapped targets"
"$bin/churnlab-agent" --coordinator="$c" --token-file=token --name=six --source-ips=::1 \
  --allow-targets=::/0 >six.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ $'\n'$(agents) == *$'\n'"six "* ]] && break; sleep 0.1; done
[[ $'\n'$(agents) == *$'\n'"six "* ]] || fail "the IPv6-only agent did not attach: $(tail -n 3 six.log)"
expect 3 "an IPv4 target written ::ffff:a.b.c.d is outside an allow-list of ::/0" \
  "$bin/churnlab" run --coordinator="$c" --token-file=token --agents=six \
  --target='[::ffff:127.0.0.1]:9' --rate=1 --duration=1s
grep -q "127.0.0.1:9 is outside the allowed targets ::/0" out.txt ||
  fail "the refusal does not name the mapped target as IPv4: $(cat out.txt)"

echo "== user-supplied strings on the terminal"
esc=$'\e'
expect 2 "an error echoing a target is printed escaped" "$bin/churnlab" run \
  --coordinator="$c" --token-file=token --target=$'\e]0;pwned\a127.0.0.1:9' --rate=1 \
  --duration=1s
grep -q "$esc" out.txt && fail "a raw escape reached the terminal: $(cat -v out.txt)"
grep -qF '\e]0;pwned\x07127.0.0.1:9' out.txt || fail "not escaped as expected: $(cat out.txt)"
"$bin/churnlab" run --coordinator="$c" --token-file=token --agents=member \
  --name=$'evil\e[2J\e]0;pwned\a' --target=127.0.0.1:9 --rate=5 --duration=1s >named.txt 2>&1 ||
  true
grep -q "$esc" named.txt && fail "run: a raw escape reached the terminal: $(cat -v named.txt)"
grep -qF '(evil\e[2J\e]0;pwned\x07)' named.txt || fail "run: name not shown escaped: $(cat named.txt)"
"$bin/churnlab" runs --coordinator="$c" --token-file=token >runs.txt
grep -q "$esc" runs.txt && fail "runs: a raw escape reached the terminal: $(cat -v runs.txt)"
grep -qF 'evil\e[2J\e]0;pwned\x07' runs.txt || fail "runs: name not shown escaped: $(cat runs.txt)"
echo "ok: run names and echoed input are printed with control characters escaped"
# ---- end of issue 12, points 6 and 7
echo "security_test: all passed"
