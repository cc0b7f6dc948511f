// `churnlab report --format=html` in a real browser, offline. Starts a coordinator, a target
// and two agents on loopback, makes two short runs with `churnlab run` (one half refused, one
// wholly refused: no connection succeeds, so its latency has no value at all), writes the
// first run's report and both side by side as HTML files, and opens each from file:// in
// Debian's chromium with the network cut and every request that is not the file itself aborted
// (and counted: there must be none). Each chart must be drawn (coloured pixels on its
// canvas), the wholly refused run's latency must be gaps (null), not zeros, and the page must log
// no error. Leaves the files and screenshots in the artifacts dir.
//
// node tests/browser/report_html.test.mjs BIN_DIR DASHBOARD_DIR ARTIFACTS_DIR
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const [bin, dashboardDir, artifacts] = process.argv.slice(2);
if (!bin || !dashboardDir || !artifacts) {
  console.error('usage: report_html.test.mjs BIN_DIR DASHBOARD_DIR ARTIFACTS_DIR');
  process.exit(2);
}
const { launchChromium } = await import(
  path.join(path.resolve(dashboardDir), 'tools', 'browser.mjs'));
fs.mkdirSync(artifacts, { recursive: true });
const artifactsDir = path.resolve(artifacts);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'churnlab-report-html-'));
const children = [];
let browser;

function start(name, args) {
  const log = fs.openSync(path.join(work, `${name}.log`), 'w');
  const child = spawn(path.join(bin, name.replace(/-\d$/, '')), args, { stdio: ['ignore', log, log] });
  children.push(child);
  return child;
}

async function until(what, f, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await f();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const readAddress = (file) => until(`${file}`, () => {
  try { return fs.readFileSync(path.join(work, file), 'utf8').trim() || null; } catch { return null; }
});

function closedPort() {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function churnlab(args) {
  try {
    return execFileSync(path.join(bin, 'churnlab'), args, { encoding: 'utf8' });
  } catch (e) {
    if (e.status === 1) return e.stdout;  // a failed threshold: the run is there all the same
    throw e;
  }
}

// `churnlab run ...`; returns the run's id.
function run(grpc, args) {
  const out = churnlab(['run', `--coordinator=${grpc}`, '--duration=3s', ...args]);
  return out.match(/^run (r-[\w-]+) on/m)[1];
}

// Opens `file` with every request but the file's own aborted; returns the page, the console
// errors and the requests that tried to leave.
async function openOffline(file) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1200 } });
  await context.setOffline(true);
  const page = await context.newPage();
  const errors = [];
  const escaped = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  const url = `file://${file}`;
  await page.route('**/*', (route) => {
    if (route.request().url() === url) return route.continue();
    escaped.push(route.request().url());
    return route.abort();
  });
  await page.goto(url);
  await page.waitForSelector('body[data-runs]');
  return { page, errors, escaped };
}

// Every chart under `scope`: how many points it holds, and how many of its canvas' pixels are
// coloured (the series; grid, axes and text are grey or black).
function chartsIn(page, scope) {
  return page.$$eval(`${scope} .chart`, (holders) => holders.map((h) => {
    const canvas = h.querySelector('canvas');
    if (!canvas) return { points: Number(h.dataset.points), coloured: -1 };
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let coloured = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
      if (data[i + 3] > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
    }
    return { points: Number(h.dataset.points), coloured };
  }));
}

function latencyData(page, index) {
  return page.evaluate((i) => {
    const plot = window.churnlabReport.views[i].charts.get('latency');
    return plot.data.slice(1).flat();
  }, index);
}

