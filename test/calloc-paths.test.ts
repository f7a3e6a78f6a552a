/**
 * Audit of calloc's promise (README "How it works", calloc): every block calloc returns reads as
 * zero over all its n * size bytes, whatever path the memory took before (CLEAN blocks are left
 * unwritten, layout.ts ST_CLEAN; a large run is zeroed only up to its slots' touched marks,
 * context.ts largeDirtyBytes). Method: every block is written with a non-zero pattern before it is
 * freed; the heap is driven through the path; then calloc, and every byte of the block is checked.
 *
 * Across threads (workers/calloc-paths-worker.ts): blocks written and freed by another thread (remote
 * frees), a worker's slabs given back at its detach, left abandoned, or reclaimed after it died or
 * was terminated mid-call, a heap grown by another thread, a detach and attach again, and calloc in
 * a worker that zeroes with WebAssembly's memory.fill (attached with heap.memory) or with stores.
 * No defect found: every test passes on the code audited (main d7297b5).
 */
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, type HeapOptions, type SharedMemory } from '../src/index.js';
import { internals } from '../src/heap.js';
import { MAX_SMALL, SIZE, classOf } from '../src/size-classes.js';
import { KiB, MiB, checked, freshHeaps, rng } from './fixtures.js';
import { startWorker, terminateAll } from './remote-heap.js';

const { fresh } = freshHeaps();

/** The first non-zero byte of [p, p + n), or -1. */
function firstNonZero(heap: SharedHeap, p: number, n: number): number {
  const u8 = heap.u8;
  for (let i = p; i < p + n; i++) if (u8[i] !== 0) return i - p;
  return -1;
}

/** Mallocs blocks of `size` until out of memory (or `max` blocks), writes each whole usable size non-zero, and frees them all. */
function dirty(heap: SharedHeap, size: number, max = Infinity, flush = true): number {
  const ps: number[] = [];
  for (let p = heap.malloc(size); p !== 0; p = heap.malloc(size)) {
    heap.u8.fill(0xa5, p, p + heap.usableSize(p));
    ps.push(p);
    if (ps.length >= max) break;
  }
  for (const p of ps) heap.free(p);
  if (flush) heap.flush();
  return ps.length;
}

/** callocs `n`-byte blocks until out of memory (or `max`), checking each; frees them; returns the bad ones. */
function callocAll(heap: SharedHeap, n: number, max = Infinity, count = 1): string[] {
  const bad: string[] = [];
  const ps: number[] = [];
  for (let p = heap.calloc(count, n / count); p !== 0; p = heap.calloc(count, n / count)) {
    ps.push(p);
    const at = firstNonZero(heap, p, n);
    if (at >= 0) bad.push(`calloc(${count}, ${n / count}) = ${p}: byte ${at} is ${heap.u8[p + at]}`);
    if (ps.length >= max) break;
  }
  for (const p of ps) heap.free(p);
  return bad.slice(0, 5);
}

const SIZES = [0, 1, 15, 16, 17, 48, 49, 64, 128, 129, 256, 512, 1000, 1024, 2560, 4096, 4097, 5120, 16 * KiB, 16 * KiB + 1,
  40 * KiB, 64 * KiB, 100 * KiB, MAX_SMALL - 1, MAX_SMALL, MAX_SMALL + 1, 192 * KiB, 1 * MiB, 1 * MiB + 1];

const modes: [string, HeapOptions][] = [
  ['default', {}],
  ['debug', { debug: true }],
  ['stage1Keep 0', { stage1Keep: 0 }],
  ['trimInterval 1', { trimInterval: 1 }],
  ['growable', { initialBytes: 4 * MiB, maxBytes: 12 * MiB }],
];

