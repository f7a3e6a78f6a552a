/**
 * The package as it ships, unbundled, in Chromium: dist/src compiled as prepack and prepare
 * compile it (tsconfig.pack.json), served file by file on 127.0.0.1 with COOP/COEP and loaded
 * as native ES modules: the page through an import map (`import ... from 'sabmalloc'`), a module
 * Web Worker by the entry's URL. The other browser tests bundle src/ with esbuild, which would
 * hide what only a browser's own module loader meets (a bare import of some other package, an
 * import without its `.js`, a file the build does not write). The page allocates, the worker
 * (attached with attachAsync under a newThreadId() id) frees those blocks and allocates its own,
 * which the page reads and frees.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { serve, type Served } from '../../demo/server.js';
import { launchChromium, watchErrors } from './chromium.js';

const root = new URL('../../', import.meta.url).pathname;
const ENTRY = '/node_modules/sabmalloc/dist/src/index.js';

const PAGE = `<!doctype html><meta charset="utf-8"><title>loading</title>
<script type="importmap">{ "imports": { "sabmalloc": "${ENTRY}" } }</script>
<script type="module" src="/main.js"></script>`;

// What a user writes, in plain JavaScript.
const MAIN = `import { SharedHeap, readHeapMap, CLASS_SIZES } from 'sabmalloc';
const heap = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 4 });
const blocks = [24, 1000, 40000, 300000].map((n, i) => {
  const p = heap.malloc(n);
  heap.u8.fill(i + 1, p, p + n);
  return { p, n, fill: i + 1 };
});
const worker = new Worker('/worker.js', { type: 'module' });
const threadId = heap.newThreadId();
const reply = new Promise((resolve) => { worker.onmessage = (e) => resolve(e.data); });
worker.postMessage({ memory: heap.memory ?? heap.buffer, threadId, blocks });
const r = await reply;
let badFromWorker = 0;
for (let k = 0; k < r.n; k++) if (heap.u8[r.p + k] !== 0x5a) badFromWorker++;
heap.free(r.p);
worker.terminate();
const gone = await heap.reclaimWhenGone(threadId);
heap.check();
const s = heap.stats();
window.result = {
  crossOriginIsolated, worker: r, badFromWorker, gone, liveBytes: s.liveBytes, threadsAttached: s.threadsAttached,
  supers: readHeapMap(heap.buffer).supers, classes: CLASS_SIZES.length, hasMemory: heap.memory !== undefined,
};
document.title = 'ready';`;

const WORKER = `import { SharedHeap } from '${ENTRY}';
onmessage = async (e) => {
  const heap = await SharedHeap.attachAsync(e.data.memory, { threadId: e.data.threadId });
  let bad = 0;
  for (const { p, n, fill } of e.data.blocks) {
    for (let k = 0; k < n; k++) if (heap.u8[p + k] !== fill) bad++;
    heap.free(p); // a block the page made, freed here
  }
  const n = 5000;
  const p = heap.malloc(n);
  heap.u8.fill(0x5a, p, p + n);
  postMessage({ bad, freed: e.data.blocks.length, p, n, threadId: heap.threadId, lockHeld: await heap.threadLockHeld() });
};`;

let out: string;
let served: Served;
let browser: Browser;
let shipped: string[];

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'sabmalloc-packed-'));
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.pack.json'), '--outDir', out], { stdio: 'pipe' });
  const files: Record<string, Uint8Array | string> = { '/index.html': PAGE, '/main.js': MAIN, '/worker.js': WORKER };
  // The files package.json's `files` ships from dist/src: JavaScript and declarations.
  shipped = readdirSync(join(out, 'src')).filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'));
  for (const f of shipped) files[`/node_modules/sabmalloc/dist/src/${f}`] = readFileSync(join(out, 'src', f));
  served = await serve({ entries: {}, files });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await served?.close();
  if (out !== undefined) rmSync(out, { recursive: true, force: true });
});

describe('the shipped build in Chromium, unbundled', () => {
  it('loads as native ES modules in a page and a module worker; blocks cross both ways', async () => {
    expect(shipped).toEqual(expect.arrayContaining(['index.js', 'heap.js', 'index.d.ts']));
    const page = await browser.newPage();
    const errors = watchErrors(page);
    try {
      await page.goto(`${served.origin}/index.html`);
      // A module that fails to load shows as a page or console error: asserted before the result.
      await page.waitForFunction(() => document.title === 'ready', null, { timeout: 30_000 }).catch(() => undefined);
      expect(errors).toEqual([]);
      const r = (await page.evaluate('window.result')) as {
        crossOriginIsolated: boolean;
        worker: { bad: number; freed: number; p: number; threadId: number; lockHeld: boolean };
        badFromWorker: number;
        gone: boolean;
        liveBytes: number;
        threadsAttached: number;
        supers: number;
        classes: number;
        hasMemory: boolean;
      };
      expect(r.crossOriginIsolated).toBe(true);
      expect(r.hasMemory).toBe(true); // posted as heap.memory
      expect(r.worker).toMatchObject({ bad: 0, freed: 4, lockHeld: true });
      expect(r.worker.threadId).toBeGreaterThanOrEqual(2 ** 30);
      expect(r.worker.p).toBeGreaterThan(0);
      expect(r.badFromWorker).toBe(0);
      expect(r.gone).toBe(true); // it had attached: its slot reclaimed
      expect(r.liveBytes).toBe(0);
      expect(r.threadsAttached).toBe(1);
      expect(r.supers).toBe(8);
      expect(r.classes).toBe(60);
    } finally {
      await page.close();
    }
  });
});
