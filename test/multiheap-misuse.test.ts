/**
 * Audit of several heaps used at once (checks that held): four heaps of different options in one
 * thread, malloc/calloc/alignedAlloc/realloc/free interleaved on them, and now and then a live
 * block of one heap given to another's free, realloc or usableSize. Where that offset is not a
 * live block of the receiving heap, the call must throw a HeapError naming the call, and change
 * nothing: every heap checks, every live block keeps its bytes, liveBytes counts its own blocks.
 * (Where it is a live block of the receiving heap, that heap frees or resizes its own block: an
 * offset carries no heap; those draws are skipped. Heaps of the same options hand out the same
 * offsets in the same order, so such a mix-up often lands on a live block.)
 */
import { describe, expect, it } from 'vitest';
import { HeapError, SharedHeap, type HeapOptions } from '../src/index.js';
import { checked, MiB, rng } from './fixtures.js';

const OPTIONS: HeapOptions[] = [
  { initialBytes: 8 * MiB, maxThreads: 2 },
  { initialBytes: 4 * MiB, maxBytes: 64 * MiB, maxThreads: 4, magazineCapacity: 8, refillCount: 4 },
  { initialBytes: 8 * MiB, maxThreads: 30, debug: true },
  { initialBytes: 16 * MiB, maxThreads: 2, magazineCapacity: 128, refillCount: 64, drainInterval: 16 },
];

describe('blocks of one heap given to another', () => {
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: refused with a clear error, both heaps intact`, () => {
      const rnd = rng(seed);
      const heaps = OPTIONS.map((o) => ({ h: SharedHeap.create(o), live: new Map<number, { n: number; v: number }>(), debug: o.debug === true }));
      const problems: string[] = [];
      let tag = 1;
      const size = (): number => {
        const r = rnd() % 100;
        return r < 60 ? rnd() % 512 : r < 85 ? rnd() % 16384 : r < 97 ? rnd() % 131072 : 131073 + (rnd() % (3 * MiB));
      };
      for (let step = 0; step < 3000; step++) {
        const H = heaps[rnd() % heaps.length]!;
        const op = rnd() % 10;
        const keys = [...H.live.keys()];
        if (op < 4 || keys.length === 0) {
          const n = size();
          const k = rnd() % 3;
          const p = k === 0 ? H.h.malloc(n) : k === 1 ? H.h.calloc(1, n) : H.h.alignedAlloc(1 << (rnd() % 14), n);
          if (p === 0) continue;
          const v = tag++ & 255;
          H.h.u8.fill(v, p, p + n);
          H.live.set(p, { n, v });
        } else if (op < 7) {
          const p = keys[rnd() % keys.length]!;
          H.h.free(p);
          H.live.delete(p);
        } else if (op < 8) {
          const p = keys[rnd() % keys.length]!;
          const { n, v } = H.live.get(p)!;
          const m = size();
          const q = H.h.realloc(p, m);
          if (q === 0) continue;
          H.live.delete(p);
          for (let i = 0; i < Math.min(n, m); i++) {
            if (H.h.u8[q + i] !== v) {
              problems.push(`step ${step}: realloc lost byte ${i}`);
              break;
            }
          }
          const v2 = tag++ & 255;
          H.h.u8.fill(v2, q, q + m);
          H.live.set(q, { n: m, v: v2 });
        } else {
          const others = heaps.filter((o) => o !== H && o.live.size > 0);
          if (others.length === 0) continue;
          const O = others[rnd() % others.length]!;
          const ok = [...O.live.keys()];
          const p = ok[rnd() % ok.length]!;
          if (H.live.has(p)) continue; // a live block of H: H's own
          const fn = (['free', 'realloc', 'usableSize'] as const)[rnd() % 3]!;
          try {
            if (fn === 'free') H.h.free(p);
            else if (fn === 'realloc') H.h.realloc(p, 64);
            else H.h.usableSize(p);
            problems.push(`step ${step}: heap ${heaps.indexOf(H)} ${fn}(0x${p.toString(16)}) of heap ${heaps.indexOf(O)} accepted`);
          } catch (e) {
            if (!(e instanceof HeapError) || !e.message.startsWith(`${fn}(ptr`)) problems.push(`step ${step}: ${fn}: ${String(e)}`);
          }
        }
        if (step % 500 === 0) heaps.forEach((X, i) => { const c = checked(X.h); if (c !== 'passes') problems.push(`step ${step} heap ${i}: ${c}`); });
      }
      heaps.forEach((X, i) => {
        for (const [p, { n, v }] of X.live) {
          for (let j = 0; j < n; j++) {
            if (X.h.u8[p + j] !== v) {
              problems.push(`heap ${i}: block 0x${p.toString(16)} lost byte ${j}`);
              break;
            }
          }
        }
        const c = checked(X.h);
        if (c !== 'passes') problems.push(`heap ${i}: ${c}`);
        let sum = 0;
        for (const p of X.live.keys()) sum += X.h.usableSize(p);
        if (!X.debug && X.h.stats().liveBytes !== sum) problems.push(`heap ${i}: liveBytes ${X.h.stats().liveBytes}, its blocks ${sum}`);
        for (const p of X.live.keys()) X.h.free(p);
        X.h.flush();
        if (X.h.stats().liveBytes !== 0) problems.push(`heap ${i}: liveBytes ${X.h.stats().liveBytes} after freeing all`);
        X.h.detach();
      });
      expect(problems).toEqual([]);
    });
  }
});