async function main() {
  start('churnlab-coordinator', ['--grpc-listen=127.0.0.1:0', '--http-listen=',
    `--address-file=${work}/grpc`, `--db=${work}/runs.db`]);
  const grpc = await readAddress('grpc');
  start('churnlab-target', ['--listen=127.0.0.1:0', `--address-file=${work}/target`]);
  const target = await readAddress('target');
  start('churnlab-agent-1', [`--coordinator=${grpc}`, '--name=a1', '--source-ips=127.0.0.2']);
  start('churnlab-agent-2', [`--coordinator=${grpc}`, '--name=a2', '--source-ips=127.0.0.3']);
  await until('both agents', () => /^a1 .*\n(.*\n)*a2 |^a2 .*\n(.*\n)*a1 /m.test(
    churnlab(['agents', `--coordinator=${grpc}`])));
  const refused = `127.0.0.1:${await closedPort()}`;
  const fromRun = path.join(artifactsDir, 'report-from-run.html');
  const half = run(grpc, [`--target=${target},${refused}`, '--rate=100', '--name=<b>half</b>',
    `--html=${fromRun}`]);
  assert.ok(fs.readFileSync(fromRun, 'utf8').includes(`"run_id": "${half}"`), 'run --html');
  const none = run(grpc, [`--target=${refused}`, '--rate=50', '--name=all refused']);
  const held = run(grpc, [`--target=${target}`, '--concurrency=40', '--hold=2s', '--name=held']);
  // TLS against the target's own self-signed certificate, resuming sessions.
  start('churnlab-target-2', ['--listen=127.0.0.1:0', '--protocol=tls', `--address-file=${work}/tls`]);
  const tlsTarget = await readAddress('tls');
  const tls = run(grpc, [`--target=${tlsTarget}`, '--protocol=tls', '--insecure',
    '--tls-resumption=1', '--rate=50', '--name=tls']);

  const one = path.join(artifactsDir, 'report-one.html');
  churnlab(['report', half, '--format=html', `--coordinator=${grpc}`, `--output=${one}`]);
  const heldFile = path.join(artifactsDir, 'report-held.html');
  churnlab(['report', held, '--format=html', `--coordinator=${grpc}`, `--output=${heldFile}`]);
  const tlsFile = path.join(artifactsDir, 'report-tls.html');
  churnlab(['report', tls, '--format=html', `--coordinator=${grpc}`, `--output=${tlsFile}`]);
  const tlsReport = JSON.parse(churnlab(['report', tls, '--format=json', `--coordinator=${grpc}`]));
  const two = path.join(artifactsDir, 'report-two.html');
  churnlab(['report', half, none, '--format=html', `--coordinator=${grpc}`, `--output=${two}`]);
  assert.doesNotMatch(fs.readFileSync(one, 'utf8'), /<b>half<\/b>/, 'a name became markup');

  browser = await launchChromium();

  // One run: the dashboard's run section, every chart drawn.
  let { page, errors, escaped } = await openOffline(one);
  assert.match(await page.textContent('#run-title'), new RegExp(`${half} — <b>half</b>`));
  assert.match(await page.textContent('#chart-errors'), /ECONNREFUSED \(Windows 10061\)/);
  assert.match(await page.textContent('#chart-rate'), /a1.*a2.*requested.*tuple budget/s);
  assert.notEqual(await page.textContent('#budget-sentence'), '');
  assert.match(await page.textContent('#thresholds'), /error_rate < 0\.01 \(the default\).*fail/s);
  assert.match(await page.textContent('#verdict-reasons'),
    /threshold error_rate < 0\.01 \(the default: .*\) failed: observed [\d.]+%, limit < 1%/);
  assert.match(await page.textContent('#sources'), /a1.*127\.0\.0\.2.*a2.*127\.0\.0\.3/s);
  assert.match(await page.textContent('#spec-json'), /"rate": 100/);
  assert.ok(await page.$eval('#held', (e) => e.hidden), 'a churn run shows a held-connections section');
  await page.screenshot({ path: path.join(artifactsDir, 'report-one.png'), fullPage: true });
  let charts = await chartsIn(page, '#report');
  assert.equal(charts.length, 5, 'five charts');
  for (const c of charts) assert.ok(c.points >= 2 && c.coloured > 20, `a chart not drawn: ${JSON.stringify(charts)}`);
  assert.deepEqual(escaped, [], 'the report asked the network');
  assert.deepEqual(errors, [], 'the report logged errors');
  assert.doesNotMatch(await page.textContent('#fill-note'), /old/, 'a fresh census marked stale');
  await page.context().close();

  // A census older than 2 s (an agent on a busy host spaces them out): the ports chart says how
  // old it is instead of showing it as current. The same report, its last point's census aged.
  const stale = path.join(artifactsDir, 'report-stale-census.html');
  const html = fs.readFileSync(one, 'utf8');
  const data = html.match(/(<script type="application\/json" id="churnlab-data">)([\s\S]*?)(<\/script>)/);
  const runs = JSON.parse(data[2]);
  const series = runs.runs[0].series;
  assert.ok(series.length >= 2, 'no series to age');
  series[series.length - 1].census_age_s = 7.4;
  const aged = JSON.stringify(runs).replace(/</g, '\\u003c');
  fs.writeFileSync(stale, html.replace(data[0], () => data[1] + aged + data[3]));
  ({ page, errors, escaped } = await openOffline(stale));
  assert.match(await page.textContent('#fill-note'), /\(census 7 s old: behind the kernel\)/);
  assert.deepEqual(errors, [], 'the aged report logged errors');
  await page.context().close();

  // A TLS run: the handshakes line, full and resumed as the report counts them, and the
  // warning that certificates went unverified.
  ({ page, errors, escaped } = await openOffline(tlsFile));
  const line = await page.textContent('#sockets-line');
  const m = line.match(/tls handshakes (\d+): full (\d+), resumed (\d+) \(([\d.]+)%\), p99 [\d.]+ ms, certificates NOT verified/);
  assert.ok(m, `no TLS line: ${line}`);
  const t = tlsReport.totals;
  assert.equal(Number(m[2]), Number(t.tls_full || 0), line);
  assert.equal(Number(m[3]), Number(t.tls_resumed || 0), line);
  assert.equal(Number(m[1]), Number(t.succeeded), `every connection a handshake: ${line}`);
  assert.ok(Number(m[3]) > 0, `none resumed: ${line}`);
  assert.deepEqual(errors, [], 'the TLS report logged errors');
  await page.context().close();

  // A run that holds its connections: the kernel's peak per source, what each cost.
  ({ page, errors, escaped } = await openOffline(heldFile));
  assert.ok(!(await page.$eval('#held', (e) => e.hidden)), 'no held-connections section');
  assert.match(await page.textContent('#held-line'), /peak \d+ ESTABLISHED at once .* limited by \w+/);
  const heldRows = await page.$$eval('#held-sources tbody tr', (rows) =>
    rows.map((r) => [...r.cells].map((c) => c.textContent)));
  assert.deepEqual(heldRows.map((r) => r[1]).sort(), ['127.0.0.2', '127.0.0.3'], JSON.stringify(heldRows));
  // 40 held at once over two agents: 20 each, as the kernel counted them.
  for (const r of heldRows) assert.ok(Number(r[2]) >= 18 && Number(r[2]) <= 20, JSON.stringify(heldRows));
  assert.deepEqual(escaped, [], 'the report asked the network');
  assert.deepEqual(errors, [], 'the report logged errors');
  await page.context().close();

  // Two runs side by side, then each in full.
  ({ page, errors, escaped } = await openOffline(two));
  assert.equal(await page.$$eval('#compare .compare-table thead th', (t) => t.length), 3);
  charts = await chartsIn(page, '#compare');
  assert.equal(charts.length, 4);
  for (const c of charts.slice(0, 2)) assert.ok(c.points >= 2 && c.coloured > 20, JSON.stringify(charts));
  assert.equal(await page.$$eval('section.run', (s) => s.length), 2);
  charts = await chartsIn(page, `section.run[data-run="${half}"]`);
  for (const c of charts) assert.ok(c.points >= 2 && c.coloured > 20, JSON.stringify(charts));
  // No connection of the wholly refused run succeeded: its latency is gaps, never 0 ms.
  const gaps = await latencyData(page, 1);
  assert.ok(gaps.length > 0 && gaps.every((v) => v === null), `latency: ${JSON.stringify(gaps)}`);
  assert.ok((await latencyData(page, 0)).some((v) => v > 0), 'the half-refused run has latencies');
  await page.screenshot({ path: path.join(artifactsDir, 'report-two.png'), fullPage: true });
  assert.deepEqual(escaped, [], 'the report asked the network');
  assert.deepEqual(errors, [], 'the report logged errors');
  console.log(`report_html test passed: ${half} and ${none}, files in ${artifacts}`);
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(e);
  for (const f of fs.readdirSync(work).filter((f) => f.endsWith('.log'))) {
    console.error(`--- ${f}\n${fs.readFileSync(path.join(work, f), 'utf8').slice(-2000)}`);
  }
} finally {
  if (browser) await browser.close();
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  fs.rmSync(work, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
