// The dashboard in a real browser: Debian's chromium, driven by playwright-core.
// Starts a coordinator, a target (attached as an observer) and two agents on loopback, opens the
// page, sees both agents, starts a run from the page (one of its targets is a closed port, so
// ECONNREFUSED shows in the errno chart), sees the rate and errno charts receive points, checks
// /metrics with a real Prometheus parser, cancels the run from the page and finds it cancelled in
// the runs list. The coordinator has a token: the page opens without it (the stream says
// "token needed"), then the token is typed in and every read, the event stream (?token=) and the
// writes use it. The page names the run it shows in the URL (#/runs/ID), and a new page opened
// at that URL shows that run; the runs list shows a running run's live rate and the runs' tags,
// and filters by tag; a wholly refused run's latency chart is gaps, not zeros; two runs ticked
// are side by side, at a URL of their own (#/compare/A,B); the HTML report downloads. Any
// console error but those first 401s fails the test. Leaves screenshots in the artifacts dir.
//
// node tests/browser/dashboard.test.mjs BIN_DIR DASHBOARD_DIR ARTIFACTS_DIR
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const [bin, dashboardDir, artifacts] = process.argv.slice(2);
if (!bin || !dashboardDir || !artifacts) {
  console.error('usage: dashboard.test.mjs BIN_DIR DASHBOARD_DIR ARTIFACTS_DIR');
  process.exit(2);
}
const { launchChromium } = await import(
  path.join(path.resolve(dashboardDir), 'tools', 'browser.mjs'));
const here = path.dirname(new URL(import.meta.url).pathname);
fs.mkdirSync(artifacts, { recursive: true });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'churnlab-browser-'));
const children = [];
let browser;
const consoleErrors = [];  // the page's; printed when the test fails

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

