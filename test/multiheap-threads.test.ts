/**
 * Audit: several heaps used at once by the main thread and workers (workers/multiheap-worker.ts).
 * Each heap must stay its own: check() of each passes, stats() of each counts its own blocks and
 * threads, live blocks keep their bytes, and a worker's death, detach or reclaim on one heap acts on
 * that heap alone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { wrap, type Remote } from 'comlink';
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK } from '../src/layout.js';
import { checked, MiB, until } from './fixtures.js';
import { nodeEndpoint, startWorker, terminateAll } from './remote-heap.js';
import type { MultiHeapApi } from '../workers/multiheap-worker.js';

afterEach(terminateAll);

const OPTIONS: Record<string, HeapOptions> = {
  A: { initialBytes: 16 * MiB, maxThreads: 4 },
  B: { initialBytes: 4 * MiB, maxBytes: 96 * MiB, maxThreads: 4, debug: true },
  C: { initialBytes: 32 * MiB, maxThreads: 8, magazineCapacity: 8, refillCount: 4, drainInterval: 16 },
};

function heapsABC(): Record<string, SharedHeap> {
  const out: Record<string, SharedHeap> = {};
  for (const [k, o] of Object.entries(OPTIONS)) out[k] = SharedHeap.create(o);
  return out;
}

/** Fills [p, p + n) with bytes derived from `key` (the block's first offset: kept across a realloc's move) and `seed`. */
function fillAt(u8: Uint8Array, p: number, n: number, seed: number, key = p): void {
  for (let i = 0; i < n; i++) u8[p + i] = (Math.imul(key + i, 0x9e3779b1) >>> 24) ^ seed;
}
function wrongAt(u8: Uint8Array, p: number, n: number, seed: number, key = p): number {
  for (let i = 0; i < n; i++) if (u8[p + i] !== ((Math.imul(key + i, 0x9e3779b1) >>> 24) ^ seed)) return i;
  return -1;
}

function worker(watchOn: SharedHeap[] = []): { w: Worker; r: Remote<MultiHeapApi>; exited: Promise<number> } {
  const w = startWorker('multiheap-worker');
  for (const h of watchOn) h.watch(w);
  const exited = new Promise<number>((resolve) => w.once('exit', resolve));
  return { w, r: wrap<MultiHeapApi>(nodeEndpoint(w)), exited };
}

/** Each heap: check(), threads attached, lock word. */
function state(heaps: Record<string, SharedHeap>): Record<string, { check: string; attached: number; lock: number }> {
  const out: Record<string, { check: string; attached: number; lock: number }> = {};
  for (const [k, h] of Object.entries(heaps)) {
    out[k] = { check: checked(h), attached: h.stats().threadsAttached, lock: Atomics.load(internals(h).i32, G_LOCK) };
  }
  return out;
}

