/**
 * Audit: a watch() whose Worker-like object's once() threw is undone (watch-once-throws), but the
 * record of it in the watcher's thread area (TH_WATCHING) stayed: at the watcher's end, the thread
 * that object's threadId named — running, not a worker of the watcher — was marked dead and
 * reclaimed with it.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { startHeapWorker } from './remote-heap.js';
import { MiB } from './fixtures.js';
import { endStarted, startNamed, attachedIds } from './nested-watch-helpers.js';

afterEach(endStarted);


describe("a watch() that threw leaves no record", () => {
  it("the watcher's end does not take the thread the failed watch named", async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const a = startHeapWorker(); // running all along, a sibling of the watcher
    const aId = await a.remote.attach(heap.buffer);
    const p = await a.remote.malloc(5000);
    const w = startNamed('watcher-probe-worker', { buffer: heap.buffer });
    heap.watch(w);
    w.postMessage({ op: 'watchThrowing', id: aId });
    const r = await new Promise<{ error: string }>((resolve) => w.once('message', resolve));
    expect(r.error).toBe('TypeError'); // watch() threw, the watch undone
    await w.terminate(); // main's watch reclaims w
    expect(attachedIds(heap).sort()).toEqual([heap.threadId, aId].sort()); // a runs on, attached
    await a.remote.write(p, [1, 2, 3]);
    await a.remote.free(p);
    heap.check();
  });
});
