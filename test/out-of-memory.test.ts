/**
 * Out of memory with nothing live: a thread's caches (its magazines, the empty slabs it keeps for
 * its own reuse) must not make malloc answer 0 while the heap could serve the request. The thread
 * that runs out gives back everything it caches and tries again (magazine.ts refillMagazine,
 * alloc.ts largeAllocOrFlush); a thread that freed much and went idle keeps at most
 * KEEP_EMPTY_BYTES of empty slabs (slab.ts afterBlocksReturned) and its magazines.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MAP_SLAB, SharedHeap, readHeapMap, type HeapOptions } from '../src/index.js';
import { FA_LISTENING, FA_NONE, KEEP_EMPTY_BYTES, SLOT_BYTES, TH_FLUSH_ASK } from '../src/layout.js';
import { internals } from '../src/heap.js';
import { checked, MiB } from './fixtures.js';
import { release, startHeapWorker, terminateAll, waitFor } from './remote-heap.js';

const heaps: SharedHeap[] = [];
function fresh(options: HeapOptions = {}): SharedHeap {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4, ...options });
  heaps.push(heap);
  return heap;
}
afterEach(async () => {
  await terminateAll();
  for (const h of heaps.splice(0)) h.detach();
});
/** Detaches a heap the test is done with (its memory can go before the test ends). */
function done(heap: SharedHeap): void {
  heaps.splice(heaps.indexOf(heap), 1);
  heap.detach();
}

/** Bytes of the slabs the calling thread owns (readHeapMap). */
function ownedBytes(heap: SharedHeap): number {
  const m = readHeapMap(heap.buffer);
  let n = 0;
  for (let s = 0; s < m.kind.length; s++) if (m.kind[s] === MAP_SLAB && m.owner[s] === heap.threadId) n += SLOT_BYTES;
  return n;
}

/** Allocates blocks of `size` until malloc returns 0; returns them. */
function fill(heap: SharedHeap, size: number): number[] {
  const blocks: number[] = [];
  for (let p = heap.malloc(size); p !== 0; p = heap.malloc(size)) blocks.push(p);
  return blocks;
}

// Small classes of many, few and one block a slab, a class of two slots a slab, large runs.
const SIZES = [100, 1000, 20000, 100000, MiB + 1];
const capacity = new Map<string, number>();
/** How many blocks of `size` a fresh heap with `options` holds. */
function freshCapacity(options: HeapOptions, size: number): number {
  const key = `${JSON.stringify(options)} ${size}`;
  let n = capacity.get(key);
  if (n === undefined) {
    const heap = fresh(options);
    n = fill(heap, size).length;
    capacity.set(key, n);
    done(heap);
  }
  return n;
}

describe('a heap filled and emptied by one thread', () => {
  // The option values that keep slabs longest (no periodic look, no Stage-1 list) and the defaults.
  for (const options of [{}, { drainInterval: 2 ** 30 }, { stage1Keep: 0, magazineCapacity: 4096 }, { trimInterval: 1 }] as HeapOptions[]) {
    it(`fills again with any size, with ${JSON.stringify(options)}`, () => {
      for (const x of SIZES) {
        for (const y of SIZES) {
          const heap = fresh(options);
          for (const p of fill(heap, x)) heap.free(p);
          const again = fill(heap, y);
          // 90%: large runs after small slabs may find the slots split where the slabs were.
          expect(again.length, `${x} then ${y}`).toBeGreaterThanOrEqual(Math.floor(0.9 * freshCapacity(options, y)));
          for (const p of again) heap.free(p);
          expect(checked(heap)).toBe('passes');
          done(heap);
        }
      }
    });
  }

  it('realloc, calloc and alignedAlloc find the memory too', () => {
    const heap = fresh();
    for (const p of fill(heap, 20000)) heap.free(p);
    const a = heap.calloc(1, 8 * MiB);
    const b = heap.alignedAlloc(MiB, 2 * MiB);
    const c = heap.realloc(heap.malloc(100), 4 * MiB);
    expect([a, b, c].every((p) => p !== 0)).toBe(true);
    expect(heap.u8.subarray(a, a + 8 * MiB).every((v) => v === 0)).toBe(true);
    expect(checked(heap)).toBe('passes');
  });
});

