"""Queries a Prometheus server that scrapes a churnlab coordinator and holds what it stored
against the runs' JSON reports (prometheus_test.sh drives it).

  prometheus_check.py PROM_URL wait-scrape
  prometheus_check.py PROM_URL wait-ended NAME REPORT
  prometheus_check.py PROM_URL last-values NAME REPORT [EARLIER_REPORT...]
  prometheus_check.py PROM_URL increase NAME FIRST_REPORT SECOND_REPORT

increase() is exact here, not extrapolated: the window is pinned (with `@`) to end on the first
scrape after the second run ended and to start on the last scrape before it began, so
Prometheus has a sample on both edges and extrapolates nothing (see extrapolatedRate in
Prometheus' promql/functions.go). Over any other window, increase() scales the change to the
window's length and is close to, not equal to, the count.
"""
import json
import sys
import time
import urllib.parse
import urllib.request


def query(prom, expr, at=None):
    params = {"query": expr}
    if at is not None:
        params["time"] = at
    url = f"{prom}/api/v1/query?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    if body["status"] != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def by_label(result, label):
    return {r["metric"].get(label, ""): float(r["value"][1]) for r in result}


def scalar(result):
    if len(result) != 1:
        raise AssertionError(f"expected one series, got {result}")
    return float(result[0]["value"][1])


def same(what, got, want, quiet=False):
    if abs(got - want) > 1e-6 * max(1.0, abs(want)):
        raise AssertionError(f"{what}: Prometheus has {got}, the report {want}")
    if not quiet:
        print(f"  {what}: {got:g} = {want:g}")


