/**
 * An audit of the browser's main thread (Chromium), which may not block (Atomics.wait throws
 * there), so the library spins for the global lock there, up to 3 s (README: "Dead and misbehaving
 * workers", "Browsers"). No defect was found; these tests keep the audit's scenarios
 * (pages/main-thread.ts, workers pages/worker.ts and pages/main-thread-worker.ts):
 * - every synchronous call while a worker holds the global lock: no TypeError from Atomics.wait;
 *   each call succeeds once the lock is free (a hold of 100 ms, 2 s), or, past 3 s, throws
 *   LockTimeoutError (ERR_LOCK_TIMEOUT) with nothing changed: check() passes, live blocks keep their bytes;
 * - the async calls settle once the lock frees, the page running meanwhile (timers, frames);
 * - a worker terminated holding the lock: the page's malloc gives up after 3 s, tryMalloc answers
 *   0 at once, reclaimWhenGone (attach or newThreadId + attachAsync) frees the lock, a pending
 *   mallocAsync resolves with it;
 * - two workers that take and let go the lock back to back: the page's calls that need it get it;
 * - a growable heap grown by a worker: the page's u8, reads, frees and its own blocks beyond the old length;
 * - heap.memory against heap.buffer posted to workers.
 */
import { describe, expect, it } from 'vitest';
import { pageFixture } from './chromium.js';
import type { CallOutcome } from './pages/main-thread.js';

const here = new URL('.', import.meta.url).pathname;
const pages = pageFixture('main-thread', {
  'main-thread': `${here}pages/main-thread.ts`,
  worker: `${here}pages/worker.ts`,
  'main-thread-worker': `${here}pages/main-thread-worker.ts`,
});

const ALL = ['malloc', 'mallocSmall', 'calloc', 'realloc', 'reallocSmallToLarge', 'free', 'alignedAlloc', 'usableSize', 'tryMalloc', 'flush', 'check', 'stats', 'reclaim', 'detach'];

async function syncUnderHold(holdMs: number, calls: string[]): Promise<CallOutcome[]> {
  const { value, errors } = await pages.evaluate<{ canWait: boolean; outcomes: CallOutcome[] }>(
    `window.audit.syncUnderHold(${JSON.stringify({ holdMs, calls })})`,
  );
  console.log(`hold ${holdMs} ms: ${value.outcomes.map((o) => `${o.call} ${o.ok ? 'ok' : o.error!.split(':')[0]} ${o.ms.toFixed(1)} ms`).join('; ')}`);
  expect(value.canWait).toBe(false);
  expect(errors).toEqual([]);
  expect(value.outcomes.map((o) => o.call)).toEqual(calls);
  return value.outcomes;
}

