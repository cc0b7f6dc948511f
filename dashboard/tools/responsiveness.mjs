// How the dashboard copes with a big run: opens URL, waits for a running run, then for SECONDS
// records every long task (main-thread work over 50 ms, the Long Tasks API) and how long each
// redraw of the run section takes. Prints the figures; bench/RESULTS.md records them.
// node dashboard/tools/responsiveness.mjs URL [SECONDS]
import { launchChromium } from './browser.mjs';

const [url, seconds = '15'] = process.argv.slice(2);
if (!url) {
  console.error('usage: responsiveness.mjs URL [SECONDS]');
  process.exit(2);
}
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  await page.addInitScript(() => {
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push(e.duration);
    }).observe({ entryTypes: ['longtask'] });
  });
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById('run-state').textContent === 'running',
    null, { timeout: 60000 });
  // Time each redraw: wrap the page's renderRun.
  await page.evaluate(() => {
    window.__renders = [];
    const original = window.renderRun;
    window.renderRun = () => {
      const t = performance.now();
      original();
      window.__renders.push(performance.now() - t);
    };
    window.__longTasks = [];
  });
  await page.waitForTimeout(Number(seconds) * 1000);
  const r = await page.evaluate(() => ({
    renders: window.__renders, longTasks: window.__longTasks,
    agents: document.querySelectorAll('#agents tbody tr').length,
    points: Number(document.getElementById('chart-rate').dataset.points),
  }));
  const q = (xs, p) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))] : 0);
  console.log(`agents listed ${r.agents}, rate chart points ${r.points}`);
  console.log(`redraws: ${r.renders.length}, p50 ${q(r.renders, 0.5).toFixed(1)} ms, ` +
    `max ${Math.max(0, ...r.renders).toFixed(1)} ms`);
  console.log(`long tasks (> 50 ms) in ${seconds} s: ${r.longTasks.length}, ` +
    `longest ${Math.max(0, ...r.longTasks).toFixed(0)} ms, ` +
    `main thread busy ${(r.longTasks.reduce((a, b) => a + b, 0) / (Number(seconds) * 10)).toFixed(1)}% in them`);
} finally {
  await browser.close();
}
