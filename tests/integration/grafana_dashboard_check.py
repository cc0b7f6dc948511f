"""Checks deploy/grafana/churnlab.json, Grafana's dashboard model, without a Grafana:

  - its structure as Grafana reads it: title, uid, schemaVersion, the `datasource` and `name`
    variables, panels with unique ids, known types and grid positions inside the 24-column grid
    that do not overlap; every query panel on the ${datasource} variable with targets that have
    unique refIds and an expr;
  - every metric an expr names exists on the coordinator's /metrics (a histogram's _bucket, _sum,
    _count included), with every label the expr selects on;
  - every expr, with the dashboard's variables filled in, returns data from a real Prometheus
    that scraped real runs (a finite value at some point of the last minutes).

grafana_dashboard_check.py DASHBOARD METRICS_TEXT PROM_URL RUN_NAME
"""
import json
import math
import re
import sys
import time
import urllib.parse
import urllib.request

PANEL_TYPES = {"row", "timeseries", "stat", "table", "heatmap", "text", "bargauge", "gauge"}
# What Grafana puts for $__rate_interval at a 1 s scrape interval: max(4 x scrape, step + scrape).
RATE_INTERVAL = "4s"


def metrics_on_endpoint(text):
    """{series name: set of label names seen} from the exposition text."""
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    names = {}
    for family, kind in types.items():
        parts = ["_bucket", "_sum", "_count"] if kind == "histogram" else [""]
        for part in parts:
            names[family + part] = set()
    for name, labels in re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ", text, re.M):
        names.setdefault(name, set()).update(re.findall(r'([a-zA-Z_]\w*)="', labels or ""))
    return names


def check_structure(d):
    problems = []
    for key, kind in (("title", str), ("uid", str), ("schemaVersion", int), ("panels", list),
                      ("templating", dict), ("time", dict)):
        if not isinstance(d.get(key), kind):
            problems.append(f"dashboard: {key} missing or not a {kind.__name__}")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    if variables.get("datasource", {}).get("type") != "datasource" or \
            variables["datasource"].get("query") != "prometheus":
        problems.append("no `datasource` variable of type datasource for prometheus")
    if "churnlab_run_info" not in json.dumps(variables.get("name", {}).get("query")):
        problems.append("the `name` variable does not list names from churnlab_run_info")
    ids, cells = set(), {}
    for p in d.get("panels", []):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if not isinstance(p.get("id"), int) or p["id"] in ids:
            problems.append(f"{where}: id missing or repeated")
        ids.add(p.get("id"))
        if p.get("type") not in PANEL_TYPES or not p.get("title"):
            problems.append(f"{where}: type {p.get('type')!r} unknown or no title")
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "hwxy") or g["x"] + g["w"] > 24:
            problems.append(f"{where}: gridPos {g} not in the 24-column grid")
            continue
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                if (x, y) in cells:
                    problems.append(f"{where}: overlaps panel {cells[(x, y)]}")
                    break
                cells[(x, y)] = p["id"]
        if p.get("type") in ("row", "text"):
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{where}: not on the ${{datasource}} variable")
        refs = [t.get("refId") for t in p.get("targets", [])]
        if not refs or len(set(refs)) != len(refs) or not all(t.get("expr") for t in p["targets"]):
            problems.append(f"{where}: targets need unique refIds and an expr")
    return problems


def check_metrics(d, endpoint):
    problems = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            for metric, labels in re.findall(r"(churnlab_[a-z_]+)(?:\{([^}]*)\})?", t["expr"]):
                if metric not in endpoint:
                    problems.append(f"{p['title']!r}: {metric} is not on /metrics")
                    continue
                for label in re.findall(r"([a-zA-Z_]\w*)\s*[=!~]", labels):
                    if label not in endpoint[metric]:
                        problems.append(f"{p['title']!r}: {metric} has no label {label}")
    return problems


def has_data(prom, expr):
    now = time.time()
    params = urllib.parse.urlencode({"query": expr, "start": now - 300, "end": now, "step": 1})
    with urllib.request.urlopen(f"{prom}/api/v1/query_range?{params}", timeout=10) as response:
        body = json.load(response)
    if body["status"] != "success":
        raise RuntimeError(f"{expr}: {body}")
    return any(math.isfinite(float(v)) for r in body["data"]["result"] for _, v in r["values"])


def main():
    dashboard_path, metrics_path, prom, name = sys.argv[1:5]
    with open(dashboard_path) as f:
        d = json.load(f)
    with open(metrics_path) as f:
        endpoint = metrics_on_endpoint(f.read())
    problems = check_structure(d) + check_metrics(d, endpoint)
    exprs = [(p["title"], t["expr"]) for p in d["panels"] for t in p.get("targets", [])]
    for title, expr in exprs:
        filled = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$name", name)
        if not has_data(prom, filled):
            problems.append(f"{title!r}: no data for {filled}")
    for problem in problems:
        print(f"grafana dashboard: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"grafana dashboard: {len(d['panels'])} panels, {len(exprs)} queries, each with data")


if __name__ == "__main__":
    main()