describe('one worker and the main thread on three heaps at once', () => {
  it('interleaved calls on each keep every heap to itself', async () => {
    const heaps = heapsABC();
    const { r } = worker(Object.values(heaps));
    const ids = new Set<number>();
    for (const [k, h] of Object.entries(heaps)) ids.add((await r.attach(k, h.memory ?? h.buffer)).threadId);
    expect(ids.size).toBe(1); // one Node threadId on every heap
    // The worker makes blocks on each, interleaved with the main thread's.
    const theirs: Record<string, { p: number; n: number }[]> = {};
    const mine: Record<string, { p: number; n: number }[]> = {};
    for (let round = 0; round < 3; round++) {
      for (const [k, h] of Object.entries(heaps)) {
        theirs[k] = [...(theirs[k] ?? []), ...(await r.mixed(k, 200, 7))];
        const list = (mine[k] ??= []);
        for (let i = 0; i < 150; i++) {
          const n = 16 + ((i * 313 + round) % (i % 23 === 0 ? 200_000 : 2000));
          const p = i % 3 === 0 ? h.calloc(n, 1) : i % 3 === 1 ? h.alignedAlloc(256, n) : h.malloc(n);
          expect(p).toBeGreaterThan(0);
          fillAt(h.u8, p, n, 9);
          list.push({ p, n });
        }
        // realloc half of mine, free a quarter
        for (let i = 0; i < list.length; i += 2) {
          const b = list[i]!;
          const m = b.n * 2 + 5;
          const q = h.realloc(b.p, m);
          expect(q).toBeGreaterThan(0);
          expect(wrongAt(h.u8, q, b.n, 9, b.p)).toBe(-1);
          fillAt(h.u8, q, m, 9);
          list[i] = { p: q, n: m };
        }
        for (let i = 0; i < list.length; i += 4) h.free(list[i]!.p);
        mine[k] = list.filter((_, i) => i % 4 !== 0);
      }
    }
    for (const [k, h] of Object.entries(heaps)) {
      expect(await r.verify(k, theirs[k]!, 7)).toEqual(theirs[k]!.map(() => -1));
      expect(mine[k]!.map((b) => wrongAt(h.u8, b.p, b.n, 9))).toEqual(mine[k]!.map(() => -1));
      await r.flush(k);
      h.flush();
      expect(checked(h)).toBe('passes');
      expect(await r.check(k)).toBe('passes');
      const s = h.stats();
      const live = [...theirs[k]!, ...mine[k]!];
      expect({ k, blocks: s.liveBlocks, attached: s.threadsAttached }).toEqual({ k, blocks: live.length, attached: 2 });
      if (OPTIONS[k]!.debug !== true) expect(s.liveBytes).toBe(live.reduce((a, b) => a + h.usableSize(b.p), 0));
    }
    // Cross-thread frees: the main thread frees the worker's blocks, the worker the main thread's.
    for (const [k, h] of Object.entries(heaps)) {
      for (const b of theirs[k]!) h.free(b.p);
      await r.freeAll(k, mine[k]!.map((b) => b.p));
      await r.flush(k);
      h.flush();
      expect(checked(h)).toBe('passes');
      expect(h.stats().liveBlocks).toBe(0);
    }
    for (const k of Object.keys(heaps)) await r.detach(k);
    for (const h of Object.values(heaps)) {
      expect(h.stats().threadsAttached).toBe(1);
      h.detach();
    }
  });
});

describe('a worker attached to two heaps that ends without detaching', () => {
  for (const how of ['terminate', 'exit'] as const) {
    it(`${how}: watched on both, each heap reclaims it`, async () => {
      const heaps = { A: SharedHeap.create(OPTIONS.A), B: SharedHeap.create(OPTIONS.B) };
      const { w, r, exited } = worker([heaps.A, heaps.B]);
      await r.attach('A', heaps.A.buffer);
      await r.attach('B', heaps.B.buffer);
      const live = { A: await r.mixed('A', 300, 3), B: await r.mixed('B', 300, 4) };
      if (how === 'terminate') await w.terminate();
      else void r.exitNow(0).catch(() => undefined);
      await exited;
      await until('both reclaimed', () => heaps.A.stats().threadsAttached === 1 && heaps.B.stats().threadsAttached === 1);
      expect(state(heaps)).toEqual({ A: { check: 'passes', attached: 1, lock: 0 }, B: { check: 'passes', attached: 1, lock: 0 } });
      expect(live.A.map((b) => wrongAt(heaps.A.u8, b.p, b.n, 3)).filter((x) => x >= 0)).toEqual([]);
      expect(live.B.map((b) => wrongAt(heaps.B.u8, b.p, b.n, 4)).filter((x) => x >= 0)).toEqual([]);
      for (const b of live.A) heaps.A.free(b.p);
      for (const b of live.B) heaps.B.free(b.p);
      for (const h of Object.values(heaps)) {
        h.flush();
        expect(checked(h)).toBe('passes');
        expect(h.stats().liveBlocks).toBe(0);
        h.detach();
      }
    });
  }

  it('watched on A only: A reclaims it, B keeps its slot until B.reclaim(threadId)', async () => {
    const heaps = { A: SharedHeap.create(OPTIONS.A), B: SharedHeap.create(OPTIONS.C) };
    const { w, r, exited } = worker([heaps.A]);
    const { threadId } = await r.attach('A', heaps.A.buffer);
    await r.attach('B', heaps.B.buffer);
    const live = { A: await r.mixed('A', 200, 3), B: await r.mixed('B', 200, 4) };
    await w.terminate();
    await exited;
    await until('A reclaimed', () => heaps.A.stats().threadsAttached === 1);
    expect(state(heaps)).toEqual({ A: { check: 'passes', attached: 1, lock: 0 }, B: { check: 'passes', attached: 2, lock: 0 } });
    expect(heaps.B.reclaim(threadId)).toBe(true);
    expect(state(heaps)).toEqual({ A: { check: 'passes', attached: 1, lock: 0 }, B: { check: 'passes', attached: 1, lock: 0 } });
    expect(heaps.A.reclaim(threadId)).toBe(false); // nothing left there
    expect(live.B.map((b) => wrongAt(heaps.B.u8, b.p, b.n, 4)).filter((x) => x >= 0)).toEqual([]);
    for (const h of Object.values(heaps)) h.detach();
  });

  it('holding the lock of each heap when terminated, watched on both: both locks broken', async () => {
    const heaps = { A: SharedHeap.create(OPTIONS.A), B: SharedHeap.create(OPTIONS.B) };
    const { w, r, exited } = worker([heaps.A, heaps.B]);
    await r.attach('A', heaps.A.buffer);
    await r.attach('B', heaps.B.buffer);
    await r.mixed('A', 100, 3);
    await r.mixed('B', 100, 4);
    await r.holdLock('A');
    await r.holdLock('B');
    expect(Atomics.load(internals(heaps.A).i32, G_LOCK)).not.toBe(0);
    await w.terminate();
    await exited;
    await until('both reclaimed', () => heaps.A.stats().threadsAttached === 1 && heaps.B.stats().threadsAttached === 1);
    expect(state(heaps)).toEqual({ A: { check: 'passes', attached: 1, lock: 0 }, B: { check: 'passes', attached: 1, lock: 0 } });
    for (const h of Object.values(heaps)) {
      const big = h.malloc(3 * MiB);
      expect(big).toBeGreaterThan(0);
      h.free(big);
      h.detach();
    }
  });
});

