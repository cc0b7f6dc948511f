// The churnlab dashboard: agents, the live run, stored runs, several runs side by side.
// Data: /api/events (Server-Sent Events) pushes every running run's new series point and the
// agents list; /api/runs and /api/runs/ID give the stored runs. A run is drawn by
// report_view.js, the same code the exported HTML report uses. Everything shown goes through
// textContent, never innerHTML. With a coordinator token, every call sends the token from the
// page's token field (`Authorization: Bearer`); EventSource cannot set headers, so the event
// stream is opened as /api/events?token=... (the one route that takes it in the URL).
// The URL names what is shown, so it can be shared: #/runs/ID one run, #/compare/A,B,C runs
// side by side.
'use strict';

const $ = (id) => document.getElementById(id);
const { el, row, pill, tagText } = Churnlab.dom;
const { num, fmtRate } = Churnlab.util;
const MAX_COMPARED = 8;

const state = {
  agents: [],
  runs: new Map(),     // run id -> { report, points }
  selected: null,      // run id shown in the run section
  pinned: false,       // the user chose the run (a click or the URL): a new run does not take over
  checked: [],         // run ids ticked for side by side
  renderQueued: false,
  view: null,          // the run section's Churnlab.RunView
  compareView: null,   // the side by side's Churnlab.CompareView
};
window.churnlabPage = state;  // for tests and the curious

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
    // A summary lists the first 16 of each (proto: AgentInfo).
    const list = (items, total) => (items || []).join(', ') +
      (num(total) > (items || []).length ? ` … (${(items || []).length} of ${num(total)})` : '');
    const sources = h.observer ? list(h.listen_addresses, a.listen_addresses_total) :
      list(h.source_ips, a.source_ips_total);
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
  if (report.state !== 'running') {
    // The stream's reports are summaries (the fullest sources, the newest point): an ended run's
    // whole report comes from /api/runs/ID, now if it is on screen, else when it is opened.
    state.runs.delete(report.run_id);
    loadRuns();
    if (state.selected === report.run_id) {
      fetchRun(report.run_id).then(scheduleRender, (e) => { $('run-message').textContent = e.message; });
    }
    return;
  }
  for (const p of report.series || []) {
    const last = run.points[run.points.length - 1];
    if (!last || p.t_s > last.t_s) run.points.push(p);
  }
  run.report = report;
  if (isNew && report.state === 'running' && !state.pinned) {
    state.selected = report.run_id;  // follow a new run
    history.replaceState(null, '', `#/runs/${encodeURIComponent(report.run_id)}`);
  }
  if (isNew) loadRuns();
  else updateRunRow(run);
  if (state.selected === report.run_id) scheduleRender();
}

// A running run's achieved rate is its newest point's: the summary's is the whole run's, known
// only at its end.
function achievedCell(summary) {
  const run = state.runs.get(summary.run_id);
  const achieved = summary.state === 'running' ?
    Churnlab.figures.achievedNow({ state: 'running' }, run && run.points) : fmtRate(summary.achieved_rate);
  return `${achieved} / ${fmtRate(summary.requested_rate)}`;
}

function updateRunRow(run) {
  const tr = $('runs').querySelector(`tbody tr[data-run="${CSS.escape(run.report.run_id)}"]`);
  if (!tr) return;
  tr.cells[6].textContent = achievedCell(run.report);
}

function tagCell(tags) {
  const span = el('span', null, 'tags');
  span.append(...tagText(tags).map((t) => {
    const tag = el('button', t, 'tag');
    tag.type = 'button';
    tag.title = 'show only runs with this tag';
    tag.addEventListener('click', (e) => {
      e.stopPropagation();
      $('tag-filter').value = t;
      loadRuns();
    });
    return tag;
  }));
  return span;
}

// Each call is numbered: a listing that comes back after a newer one was asked for (an event's
// refresh with the old filter, answered late on a busy host) is dropped, never shown over it.
let runsAsked = 0;

