// The run's charts as uPlot series and data, made from a report and its series points. One
// implementation for the live dashboard and the exported HTML report (report_view.js draws
// them). A value the run did not sample is null, so uPlot leaves a gap where a zero would lie:
// an agent with no point in an interval, a source not yet seen, a latency when no connection
// succeeded (there is no latency then, not a latency of 0 ms), a budget the report has none of.
(function (C) {
  'use strict';

  const MAX_PORT_SERIES = 12;  // the fullest sources drawn; the note says how many there are
  const STALE_CENSUS_S = 2;  // kStaleCensusSeconds (proto/telemetry_codec.h)
  const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
    '#7f7f7f', '#bcbd22', '#17becf'];

  // proto JSON leaves out zeros and may write 64-bit integers as strings.
  const num = (x) => (x === undefined || x === null || x === '' ? 0 : Number(x));
  const color = (i) => PALETTE[i % PALETTE.length];
  const perSecond = (p, v) => (num(p.interval_s) > 0 ? num(v) / num(p.interval_s) : null);
  function fmtRate(x) {
    if (x === null || x === undefined) return '–';
    return num(x).toFixed(num(x) < 10 ? 1 : 0);
  }

  function line(label, i, extra = {}) {
    return { label, stroke: color(i), width: 1.5, points: { show: false }, ...extra };
  }

  function errnoLabel(report, key) {
    const w = (report.windows_errors || {})[key];
    return w ? `${key} (Windows ${num(w.code)})` : key;
  }

  // Achieved rate stacked by agent (the legend shows each agent's own value), the requested
  // rate at each point (ramps and stages) and the tuple budget.
  function rateChart(r, points) {
    const x = points.map((p) => num(p.t_s));
    const agents = (r.agents || []).map((a) => a.name);
    const raw = agents.map((name) => points.map((p) => {
      const a = (p.agents || []).find((q) => q.name === name);
      return a ? perSecond(p, a.succeeded) : null;
    }));
    const below = new Array(points.length).fill(0);
    const stacked = raw.map((ys) => ys.map((y, j) => (y === null ? null : (below[j] += y))));
    // The legend shows each agent's own value; the chart keeps the newest `raw` (report_view.js).
    const series = agents.map((name, i) => line(name, i, {
      fill: color(i) + '55',
      value: (u, v, si, idx) => (idx == null || !u.churnlabRaw ? '' : fmtRate(u.churnlabRaw[si - 1][idx])),
    }));
    series.push(line('requested', 0, { stroke: '#444', dash: [6, 4] }));
    series.push(line('tuple budget', 0, { stroke: '#c62828', dash: [2, 3], width: 2 }));
    const budget = num((r.tuple_budget || {}).total_rate);
    const requested = points.map((p) =>
      (p.requested_rate !== undefined ? num(p.requested_rate) : num(r.requested_rate)));
    const bands = agents.slice(1).map((_, i) => ({ series: [i + 2, i + 1] }));
    return { series, data: [x, ...stacked, requested, x.map(() => (budget > 0 ? budget : null))],
      opts: { bands }, raw };
  }

  // Failures per second by errno, named in Windows' words too.
  function errorsChart(r, points) {
    const x = points.map((p) => num(p.t_s));
    const errnos = [...new Set(points.flatMap((p) => Object.keys(p.errors || {})))].sort();
    if (!errnos.length) {
      return { series: [line('failures', 0)], data: [x, points.map((p) => perSecond(p, p.failed))] };
    }
    return {
      series: errnos.map((e, i) => line(errnoLabel(r, e), i)),
      data: [x, ...errnos.map((e) => points.map((p) => perSecond(p, (p.errors || {})[e])))],
    };
  }

  // Ports in use per source IP as % of its range, the fullest sources.
  function portsChart(r, points) {
    const x = points.map((p) => num(p.t_s));
    const many = (r.agents || []).length > 1;
    const fills = new Map();  // "agent ip" -> percentages
    points.forEach((p, j) => {
      for (const a of p.agents || []) {
        const range = num(a.port_range_size);
        for (const s of a.sources || []) {
          const k = many ? `${a.name} ${s.ip}` : s.ip;
          if (!fills.has(k)) fills.set(k, new Array(points.length).fill(null));
          fills.get(k)[j] = range ? 100 * num(s.ports_in_use) / range : null;
        }
      }
    });
    const peak = (ys) => Math.max(...ys.map(num));
    const fullest = [...fills.entries()].sort((a, b) => peak(b[1]) - peak(a[1]))
      .slice(0, MAX_PORT_SERIES).sort((a, b) => a[0].localeCompare(b[0]));
    // Ports and TCP states come from the agents' socket census, which a busy host spaces out:
    // an old one is marked, not shown as current (proto: SeriesPoint.census_age_s).
    const age = points.length ? num(points[points.length - 1].census_age_s) : 0;
    const note = [
      fills.size > MAX_PORT_SERIES ? `(the ${MAX_PORT_SERIES} fullest of ${fills.size} sources)` : '',
      age > STALE_CENSUS_S ? `(census ${Math.round(age)} s old: behind the kernel)` : '',
    ].filter(Boolean).join(' ');
    const opts = { scales: { x: { time: false }, y: { range: [0, 100] } } };
    if (!fullest.length) {
      return { series: [line('ports', 0)], data: [x, x.map(() => null)], opts, note };
    }
    return { series: fullest.map(([k], i) => line(k, i)),
      data: [x, ...fullest.map(([, ys]) => ys)], opts, note };
  }

  // TCP states toward the targets (all agents, or the one named by `scope`), and the target
  // hosts' listening side. A state absent from a census is 0; no census at all is a gap.
  function statesChart(r, points, scope) {
    const x = points.map((p) => num(p.t_s));
    const inScope = (p) => (p.agents || []).filter((a) => !scope || a.name === scope);
    // An agent's states over all its sources (a point keeps only its fullest sources); points
    // stored before that field summed their sources here.
    const statesOf = (a) => {
      if (a.tcp_states) return a.tcp_states;
      const sum = {};
      for (const s of a.sources || []) {
        for (const [k, c] of Object.entries(s.tcp_states || {})) sum[k] = (sum[k] || 0) + num(c);
      }
      return sum;
    };
    const agentKeys = new Set();
    const observerKeys = new Set();
    for (const p of points) {
      for (const a of inScope(p)) Object.keys(statesOf(a)).forEach((k) => agentKeys.add(k));
      for (const o of p.observers || []) {
        Object.keys(o.tcp_states || {}).forEach((k) => observerKeys.add(`${o.name}: ${k}`));
      }
    }
    const keys = [...agentKeys, ...observerKeys].sort();
    const counted = (p) => inScope(p).some((a) => (a.sources || []).length || a.tcp_states);
    if (!keys.length) {  // censuses that found no socket are 0; none taken, a gap
      return { series: [line('sockets', 0)], data: [x, points.map((p) => (counted(p) ? 0 : null))] };
    }
    const ys = new Map(keys.map((k) => [k, new Array(points.length).fill(null)]));
    points.forEach((p, j) => {
      if (counted(p)) {
        for (const k of agentKeys) ys.get(k)[j] = 0;
        for (const a of inScope(p)) {
          for (const [k, c] of Object.entries(statesOf(a))) ys.get(k)[j] += num(c);
        }
      }
      for (const o of p.observers || []) {
        for (const k of observerKeys) if (k.startsWith(`${o.name}: `)) ys.get(k)[j] = 0;
        for (const [k, c] of Object.entries(o.tcp_states || {})) ys.get(`${o.name}: ${k}`)[j] += num(c);
      }
    });
    return { series: keys.map((k, i) => line(k, i)), data: [x, ...keys.map((k) => ys.get(k))] };
  }

  // Connect latency percentiles of the interval; none when no connection succeeded in it.
  function latencyChart(r, points) {
    const x = points.map((p) => num(p.t_s));
    const at = (field) => points.map((p) => (num(p.succeeded) > 0 ? num(p[field]) : null));
    return { series: [line('p50', 0), line('p90', 1), line('p99', 3)],
      data: [x, at('connect_p50_ms'), at('connect_p90_ms'), at('connect_p99_ms')] };
  }

  // Several runs on one time axis (whole seconds after each run's start): one line per run.
  // A run without a point at a second has a gap there.
  function overlayChart(runs, label, valueOf) {
    const seconds = new Set();
    const byRun = runs.map((run) => {
      const m = new Map();
      for (const p of run.points) m.set(Math.round(num(p.t_s)), valueOf(run.report, p));
      m.forEach((_, t) => seconds.add(t));
      return m;
    });
    const x = [...seconds].sort((a, b) => a - b);
    return {
      series: runs.map((run, i) => line(label(run.report), i)),
      data: [x, ...byRun.map((m) => x.map((t) => (m.has(t) ? m.get(t) : null)))],
    };
  }

  function compareCharts(runs) {
    const name = (r) => `${r.spec && r.spec.name ? r.spec.name + ' ' : ''}(${r.run_id})`;
    return {
      rate: overlayChart(runs, name, (r, p) => perSecond(p, p.succeeded)),
      errors: overlayChart(runs, name, (r, p) => perSecond(p, p.failed)),
      latency: overlayChart(runs, name, (r, p) => (num(p.succeeded) > 0 ? num(p.connect_p99_ms) : null)),
      ports: overlayChart(runs, name, (r, p) => 100 * num(p.max_port_fill)),
    };
  }

  C.charts = { rateChart, errorsChart, portsChart, statesChart, latencyChart, compareCharts };
  C.util = { num, color, fmtRate, errnoLabel, perSecond };
})(window.Churnlab = window.Churnlab || {});
