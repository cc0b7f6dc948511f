// The churnlab dashboard: agents, the live run, stored runs side by side.
// Data: /api/events (Server-Sent Events) pushes every running run's new series point and the
// agents list; /api/runs and /api/runs/ID give the stored runs. Everything shown goes through
// textContent, never innerHTML. With a coordinator token, every call sends the token from the
// page's token field (`Authorization: Bearer`); EventSource cannot set headers, so the event
// stream is opened as /api/events?token=... (the one route that takes it in the URL).
'use strict';

const $ = (id) => document.getElementById(id);
const MAX_PORT_SERIES = 12;  // the fullest sources drawn; the note says how many there are
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
  '#7f7f7f', '#bcbd22', '#17becf'];

const state = {
  agents: [],
  runs: new Map(),     // run id -> { report, points }
  selected: null,      // run id shown in the run section
  checked: [],         // run ids ticked for side by side
  charts: new Map(),   // element id -> { plot, key }
  renderQueued: false,
};

// proto JSON writes 64-bit integers as strings.
const num = (x) => (x === undefined || x === null || x === '' ? 0 : Number(x));
const color = (i) => PALETTE[i % PALETTE.length];

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) tr.appendChild(c instanceof Node ? wrapCell(c) : el('td', c));
  return tr;
}

function wrapCell(node) {
  const td = document.createElement('td');
  td.appendChild(node);
  return td;
}

function pill(text) {
  const p = el('span', text, 'pill');
  p.dataset.state = text;
  return p;
}

function fmtRate(x) { return num(x).toFixed(num(x) < 10 ? 1 : 0); }

function secondsAgo(rfc3339) {
  const ms = Date.now() - Date.parse(rfc3339);
  if (!isFinite(ms)) return '';
  return ms < 1500 ? 'now' : `${Math.round(ms / 1000)} s ago`;
}

// ---- agents ---------------------------------------------------------------------------------

function renderAgents() {
  const body = $('agents').tBodies[0];
  body.replaceChildren(...state.agents.map((a) => {
    const h = a.hello || {};
    const range = h.port_range ? `${h.port_range.low}-${h.port_range.high}` : '';
    const reuse = (h.sysctls || {})['net.ipv4.tcp_tw_reuse'] ?? '';
    const sources = h.observer ? (h.listen_addresses || []).join(', ') : (h.source_ips || []).join(', ');
    const tr = row([h.name, h.host, sources, range, reuse, num(h.fd_limit), pill(a.state),
      secondsAgo(a.last_seen)]);
    tr.dataset.agent = h.name;
    tr.cells[2].className = 'wrap';
    return tr;
  }));
  prefillSpec();
}

function prefillSpec() {
  const spec = $('spec');
  if (spec.dataset.touched || spec.value) return;
  const target = state.agents.find((a) => a.hello && a.hello.observer &&
    (a.hello.listen_addresses || []).length);
  spec.value = JSON.stringify({
    name: 'from the dashboard',
    targets: target ? [target.hello.listen_addresses[0]] : ['127.0.0.1:8080'],
    rate: 200,
    duration: '30s',
    close_policy: 'client-fin',
  }, null, 2);
}

// ---- runs -----------------------------------------------------------------------------------

function onRun(report) {
  let run = state.runs.get(report.run_id);
  const isNew = !run;
  if (!run) {
    run = { report, points: [] };
    state.runs.set(report.run_id, run);
  }
  const series = report.series || [];
  if (report.state !== 'running') {
    run.points = series;  // the final report holds the whole series
  } else {
    for (const p of series) {
      const last = run.points[run.points.length - 1];
      if (!last || p.t_s > last.t_s) run.points.push(p);
    }
  }
  run.report = report;
  if (isNew && report.state === 'running') state.selected = report.run_id;  // follow a new run
  if (isNew || report.state !== 'running') loadRuns();
  if (state.selected === report.run_id) scheduleRender();
}

