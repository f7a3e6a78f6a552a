/**
 * The second case docs/robustness.md left open for a stray write into a dead freer's chain (an
 * audit, 2026-12-05): worker 2 dies before it publishes a chain of blocks it freed into the main
 * thread's slab; the program writes the offset of that chain's second block into a block waiting on
 * the slab's remote list (a freed node's `next`). Before the links' check word (layout.ts
 * FREE_CHECK_W) the owner's collection followed that link, handed out chain[1..3], and where the
 * program gave two of them to worker 1 to free among others, reclaim(worker 2) took them for its
 * chain's, relinked them over worker 1's list and lost a block for good (check() failed). The
 * collection now tells the stray link from the heap's: the chain is not taken, the reclaim
 * publishes it whole, and no block is lost.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_PUBLISH } from '../src/crash.js';
import { checked } from './fixtures.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';
const MiB = 1 << 20;
afterEach(terminateAll);
describe('a stray link into a dead freer\'s chain, then a third thread\'s frees', () => {
  it('the collection does not take the chain; the reclaim publishes it and nothing is lost', async () => {
    const CAP = 8;
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4, magazineCapacity: CAP });
    const u8 = heap.u8;
    const i32 = new Int32Array(heap.buffer);
    const a = Array.from({ length: 6 }, () => heap.malloc(64));
    const b = Array.from({ length: CAP + 1 }, () => heap.malloc(64));
    const xy = Array.from({ length: 2 }, () => heap.malloc(64));
    for (const p of [...a, ...b, ...xy]) u8.fill(0x5a, p, p + 64);
    const w1 = startHeapWorker();
    await w1.remote.attach(heap.buffer);
    await w1.remote.freeMany(a);
    const w2 = startHeapWorker();
    const w2Id = await w2.remote.attach(heap.buffer);
    for (const p of b.slice(0, CAP)) await w2.remote.free(p);
    void w2.remote.freeStoppingAt(b[CAP]!, CP_PUBLISH, CAP / 2 + 1).catch(() => undefined);
    await w2.exited;
    const chain = b.slice(CAP / 2, CAP);
    i32[a[5]! >>> 2] = chain[1]!;
    const live: number[] = [];
    for (let i = 0; i < 300; i++) live.push(heap.malloc(64));
    live.forEach((p, i) => u8.fill(i & 0xff, p, p + 64));
    expect(chain.filter((p) => live.includes(p)), 'chain blocks handed out').toEqual([]);
    // Worker 1 frees two more blocks into the slab's remote list meanwhile.
    await w1.remote.freeMany([xy[0]!, xy[1]!]);
    const tagOf = new Map(live.map((p, i) => [p, i & 0xff]));
    expect(heap.reclaim(w2Id)).toBe(true);
    const changed = [...tagOf].filter(([p, tag]) => !u8.subarray(p, p + 64).every((x) => x === tag)).map(([p]) => p);
    expect(changed).toEqual([]);
    const more = Array.from({ length: 300 }, () => heap.malloc(64));
    const liveSet = new Set(tagOf.keys());
    expect(more.filter((p) => liveSet.has(p) || p <= 0)).toEqual([]);
    expect(new Set(more).size).toBe(more.length);
    expect(checked(heap)).toBe('passes');
    for (const p of [...tagOf.keys(), ...more]) heap.free(p);
    heap.flush();
    expect(checked(heap)).toBe('passes');
    const again = new Set(Array.from({ length: 400 }, () => heap.malloc(64)));
    expect([...a, ...chain, ...xy].filter((p) => !again.has(p)), 'blocks lost').toEqual([]);
  }, 30_000);
});