async function loadRuns(tries = 0) {
  const asked = ++runsAsked;
  const filter = $('tag-filter').value.trim();
  const query = filter ? `?tag=${encodeURIComponent(filter)}` : '';
  // A listing that fails on a busy coordinator (503, a dropped connection) is asked again a
  // second later, a few times, rather than leaving the old list up until the next run event.
  const again = () => {
    if (asked === runsAsked && tries < 5) setTimeout(() => loadRuns(tries + 1), 1000);
  };
  let response;
  try {
    response = await fetch(`/api/runs${query}`, { headers: authHeaders() });
  } catch (e) {
    again();
    return;
  }
  if (asked !== runsAsked) return;
  $('tag-filter').classList.toggle('error', response.status === 400);
  if (!response.ok) {
    if (response.status !== 400) again();
    return;
  }
  const runs = (await response.json()).runs || [];
  if (asked !== runsAsked) return;
  $('runs').tBodies[0].replaceChildren(...runs.map((r) => {
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = state.checked.includes(r.run_id);
    box.addEventListener('click', (e) => { e.stopPropagation(); toggleCompare(r.run_id, box.checked); });
    const tr = row([box, r.run_id, r.name, tagCell(r.tags), pill(r.state),
      r.verdict ? pill(r.verdict) : '', achievedCell(r), r.started_at]);
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

// Shows one run and names it in the URL.
async function openRun(id) {
  state.pinned = true;
  const hash = `#/runs/${encodeURIComponent(id)}`;
  if (location.hash !== hash) history.pushState(null, '', hash);
  await showRun(id);
}

async function showRun(id) {
  try {
    await fetchRun(id);
  } catch (e) {
    $('run-message').textContent = e.message;
    return;
  }
  $('run-message').textContent = '';
  state.selected = id;
  for (const tr of $('runs').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.run === id);
  scheduleRender();
}

async function toggleCompare(id, on) {
  const ids = state.checked.filter((x) => x !== id);
  if (on) ids.push(id);
  while (ids.length > MAX_COMPARED) ids.shift();
  history.pushState(null, '', ids.length ? `#/compare/${ids.map(encodeURIComponent).join(',')}` :
    (state.selected ? `#/runs/${encodeURIComponent(state.selected)}` : '#'));
  await showCompare(ids);
}

async function showCompare(ids) {
  state.checked = ids;
  for (const box of $('runs').querySelectorAll('tbody input')) {
    box.checked = state.checked.includes(box.closest('tr').dataset.run);
  }
  if (state.checked.length < 2) {
    $('compare').hidden = true;
    return;
  }
  const runs = await Promise.all(state.checked.map(fetchRun));
  $('compare').hidden = false;
  if (!state.compareView) state.compareView = new Churnlab.CompareView($('compare-view'));
  state.compareView.update(runs);
  $('compare').scrollIntoView({ block: 'nearest' });
}

// What the URL names: #/runs/ID or #/compare/A,B,C; "" leaves the choice to the page.
function parseRoute() {
  const m = location.hash.match(/^#\/(runs|compare)\/(.+)$/);
  if (!m) return null;
  const ids = m[2].split(',').map(decodeURIComponent).filter((x) => x);
  return m[1] === 'runs' ? { run: ids[0] } : { compare: ids };
}

async function route() {
  const r = parseRoute();
  if (!r) return false;
  state.pinned = true;
  if (r.run) await showRun(r.run);
  if (r.compare) {
    if (!state.selected && r.compare.length) await showRun(r.compare[r.compare.length - 1]);
    await showCompare(r.compare);
    // A shared comparison opens on the comparison, not on the run above it.
    if (state.checked.length >= 2) $('compare').scrollIntoView({ block: 'start' });
  }
  return true;
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
  if (!state.view) {
    state.view = new Churnlab.RunView($('run-view'), { ids: true });
    state.view.parts['run-actions'].append(button('cancel-run', 'Cancel', cancelRun), ' ',
      button('download-run', 'Download HTML', () => downloadHtml([state.selected])));
  }
  state.view.update(run);
  $('cancel-run').hidden = run.report.state !== 'running';
}

function button(id, text, onClick) {
  const b = el('button', text);
  b.id = id;
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

// The self-contained HTML report, fetched with the token and saved through a blob: a plain
// link could not send the Authorization header.
async function downloadHtml(ids) {
  const path = ids.length === 1 ? `/api/runs/${encodeURIComponent(ids[0])}/report.html` :
    `/api/report.html?runs=${ids.map(encodeURIComponent).join(',')}`;
  const response = await fetch(path, { headers: authHeaders() });
  if (!response.ok) {
    $('run-message').textContent = `download: HTTP ${response.status}`;
    return;
  }
  const url = URL.createObjectURL(await response.blob());
  const a = el('a');
  a.href = url;
  a.download = `churnlab-${ids.join('-')}.html`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
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
    if (await route()) return;
    // Nothing named in the URL and nothing running: show the newest stored run.
    const first = $('runs').tBodies[0].rows[0];
    if (!state.selected && first) await showRun(first.dataset.run);
  });
}

function main() {
  $('token').value = localStorage.getItem('churnlab-token') || '';
  $('spec').addEventListener('input', () => { $('spec').dataset.touched = '1'; });
  $('token').addEventListener('change', loadAll);
  $('start-run').addEventListener('click', startRun);
  $('tag-filter').addEventListener('change', () => loadRuns());
  $('download-compare').addEventListener('click', () => downloadHtml(state.checked));
  window.addEventListener('popstate', route);
  loadAll();
}

main();