async function loadRuns() {
  const response = await fetch('/api/runs', { headers: authHeaders() });
  if (!response.ok) return;
  const runs = (await response.json()).runs || [];
  $('runs').tBodies[0].replaceChildren(...runs.map((r) => {
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = state.checked.includes(r.run_id);
    box.addEventListener('click', (e) => { e.stopPropagation(); toggleCompare(r.run_id, box.checked); });
    const tr = row([box, r.run_id, r.name, pill(r.state), r.verdict ? pill(r.verdict) : '',
      `${fmtRate(r.achieved_rate)} / ${fmtRate(r.requested_rate)}`, r.started_at]);
    tr.className = 'clickable' + (r.run_id === state.selected ? ' selected' : '');
    tr.dataset.run = r.run_id;
    tr.addEventListener('click', () => openRun(r.run_id));
    return tr;
  }));
}

async function fetchRun(id) {
  const response = await fetch(`/api/runs/${encodeURIComponent(id)}`, { headers: authHeaders() });
  if (!response.ok) throw new Error(`run ${id}: HTTP ${response.status}`);
  const report = await response.json();
  const run = state.runs.get(id);
  if (run && run.report.state === 'running' && report.state === 'running') return run;
  const fresh = { report, points: report.series || [] };
  state.runs.set(id, fresh);
  return fresh;
}

async function openRun(id) {
  await fetchRun(id);
  state.selected = id;
  for (const tr of $('runs').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.run === id);
  scheduleRender();
}

async function toggleCompare(id, on) {
  state.checked = state.checked.filter((x) => x !== id);
  if (on) state.checked.push(id);
  while (state.checked.length > 2) state.checked.shift();
  for (const box of $('runs').querySelectorAll('tbody input')) {
    box.checked = state.checked.includes(box.closest('tr').dataset.run);
  }
  if (state.checked.length < 2) {
    $('compare').hidden = true;
    return;
  }
  const runs = await Promise.all(state.checked.map(fetchRun));
  renderCompare(runs.map((r) => r.report));
}

function peakTimeWait(report) {
  let peak = 0;
  for (const a of report.agents || []) for (const s of a.sources || []) peak += num(s.peak_time_wait);
  return peak;
}

function portUse(report) {
  const parts = [];
  for (const a of report.agents || []) {
    for (const s of a.sources || []) {
      parts.push(`${s.ip}: ${num(s.peak_ports_in_use)}/${num(s.port_range_size)}`);
    }
  }
  return parts.join(', ');
}

function errorList(errors) {
  const parts = Object.entries(errors || {}).map(([k, v]) => `${k} ${num(v)}`);
  return parts.length ? parts.join(', ') : 'none';
}

// The report's Windows words for its errors (windows_errors, keyed like errors).
function windowsCodes(report) {
  const parts = Object.entries(report.windows_errors || {}).sort(([a], [b]) => a.localeCompare(b))
    .map(([k, w]) => `${k}: ${num(w.code)} ${w.name}`);
  return parts.length ? parts.join(', ') : '-';
}

function errnoLabel(report, key) {
  const w = (report.windows_errors || {})[key];
  return w ? `${key} (Windows ${num(w.code)})` : key;
}

// Sockets the clients closed that wait for the server's FIN, summed over sources, beside the
// server's CLOSE_WAIT: a server that never closes shows in both.
function peakFinWait2(report) {
  let peak = 0;
  for (const a of report.agents || []) for (const s of a.sources || []) peak += num(s.peak_fin_wait2);
  return peak;
}

function peakCloseWait(report) {
  let peak = 0;
  for (const o of report.observers || []) for (const l of o.listen || []) peak += num(l.peak_close_wait);
  return peak;
}

function requestsPerConnection(report) {
  const t = report.totals || {};
  const spec = Math.max(1, num((report.spec || {}).requests_per_connection));
  return `${num(t.requests_per_connection).toFixed(1)} (spec ${spec})`;
}

