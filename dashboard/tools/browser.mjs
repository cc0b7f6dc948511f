// Debian's chromium, headless, driven by playwright-core (from dashboard/node_modules): the one
// way the dashboard's test and tools start a browser. The flags keep chromium off the network
// (this machine's network is closed; chromium would otherwise try Google's services at start).
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';

export async function launchChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: scripts/install-deps.sh --test installs Debian's chromium`);
  }
  const here = path.dirname(new URL(import.meta.url).pathname);
  const { chromium } = createRequire(path.join(here, '..', 'package.json'))('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
