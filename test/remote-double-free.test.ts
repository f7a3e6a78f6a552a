/**
 * A block another thread freed is told from a live one on every thread, at every stage of its
 * way back: in the freer's magazine (CACHED), on its slab's remote list after the freer's drain
 * (PENDING), and back in its slab once the owner collected it (FREE). The PENDING stage had no
 * deterministic test (an audit of the test suite, 2026-12-07: a build whose free took PENDING for
 * ALLOCATED passed test/errors.test.ts whole; only the randomized misuse model caught it). And the
 * slab's state after a collection is checked while the slab still holds live blocks, whose
 * contents must survive (the cross-thread tests of test/threads.test.ts end with whole slabs
 * emptied, where a collection that forgot a block's region bit went unseen).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DoubleFreeError, SharedHeap } from '../src/index.js';
import { G_MAG_CAP, G_MAX_SUPERS, G_MAX_THREADS, SLOT_SHIFT, SM_CLS1, SM_DATA, SM_SHIFT, SM_STATE, ST_CACHED, ST_FREE, ST_PENDING, geometry } from '../src/layout.js';
import { NUM_CLASSES, SIZE } from '../src/size-classes.js';
import { startHeapWorker, terminateAll, type RemoteHeap } from './remote-heap.js';

const MiB = 1 << 20;
afterEach(terminateAll);

async function attachedWorker(heap: SharedHeap): Promise<RemoteHeap> {
  const r = startHeapWorker((w) => heap.watch(w));
  await r.remote.attach(heap.buffer);
  return r;
}

/** The state byte of small block `p`, read as a debugger would from layout.ts and the header. */
function stateOf(heap: SharedHeap, p: number): number {
  const i32 = new Int32Array(heap.buffer);
  const geo = geometry(i32[G_MAX_SUPERS]!, i32[G_MAX_THREADS]!, i32[G_MAG_CAP]!, NUM_CLASSES);
  const mW = geo.slotMetaW + ((p >>> SLOT_SHIFT) << SM_SHIFT);
  const cls = i32[mW + SM_CLS1]! - 1;
  return heap.u8[i32[mW + SM_STATE]! + (p - i32[mW + SM_DATA]!) / SIZE[cls]!]!;
}

function fillPattern(heap: SharedHeap, p: number, n: number): void {
  for (let i = 0; i < n; i++) heap.u8[p + i] = (p + i * 7) & 0xff;
}
function keepsPattern(heap: SharedHeap, p: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (heap.u8[p + i] !== ((p + i * 7) & 0xff)) return false;
  return true;
}

const calls: Array<[string, (h: SharedHeap, p: number) => unknown]> = [
  ['free', (h, p) => h.free(p)],
  ['realloc', (h, p) => h.realloc(p, 16)],
  ['usableSize', (h, p) => h.usableSize(p)],
];

describe('a block another thread freed', () => {
  it('is refused as a double free while CACHED, PENDING and FREE, and its slab stays sound with live blocks beside it', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const r = await attachedWorker(heap);
    const blocks = Array.from({ length: 40 }, () => heap.malloc(64));
    for (const p of blocks) fillPattern(heap, p, 64);
    const freed = blocks.filter((_, i) => i % 3 === 0);
    const live = blocks.filter((_, i) => i % 3 !== 0);
    const expectRefused = (stage: string): void => {
      for (const p of freed) {
        for (const [name, call] of calls) {
          let err: unknown;
          try {
            call(heap, p);
          } catch (e) {
            err = e;
          }
          expect(err, `${name}(${p}) of a block the worker freed (${stage})`).toBeInstanceOf(DoubleFreeError);
        }
      }
      for (const p of live) expect(keepsPattern(heap, p, 64), `live block ${p} (${stage})`).toBe(true);
      heap.check();
    };

    // In the worker's magazine.
    for (const p of freed) await r.remote.free(p);
    expect(freed.every((p) => stateOf(heap, p) === ST_CACHED)).toBe(true);
    expectRefused('CACHED');

    // On the slab's remote list: the worker drained them, the owner (this thread) has not looked.
    await r.remote.flush();
    expect(freed.every((p) => stateOf(heap, p) === ST_PENDING)).toBe(true);
    expectRefused('PENDING');

    // Collected by the owner into its slab, which still holds the live blocks.
    heap.flush();
    expect(freed.every((p) => stateOf(heap, p) === ST_FREE)).toBe(true);
    expectRefused('FREE');
    expect(heap.stats().liveBlocks).toBe(live.length);

    // The freed blocks are handed out again, and the live ones are untouched.
    const again = new Set(Array.from({ length: freed.length }, () => heap.malloc(64)));
    for (const p of freed) expect(again.has(p), `block ${p} handed out again`).toBe(true);
    for (const p of live) expect(keepsPattern(heap, p, 64)).toBe(true);
    for (const p of [...again, ...live]) heap.free(p);
    heap.flush();
    heap.check();
    expect(heap.stats().liveBytes).toBe(0);
  }, 20_000);
});
