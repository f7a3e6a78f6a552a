/**
 * In Chromium, Web Workers stopped inside the allocator's slow paths and then terminated: the
 * page must reclaim each with reclaimWhenGone() while its own mallocAsync and reallocAsync wait on
 * the lock the stopped worker holds, and the heap must then pass check(), keep the page's blocks,
 * and take a fresh worker (pages/crash-stop.ts). A worker is stopped at its n-th crash point
 * (src/crash.ts: the steps test/crash-points.test.ts stops Node workers at, there reclaimed with a
 * synchronous reclaim(threadId)), spinning there until terminated; many heaps run at once, each
 * with its own worker and point, so that one wait for Chromium to let the Web Locks go serves all.
 * Also a worker that goes on calling the heap after self.close(): its Web Lock, and so its
 * reclaim, must wait until it has stopped (the terminate() case is in browser.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { pageFixture } from './chromium.js';
import type { CrashStopOptions } from './pages/crash-stop.js';

const here = new URL('.', import.meta.url).pathname;
const pages = pageFixture('crash-stop', { 'crash-stop': `${here}pages/crash-stop.ts`, 'crash-stop-worker': `${here}pages/crash-stop-worker.ts` });

interface Outcome {
  total: number;
  failures: Record<string, string>;
  syncErrors?: string[];
  answers?: string[];
  runs: number;
  stoppedAt: number[];
}

describe('Web Workers stopped inside a slow path, then terminated (Chromium)', () => {
  it('at a sample of crash points, given heap.memory, one-block magazines: every worker is reclaimed and the page calls waiting on it go through', async () => {
    // About 2,100 crash points: every 130th, one heap each; one synchronous malloc on a held lock first.
    const o: CrashStopOptions = { seed: 1, tiny: true, memory: true, every: 130, limit: 17, sync: 1 };
    const { value: r, errors } = await pages.evaluate<Outcome>(`window.crashStop(${JSON.stringify(o)})`);
    console.log(JSON.stringify(r));
    expect(r.total).toBeGreaterThan(500);
    expect(r.runs).toBe(17);
    expect(r.stoppedAt.filter((p) => p > 0).length).toBeGreaterThan(12); // most stopped at a point (some workloads pass fewer)
    expect(r.syncErrors).toEqual([]); // LockTimeoutError, nothing changed (checked with the rest)
    expect(r.failures).toEqual({});
    expect(errors).toEqual([]);
  });

  it('a reclaimer stopped inside its reclaimWhenGone of a terminated worker: the page reclaims both, the dead one first', async () => {
    const o = { seed: 1, tiny: true, memory: false, every: 1, limit: 12, rFirst: false };
    const { value: r, errors } = await pages.evaluate<Outcome>(`window.reclaimerStop(${JSON.stringify(o)})`);
    console.log(JSON.stringify(r));
    expect(r.stoppedAt.filter((p) => p > 0).length).toBeGreaterThan(5);
    expect(r.failures).toEqual({});
    expect(errors).toEqual([]);
  });

  it('a worker that goes on calling the heap after self.close() is reclaimed only once it has stopped', async () => {
    const { value: r, errors } = await pages.evaluate<{ r: boolean; ms: number; after: number; calls: number }[]>(
      `window.spinAfterEnd(${JSON.stringify({ close: true, n: 2, ms: 3000 })})`,
    );
    console.log(JSON.stringify(r));
    for (const x of r) {
      expect(x.r).toBe(true);
      expect(x.calls).toBeGreaterThan(0);
      expect(x.after).toBe(0); // no call after its reclaim resolved
    }
    expect(errors).toEqual([]);
  });
});