describe.each(modes)('calloc reads zero (%s)', (_name, options) => {
  it('after the heap was filled with blocks of one size and freed, for every other size (Stage 1, Stage 2, large runs)', () => {
    const heap = fresh({ initialBytes: 8 * MiB, maxThreads: 2, ...options });
    const bad: string[] = [];
    for (const d of [48, 4096, 100 * KiB, 300 * KiB]) {
      for (const c of [48, 1000, 5120, 40 * KiB, MAX_SMALL, MAX_SMALL + 1, 512 * KiB]) {
        dirty(heap, d);
        bad.push(...callocAll(heap, c).map((s) => `dirty ${d}, ${s}`));
        heap.flush();
      }
    }
    expect(bad).toEqual([]);
    expect(checked(heap)).toBe('passes');
  });

  it('calloc of each size after the same size was written and freed, without flush (magazine) and with', () => {
    const heap = fresh({ initialBytes: 8 * MiB, maxThreads: 2, ...options });
    const bad: string[] = [];
    for (const s of SIZES) {
      for (const flush of [false, true]) {
        dirty(heap, s, 40, flush);
        bad.push(...callocAll(heap, s, 40));
        bad.push(...callocAll(heap, s, 40, s % 2 === 0 && s > 0 ? 2 : 1));
      }
    }
    expect(bad).toEqual([]);
    expect(checked(heap)).toBe('passes');
  });

  it('large runs resized in place by realloc, then freed, then calloc; alignedAlloc runs too', () => {
    const heap = fresh({ initialBytes: 8 * MiB, maxThreads: 2, ...options });
    const bad: string[] = [];
    for (const [from, to] of [[200 * KiB, 600 * KiB], [600 * KiB, 200 * KiB], [70 * KiB, 300 * KiB], [1100 * KiB, 140 * KiB], [140 * KiB, 1500 * KiB]]) {
      let p = heap.malloc(from!);
      heap.u8.fill(0x5a, p, p + heap.usableSize(p));
      const q = heap.realloc(p, to!);
      expect(q).not.toBe(0);
      p = q;
      heap.u8.fill(0x6b, p, p + heap.usableSize(p));
      heap.free(p);
      for (const c of [from!, to!, MAX_SMALL + 1, 256 * KiB, 64 * KiB, 1000]) bad.push(...callocAll(heap, c, 3).map((s) => `${from}->${to}: ${s}`));
    }
    for (const [a, n] of [[4096, 200 * KiB], [128 * KiB, 300 * KiB], [1 * MiB, 200 * KiB], [64 * KiB, 64 * KiB], [256, 5000]]) {
      const p = heap.alignedAlloc(a!, n!);
      expect(p % a!).toBe(0);
      heap.u8.fill(0x7c, p, p + heap.usableSize(p));
      heap.free(p);
      for (const c of [n!, 2 * n!, 1000]) bad.push(...callocAll(heap, c, 4).map((s) => `aligned ${a}/${n}: ${s}`));
    }
    expect(bad).toEqual([]);
    expect(checked(heap)).toBe('passes');
  });

  it('a small block grown by realloc into a large run (reallocToRun), grown in place, freed; then calloc', () => {
    const heap = fresh({ initialBytes: 8 * MiB, maxThreads: 2, ...options });
    const bad: string[] = [];
    for (let round = 0; round < 3; round++) {
      let p = heap.malloc(40 * KiB);
      for (const n of [80 * KiB, 160 * KiB, 200 * KiB, 330 * KiB, 700 * KiB]) {
        p = heap.realloc(p, n);
        expect(p).not.toBe(0);
        heap.u8.fill(0x11 + round, p, p + heap.usableSize(p));
      }
      heap.free(p);
      for (const c of [200 * KiB, 700 * KiB, 1 * MiB, 64 * KiB, 129 * KiB]) bad.push(...callocAll(heap, c, 6).map((s) => `round ${round}: ${s}`));
    }
    expect(bad).toEqual([]);
  });

  it('callocAsync', async () => {
    const heap = fresh({ initialBytes: 8 * MiB, maxThreads: 2, ...options });
    const bad: string[] = [];
    for (const s of [1, 48, 1000, 40 * KiB, MAX_SMALL, MAX_SMALL + 1, 300 * KiB]) {
      dirty(heap, s, 20, false);
      const ps: number[] = [];
      for (let i = 0; i < 20; i++) {
        const p = await heap.callocAsync(1, s);
        expect(p).not.toBe(0);
        ps.push(p);
        const at = firstNonZero(heap, p, s);
        if (at >= 0) bad.push(`callocAsync(1, ${s}) = ${p}: byte ${at}`);
      }
      for (const p of ps) heap.free(p);
    }
    expect(bad).toEqual([]);
  });
});

