/**
 * Stray writes into freed memory outside debug mode: garbage over the whole usable size of blocks
 * just freed, wherever the heap keeps them (a magazine, back in their slab, an EMPTY slab in Stage
 * 1 or given back, a large run in its span's list or given back, a block realloc moved away from,
 * an alignedAlloc block, a block its owner collected from another thread's free), then more use.
 * None of it may mislead the allocator: no two live blocks overlap, live blocks keep their bytes,
 * calloc's blocks read zero, check() passes. (The two words the heap keeps in a freed block, the remote-list link of a block
 * freed by another thread and not yet collected and its check: test/faults.test.ts,
 * test/stray-write-dead-freer-chain.test.ts and test/stray-write-live-freer-chain.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { checked, rng } from './fixtures.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

const MiB = 1 << 20;

afterEach(terminateAll);

/** Live blocks with a pattern each; freed ones remembered with their usable sizes for the strays. */
class Ledger {
  live = new Map<number, { n: number; tag: number }>();
  constructor(readonly heap: SharedHeap) {}

  add(p: number, n: number, tag: number): void {
    expect(p, `malloc(${n}) failed`).toBeGreaterThan(0);
    expect(this.live.has(p), `block ${p} handed out twice`).toBe(false);
    this.live.set(p, { n, tag });
    const u8 = this.heap.u8;
    for (let i = 0; i < n; i += 61) u8[p + i] = (tag + i) & 0xff;
    u8[p + n - 1] = (tag + n - 1) & 0xff;
  }

  /** Takes p out of the ledger (before a free) and returns its usable size. */
  drop(p: number): number {
    this.verifyOne(p);
    this.live.delete(p);
    return this.heap.usableSize(p);
  }

  verifyOne(p: number): void {
    const { n, tag } = this.live.get(p)!;
    const u8 = this.heap.u8;
    const bad: number[] = [];
    for (let i = 0; i < n; i += 61) if (u8[p + i] !== ((tag + i) & 0xff)) bad.push(i);
    if (u8[p + n - 1] !== ((tag + n - 1) & 0xff)) bad.push(n - 1);
    expect(bad.slice(0, 4), `live block ${p} (${n} bytes) changed`).toEqual([]);
  }

  verify(): void {
    for (const p of this.live.keys()) this.verifyOne(p);
    const ranges = [...this.live.keys()].map((p) => [p, p + this.heap.usableSize(p)] as const).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < ranges.length; i++) {
      expect(ranges[i]![0] >= ranges[i - 1]![1], `live blocks overlap: ${ranges[i - 1]} and ${ranges[i]}`).toBe(true);
    }
    expect(checked(this.heap)).toBe('passes');
  }
}

/** Writes garbage over [p, p + n): 0xff bytes, random bytes, or words that look like block offsets. */
function stray(heap: SharedHeap, p: number, n: number, kind: number, next: () => number, near: number[]): void {
  const u8 = heap.u8;
  if (kind === 0) u8.fill(0xff, p, p + n);
  else if (kind === 1) for (let i = 0; i < n; i++) u8[p + i] = next() & 0xff;
  else {
    const dv = new DataView(heap.buffer);
    for (let i = 0; i + 4 <= n; i += 4) {
      const r = next();
      const v = near.length > 0 && (r & 3) !== 0 ? near[r % near.length]! + (r & 0x30) : (r & 0x7ffffff0);
      dv.setInt32(p + i, v, true);
    }
  }
}

const SMALL = [0, 1, 16, 48, 100, 512, 1000, 3000, 5000, 12_000, 40_000, 100_000, 131_072];
const LARGE = [131_073, 200_000, 700_000, MiB, MiB + 1, 3 * MiB];

/** How often the strays hit a freed large run kept in its span's list (so that the test covers it). */
const seen = { pooledRuns: 0 };