describe("the browser's main thread against a held global lock (Chromium)", () => {
  it('every synchronous call while a worker holds the lock 100 ms: each succeeds, none throws, the heap intact', async () => {
    const out = await syncUnderHold(100, ALL);
    for (const o of out) {
      expect(o.error, o.call).toBeUndefined();
      expect(o.ms, o.call).toBeLessThan(1000);
      expect(o.checkAfter, o.call).toBe(o.call === 'detach' ? 'detached' : '');
      expect(o.badLive, o.call).toBe(0);
    }
    // Those that need the lock spun until the worker let it go.
    for (const c of ['malloc', 'realloc', 'reallocSmallToLarge', 'alignedAlloc', 'reclaim', 'detach']) {
      const o = out.find((x) => x.call === c)!;
      expect(o.heldAtEnd, c).toBe(0);
      expect(o.ms, c).toBeGreaterThanOrEqual(50);
    }
    expect(out.find((x) => x.call === 'tryMalloc')!.value).toBe(0); // busy: 0 at once
  });

  it('a hold of 2 s: a call that needs the lock waits it out (no LockTimeoutError before 3 s)', async () => {
    const [o] = await syncUnderHold(2000, ['realloc']);
    expect(o!.ok).toBe(true);
    expect(o!.ms).toBeGreaterThanOrEqual(1900);
    expect(o!.heldAtEnd).toBe(0);
    expect([o!.checkAfter, o!.badLive]).toEqual(['', 0]);
  });

  it('a hold past 3 s: malloc and detach throw LockTimeoutError after 3 s, nothing changed, the page goes on', async () => {
    const out = await syncUnderHold(3600, ['malloc', 'detach']);
    for (const o of out) {
      expect(o.ok, o.call).toBe(false);
      // The wait the message names: the 3 s bound, past it by what a loaded machine adds (a CI run
      // said 3010 ms where this asked for 300x).
      const waited = /^LockTimeoutError:ERR_LOCK_TIMEOUT:the main thread waited (\d+) ms/.exec(o.error ?? '');
      expect(waited, `${o.call}: ${o.error}`).not.toBeNull();
      expect(Number(waited![1]), o.call).toBeGreaterThanOrEqual(3000);
      expect(Number(waited![1]), o.call).toBeLessThan(4500);
      expect(o.ms, o.call).toBeGreaterThanOrEqual(2990);
      expect(o.ms, o.call).toBeLessThan(4500); // the 3 s bound, with room for a loaded machine
      expect(o.heldAtEnd, o.call).toBe(1); // gave up while the worker still held it
      expect(o.checkAfter, o.call).toBe('');
      expect(o.badLive, o.call).toBe(0);
    }
  });

  it('the async calls settle once a 2 s hold ends, the page running meanwhile', async () => {
    const { value: r, errors } = await pages.evaluate<{
      results: { name: string; ok: boolean; ms: number; heldAt: number }[];
      ticks: number;
      frames: number;
      maxGap: number;
      bad: number;
      checkAfter: string;
      liveBytes: number;
    }>('window.audit.asyncUnderHold({ holdMs: 2000 })');
    console.log(`async: ${r.results.map((x) => `${x.name} ${Math.round(x.ms)} ms`).join(', ')}; ${r.ticks} timer ticks, ${r.frames} frames, longest gap ${r.maxGap.toFixed(1)} ms`);
    expect(errors).toEqual([]);
    expect(r.results.every((x) => x.ok)).toBe(true);
    for (const x of r.results) if (x.ms > 100) expect(x.heldAt, x.name).toBe(0);
    expect(r.results.filter((x) => x.ms >= 1900).map((x) => x.name)).toEqual(expect.arrayContaining(['callocAsync', 'alignedAllocAsync', 'reallocAsync']));
    expect(r.ticks).toBeGreaterThan(100);
    expect(r.frames).toBeGreaterThan(10);
    expect(r.maxGap).toBeLessThan(1000); // the page's timers kept running (a blocked page shows the whole hold)
    expect([r.bad, r.checkAfter, r.liveBytes]).toEqual([0, '', 0]);
  });

  it('a worker terminated holding the lock: malloc gives up after 3 s, reclaimWhenGone frees the lock (reserved id, attachAsync)', async () => {
    const { value: r, errors } = await pages.evaluate<Record<string, unknown>>("window.audit.terminatedHolder({ mode: 'sync', reserved: true })");
    console.log(JSON.stringify(r).slice(0, 600));
    expect(errors).toEqual([]);
    expect(r.syncMalloc).toMatch(/^LockTimeoutError:ERR_LOCK_TIMEOUT/);
    expect(r.syncMallocMs as number).toBeLessThan(4500);
    expect(r.tryMalloc).toBe(0);
    expect(r.tryMallocMs as number).toBeLessThan(500);
    expect(r.reclaimed).toBe(true);
    expect(r.mallocAfter as number).toBeGreaterThan(0);
    expect([r.check, r.bad, r.threadsAttached, r.liveBytes]).toEqual(['', 0, 1, 0]);
  });

  it('a worker terminated holding the lock: a pending mallocAsync resolves once reclaimWhenGone reclaims it (attach)', async () => {
    const { value: r, errors } = await pages.evaluate<Record<string, unknown>>("window.audit.terminatedHolder({ mode: 'async', reserved: false })");
    console.log(JSON.stringify(r).slice(0, 600));
    expect(errors).toEqual([]);
    const a = r.mallocAsync as { v: unknown; at: number };
    const b = r.reclaim as { r: boolean; at: number };
    expect(b.r).toBe(true);
    expect(typeof a.v).toBe('number');
    expect(a.v as number).toBeGreaterThan(0);
    expect(a.at).toBeGreaterThanOrEqual(b.at - 1);
    expect(r.ticks as number).toBeGreaterThan(50); // the page ran meanwhile
    expect([r.check, r.bad, r.threadsAttached, r.liveBytes]).toEqual(['', 0, 1, 0]);
  });

  it('two workers that take the lock back to back (1 ms holds; large mallocs): the calls of the page get it, each well under the 3 s bound', async () => {
    type C = { maxMs: number; got: number; errors: string[]; results: { ok: boolean; n: number }[]; checkAfter: string };
    for (const o of [
      { workers: 2, mode: 'lock', size: 0, holdUs: 1000, calls: 200, mainSize: -(2 << 20) }, // alignedAlloc(1 MiB, 2 MiB): under the lock
      { workers: 2, mode: 'large', size: 3 << 20, holdUs: 0, calls: 300, mainSize: -(2 << 20) },
    ]) {
      const { value: r, errors } = await pages.evaluate<C>(`window.audit.contention(${JSON.stringify(o)})`);
      console.log(`contention ${o.mode}: ${r.got} calls, longest ${r.maxMs.toFixed(1)} ms, worker loops ${r.results.map((x) => x.n).join(', ')}`);
      expect(errors).toEqual([]);
      expect(r.errors).toEqual([]);
      expect(r.got).toBe(o.calls);
      expect(r.maxMs).toBeLessThan(2900); // under the 3 s bound: no LockTimeoutError
      expect(r.results.every((x) => x.ok)).toBe(true);
      expect(r.checkAfter).toBe('');
    }
  });

  it('a growable heap grown by a worker: the page sees the new length, reads and frees beyond the old one, places its own blocks there', async () => {
    const { value: r, errors } = await pages.evaluate<Record<string, unknown>>('window.audit.growth()');
    console.log(JSON.stringify(r));
    expect(errors).toEqual([]);
    expect(r.grownTo as number).toBeGreaterThan(r.initial as number);
    expect(r.u8Length).toBe(r.grownTo);
    expect(r.oldU8Length).toBe(r.initial); // heap.u8 is a new view after growth (documented)
    expect(r.beyond as number).toBeGreaterThan(0);
    expect(r.usableBeyond).toBe(512 << 10);
    expect(r.badRead).toBe(0);
    expect(r.mineBeyond as number).toBeGreaterThan(0);
    expect(r.smallMineBeyond as number).toBeGreaterThan(0);
    expect([r.callocNonZero, r.badMineNew, r.badMine, r.check]).toEqual([0, 0, 0, '']);
    expect(r.viewW).toEqual({ u8Length: r.grownTo, byteLength: r.grownTo, bufferBytes: r.grownTo });
    expect(r.memory).toBe('undefined'); // a growable heap has no WebAssembly.Memory (documented)
  });

  it('heap.memory and heap.buffer posted to workers: the same heap, the same thread id when one thread attaches with both', async () => {
    const { value: r, errors } = await pages.evaluate<Record<string, unknown>>('window.audit.memoryVsBuffer()');
    console.log(JSON.stringify(r));
    expect(errors).toEqual([]);
    expect(r.mainMemory).toBe(true);
    expect(r.againSameId).toBe(true);
    expect(r.again2SameId).toBe(true);
    // The buffer worker that then attached with the memory copies with memory.copy too.
    expect(r.chains).toEqual([{ bad: 0, hasMemory: true }, { bad: 0, hasMemory: true }, { bad: 0, hasMemory: true }]);
    expect([r.badFromM, r.attachSelfMemory, r.attachSelfBuffer, r.check, r.threadsAttached]).toEqual([0, true, true, '', 4]);
  });
});