describe('calloc arguments', () => {
  it('overflowing and too-large products answer 0; 0 and class boundaries give zeroed blocks', () => {
    const heap = fresh();
    expect(heap.calloc(2 ** 31, 2 ** 31)).toBe(0);
    expect(heap.calloc(2 ** 32 - 1, 2 ** 32 - 1)).toBe(0);
    expect(heap.calloc(65536, 65537)).toBe(0);
    expect(heap.calloc(2 ** 30, 4)).toBe(0);
    const z = heap.calloc(0, 12345);
    expect(z).not.toBe(0);
    heap.free(z);
    const bad: string[] = [];
    for (const s of SIZE) for (const n of [s - 1, s, s + 1]) {
      if (n < 0) continue;
      dirty(heap, n, 4, false);
      bad.push(...callocAll(heap, n, 4));
    }
    expect(bad).toEqual([]);
  });
});

describe('calloc and deep magazines (magazine.ts deepen)', () => {
  it('the 64 KiB block that held a deep magazine, and the blocks that went through it, come back zeroed', () => {
    const heap = fresh({ initialBytes: 16 * MiB, maxThreads: 2 });
    const t = internals(heap);
    const size = 16 * KiB;
    const cls = classOf(size);
    let deepened = false;
    for (let round = 0; round < 12 && !deepened; round++) {
      const ps: number[] = [];
      for (let i = 0; i < 120; i++) ps.push(heap.malloc(size));
      for (const p of ps) heap.u8.fill(0xc3, p, p + size);
      for (const p of ps) heap.free(p);
      deepened = t.deep(cls);
    }
    expect(deepened).toBe(true);
    const bad: string[] = [];
    bad.push(...callocAll(heap, size, 200));
    heap.flush(); // undeepen: the deep magazine's block goes back CACHED
    expect(t.deep(cls)).toBe(false);
    bad.push(...callocAll(heap, 64 * KiB));
    bad.push(...callocAll(heap, 65 * KiB));
    bad.push(...callocAll(heap, 48));
    expect(bad).toEqual([]);
    expect(checked(heap)).toBe('passes');
  });
});

describe('calloc in a random mix of calls', () => {
  const mixes: [string, HeapOptions][] = [
    ['default', {}],
    ['debug', { debug: true }],
    ['small caches, trims', { stage1Keep: 0, trimInterval: 1, magazineCapacity: 4, refillCount: 2, drainInterval: 16 }],
    ['growable, stage1Keep 2', { initialBytes: 2 * MiB, maxBytes: 10 * MiB, stage1Keep: 2 }],
  ];
  it.each(mixes)('every calloc reads zero, every other block written over its usable size (%s)', (_name, options) => {
    const heap = fresh({ initialBytes: 8 * MiB, maxThreads: 2, ...options });
    const r = rng(0xca110c);
    const live: number[] = [];
    const bad: string[] = [];
    const pick = (): number => {
      const k = r() % 100;
      if (k < 40) return r() % 600;
      if (k < 70) return r() % 20_000;
      if (k < 85) return 100 * KiB + (r() % (60 * KiB));
      return r() % (900 * KiB);
    };
    for (let i = 0; i < 6000; i++) {
      const op = r() % 10;
      if ((op < 4 || live.length === 0) && live.length < 400) {
        const n = pick();
        const m = r() % 4 === 0 ? 2 : 1;
        let p: number;
        if (op === 0 && n > 0) p = heap.alignedAlloc(1 << (4 + (r() % 13)), n);
        else if (op === 1) p = heap.malloc(n);
        else p = heap.calloc(m, n);
        if (p === 0) continue;
        if (op >= 2) {
          const at = firstNonZero(heap, p, m * n);
          if (at >= 0 && bad.length < 5) bad.push(`step ${i}: calloc(${m}, ${n}) = ${p}: byte ${at} is ${heap.u8[p + at]}`);
        }
        heap.u8.fill(1 + (i % 255), p, p + heap.usableSize(p));
        live.push(p);
      } else if (op < 6) {
        const j = r() % live.length;
        const q = heap.realloc(live[j]!, pick());
        if (q === 0) continue;
        live[j] = q;
        heap.u8.fill(1 + (i % 255), q, q + heap.usableSize(q));
      } else {
        const j = r() % live.length;
        heap.free(live[j]!);
        live[j] = live[live.length - 1]!;
        live.pop();
      }
      if (i % 1000 === 999) heap.flush();
    }
    expect(bad).toEqual([]);
    expect(checked(heap)).toBe('passes');
  });
});