/** malloc / calloc / free / realloc / alignedAlloc at random, with strays over everything freed. */
function churn(heap: SharedHeap, led: Ledger, seed: number, rounds: number): void {
  const next = rng(seed);
  const sizeOf = (): number => {
    const r = next();
    return (r & 7) === 0 ? LARGE[r % LARGE.length]! : SMALL[r % SMALL.length]! + ((r >>> 8) & 63);
  };
  let tag = seed;
  for (let k = 0; k < rounds; k++) {
    const r = next() % 100;
    const keys = [...led.live.keys()];
    if (r < 30 || keys.length === 0) {
      const n = sizeOf();
      led.add(heap.malloc(n), Math.max(n, 1), ++tag);
    } else if (r < 38) {
      // calloc's zeroing of a large run skips what the heap never handed out (SM_TOUCHED): a stray
      // write lies inside a block once handed out, so it is zeroed all the same.
      const n = sizeOf();
      const p = heap.calloc(1, n);
      expect(p).toBeGreaterThan(0);
      const u8 = heap.u8;
      let nonzero = -1;
      for (let i = 0; i < n && nonzero < 0; i++) if (u8[p + i] !== 0) nonzero = i;
      expect(nonzero, `calloc(1, ${n}) at ${p}: a byte not zero`).toBe(-1);
      led.add(p, Math.max(n, 1), ++tag);
    } else if (r < 46) {
      const align = 1 << (next() % 21);
      const n = sizeOf();
      led.add(heap.alignedAlloc(align, n), Math.max(n, 1), ++tag);
    } else if (r < 56) {
      // realloc: the old block may move; when it does, the stray goes over where it was.
      const p = keys[next() % keys.length]!;
      const old = led.live.get(p)!;
      const usable = led.drop(p);
      const n = sizeOf();
      const q = heap.realloc(p, n);
      expect(q).toBeGreaterThan(0);
      // Its first min(old, new) bytes came along: only re-tag it (the ledger writes its pattern again).
      const keep = n === 0 ? 0 : Math.min(old.n, n); // realloc(p, 0) lets p go: a new block of size 0
      const u8 = heap.u8;
      let same = true;
      for (let i = 0; i < keep; i += 61) if (u8[q + i] !== ((old.tag + i) & 0xff)) same = false;
      expect(same, `realloc(${p}, ${n}) lost the block's bytes`).toBe(true);
      if (q !== p && (q >= p + usable || q + heap.usableSize(q) <= p)) stray(heap, p, usable, next() % 3, next, keys);
      led.add(q, Math.max(n, 1), ++tag);
    } else {
      const p = keys[next() % keys.length]!;
      const usable = led.drop(p);
      heap.free(p);
      if (heap.stats().largePooledBytes > 0) seen.pooledRuns++;
      stray(heap, p, usable, next() % 3, next, keys);
    }
    if (k % 97 === 0) heap.flush();
  }
}

describe('stray writes into freed memory (normal mode)', () => {
  it.each([
    ['defaults', {}],
    ['small magazines, frequent drains, no Stage-1 keep', { magazineCapacity: 2, refillCount: 1, drainInterval: 3, stage1Keep: 0 }],
    ['trim', { magazineCapacity: 8, trimInterval: 1 }],
  ] as [string, HeapOptions][])('on one thread (%s): nothing overlaps, nothing live changes, check() passes', (_name, opts) => {
    const heap = SharedHeap.create({ initialBytes: 48 * MiB, maxThreads: 2, ...opts });
    seen.pooledRuns = 0;
    const led = new Ledger(heap);
    for (const seed of [1, 2, 3]) {
      churn(heap, led, seed * 7919, 1500);
      led.verify();
    }
    // Everything freed, every freed byte garbage: EMPTY slabs in Stage 1 or given back, runs in
    // their lists or given back; then the heap is used again.
    const next = rng(99);
    for (const p of [...led.live.keys()]) {
      const usable = led.drop(p);
      heap.free(p);
      stray(heap, p, usable, next() % 3, next, []);
    }
    heap.flush();
    churn(heap, led, 4242, 1500);
    led.verify();
    // The strays hit freed runs in the large-run lists and EMPTY slabs pooled in Stage 1 (unless
    // stage1Keep is 0: neither is kept then), and slots given back.
    const st = heap.stats().stages;
    if (opts.stage1Keep !== 0) expect(seen.pooledRuns).toBeGreaterThan(0);
    expect(st.stage1Pushes + st.slotsReturned).toBeGreaterThan(0);
    heap.detach();
  }, 60_000);

  it('with blocks freed by another thread and collected by their owner', async () => {
    const heap = SharedHeap.create({ initialBytes: 96 * MiB, maxThreads: 4, magazineCapacity: 4, refillCount: 2 });
    const led = new Ledger(heap);
    const w = startHeapWorker();
    await w.remote.attach(heap.buffer);
    const next = rng(7);
    for (let round = 0; round < 6; round++) {
      churn(heap, led, 100 + round, 300);
      // The worker frees a third of the main thread's blocks (remote frees, flushed: on the slabs'
      // remote lists, or the large runs in their lists or given back) ...
      const give = [...led.live.keys()].filter(() => next() % 3 === 0);
      const sizes = give.map((p) => led.drop(p));
      await w.remote.freeMany(give);
      // ... the main thread collects them (its flush takes its notices) and mallocs as much again ...
      heap.flush();
      for (let i = 0; i < give.length; i++) {
        const n = sizes[i]!;
        led.add(heap.malloc(n), n, 5000 + round * 1000 + i);
      }
      // ... and the ones it did not hand out again are FREE (or pooled): garbage over them.
      const handed = new Set(led.live.keys());
      give.forEach((p, i) => {
        if (!handed.has(p) && ![...handed].some((q) => q < p + sizes[i]! && p < q + heap.usableSize(q))) {
          stray(heap, p, sizes[i]!, next() % 3, next, [...handed]);
        }
      });
      // The worker's own blocks, freed there: its magazines and slabs.
      const ws: number[] = [];
      for (let i = 0; i < 40; i++) ws.push(await w.remote.malloc(SMALL[i % SMALL.length]! + i));
      for (const p of ws) {
        const u = heap.usableSize(p);
        await w.remote.free(p);
        stray(heap, p, u, next() % 3, next, [...handed]);
      }
      led.verify();
    }
    await w.remote.flush();
    led.verify();
    await w.remote.detach();
    heap.detach();
  }, 60_000);
});
