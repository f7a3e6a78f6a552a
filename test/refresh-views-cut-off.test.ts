/**
 * A thread's views of a growable heap, made again after another thread grew the buffer
 * (context.ts refreshViews), cut off by a stack overflow in a call that runs outside guarded()
 * (fault.ts) and so leaves the instance in use: heap.u8 here, as a deep recursion reading its
 * blocks meets it (an audit of growable heaps, 2026-12-05).
 *
 * refreshViews stored the new generation (G_GEN) first and made the views after it: cut off in
 * between, the context held the current generation with the views of the shorter buffer, and
 * ensureViews, which compares generations, never made them again (until the next growth). heap.u8
 * then stayed short for good (found here within 10 rounds: a 15 MiB array over a 16 MiB buffer),
 * the thread's own critical sections ran on those views (a slab carved beyond them got no state
 * bytes, its blocks were handed out as FREE, and what the program wrote into them through heap.u8
 * went nowhere), and free refused its blocks there as outside the heap.
 *
 * Another thread's growth is made here as slots.ts growBuffer makes it (buf.grow, G_GEN, then
 * G_BUFFER_SUPERS), so that every round needs new views. The stack's limit is met as
 * workers/overflow-worker.ts meets it: at each of the last depths, through frames of 0 to 15 more
 * 8-byte arguments, so that the RangeError comes at every point of the call.
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_BUFFER_SUPERS, G_GEN, SUPER_BYTES } from '../src/layout.js';
import { checked } from './fixtures.js';
import { nearTheStackLimit, throughPads } from '../workers/stack-limit.js';

const MiB = 1 << 20;
const ROUNDS = 40;

describe('views made again after a growth, cut off by a stack overflow', () => {
  it('heap.u8 still covers the whole buffer after it threw, and blocks past the old end keep their data', () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxBytes: (8 + ROUNDS + 4) * MiB, maxThreads: 2 });
    const t = internals(heap);
    const buf = heap.buffer as SharedArrayBuffer & { grow(n: number): void };
    const growElsewhere = (): void => {
      buf.grow(buf.byteLength + MiB);
      Atomics.add(t.i32, G_GEN, 1);
      Atomics.store(t.i32, G_BUFFER_SUPERS, buf.byteLength / SUPER_BYTES);
    };
    let reads = 0;
    const op = (): void => {
      if (heap.u8 !== undefined) reads++;
    };
    throughPads(op); // compiled before the stack's limit
    const short: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      growElsewhere();
      nearTheStackLimit(1500, op);
      const u8 = heap.u8;
      if (u8.length !== buf.byteLength) {
        short.push(`round ${round}: heap.u8 holds ${u8.length} bytes of a ${buf.byteLength}-byte buffer`);
        break;
      }
    }
    expect(reads).toBeGreaterThan(0);
    expect(short, 'heap.u8 after a stack overflow inside it').toEqual([]);
    // The thread fills the heap (carving its last SuperSlabs, grown by "another thread"): every
    // block's bytes read back, and every free is taken.
    const blocks: [number, number][] = [];
    for (let p = heap.malloc(60_000), k = 1; p !== 0; p = heap.malloc(60_000), k++) {
      heap.u8.fill(k & 0xff, p, p + 60_000);
      blocks.push([p, k & 0xff]);
    }
    expect(blocks.at(-1)![0]).toBeGreaterThan(buf.byteLength - 2 * MiB);
    const u8 = heap.u8;
    const lost = blocks.filter(([p, v]) => u8[p] !== v || u8[p + 59_999] !== v);
    expect(lost.length, 'blocks whose bytes did not stay').toBe(0);
    expect(checked(heap)).toBe('passes');
    for (const [p] of blocks) heap.free(p);
    heap.flush();
    expect(checked(heap)).toBe('passes');
    expect(heap.stats().liveBytes).toBe(0);
    heap.detach();
  });
});
