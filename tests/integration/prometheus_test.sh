#!/usr/bin/env bash
# /metrics as Debian's Prometheus server sees it, scraping the coordinator every second while
# two runs of one name go on loopback (a target attached as an observer, two agents, one target
# address refusing connections):
#  - each run's final values reach Prometheus and stay after the run ends;
#  - the second run continues the first one's series (they carry the run's name, not its id),
#    no counter ever resets, and increase() over the second run equals its report's totals;
#  - the connect latency is a histogram, and the target's side is there (its observer);
#  - every panel query of deploy/grafana/churnlab.json returns data, on metrics /metrics has.
# The queries are in prometheus_check.py, the dashboard's check in grafana_dashboard_check.py.
# Usage: prometheus_test.sh BIN_DIR
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$here/../support/shell_test.sh" prometheus_test "$@"
command -v prometheus >/dev/null ||
  fail "no prometheus: Debian's package is installed by scripts/install-deps.sh --test"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

"$bin/churnlab-coordinator" --grpc-listen=127.0.0.1:0 --http-listen=127.0.0.1:0 \
  --address-file=grpc --http-address-file=http --db=runs.db >coordinator.log 2>&1 &
pids+=($!)
need_file grpc
need_file http
c=$(cat grpc)
h=$(cat http)
# The server closes first, so its host holds TIME_WAIT sockets for the observer to report.
"$bin/churnlab-target" --listen=127.0.0.1:0 --address-file=target --coordinator="$c" \
  --close=server --name=target >target.log 2>&1 &
pids+=($!)
need_file target
for i in 1 2; do
  "$bin/churnlab-agent" --coordinator="$c" --name="a$i" --source-ips="127.0.0.$((i + 1))" \
    >"a$i.log" 2>&1 &
  pids+=($!)
done

# Prometheus on a free port with its data in the scratch directory, scraping every second.
cat >prometheus.yml <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: churnlab
    static_configs:
      - targets: ["$h"]
EOF
for attempt in 1 2 3; do
  port=$(free_port)
  prometheus --config.file=prometheus.yml --storage.tsdb.path=prometheus-data \
    --web.listen-address="127.0.0.1:$port" --log.level=warn >prometheus.log 2>&1 &
  prometheus_pid=$!
  pids+=($!)
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break
    kill -0 "$prometheus_pid" 2>/dev/null || break  # the port was taken meanwhile: another
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/-/ready" >/dev/null && break
  ((attempt < 3)) || fail "prometheus did not become ready"
done
prom="http://127.0.0.1:$port"
echo "prometheus $(prometheus --version 2>&1 | head -1 | cut -d' ' -f3) on $prom, scraping $h"

until "$bin/churnlab" agents --coordinator="$c" 2>/dev/null | grep -c '^a[12] ' | grep -qx 2; do
  sleep 0.1
done
closed=$(free_port)  # nothing listens there: ECONNREFUSED
check() { python3 "$here/prometheus_check.py" "$prom" "$@" || fail "prometheus_check.py $1"; }
check wait-scrape

for n in 1 2; do
  "$bin/churnlab" run --coordinator="$c" --target="$(cat target),127.0.0.1:$closed" --rate=100 \
    --duration=3s --name=prom-test --threshold='error_rate < 1' --report="r$n.json" \
    >"run$n.log" 2>&1 || fail "run $n exited $?"
  check wait-ended prom-test "r$n.json"
  # The run has ended: its final values are what Prometheus has now, and stay.
  check last-values prom-test "r$n.json" $( ((n == 2)) && echo r1.json)
done
check increase prom-test r1.json r2.json
sleep 2  # two more scrapes: the values are still there
check last-values prom-test r2.json r1.json
curl -sf "http://$h/metrics" >metrics.txt || fail "no /metrics"
python3 "$here/grafana_dashboard_check.py" "$root/deploy/grafana/churnlab.json" metrics.txt \
  "$prom" prom-test || fail "the Grafana dashboard's check"
echo "prometheus_test: ok"
