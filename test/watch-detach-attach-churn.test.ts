/**
 * A thread that watches a long-lived worker and detaches and attaches again many times meanwhile
 * (a server's main thread that attaches for its work and lets go after): each attachment takes the
 * watch over from the one before (reclaim.ts adoptWatches). The worker's exit listener keeps the
 * attachment that watched it; the later ones must not be kept with it. Before, each attachment
 * linked to the next (ThreadContext.successor), and every one of them stayed reachable until the
 * worker exited: 67 KB each with a heap that may grow to 2 GiB (its per-slot tables), without bound.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import type { ThreadContext } from '../src/context.js';
import { MiB, until } from './fixtures.js';
import { release, startHeapWorker, terminateAll } from './remote-heap.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
afterEach(terminateAll);

/** Collects garbage (with task boundaries, which let V8 drop what WeakRef.deref kept) until `done()` or 50 tries. */
async function collect(done: () => boolean): Promise<boolean> {
  for (let i = 0; i < 50 && !done(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    gc();
  }
  return done();
}

describe('detach and attach again while watching a worker', () => {
  it('keeps no attachment but the first (the exit listener\'s) and the latest, and the exit is still reclaimed', async () => {
    let heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const buffer = heap.buffer;
    const r = startHeapWorker((w) => heap.watch(w));
    const slot = await r.remote.attach(buffer);
    const kept = await r.remote.malloc(100);
    const first = new WeakRef(internals(heap));
    const between: WeakRef<ThreadContext>[] = [];
    for (let i = 0; i < 200; i++) {
      heap.detach();
      heap = SharedHeap.attach(buffer);
      const p = heap.malloc(64);
      heap.free(p);
      if (i < 199) between.push(new WeakRef(internals(heap)));
    }
    const latest = internals(heap);
    expect(await collect(() => between.every((w) => w.deref() === undefined))).toBe(true);
    expect(first.deref()).toBeDefined(); // the exit listener's: held while the worker runs
    expect(heap.stats().threads.length).toBe(2);
    // The watch went on through every attachment: the exit is reclaimed by the latest.
    release(r);
    await r.worker.terminate();
    await until('the worker reclaimed', () => heap.stats().threads.length === 1);
    expect(internals(heap)).toBe(latest);
    expect(heap.stats().threads.map((t) => t.tid)).not.toContain(slot);
    heap.free(kept); // the worker's block, still the program's
    heap.check();
    heap.detach();
  });
});