function renderCompare(reports) {
  const head = $('compare-table').tHead;
  head.replaceChildren(row(['', ...reports.map((r) => `${r.spec.name || ''} (${r.run_id})`)]));
  const lines = [
    ['requested per s', (r) => fmtRate(r.requested_rate)],
    ['achieved per s', (r) => fmtRate(r.achieved_rate)],
    ['attempted', (r) => num(r.totals.attempted)],
    ['failed', (r) => num(r.totals.failed)],
    ['failures by errno', (r) => errorList(r.errors)],
    ['the same on Windows', (r) => windowsCodes(r)],
    ['requests per connection', (r) => requestsPerConnection(r)],
    ['peak TIME_WAIT (summed over sources)', (r) => peakTimeWait(r)],
    ['peak FIN_WAIT2 (clients) / CLOSE_WAIT (server)', (r) => `${peakFinWait2(r)} / ${peakCloseWait(r)}`],
    ['peak ports in use per source IP', (r) => portUse(r)],
    ['tuple budget per s', (r) => fmtRate((r.tuple_budget || {}).total_rate)],
    ['agents', (r) => (r.agents || []).map((a) => a.name).join(', ')],
    ['verdict', (r) => r.verdict || r.state],
  ];
  $('compare-table').tBodies[0].replaceChildren(...lines.map(([label, f]) => {
    const tr = row([label, ...reports.map(f)]);
    for (const td of tr.cells) td.className = 'wrap';
    return tr;
  }));
  $('compare').hidden = false;
}

// ---- the selected run -----------------------------------------------------------------------

function scheduleRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    renderRun();
  });
}

function renderRun() {
  const run = state.runs.get(state.selected);
  if (!run) return;
  const r = run.report;
  $('run-title').textContent = `${r.run_id}${r.spec && r.spec.name ? ' — ' + r.spec.name : ''}`;
  const runState = $('run-state');
  runState.textContent = r.verdict ? `${r.state}, ${r.verdict}` : r.state;
  runState.dataset.state = r.verdict || r.state;
  const duration = r.spec && r.spec.duration ? parseFloat(r.spec.duration) : 0;
  $('run-progress').textContent = `${num(r.duration_s).toFixed(0)} of ${duration} s, ` +
    `achieved ${fmtRate(r.achieved_rate)}/s of ${fmtRate(r.requested_rate)}/s requested, ` +
    `${num(r.totals && r.totals.failed)} failed`;
  $('cancel-run').hidden = r.state !== 'running';
  // The coordinator's analysis says whether the tuple budget binds; the page computes nothing.
  $('budget-sentence').textContent = (r.tuple_budget || {}).summary || '';
  $('sockets-line').textContent = `peak TIME_WAIT ${peakTimeWait(r)} · FIN_WAIT2 ` +
    `${peakFinWait2(r)} (clients) beside CLOSE_WAIT ${peakCloseWait(r)} (server) · ` +
    `requests per connection ${requestsPerConnection(r)}`;
  $('windows-errors').replaceChildren(...Object.entries(r.windows_errors || {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, w]) => el('li', `on Windows ${k} is ${num(w.code)} ${w.name} ` +
      `(SocketError.${w.dotnet_name}): “${w.message}”`)));
  const notes = [...(r.observations || []), ...((r.tuple_budget || {}).notes || [])];
  $('observations').replaceChildren(...notes.map((n) => el('li', n)));
  renderScopeOptions(r);
  drawCharts(run);
}

function renderScopeOptions(report) {
  const select = $('states-scope');
  const names = (report.agents || []).map((a) => a.name);
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join('\n') === names.join('\n')) return;
  const keep = select.value;
  select.replaceChildren(el('option', 'all agents'), ...names.map((n) => el('option', n)));
  select.options[0].value = '';
  select.value = names.includes(keep) ? keep : '';
}