// A loopback port nobody listens on: bind one, then let it go.
function closedPort() {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const TOKEN = 'browser-s3cret';
const auth = { headers: { Authorization: `Bearer ${TOKEN}` } };

async function main() {
  const tokenFile = path.join(work, 'token');
  fs.writeFileSync(tokenFile, `${TOKEN}\n`);
  const withToken = `--token-file=${tokenFile}`;
  start('churnlab-coordinator', ['--grpc-listen=127.0.0.1:0', '--http-listen=127.0.0.1:0',
    `--address-file=${work}/grpc`, `--http-address-file=${work}/http`, `--db=${work}/runs.db`,
    `--dashboard-dir=${dashboardDir}`, withToken]);
  const grpc = await readAddress('grpc');
  const http = `http://${await readAddress('http')}`;
  start('churnlab-target', ['--listen=127.0.0.1:0', `--address-file=${work}/target`,
    `--coordinator=${grpc}`, '--name=target', withToken]);
  const target = await readAddress('target');
  // An observer whose name is markup: the page must show it as text, never as HTML.
  start('churnlab-target-2', ['--listen=127.0.0.1:0', `--coordinator=${grpc}`,
    '--name=<img id="xss" src=x onerror="window.pwned=1">', withToken]);
  start('churnlab-agent-1', [`--coordinator=${grpc}`, '--name=a1', '--source-ips=127.0.0.2',
    withToken]);
  start('churnlab-agent-2', [`--coordinator=${grpc}`, '--name=a2', '--source-ips=127.0.0.3',
    withToken]);

  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1400, height: 1500 } });
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(http);
  // Without the token the page loads but shows no data, and says why.
  await until('the token request', async () =>
    (await page.textContent('#link')) === 'token needed');
  await page.fill('#token', TOKEN);
  await page.dispatchEvent('#token', 'change');

  // Both agents listed, with the target as an observer.
  await page.waitForSelector('#agents tr[data-agent="a1"]');
  // The calls made before the token was typed were answered 401, whenever those answers landed
  // (on a loaded host, after the token): a read with the token has succeeded now, so any 401
  // from here on is a fault, and so is every other error.
  consoleErrors.splice(0, consoleErrors.length,
    ...consoleErrors.filter((e) => !e.includes('the server responded with a status of 401')));
  await page.waitForSelector('#agents tr[data-agent="a2"]');
  await page.waitForSelector('#agents tr[data-agent="target"]');
  assert.match(await page.textContent('#agents tr[data-agent="a1"]'), /127\.0\.0\.2.*idle/);
  await until('the markup-named observer', async () =>
    (await page.textContent('#agents')).includes('<img id="xss"'));
  assert.equal(await page.$('#xss'), null, 'an agent name was rendered as HTML');
  assert.equal(await page.evaluate(() => window.pwned), undefined);

  // Start a run from the page.
  const refused = await closedPort();
  await page.click('#start summary');
  await page.fill('#spec', JSON.stringify({
    name: 'browser test', targets: [target, `127.0.0.1:${refused}`], rate: 300, duration: '30s',
    tags: { suite: 'browser', kind: 'half' },
  }));
  await page.click('#start-run');
  await until('the run to start', async () => /started r-/.test(await page.textContent('#start-result')));
  const runId = (await page.textContent('#start-result')).match(/started (r-[\w-]+)/)[1];

  // The page follows the new run and names it in the URL.
  await until('the run in the URL', async () => (await page.evaluate(() => location.hash)) === `#/runs/${runId}`);

  // The rate and errno charts receive points; the errno chart names ECONNREFUSED.
  const points = async (id) => Number(await page.getAttribute(`#${id}`, 'data-points'));
  await until('rate points', async () => (await points('chart-rate')) >= 3);
  await until('errno points', async () => (await points('chart-errors')) >= 3);
  assert.match(await page.textContent('#chart-errors'), /ECONNREFUSED/);
  assert.match(await page.textContent('#chart-rate'), /a1.*a2.*requested.*tuple budget/s);
  // The budget sentence is the report's own (the page computes none).
  assert.equal((await fetch(`${http}/api/runs/${runId}`)).status, 401);
  const live = await (await fetch(`${http}/api/runs/${runId}`, auth)).json();
  assert.notEqual(live.tuple_budget.summary || '', '');
  assert.equal(await page.textContent('#budget-sentence'), live.tuple_budget.summary);
  // Each error in Windows' words, from the report's windows_errors (the page computes none).
  assert.equal(live.windows_errors.ECONNREFUSED.code, 10061);
  await until('the Windows words', async () =>
    (await page.textContent('#windows-errors')).includes(live.windows_errors.ECONNREFUSED.message));
  assert.match(await page.textContent('#windows-errors'),
    /on Windows ECONNREFUSED is 10061 WSAECONNREFUSED \(SocketError\.ConnectionRefused\)/);
  assert.match(await page.textContent('#chart-errors'), /ECONNREFUSED \(Windows 10061\)/);
  // The clients' FIN_WAIT2 beside the server's CLOSE_WAIT, and the requests per connection.
  assert.match(await page.textContent('#sockets-line'),
    /FIN_WAIT2 \d+ \(clients\) beside CLOSE_WAIT \d+ \(server\) · requests per connection [\d.]+ \(spec 1\)/);

  // /metrics mid-run, through a real Prometheus parser.
  const metrics = await (await fetch(`${http}/metrics`, auth)).text();
  fs.writeFileSync(path.join(artifacts, 'metrics.txt'), metrics);
  execFileSync('/usr/bin/python3', [path.join(here, 'check_metrics.py'), runId],
    { input: metrics, stdio: ['pipe', 'inherit', 'inherit'] });

  // While it runs, the runs list shows the newest point's achieved rate, never a 0 that only
  // means "not known yet"; and its tags.
  const runRow = `#runs tr[data-run="${runId}"]`;
  await page.waitForSelector(runRow);
  await until('a live achieved rate', async () =>
    /^[1-9]\d* \/ 300$/.test(await page.textContent(`${runRow} td:nth-child(7)`)));
  assert.match(await page.textContent(`${runRow} td:nth-child(4)`), /kind=half.*suite=browser/);
  assert.match(await page.textContent('#run-tags'), /kind=half.*suite=browser/);

  await page.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });

  // Cancel from the page; the run shows as cancelled, here and in the runs list.
  await page.click('#cancel-run');
  await until('the run to end', async () => /cancelled/.test(await page.textContent('#run-state')));
  await page.waitForSelector(`#runs tr[data-run="${runId}"]`);
  assert.match(await page.textContent(`#runs tr[data-run="${runId}"]`), /browser test.*cancelled/);

  await moreRuns(page, http, runId, refused);

  // Still no element made of the name, after a run's worth of redraws.
  assert.equal(await page.$('#xss'), null, 'a name was rendered as HTML');
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.deepEqual(consoleErrors, [], 'the page logged errors');
  console.log(`dashboard test passed: run ${runId}, screenshot in ${artifacts}/dashboard.png`);
}

