// Screenshots the dashboard once a running run has drawn some points (the README's picture is
// taken this way during `scripts/demo.sh`'s compare).
// node dashboard/tools/screenshot.mjs URL OUT.png [POINTS [TEXT]]
//   waits (up to 2 minutes, the page may not be up yet) for a running run with POINTS points
//   (default 7) whose failures chart names TEXT (say EADDRNOTAVAIL), if given.
import { launchChromium } from './browser.mjs';

const [url, out, points = '7', text = ''] = process.argv.slice(2);
if (!url || !out) {
  console.error('usage: screenshot.mjs URL OUT.png [POINTS [TEXT]]');
  process.exit(2);
}
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  for (let tries = 0; ; ++tries) {
    try {
      await page.goto(url);
      break;
    } catch (e) {
      if (tries > 120) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  await page.waitForFunction(([n, t]) => document.getElementById('run-state').textContent === 'running' &&
    Number(document.getElementById('chart-rate').dataset.points) >= n &&
    document.getElementById('chart-errors').textContent.includes(t), [Number(points), text],
  { timeout: 120000 });
  await page.screenshot({ path: out, fullPage: true });
  console.log(`saved ${out}`);
} finally {
  await browser.close();
}
