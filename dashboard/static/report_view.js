// How a run's report looks: its head, the budget sentence, the charts (report_charts.js), the
// observations, thresholds, per-source table, kernel counters and spec; and several runs side
// by side. The live dashboard (app.js) and the exported HTML report (churnlab report
// --format=html, export/report_page.js) both draw runs with these, so the file a user saves
// shows what the page showed. Everything from a report goes through textContent, never
// innerHTML. The page computes nothing the report does not say (the budget sentence is the
// report's own).
(function (C) {
  'use strict';

  const { num, fmtRate } = C.util;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function wrapCell(node) {
    const td = document.createElement('td');
    td.appendChild(node);
    return td;
  }

  function row(cells, tag = 'td') {
    const tr = document.createElement('tr');
    for (const c of cells) tr.appendChild(c instanceof Node ? wrapCell(c) : el(tag, c));
    return tr;
  }

  function pill(text) {
    const p = el('span', text, 'pill');
    p.dataset.state = text;
    return p;
  }

  function table(cls, head) {
    const t = el('table', null, cls);
    t.createTHead().appendChild(row(head, 'th'));
    t.createTBody();
    return t;
  }

  function tagText(tags) {
    return Object.entries(tags || {}).sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${v}`);
  }

  const sumSources = (report, f) =>
    (report.agents || []).reduce((s, a) => s + (a.sources || []).reduce((t, x) => t + f(x), 0), 0);
  const peakTimeWait = (r) => sumSources(r, (s) => num(s.peak_time_wait));
  const peakFinWait2 = (r) => sumSources(r, (s) => num(s.peak_fin_wait2));
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

  // TLS handshakes (full, resumed, the handshake's p99) and responses by status, as the report
  // counts them; '' for a run with neither.
  function exchangeLine(r) {
    const t = r.totals || {};
    const parts = [];
    const handshakes = num(t.tls_full) + num(t.tls_resumed);
    if (handshakes > 0) {
      const p99 = num(((r.latency || {}).tls_handshake || {}).p99_ms).toFixed(2);
      parts.push(`tls handshakes ${handshakes}: full ${num(t.tls_full)}, resumed ` +
        `${num(t.tls_resumed)} (${(100 * num(t.resumed_ratio)).toFixed(1)}%), p99 ${p99} ms` +
        ((r.spec || {}).tls && r.spec.tls.insecure ? ', certificates NOT verified' : ''));
    }
    const codes = Object.entries(t.status_codes || {}).map(([k, v]) => `${k}: ${num(v)}`);
    if (codes.length > 0) parts.push(`responses ${codes.join(', ')}`);
    return parts.join(' · ');
  }

  function errorList(errors) {
    const parts = Object.entries(errors || {}).map(([k, v]) => `${k} ${num(v)}`);
    return parts.length ? parts.join(', ') : 'none';
  }

  function windowsCodes(report) {
    const parts = Object.entries(report.windows_errors || {}).sort(([a], [b]) => a.localeCompare(b))
      .map(([k, w]) => `${k}: ${num(w.code)} ${w.name}`);
    return parts.length ? parts.join(', ') : '-';
  }

  function portUse(report) {
    const parts = [];
    for (const a of report.agents || []) {
      for (const s of a.sources || []) parts.push(`${s.ip}: ${num(s.peak_ports_in_use)}/${num(s.port_range_size)}`);
    }
    return parts.join(', ');
  }

  // The achieved rate a runs list can show: the report's over the whole run once it ended; while
  // it runs (the report's figure is final only at the end), that of its last few points (one
  // point's interval is as long as the agents' reports happened to arrive apart), or nothing yet.
  function achievedNow(report, points) {
    if (report.state !== 'running') return fmtRate(report.achieved_rate);
    const recent = (points || []).slice(-5);
    const seconds = recent.reduce((s, p) => s + num(p.interval_s), 0);
    return seconds > 0 ? fmtRate(recent.reduce((s, p) => s + num(p.succeeded), 0) / seconds) : '–';
  }

  // uPlot instances by chart; a chart whose series are the same as before only gets new data,
  // so a streaming run does not rebuild its charts every second.
  class Charts {
    constructor() { this.map = new Map(); }

    draw(holder, key, spec) {
      const labels = JSON.stringify(spec.series.map((s) => s.label));
      holder.dataset.points = String(spec.data[0].length);  // for tests and the curious
      let chart = this.map.get(key);
      if (!chart || chart.labels !== labels) {
        if (chart) chart.plot.destroy();
        const plot = new uPlot({
          width: Math.max(300, holder.clientWidth || 520),
          height: 220,
          scales: { x: { time: false } },
          axes: [{ label: 's' }, { size: 60 }],
          legend: { live: true },
          series: [{ label: 't (s)' }, ...spec.series],
          ...(spec.opts || {}),
        }, spec.data, holder);
        chart = { plot, labels };
        this.map.set(key, chart);
      } else {
        chart.plot.setData(spec.data);
      }
      chart.plot.churnlabRaw = spec.raw;  // the rate chart's legend: each agent's own value
    }

    get(key) { return (this.map.get(key) || {}).plot; }
  }

  const CHARTS = [
    ['rate', 'Connections per second: achieved (stacked by agent), requested, tuple budget'],
    ['errors', 'Failures per second by errno (and its Windows code)'],
    ['ports', 'Ports in use per source IP, % of its port range'],
    ['states', 'TCP states toward the targets'],
    ['latency', 'Connect latency (ms); a gap where no connection succeeded'],
  ];

  // One run. With `ids` its parts also get ids (run-title, chart-rate, ...): for a page that
  // shows a single run.
  class RunView {
    constructor(root, { ids = false } = {}) {
      this.parts = {};
      this.ids = ids;
      this.charts = new Charts();
      const title = el('h2', 'Run ');
      title.appendChild(this.part('run-title', 'span'));
      const head = this.part('run-head', 'div');
      head.append(this.part('run-state', 'span', 'pill'), ' ', this.part('run-progress', 'span'),
        ' ', this.part('run-actions', 'span'));
      const charts = el('div', null, 'charts');
      for (const [name, caption] of CHARTS) charts.appendChild(this.figure(name, caption));
      root.replaceChildren(title, head, this.part('verdict-reasons', 'ul', 'verdict-reasons'),
        this.part('run-tags', 'p', 'tags'),
        this.part('budget-sentence', 'p', 'budget-sentence'),
        this.part('sockets-line', 'p', 'sockets-line'), this.heldPart(), charts,
        el('h3', 'Observations'), this.part('observations', 'ul'),
        el('h3', 'Thresholds'), this.tablePart('thresholds', ['threshold', 'observed', 'result']),
        el('h3', 'Sources'), this.part('sources-note', 'p', 'note'),
        this.tablePart('sources', ['agent', 'source IP', 'attempted',
          'succeeded', 'failed', 'peak ports in use / range', 'peak TIME_WAIT', 'peak FIN_WAIT2',
          'errors']),
        el('h3', 'Kernel counters over the run'),
        this.tablePart('kernel', ['counter', "agents' hosts", "targets' hosts"]),
        this.specPart());
      this.parts['states-scope'].addEventListener('change', () => this.drawCharts());
    }

    part(name, tag, cls) {
      const e = el(tag, null, cls);
      e.dataset.part = name;
      if (this.ids) e.id = name;
      this.parts[name] = e;
      return e;
    }

    tablePart(name, head) {
      const t = table(null, head);
      t.dataset.part = name;
      if (this.ids) t.id = name;
      this.parts[name] = t;
      return t;
    }

    // Runs that hold connections (spec `hold`): how many the kernel held at once, per source,
    // what each cost and what limits the host.
    heldPart() {
      const section = this.part('held', 'section', 'held');
      section.append(el('h3', 'Held connections'), this.part('held-line', 'p'),
        this.part('held-projection', 'p'),
        this.tablePart('held-sources', ['agent', 'source IP', 'peak ESTABLISHED',
          'peak ports in use / bound']));
      section.hidden = true;
      return section;
    }

    specPart() {
      const d = el('details', null, 'spec');
      d.append(el('summary', 'Spec'), this.part('spec-json', 'pre'));
      return d;
    }

    figure(name, caption) {
      const f = el('figure');
      const cap = el('figcaption', caption + ' ');
      if (name === 'ports') cap.appendChild(this.part('fill-note', 'span'));
      if (name === 'states') {
        const select = this.part('states-scope', 'select');
        select.appendChild(el('option', 'all agents')).value = '';
        cap.appendChild(select);
      }
      f.append(cap, this.part(`chart-${name}`, 'div', 'chart'));
      if (name === 'errors') f.appendChild(this.part('windows-errors', 'ul', 'windows'));
      return f;
    }

    update(run) {
      this.run = run;
      const r = run.report;
      const P = this.parts;
      P['run-title'].textContent = `${r.run_id}${r.spec && r.spec.name ? ' — ' + r.spec.name : ''}`;
      P['run-state'].textContent = r.verdict ? `${r.state}, ${r.verdict}` : r.state;
      P['run-state'].dataset.state = r.verdict || r.state;
      // Why the verdict is what it is: the rules that failed, or the one line that says all held.
      P['verdict-reasons'].replaceChildren(...(r.verdict_reasons || []).map((t) => el('li', t)));
      const duration = r.spec && r.spec.duration ? parseFloat(r.spec.duration) : 0;
      P['run-progress'].textContent = `${num(r.duration_s).toFixed(0)} of ${duration} s, ` +
        `achieved ${fmtRate(r.achieved_rate)}/s of ${fmtRate(r.requested_rate)}/s requested, ` +
        `${num(r.totals && r.totals.failed)} failed`;
      P['run-tags'].replaceChildren(...tagText((r.spec || {}).tags).map((t) => el('span', t, 'tag')));
      P['budget-sentence'].textContent = (r.tuple_budget || {}).summary || '';
      P['sockets-line'].textContent = `peak TIME_WAIT ${peakTimeWait(r)} · FIN_WAIT2 ` +
        `${peakFinWait2(r)} (clients) beside CLOSE_WAIT ${peakCloseWait(r)} (server) · ` +
        `requests per connection ${requestsPerConnection(r)}` +
        (exchangeLine(r) ? ` · ${exchangeLine(r)}` : '');
      P['windows-errors'].replaceChildren(...Object.entries(r.windows_errors || {})
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, w]) => el('li', `on Windows ${k} is ${num(w.code)} ${w.name} ` +
          `(SocketError.${w.dotnet_name}): “${w.message}”`)));
      const notes = [...(r.observations || []), ...((r.tuple_budget || {}).notes || [])];
      P.observations.replaceChildren(...notes.map((n) => el('li', n)));
      this.renderTables(r);
      this.renderHeld(r);
      P['spec-json'].textContent = JSON.stringify(r.spec || {}, null, 2);
      this.renderScopeOptions(r);
      this.drawCharts();
    }

    renderTables(r) {
      const P = this.parts;
      const thresholds = (r.thresholds || []).map((t) => row([
        t.expression + (t.is_default ? ' (the default)' : ''), num(t.observed).toPrecision(4),
        pill(t.passed ? 'pass' : 'fail')]));
      P.thresholds.tBodies[0].replaceChildren(...(thresholds.length ? thresholds :
        [row([r.state === 'running' ? 'judged when the run ends' : 'none', '', ''])]));
      P.sources.tBodies[0].replaceChildren(...(r.agents || []).flatMap((a) =>
        (a.sources || []).map((s) => row([a.problem ? `${a.name} (${a.problem})` : a.name, s.ip,
          num(s.attempted), num(s.succeeded), num(s.failed),
          `${num(s.peak_ports_in_use)} / ${num(s.port_range_size)}`, num(s.peak_time_wait),
          num(s.peak_fin_wait2), errorList(s.errors)]))));
      // A live run's summary holds its fullest sources only (proto: AgentReport.sources_omitted).
      const omitted = (r.agents || []).reduce((n, a) => n + num(a.sources_omitted), 0);
      P['sources-note'].textContent = omitted ? `The fullest sources so far; ${omitted} more ` +
        'are in the report when the run ends.' : '';
      const counters = new Map();  // name -> [agents' hosts, targets' hosts]
      const add = (map, i) => Object.entries(map || {}).forEach(([k, v]) => {
        if (!counters.has(k)) counters.set(k, [0, 0]);
        counters.get(k)[i] += num(v);
      });
      add(r.kernel_counters, 0);
      for (const o of r.observers || []) add(o.kernel_counters, 1);
      P.kernel.tBodies[0].replaceChildren(...[...counters.entries()]
        .filter(([, v]) => v[0] || v[1]).sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => row([k, v[0], v[1]])));
    }

    renderHeld(r) {
      const P = this.parts;
      const c = r.concurrency;
      const hold = r.spec && r.spec.hold ? parseFloat(r.spec.hold) : 0;
      P.held.hidden = !(c && hold > 0);
      if (P.held.hidden) return;
      const bytes = (v) => (num(v) > 0 ? `${num(v).toFixed(0)} B` : 'unknown');
      P['held-line'].textContent = `peak ${num(c.peak_established)} ESTABLISHED at once by the ` +
        `kernel's count (${num(c.peak_in_flight)} in flight by the engines); per connection ` +
        `${bytes(c.kernel_bytes_per_connection)} of kernel memory and ` +
        `${bytes(c.user_bytes_per_connection)} of user space; limited by ${c.limiter || '(unknown)'}`;
      P['held-projection'].textContent = c.projection || '';
      P['held-sources'].tBodies[0].replaceChildren(...(c.sources || []).map((s) => row([s.agent,
        s.ip, num(s.peak_established), `${num(s.peak_ports_in_use)} / ${num(s.port_bound)}`])));
    }

    renderScopeOptions(report) {
      const select = this.parts['states-scope'];
      const names = (report.agents || []).map((a) => a.name);
      const have = [...select.options].slice(1).map((o) => o.value);
      if (have.join('\n') === names.join('\n')) return;
      const keep = select.value;
      select.replaceChildren(el('option', 'all agents'), ...names.map((n) => el('option', n)));
      select.options[0].value = '';
      select.value = names.includes(keep) ? keep : '';
    }

    drawCharts() {
      const { report: r, points } = this.run;
      const P = this.parts;
      const ch = C.charts;
      this.charts.draw(P['chart-rate'], 'rate', ch.rateChart(r, points));
      this.charts.draw(P['chart-errors'], 'errors', ch.errorsChart(r, points));
      const ports = ch.portsChart(r, points);
      P['fill-note'].textContent = ports.note;
      this.charts.draw(P['chart-ports'], 'ports', ports);
      this.charts.draw(P['chart-states'], 'states', ch.statesChart(r, points, P['states-scope'].value));
      this.charts.draw(P['chart-latency'], 'latency', ch.latencyChart(r, points));
    }
  }

  const COMPARE_LINES = [
    ['state', (r) => (r.verdict ? `${r.state}, ${r.verdict}` : r.state)],
    ['tags', (r) => tagText((r.spec || {}).tags).join(' ') || '-'],
    ['requested per s', (r) => fmtRate(r.requested_rate)],
    ['achieved per s', (r) => fmtRate(r.achieved_rate)],
    ['attempted', (r) => num((r.totals || {}).attempted)],
    ['failed', (r) => num((r.totals || {}).failed)],
    ['failures by errno', (r) => errorList(r.errors)],
    ['the same on Windows', (r) => windowsCodes(r)],
    ['connect p99 (ms)', (r) => (num((r.totals || {}).succeeded) ?
      num(((r.latency || {}).connect || {}).p99_ms).toFixed(2) : '- (none succeeded)')],
    ['requests per connection', (r) => requestsPerConnection(r)],
    ['tls handshakes and responses', (r) => exchangeLine(r) || '-'],
    ['peak TIME_WAIT (summed over sources)', (r) => peakTimeWait(r)],
    ['peak FIN_WAIT2 (clients) / CLOSE_WAIT (server)', (r) => `${peakFinWait2(r)} / ${peakCloseWait(r)}`],
    ['peak ports in use per source IP', (r) => portUse(r)],
    ['tuple budget per s', (r) => fmtRate((r.tuple_budget || {}).total_rate)],
    ['thresholds', (r) => (r.thresholds || []).map((t) =>
      `${t.expression}: ${t.passed ? 'pass' : 'fail'}`).join(', ') || '-'],
    ['agents', (r) => (r.agents || []).map((a) => a.name).join(', ')],
  ];

  const COMPARE_CHARTS = [
    ['rate', 'Achieved connections per second, per run'],
    ['errors', 'Failures per second, per run'],
    ['latency', 'Connect latency p99 (ms), per run; a gap where no connection succeeded'],
    ['ports', "The fullest source's port use, % of its range, per run"],
  ];

  // Several runs side by side: a column each, and their main series on shared charts.
  class CompareView {
    constructor(root) {
      this.charts = new Charts();
      this.table = table('compare-table', []);
      this.holders = {};
      const charts = el('div', null, 'charts');
      for (const [name, caption] of COMPARE_CHARTS) {
        const f = el('figure');
        this.holders[name] = el('div', null, 'chart');
        this.holders[name].dataset.part = `compare-${name}`;
        f.append(el('figcaption', caption), this.holders[name]);
        charts.appendChild(f);
      }
      root.replaceChildren(this.table, charts);
    }

    update(runs) {
      const reports = runs.map((r) => r.report);
      this.table.tHead.replaceChildren(row(['', ...reports.map((r) =>
        `${(r.spec || {}).name || ''} (${r.run_id})`)], 'th'));
      this.table.tBodies[0].replaceChildren(...COMPARE_LINES.map(([label, f]) => {
        const tr = row([label, ...reports.map(f)]);
        for (const td of tr.cells) td.className = 'wrap';
        return tr;
      }));
      const specs = C.charts.compareCharts(runs);
      for (const [name] of COMPARE_CHARTS) this.charts.draw(this.holders[name], name, specs[name]);
    }
  }

  C.dom = { el, row, pill, table, tagText };
  C.figures = { achievedNow };
  C.RunView = RunView;
  C.CompareView = CompareView;
})(window.Churnlab = window.Churnlab || {});