describe("a worker's detach from one heap leaves it on the other", () => {
  it('detach A, go on with B, attach A again', async () => {
    const heaps = { A: SharedHeap.create(OPTIONS.A), B: SharedHeap.create(OPTIONS.C) };
    const { w, r, exited } = worker([heaps.A, heaps.B]);
    const a1 = await r.attach('A', heaps.A.buffer);
    const b1 = await r.attach('B', heaps.B.buffer);
    const liveA = await r.mixed('A', 100, 3);
    const liveB = await r.mixed('B', 100, 4);
    await r.detach('A');
    expect(state(heaps)).toEqual({ A: { check: 'passes', attached: 1, lock: 0 }, B: { check: 'passes', attached: 2, lock: 0 } });
    expect(await r.slot('B')).toBe(b1.slot);
    expect(await r.detached('B')).toBe(false);
    const moreB = await r.mixed('B', 100, 5);
    expect(await r.check('B')).toBe('passes');
    // The worker's blocks of A stay live and the main thread's to free.
    expect(liveA.map((b) => wrongAt(heaps.A.u8, b.p, b.n, 3)).filter((x) => x >= 0)).toEqual([]);
    // attach A again: a slot of A, the same Node threadId
    const a2 = await r.attach('A', heaps.A.buffer);
    expect(a2.threadId).toBe(a1.threadId);
    const again = await r.attachAgain('A', heaps.A.buffer);
    expect(again.same).toBe(true);
    await r.mixed('A', 50, 6);
    expect(state(heaps)).toEqual({ A: { check: 'passes', attached: 2, lock: 0 }, B: { check: 'passes', attached: 2, lock: 0 } });
    await w.terminate();
    await exited;
    await until('both reclaimed', () => heaps.A.stats().threadsAttached === 1 && heaps.B.stats().threadsAttached === 1);
    expect(state(heaps)).toEqual({ A: { check: 'passes', attached: 1, lock: 0 }, B: { check: 'passes', attached: 1, lock: 0 } });
    expect(liveB.map((b) => wrongAt(heaps.B.u8, b.p, b.n, 4)).filter((x) => x >= 0)).toEqual([]);
    expect(moreB.map((b) => wrongAt(heaps.B.u8, b.p, b.n, 5)).filter((x) => x >= 0)).toEqual([]);
    for (const h of Object.values(heaps)) h.detach();
  });
});