// ---- across threads ----------------------------------------------------------------------

interface Thread { w: Worker; id: number; exit: Promise<number> }

const heaps: SharedHeap[] = [];
afterEach(async () => {
  await terminateAll();
  for (const h of heaps.splice(0)) h.detach();
});

function create(options: Parameters<typeof SharedHeap.create>[0]): SharedHeap {
  const h = SharedHeap.create(options);
  heaps.push(h);
  return h;
}

function start(heap: SharedArrayBuffer | SharedMemory): Promise<Thread> {
  const w = startWorker('calloc-paths-worker', { heap });
  const exit = new Promise<number>((r) => w.once('exit', r));
  return new Promise((r, j) => {
    w.once('error', j);
    w.once('message', (m: { threadId: number }) => r({ w, id: m.threadId, exit }));
  });
}

function ask<T>(x: Thread, m: unknown): Promise<T> {
  return new Promise((r, j) => {
    const onError = (e: unknown): void => j(e);
    x.w.once('error', onError);
    x.w.once('message', (v: T) => {
      x.w.off('error', onError);
      r(v);
    });
    x.w.postMessage(m);
  });
}

/** Main-thread calloc of `size` up to `count` times, checked; the blocks freed after. */
function callocHere(heap: SharedHeap, size: number, count = Infinity): string[] {
  const bad: string[] = [];
  const ps: number[] = [];
  for (let i = 0; i < count; i++) {
    const p = heap.calloc(1, size);
    if (p === 0) break;
    ps.push(p);
    const at = firstNonZero(heap, p, size);
    if (at >= 0 && bad.length < 5) bad.push(`main calloc(1, ${size}) = ${p}: byte ${at} is ${heap.u8[p + at]}`);
  }
  for (const p of ps) heap.free(p);
  return bad;
}

const THREAD_SIZES = [16, 48, 1000, 5120, 40 * KiB, MAX_SMALL, MAX_SMALL + 1, 400 * KiB];