// Creates the chart, or only gives it new data when its series are the same as before.
function plot(id, series, data, opts = {}) {
  const holder = $(id);
  const key = JSON.stringify(series.map((s) => s.label));
  let chart = state.charts.get(id);
  holder.dataset.points = String(data[0].length);  // for tests and the curious
  if (chart && chart.key === key) {
    chart.plot.setData(data);
    return;
  }
  if (chart) chart.plot.destroy();
  const width = Math.max(300, holder.clientWidth || 520);
  const u = new uPlot({
    width,
    height: 220,
    scales: { x: { time: false } },
    axes: [{ label: 's' }, { size: 60 }],
    legend: { live: true },
    series: [{ label: 't (s)' }, ...series],
    ...opts,
  }, data, holder);
  state.charts.set(id, { plot: u, key });
}

function line(label, i, extra = {}) {
  return { label, stroke: color(i), width: 1.5, points: { show: false }, ...extra };
}

function drawCharts(run) {
  const points = run.points;
  const r = run.report;
  const x = points.map((p) => num(p.t_s));
  const perSecond = (p, v) => (num(p.interval_s) > 0 ? num(v) / num(p.interval_s) : 0);
  const agents = (r.agents || []).map((a) => a.name);

  // Achieved rate stacked by agent; the legend shows each agent's own value.
  const raw = agents.map((name) => points.map((p) => {
    const a = (p.agents || []).find((q) => q.name === name);
    return a ? perSecond(p, a.succeeded) : 0;
  }));
  const stacked = [];
  raw.forEach((ys, i) => stacked.push(ys.map((y, j) => y + (i ? stacked[i - 1][j] : 0))));
  const rateSeries = agents.map((name, i) => line(name, i, {
    fill: color(i) + '55',
    value: (u, v, si, idx) => (idx == null ? '' : fmtRate(raw[i][idx])),
  }));
  rateSeries.push(line('requested', 0, { stroke: '#444', dash: [6, 4] }));
  rateSeries.push(line('tuple budget', 0, { stroke: '#c62828', dash: [2, 3], width: 2 }));
  const bands = agents.slice(1).map((_, i) => ({ series: [i + 2, i + 1] }));
  plot('chart-rate', rateSeries, [x, ...stacked, x.map(() => num(r.requested_rate)),
    x.map(() => num((r.tuple_budget || {}).total_rate))], { bands });

  // Failures per second by errno.
  const errnos = [...new Set(points.flatMap((p) => Object.keys(p.errors || {})))].sort();
  plot('chart-errors', errnos.length ? errnos.map((e, i) => line(errnoLabel(r, e), i)) : [line('failures', 0)],
    [x, ...(errnos.length ? errnos.map((e) => points.map((p) => perSecond(p, (p.errors || {})[e])))
      : [points.map((p) => perSecond(p, p.failed))])]);

  // Port fill per source IP, the fullest ones.
  const fills = new Map();  // "agent ip" -> percentages
  points.forEach((p, j) => {
    for (const a of p.agents || []) {
      for (const s of a.sources || []) {
        const k = agents.length > 1 ? `${a.name} ${s.ip}` : s.ip;
        if (!fills.has(k)) fills.set(k, new Array(points.length).fill(null));
        fills.get(k)[j] = num(a.port_range_size) ? 100 * num(s.ports_in_use) / num(a.port_range_size) : 0;
      }
    }
  });
  const fullest = [...fills.entries()]
    .sort((a, b) => Math.max(...b[1]) - Math.max(...a[1]))
    .slice(0, MAX_PORT_SERIES).sort((a, b) => a[0].localeCompare(b[0]));
  $('fill-note').textContent = fills.size > MAX_PORT_SERIES ?
    `(the ${MAX_PORT_SERIES} fullest of ${fills.size} sources)` : '';
  plot('chart-ports', fullest.length ? fullest.map(([k], i) => line(k, i)) : [line('ports', 0)],
    [x, ...(fullest.length ? fullest.map(([, ys]) => ys) : [x.map(() => 0)])],
    { scales: { x: { time: false }, y: { range: [0, 100] } } });

  // TCP states toward the targets (all agents or one), and the target hosts' listening side.
  const scope = $('states-scope').value;
  const stateSeries = new Map();
  points.forEach((p, j) => {
    const add = (label, count) => {
      if (!stateSeries.has(label)) stateSeries.set(label, new Array(points.length).fill(0));
      stateSeries.get(label)[j] += num(count);
    };
    for (const a of p.agents || []) {
      if (scope && a.name !== scope) continue;
      for (const s of a.sources || []) {
        for (const [st, c] of Object.entries(s.tcp_states || {})) add(st, c);
      }
    }
    for (const o of p.observers || []) {
      for (const [st, c] of Object.entries(o.tcp_states || {})) add(`${o.name}: ${st}`, c);
    }
  });
  const stateKeys = [...stateSeries.keys()].sort();
  plot('chart-states', stateKeys.length ? stateKeys.map((k, i) => line(k, i)) : [line('sockets', 0)],
    [x, ...(stateKeys.length ? stateKeys.map((k) => stateSeries.get(k)) : [x.map(() => 0)])]);

  plot('chart-latency', [line('p50', 0), line('p90', 1), line('p99', 3)],
    [x, points.map((p) => num(p.connect_p50_ms)), points.map((p) => num(p.connect_p90_ms)),
      points.map((p) => num(p.connect_p99_ms))]);
}

