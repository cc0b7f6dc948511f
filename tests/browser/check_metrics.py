"""Parses the coordinator's /metrics (on stdin) with prometheus_client's own parser, the one
Prometheus' Python client uses, and checks that the run's per-agent, per-source series are there
(labelled by the run's name, which churnlab_run_info ties to its id).

/usr/bin/python3 check_metrics.py RUN_ID < metrics.txt
"""
import sys

from prometheus_client.parser import text_string_to_metric_families


def check(condition, message):
    """A check that holds under PYTHONOPTIMIZE too (a bare assert is gone there)."""
    if not condition:
        sys.exit(f"check_metrics: {message}")


def main():
    run_id = sys.argv[1]
    families = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
    # The parser names counter families without their _total suffix.
    for name in ("churnlab_connections_attempted", "churnlab_connections_succeeded",
                 "churnlab_connections_failed", "churnlab_coordinator_telemetry_messages"):
        check(families[name].type == "counter", f"{name}: {families[name].type}")
    for name in ("churnlab_source_ports_in_use", "churnlab_source_tcp_sockets",
                 "churnlab_run_elapsed_seconds", "churnlab_agents"):
        check(families[name].type == "gauge", f"{name}: {families[name].type}")
    check(families["churnlab_connect_latency_seconds"].type == "histogram",
          "churnlab_connect_latency_seconds is no histogram")
    # Series are labelled by the run's name; churnlab_run_info says which run they show.
    names = [s.labels["name"] for s in families["churnlab_run_info"].samples
             if s.labels.get("run_id") == run_id]
    check(len(names) == 1, f"churnlab_run_info for {run_id}: {names}")
    name = names[0]
    attempted = [s for s in families["churnlab_connections_attempted"].samples
                 if s.labels.get("name") == name]
    agents = {s.labels["agent"] for s in attempted}
    check(agents == {"a1", "a2"}, f"attempted counters for agents {agents}")
    check(all(s.value > 0 for s in attempted), attempted)
    refused = [s for s in families["churnlab_connections_failed"].samples
               if s.labels.get("error") == "ECONNREFUSED"]
    check(refused and sum(s.value for s in refused) > 0, "no ECONNREFUSED failures")
    ports = [s for s in families["churnlab_source_ports_in_use"].samples
             if s.labels.get("name") == name]
    check({s.labels["source_ip"] for s in ports} == {"127.0.0.2", "127.0.0.3"}, ports)
    print(f"metrics: {len(families)} families parsed, run {run_id} ({name!r}) present for "
          f"agents {sorted(agents)}")


if __name__ == "__main__":
    main()
