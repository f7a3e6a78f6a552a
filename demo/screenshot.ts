/**
 * Takes demo/screenshot.png: the demo with 4 workers on the mixed size mix, after 15 seconds.
 * Run: node --import tsx demo/screenshot.ts (needs Chromium: /usr/bin/chromium or CHROMIUM_PATH).
 */
import { launchChromium } from '../test/browser/chromium.js';
import { serveDemo } from './serve.js';

const served = await serveDemo();
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1220, height: 790 } });
  page.on('pageerror', (e) => console.error(`pageerror: ${e.message}`));
  await page.goto(`${served.origin}/?threads=4&mix=mixed&autostart=1`);
  await page.waitForTimeout(15_000); // a picture after a while, not a test: the test polls counters
  const out = new URL('screenshot.png', import.meta.url).pathname;
  await page.screenshot({ path: out });
  console.log(`wrote ${out}; status: ${await page.textContent('#status')}`);
} finally {
  await browser.close();
  await served.close();
}