describe('a heap emptied by a thread that then stays idle', () => {
  it('serves another thread all but what the idle thread may keep', async () => {
    for (const [x, y] of [[100000, 100000], [20000, 1000], [1000, 20000], [100, MiB + 1]]) {
      const heap = fresh({ drainInterval: 2 ** 30 });
      const main = fill(heap, x);
      for (const p of main) heap.free(p); // and no flush()
      const w = startHeapWorker();
      await w.remote.attach(heap.buffer);
      const got = await w.remote.fillAndFree(y);
      // What the idle thread may hold: its kept empty slabs and a magazine (256 KiB) of class x.
      const lost = KEEP_EMPTY_BYTES + (256 << 10) + y;
      expect(got * y, `${x} then ${y} in a worker`).toBeGreaterThanOrEqual(freshCapacity({ drainInterval: 2 ** 30 }, y) * y - lost);
      await w.remote.detach();
      release(w);
      await w.worker.terminate();
      expect(checked(heap)).toBe('passes');
      done(heap);
    }
  });

  it('keeps empty slabs within its budget, and gives them back at flush()', () => {
    const heap = fresh({ drainInterval: 2 ** 30 });
    const blocks = fill(heap, 5000);
    expect(ownedBytes(heap)).toBeGreaterThan(16 * MiB);
    for (const p of blocks) heap.free(p);
    // What it still owns: the empty slabs it keeps, and the slabs of the blocks in its magazine (256 KiB).
    expect(ownedBytes(heap)).toBeLessThanOrEqual(KEEP_EMPTY_BYTES + 2 * (256 << 10));
    heap.flush();
    expect(ownedBytes(heap)).toBe(0);
    expect(checked(heap)).toBe('passes');
  });
});

describe('blocks other threads freed into the slabs of an owner that stays idle', () => {
  it('come back to a thread out of memory: the idle owner flushes when asked (flush-ask.ts)', async () => {
    // The owner fills the heap and hands every block to a worker, which frees them all (remote
    // frees: they wait on the owner's slabs' remote lists) and then allocates. Until 2026-12-03 the
    // owner, idle meanwhile, held all of it and the worker's every malloc answered 0 (an audit's
    // repro). Now the worker, out of memory, asks; the owner's event loop flushes.
    for (const [x, y] of [[100, 100], [1000, 20000], [20000, 1000], [100, MiB + 1]]) {
      const heap = fresh();
      const t = internals(heap);
      expect(Atomics.load(t.i32, t.thW + TH_FLUSH_ASK)).toBe(FA_LISTENING);
      const blocks = fill(heap, x);
      const w = startHeapWorker();
      await w.remote.attach(heap.buffer);
      await w.remote.freeMany(blocks);
      // What the worker may lose: its own magazine of class y (256 KiB) and a block.
      const want = freshCapacity({}, y) * y - (256 << 10) - y;
      let got = await w.remote.fillAndFree(y);
      if (got * y < want) {
        // The owner's flush of ~290,000 blocks (10-15 ms here) outlasted the asker's 50 ms wait
        // under CI's load (5e5f486), when the asker did not wait for a flush under way; it waits
        // now (FLUSHING, up to 2 s: test/flush-ask-flushing.test.ts), but an owner whose event
        // loop takes the ask up late still leaves that malloc with 0, and a later one finds the
        // memory (flush-ask.ts). Once the owner answered, the worker fills again.
        expect(await waitFor(t.i32, t.thW + TH_FLUSH_ASK, (v) => v === FA_LISTENING)).toBe(FA_LISTENING);
        got = await w.remote.fillAndFree(y);
      }
      expect(got * y, `${x} then ${y} in a worker`).toBeGreaterThanOrEqual(want);
      // Answered (the worker's last ask, at its last malloc, may be answered after its reply comes).
      expect(await waitFor(t.i32, t.thW + TH_FLUSH_ASK, (v) => v === FA_LISTENING)).toBe(FA_LISTENING);
      await w.remote.detach();
      release(w);
      await w.worker.terminate();
      expect(checked(heap)).toBe('passes');
      done(heap);
    }
  });

  it('a detached thread stops listening, and a thread out of memory asks no thread that does not listen', () => {
    const heap = fresh();
    const t = internals(heap);
    expect(Atomics.load(t.i32, t.thW + TH_FLUSH_ASK)).toBe(FA_LISTENING);
    expect(fill(heap, 1000).length).toBeGreaterThan(0); // alone: nobody to ask, no wait
    const thW = t.thW;
    done(heap);
    expect(Atomics.load(t.i32, thW + TH_FLUSH_ASK)).toBe(FA_NONE);
  });
});

describe('tryMalloc', () => {
  it('answers 0 at once while the lock is busy, without giving back what this thread caches', async () => {
    const heap = fresh();
    const holder = startHeapWorker((w) => heap.watch(w));
    await holder.remote.attach(heap.buffer);
    const warm: number[] = [];
    for (const size of [16, 64, 256, 1024, 4000]) for (let i = 0; i < 40; i++) warm.push(heap.malloc(size));
    for (const p of warm) heap.free(p);
    const mine = (): { drains: number } => heap.stats().threads.find((x) => x.threadId === heap.threadId)!;
    const drains = mine().drains;
    await holder.remote.holdLock();
    expect(heap.tryMalloc(3000)).toBe(0); // a class this thread has no slab of: the pool's lock is needed
    expect(heap.tryMalloc(300000)).toBe(0);
    expect(mine().drains).toBe(drains);
    await holder.worker.terminate(); // watch() marks it dead: the lock it kept is broken by the next taker
    await holder.exited;
    expect(heap.malloc(3000)).toBeGreaterThan(0);
    heap.check();
  });
});