describe('calloc after other threads', () => {
  it.each([['default', false], ['debug', true]])('blocks written by their owner, freed by another thread (remote frees), then calloc by the owner; and the reverse (%s)', async (_m, debug) => {
    const heap = create({ initialBytes: 16 * MiB, maxThreads: 4, debug });
    const w = await start(heap.buffer);
    const bad: string[] = [];
    for (const size of THREAD_SIZES) {
      // Owner: main. Written here, written again and freed by the worker.
      const count = Math.min(60, Math.floor((4 * MiB) / size));
      const ps: number[] = [];
      for (let i = 0; i < count; i++) {
        const p = heap.malloc(size);
        expect(p).not.toBe(0);
        heap.u8.fill(0x31, p, p + heap.usableSize(p));
        ps.push(p);
      }
      await ask(w, { op: 'write', ps, byte: 0x42 });
      await ask(w, { op: 'free', ps, flush: true });
      bad.push(...callocHere(heap, size, 80));
      // Owner: the worker. Written there, written again and freed here; the worker callocs.
      const { ps: qs } = await ask<{ ps: number[] }>(w, { op: 'fill', size, count, byte: 0x53 });
      for (const q of qs) heap.u8.fill(0x64, q, q + heap.usableSize(q));
      for (const q of qs) heap.free(q);
      heap.flush();
      const r = await ask<{ ps: number[]; bad: string[] }>(w, { op: 'calloc', size, count: 80 });
      bad.push(...r.bad);
      await ask(w, { op: 'free', ps: r.ps, flush: true });
    }
    expect(bad).toEqual([]);
    expect(checked(heap)).toBe('passes');
  });

  it.each([['detaches', 'detach'], ['dies, reclaimed', 'stop'], ['detaches leaving live blocks (abandoned slabs)', 'abandon']])(
    'a worker that fills the heap and %s: calloc on the main thread reads zero',
    async (_what, how) => {
      const heap = create({ initialBytes: 12 * MiB, maxThreads: 4 });
      const w = await start(heap.buffer);
      const kept: number[] = [];
      for (const size of [48, 1000, 5120, 40 * KiB, MAX_SMALL, 300 * KiB]) {
        const { ps } = await ask<{ ps: number[] }>(w, { op: 'fill', size, count: 10_000, byte: 0x77 });
        // Every other one kept live (abandon), or none; the rest freed without a flush.
        const free = how === 'abandon' ? ps.filter((_, i) => i % 2 === 0) : ps;
        if (how === 'abandon') kept.push(...ps.filter((_, i) => i % 2 === 1));
        await ask(w, { op: 'free', ps: free, flush: false });
      }
      if (how === 'stop') {
        w.w.postMessage({ op: 'stop' });
        await w.exit;
        expect(heap.reclaim(w.id)).toBe(true);
      } else {
        await ask(w, { op: 'detach' });
      }
      const bad: string[] = [];
      for (const size of [48, 1000, 5120, 40 * KiB, MAX_SMALL, MAX_SMALL + 1, 300 * KiB, 2 * MiB]) {
        bad.push(...callocHere(heap, size));
        heap.flush();
      }
      // Abandoned slabs: their live blocks freed here (adopted), then calloc again.
      for (const p of kept) heap.u8.fill(0x19, p, p + heap.usableSize(p));
      for (const p of kept) heap.free(p);
      heap.flush();
      for (const size of [48, 1000, 5120, 40 * KiB, MAX_SMALL, MAX_SMALL + 1, 300 * KiB]) {
        bad.push(...callocHere(heap, size));
        heap.flush();
      }
      expect(bad).toEqual([]);
      expect(checked(heap)).toBe('passes');
    },
  );

  it.each([['heap.memory (memory.fill)', true], ['the buffer (stores)', false]])('a worker attached with %s callocs zeroed blocks', async (_what, withMemory) => {
    const heap = create({ initialBytes: 12 * MiB, maxThreads: 4 });
    expect(heap.memory).toBeDefined();
    const w = await start(withMemory ? heap.memory! : heap.buffer);
    expect(await ask<{ has: boolean }>(w, { op: 'hasMemory' })).toEqual({ has: withMemory });
    const bad: string[] = [];
    for (const size of [16, 48, 49, 64, 1000, 5120, 40 * KiB, MAX_SMALL, MAX_SMALL + 1, 300 * KiB]) {
      // Main fills the heap and frees it all; then the worker fills and frees its own; the worker callocs.
      const ps: number[] = [];
      for (let p = heap.malloc(size); p !== 0; p = heap.malloc(size)) {
        heap.u8.fill(0x2e, p, p + heap.usableSize(p));
        ps.push(p);
      }
      for (const p of ps) heap.free(p);
      heap.flush();
      const { ps: qs } = await ask<{ ps: number[] }>(w, { op: 'fill', size, count: 40, byte: 0x3f });
      await ask(w, { op: 'free', ps: qs, flush: false });
      for (const n of [1, 2]) {
        const r = await ask<{ ps: number[]; bad: string[] }>(w, { op: 'calloc', size, count: 100_000, n: size % (2 * n) === 0 ? n : 1 });
        bad.push(...r.bad);
        await ask(w, { op: 'free', ps: r.ps, flush: true });
      }
    }
    expect(bad).toEqual([]);
    expect(checked(heap)).toBe('passes');
  });

  it('the main thread detaches and attaches again (with the buffer, then with the memory): calloc reads zero', async () => {
    let heap = create({ initialBytes: 12 * MiB, maxThreads: 4 });
    const buffer = heap.buffer;
    const memory = heap.memory!;
    const w = await start(memory);
    const bad: string[] = [];
    for (const again of ['buffer', 'memory']) {
      for (const size of [48, 1000, 40 * KiB, MAX_SMALL + 1]) {
        const ps: number[] = [];
        for (let i = 0; i < 30; i++) {
          const p = heap.malloc(size);
          heap.u8.fill(0x81, p, p + heap.usableSize(p));
          ps.push(p);
        }
        for (const p of ps.slice(0, 15)) heap.free(p);
        await ask(w, { op: 'free', ps: ps.slice(15), flush: true });
      }
      heaps.splice(heaps.indexOf(heap), 1);
      heap.detach();
      heap = SharedHeap.attach(again === 'buffer' ? buffer : memory);
      heaps.push(heap);
      expect(heap.memory === undefined).toBe(again === 'buffer');
      for (const size of [48, 1000, 40 * KiB, MAX_SMALL + 1, 64]) bad.push(...callocHere(heap, size));
    }
    expect(bad).toEqual([]);
    expect(checked(heap)).toBe('passes');
  });

  it('workers terminated at random points of their calls, reclaimed: calloc on the main thread reads zero', async () => {
    const heap = create({ initialBytes: 16 * MiB, maxThreads: 6 });
    const bad: string[] = [];
    for (let round = 0; round < 6; round++) {
      const ws = await Promise.all([start(heap.buffer), start(heap.buffer)]);
      await Promise.all(ws.map((w, i) => ask(w, { op: 'churn', seed: 1 + round * 2 + i })));
      await new Promise((r) => setTimeout(r, 20 + 17 * round));
      for (const w of ws) {
        await w.w.terminate();
        expect(heap.reclaim(w.id)).toBe(true);
      }
      for (const size of [16, 48, 1000, 5000, 40 * KiB, MAX_SMALL, MAX_SMALL + 1, 300 * KiB]) {
        bad.push(...callocHere(heap, size).map((s) => `round ${round}: ${s}`));
        heap.flush();
      }
      expect(checked(heap)).toBe('passes');
    }
    expect(bad).toEqual([]);
  });

  it('a growable heap grown and dirtied by a worker: calloc on the main thread (views older than the buffer)', async () => {
    const heap = create({ initialBytes: 4 * MiB, maxBytes: 24 * MiB, maxThreads: 4 });
    const w = await start(heap.buffer);
    const bad: string[] = [];
    for (const size of [1000, 40 * KiB, 300 * KiB, 3 * MiB]) {
      const { ps } = await ask<{ ps: number[] }>(w, { op: 'fill', size, count: 100_000, byte: 0x4d });
      await ask(w, { op: 'free', ps, flush: true });
    }
    // The main thread has made no call since the heap grew: its views are the first ones.
    for (const size of [3 * MiB, 300 * KiB, MAX_SMALL + 1, 1000, 40 * KiB]) {
      bad.push(...callocHere(heap, size));
      heap.flush();
    }
    expect(bad).toEqual([]);
    expect(checked(heap)).toBe('passes');
  });
});