// A second run, wholly refused, started through the API: its latency chart is gaps, not zeros;
// the tag filter, a run's URL, N runs side by side and the HTML download.
async function moreRuns(page, http, first, refused) {
  const spec = { name: 'all refused', targets: [`127.0.0.1:${refused}`], rate: 50, duration: '2s',
    tags: { suite: 'browser', kind: 'refused' } };
  const started = await (await fetch(`${http}/api/runs`, {
    method: 'POST', body: JSON.stringify(spec),
    headers: { ...auth.headers, 'Content-Type': 'application/json', Origin: http },
  })).json();
  const second = started.run_id;
  assert.ok(second, JSON.stringify(started));
  await until('the second run to end', async () =>
    (await (await fetch(`${http}/api/runs/${second}`, auth)).json()).state === 'completed');
  await until('the page on the second run', async () =>
    (await page.textContent('#run-title')).startsWith(second) &&
    /completed/.test(await page.textContent('#run-state')));
  // Why it failed, with units: the default rule, observed against its limit.
  assert.match(await page.textContent('#verdict-reasons'),
    /threshold error_rate < 0\.01 \(the default: the spec sets no thresholds\) failed: observed 100%, limit < 1%/);
  const latency = await page.evaluate(() =>
    window.churnlabPage.view.charts.get('latency').data.slice(1).flat());
  assert.ok(latency.length > 0 && latency.every((v) => v === null), `latency ${latency}`);
  const rate = await page.evaluate(() => window.churnlabPage.view.charts.get('rate').data[1]);
  assert.ok(rate.length > 0 && rate.every((v) => !v), `nothing succeeded: ${rate}`);

  // The tag filter (the coordinator filters: /api/runs?tag=kind=refused).
  await page.fill('#tag-filter', 'kind=refused');
  await page.dispatchEvent('#tag-filter', 'change');
  await until('the filtered list', async () =>
    (await page.$$eval('#runs tbody tr', (rows) => rows.map((r) => r.dataset.run))).join() === second);
  // Clicked again if the list was redrawn under the click (a run event's refresh) and the
  // filter did not change: the list is what is tested here, not the race.
  const suiteTag = `#runs tr[data-run="${second}"] button.tag >> text=suite=browser`;
  await page.click(suiteTag);
  await until('the list by suite', async () => {
    if (await page.inputValue('#tag-filter') !== 'suite=browser') await page.click(suiteTag);
    return (await page.$$('#runs tbody tr')).length === 2;
  });
  assert.equal(await page.inputValue('#tag-filter'), 'suite=browser');
  const bad = await fetch(`${http}/api/runs?tag=nokey`, auth);
  assert.equal(bad.status, 400);

  // A run's URL opens that run, not the newest.
  const other = await page.context().newPage();
  const errors = [];
  other.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  other.on('pageerror', (e) => errors.push(String(e)));
  await other.goto(`${http}/#/runs/${first}`);
  await until('the shared run', async () =>
    ((await other.textContent('#run-title').catch(() => '')) || '').startsWith(first));
  await other.waitForFunction(() => document.querySelectorAll('#chart-rate canvas').length === 1);

  // Runs side by side: ticked in the list, the URL names them and opens them again.
  await other.click(`#runs tr[data-run="${first}"] input`);
  await other.click(`#runs tr[data-run="${second}"] input`);
  await until('the side by side', async () => !(await other.isHidden('#compare')));
  const compareUrl = await other.evaluate(() => location.href);
  assert.match(compareUrl, new RegExp(`#/compare/${first},${second}$`));
  const third = await page.context().newPage();
  await third.goto(compareUrl);
  await until('the shared side by side', async () => !(await third.isHidden('#compare')));
  assert.equal(await third.$$eval('#compare .compare-table thead th', (t) => t.length), 3);
  // The link opens on the comparison: its heading in the top half of the view, not screenfuls
  // below the run (as far up as the page's length lets it scroll).
  const [top, height] = await third.evaluate(() =>
    [document.getElementById('compare').getBoundingClientRect().top, window.innerHeight]);
  assert.ok(top >= 0 && top < height / 2, `the comparison starts ${top} px down a ${height} px view`);
  await third.waitForFunction(() =>
    [...document.querySelectorAll('#compare .chart')].every((c) => Number(c.dataset.points) > 0));
  await third.screenshot({ path: path.join(artifacts, 'dashboard-compare.png'), fullPage: true });

  // The HTML report downloads with the token (fetched, then saved from a blob).
  const [download] = await Promise.all([other.waitForEvent('download'), other.click('#download-run')]);
  const html = fs.readFileSync(await download.path(), 'utf8');
  assert.match(html, /^<!doctype html>/);
  assert.ok(html.includes(`"run_id": "${first}"`));
  const [both] = await Promise.all([other.waitForEvent('download'), other.click('#download-compare')]);
  assert.match(both.suggestedFilename(), new RegExp(`churnlab-${first}-${second}\\.html`));
  assert.deepEqual(errors, [], 'the shared page logged errors');
  await other.close();
  await third.close();
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(e);
  console.error('page errors:', consoleErrors);
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