def wait_for(what, predicate, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def load(path):
    with open(path) as f:
        return json.load(f)


def le_label(le_ms):
    """The `le` /metrics writes for a bound given in ms (bounds are whole nanoseconds)."""
    nanos = round(le_ms * 1e6)
    return f"{nanos // 10**9}.{nanos % 10**9:09d}".rstrip("0").rstrip(".")


def totals(reports):
    """What the counters of a name hold after these runs: their counts added up."""
    out = {"attempted": 0, "succeeded": 0, "requests": 0, "missed": 0, "late": 0,
           "latency_count": 0, "errors": {}, "buckets": {}, "kernel": {}, "target_kernel": {}}
    for r in reports:
        t = r["totals"]
        out["attempted"] += t["attempted"]
        out["succeeded"] += t["succeeded"]
        out["requests"] += t["requests"]
        out["missed"] += t["missed_starts"]
        out["late"] += t["late_starts"]
        histogram = r["latency"]["connect_histogram"]
        out["latency_count"] += histogram["count"]
        for b in histogram["buckets"]:
            key = le_label(b["le_ms"])
            out["buckets"][key] = out["buckets"].get(key, 0) + b["count"]
        for key, n in r["errors"].items():
            out["errors"][key] = out["errors"].get(key, 0) + n
        for key, n in r["kernel_counters"].items():
            out["kernel"][key] = out["kernel"].get(key, 0) + max(n, 0)
        for o in r["observers"]:
            for key, n in o["kernel_counters"].items():
                out["target_kernel"][key] = out["target_kernel"].get(key, 0) + max(n, 0)
    return out


def compare_counters(prom, name, want, wrap, at):
    """Each counter of `name`, through wrap(selector) (the selector itself, or increase()),
    against `want` (totals())."""
    sel = lambda metric: wrap(f'{metric}{{name="{name}"}}')
    q = lambda expr: query(prom, expr, at)
    same("attempted", scalar(q(f"sum({sel('churnlab_connections_attempted_total')})")),
         want["attempted"])
    same("succeeded", scalar(q(f"sum({sel('churnlab_connections_succeeded_total')})")),
         want["succeeded"])
    same("requests", scalar(q(f"sum({sel('churnlab_requests_total')})")), want["requests"])
    same("missed starts", scalar(q(f"sum({sel('churnlab_starts_missed_total')})")), want["missed"])
    same("late starts", scalar(q(f"sum({sel('churnlab_starts_late_total')})")), want["late"])
    failed = by_label(q(f"sum by (error) ({sel('churnlab_connections_failed_total')})"), "error")
    if not want["errors"]:
        raise AssertionError("the reports have no failures: the test needs some")
    for error in sorted(set(failed) | set(want["errors"])):
        same(f"failed {error}", failed.get(error, 0), want["errors"].get(error, 0))
    same("connect latency count",
         scalar(q(f"sum({sel('churnlab_connect_latency_seconds_count')})")),
         want["latency_count"])
    buckets = by_label(q(f"sum by (le) ({sel('churnlab_connect_latency_seconds_bucket')})"), "le")
    same("connect latency le=+Inf", buckets.pop("+Inf"), want["latency_count"])
    if set(buckets) != set(want["buckets"]):
        raise AssertionError(f"le: Prometheus {sorted(buckets)}, the reports {sorted(want['buckets'])}")
    for le, n in want["buckets"].items():
        if buckets[le] != n:
            raise AssertionError(f"connect latency le={le}: Prometheus {buckets[le]}, reports {n}")
    print(f"  connect latency: all {len(buckets)} buckets equal")
    for metric, key, label in (("churnlab_kernel_counter_total", "kernel", "agents' kernel"),
                               ("churnlab_target_kernel_counter_total", "target_kernel",
                                "target's kernel")):
        got = by_label(q(f"sum by (counter) ({sel(metric)})"), "counter")
        if not want[key]:
            raise AssertionError(f"the reports have no {label} counters")
        for counter, n in want[key].items():
            same(f"{label} {counter}", got.get(counter, -1), n, quiet=True)
        nonzero = ", ".join(f"{c} {n:g}" for c, n in sorted(want[key].items()) if n)
        print(f"  {label}: all {len(want[key])} counters equal ({nonzero})")


def last_values(prom, name, report_path, earlier):
    report = load(report_path)
    print(f"{name}: last values after {report['run_id']}")
    info = by_label(query(prom, f'churnlab_run_info{{name="{name}"}}'), "run_id")
    if list(info) != [report["run_id"]]:
        raise AssertionError(f"churnlab_run_info: {info}, wanted only {report['run_id']}")
    same("run running", scalar(query(prom, f'churnlab_run_running{{name="{name}"}}')), 0)
    same("run passed", scalar(query(prom, f'churnlab_run_passed{{name="{name}"}}')),
         1 if report["verdict"] == "pass" else 0)
    same("elapsed", scalar(query(prom, f'churnlab_run_elapsed_seconds{{name="{name}"}}')),
         report["duration_s"])
    if not query(prom, f'churnlab_target_tcp_sockets{{name="{name}"}}'):
        raise AssertionError("no churnlab_target_tcp_sockets: the observer's states are missing")
    compare_counters(prom, name, totals([load(p) for p in earlier] + [report]), lambda s: s, None)


def samples(prom, selector):
    """[(timestamp_ms, value)] of every sample of the series in the last 10 minutes."""
    result = query(prom, f"{selector}[10m]")
    return [(round(float(t) * 1000), v) for r in result for t, v in r["values"]]


def increase_over_second_run(prom, name, first_path, second_path):
    second = load(second_path)
    first_seen = min(t for t, _ in samples(prom, f'churnlab_run_info{{run_id="{second["run_id"]}"}}'))
    scrapes = sorted(t for t, _ in samples(prom, 'up{job="churnlab"}'))
    start = max(t for t in scrapes if t < first_seen)
    end = min(t for t, v in samples(prom, f'churnlab_run_running{{name="{name}"}}')
              if t > first_seen and float(v) == 0)
    window = f"{end - start}ms"
    at = f"{end / 1000:.3f}"
    print(f"{name}: increase() over {second['run_id']}, [{window}] @ {at}")
    compare_counters(prom, name, totals([second]), lambda s: f"increase({s}[{window}] @ {at})",
                     at)
    # Quantiles from the buckets, as a Grafana panel asks for them, within 10% of the report's.
    for q, field in ((0.5, "p50_ms"), (0.99, "p99_ms")):
        expr = (f'histogram_quantile({q}, sum by (le) (increase('
                f'churnlab_connect_latency_seconds_bucket{{name="{name}"}}[{window}] @ {at})))')
        got_ms = scalar(query(prom, expr, at)) * 1e3
        want_ms = second["latency"]["connect"][field]
        if abs(got_ms - want_ms) > 0.10 * want_ms:
            raise AssertionError(f"connect {field}: Prometheus has {got_ms:.4f} ms, the report "
                                 f"{want_ms:.4f} ms: more than 10% apart")
        print(f"  connect {field}: Prometheus {got_ms:.4f} ms, the report {want_ms:.4f} ms")
    for metric in ("churnlab_connections_attempted_total", "churnlab_connections_failed_total",
                   "churnlab_connect_latency_seconds_count"):
        resets = scalar(query(prom, f'sum(resets({metric}{{name="{name}"}}[10m] @ {at}))', at))
        same(f"resets of {metric} over both runs", resets, 0)


def main():
    prom, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if command == "wait-scrape":
        wait_for("a first scrape",
                 lambda: any(float(r["value"][1]) == 1 for r in query(prom, 'up{job="churnlab"}')))
    elif command == "wait-ended":
        run_id = load(args[1])["run_id"]
        expr = (f'churnlab_run_running{{name="{args[0]}"}} == 0 '
                f'and on(name) churnlab_run_info{{run_id="{run_id}"}}')
        wait_for(f"a scrape after {run_id} ended", lambda: bool(query(prom, expr)))
    elif command == "last-values":
        last_values(prom, args[0], args[1], args[2:])
    elif command == "increase":
        increase_over_second_run(prom, args[0], args[1], args[2])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        sys.exit(f"prometheus_check: {e}")
