/**
 * The demo page in Chromium: it starts its workers, draws (non-blank canvases), its counters
 * move while the workers run, and Stop ends with every block freed and check() passing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { serveDemo } from '../../demo/serve.js';
import type { Served } from '../../demo/server.js';
import { launchChromium, watchErrors } from './chromium.js';

let served: Served;
let browser: Browser;

beforeAll(async () => {
  served = await serveDemo();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await served?.close();
});

/** Parses the demo's compact numbers (12.3k, 4.56M). */
function num(text: string | null): number {
  const m = /^([\d.]+)([kMG]?)$/.exec((text ?? '').trim());
  if (m === null) throw new Error(`not a number: ${text}`);
  return Number(m[1]) * ({ '': 1, k: 1e3, M: 1e6, G: 1e9 } as Record<string, number>)[m[2]!]!;
}

describe('demo page', () => {
  it('draws the heap map and charts, its counters move, and Stop leaves a clean heap', async () => {
    const page = await browser.newPage({ viewport: { width: 1220, height: 900 } });
    const errors = watchErrors(page);
    try {
      await page.goto(`${served.origin}/?threads=3&mix=small`);
      await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready');
      expect(await page.inputValue('#threads')).toBe('3');
      await page.selectOption('#mix', 'huge'); // the control, not the URL, decides
      await page.click('#start');
      await page.waitForFunction(() => document.getElementById('stat-threads')?.textContent === '4');
      await page.waitForFunction(() => document.getElementById('ops-total')?.textContent !== '0');
      const first = num(await page.textContent('#ops-total'));
      await page.waitForFunction(
        (before) => {
          const t = document.getElementById('ops-total')?.textContent ?? '0';
          const m = /^([\d.]+)([kMG]?)$/.exec(t);
          return m !== null && Number(m[1]) * ({ '': 1, k: 1e3, M: 1e6, G: 1e9 } as Record<string, number>)[m[2]!]! > before;
        },
        first,
      );
      const second = num(await page.textContent('#ops-total'));
      expect(second).toBeGreaterThan(first);
      const stages = ['#stat-s1', '#stat-s2', '#stat-s3'];
      const stageSum = (await Promise.all(stages.map((s) => page.textContent(s)))).reduce((n, t) => n + num(t), 0);
      expect(stageSum).toBeGreaterThan(0);
      expect(num(await page.textContent('#stat-acq'))).toBeGreaterThan(0);
      expect(await page.textContent('#status')).toContain('3 workers, with large runs');
      // Every canvas has drawn something besides its background, and the map many colours.
      const pixels = await page.evaluate(() =>
        ['map', 'lockChart', 'stageChart', 'opsChart'].map((id) => {
          const c = document.getElementById(id) as HTMLCanvasElement;
          const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
          let drawn = 0;
          const colours = new Set<number>();
          for (let i = 0; i < d.length; i += 4) {
            if (d[i] !== 0x0f || d[i + 1] !== 0x11 || d[i + 2] !== 0x15) drawn++;
            colours.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
          }
          return { id, drawn, colours: colours.size };
        }),
      );
      for (const p of pixels) expect(p.drawn, p.id).toBeGreaterThan(500);
      expect(pixels[0]!.colours).toBeGreaterThan(10);
      await page.click('#stop');
      await page.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('stopped'));
      expect(await page.textContent('#status')).toBe('stopped; check() passed; live bytes 0; threads attached 1');
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