// ---- actions --------------------------------------------------------------------------------

function authHeaders() {
  const token = $('token').value;
  localStorage.setItem('churnlab-token', token);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...authHeaders() }, body,
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

async function startRun() {
  const out = $('start-result');
  out.className = '';
  try {
    const started = await post('/api/runs', $('spec').value);
    const warnings = (started.warnings || []).join(' ');
    out.textContent = `started ${started.run_id} on ${(started.agent_names || []).join(', ')}. ${warnings}`;
  } catch (e) {
    out.className = 'error';
    out.textContent = e.message;
  }
}

async function cancelRun() {
  try {
    await post(`/api/runs/${encodeURIComponent(state.selected)}/cancel`, '{}');
  } catch (e) {
    $('run-progress').textContent = `cancel: ${e.message}`;
  }
}

function setLink(text) {
  $('link').textContent = text;
  $('link').dataset.state = text;
}

let events = null;

// (Re)opens the event stream with the token in the field; EventSource gives up for good on an
// HTTP error (401 without the token), so a new token needs a new stream.
function connectEvents() {
  if (events) events.close();
  const token = $('token').value;
  events = new EventSource(token ? `/api/events?token=${encodeURIComponent(token)}` : '/api/events');
  events.onopen = () => setLink('live');
  events.onerror = () => {
    // EventSource reconnects by itself after a network error; after an HTTP error it is closed.
    setLink(events.readyState === EventSource.CLOSED ? 'token needed' : 'disconnected');
  };
  events.addEventListener('agents', (e) => {
    state.agents = JSON.parse(e.data).agents || [];
    renderAgents();
  });
  events.addEventListener('run', (e) => onRun(JSON.parse(e.data)));
}

function loadAll() {
  connectEvents();
  loadRuns().then(async () => {
    // With nothing running, show the newest stored run.
    const first = $('runs').tBodies[0].rows[0];
    if (!state.selected && first) await openRun(first.dataset.run);
  });
}

function main() {
  $('token').value = localStorage.getItem('churnlab-token') || '';
  $('spec').addEventListener('input', () => { $('spec').dataset.touched = '1'; });
  $('token').addEventListener('change', loadAll);
  $('start-run').addEventListener('click', startRun);
  $('cancel-run').addEventListener('click', cancelRun);
  $('states-scope').addEventListener('change', scheduleRender);
  loadAll();
}

main();
