/**
 * An audit of create()'s options (maxThreads at the bottom of its range): a thread that watched
 * its workers and then detached attaches again at a watched exit, to reclaim it (heap.ts
 * reattachToReclaim), and that attach needs a free thread slot. Where the workers held every slot
 * (maxThreads 1, the main thread detached so that its one worker could attach; or as many workers
 * as slots), none was free: the attach was tried again for good, the dead worker's slot, blocks
 * and slabs were never reclaimed, and no thread could attach to the heap again
 * (ThreadSlotsExhaustedError), nor so reclaim it by hand. A thread slot beyond maxThreads is kept
 * for such attachments (layout.ts RECLAIM_SLOTS).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, TH_STATE, TS_ATTACHED, TS_FREE } from '../src/layout.js';
import { checked, MiB, until } from './fixtures.js';
import { release, startHeapWorker, terminateAll, type RemoteHeap } from './remote-heap.js';

afterEach(terminateAll);

describe('a detached watcher whose workers hold every thread slot', () => {
  it.each([
    [1, 1, false],
    [2, 2, false],
    [1, 1, true],
  ])('maxThreads %d, %d workers (the one that ends holding the global lock: %s): its exit is reclaimed and its slot can be attached again', async (maxThreads, n, holdsLock) => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads });
    const buffer = heap.buffer;
    const t = internals(heap);
    const workers: RemoteHeap[] = [];
    for (let k = 0; k < n; k++) workers.push(startHeapWorker((w) => heap.watch(w)));
    heap.detach(); // the slot goes to a worker
    const blocks: number[] = [];
    for (const [k, w] of workers.entries()) {
      await w.remote.attach(buffer);
      const p = await w.remote.malloc(1000);
      expect(p).toBeGreaterThan(0);
      await w.remote.write(p, Array.from({ length: 1000 }, () => 0x41 + k));
      blocks.push(p);
    }
    const states = (): number[] => Array.from({ length: t.geo.maxThreads }, (_, s) => Atomics.load(t.i32, t.threadW(s) + TH_STATE));
    expect(states().filter((s) => s === TS_ATTACHED)).toHaveLength(n);
    if (holdsLock) await workers[0]!.remote.holdLock();
    await workers[0]!.worker.terminate();
    await workers[0]!.exited;
    // The watch's reclaim: the dead worker's slot free again, the attachment made for it gone, and
    // the lock free (broken, where the worker died holding it).
    await until('the dead worker is reclaimed', () => {
      const s = states();
      return s.filter((x) => x === TS_ATTACHED).length === n - 1 && s.every((x) => x === TS_ATTACHED || x === TS_FREE) && Atomics.load(t.i32, G_LOCK) === 0;
    }, 5000);
    const again = SharedHeap.attach(buffer);
    // Every block stays live (the dead worker's too: it may have been handed out), with its bytes.
    expect(again.stats().liveBlocks).toBe(n);
    for (let k = 0; k < n; k++) {
      expect(again.u8.subarray(blocks[k]!, blocks[k]! + 1000).every((x) => x === 0x41 + k)).toBe(true);
      again.free(blocks[k]!);
    }
    expect(again.stats().liveBlocks).toBe(0);
    expect(again.malloc(100)).toBeGreaterThan(0);
    expect(checked(again)).toBe('passes');
    for (const w of workers.slice(1)) release(w);
    again.detach();
  }, 30_000);
});
