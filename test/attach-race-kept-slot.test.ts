/**
 * Two ordinary attaches at the same moment while the thread slot kept for reclaims is taken
 * (layout.ts RECLAIM_SLOTS; attach.ts takenSlots): each counts the slots taken before it claims
 * one, so where one slot is left both counts pass. A worker's attach is held right after its
 * count (at its first compare-and-swap, workers/attach-held-worker.ts) while another worker
 * attaches, then goes on: it must not become a thread more than options.maxThreads.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { attachedThreads, cutOffLargeMalloc } from './fault-internals.js';
import { checked, MiB } from './fixtures.js';
import { startHeapWorker, startWorker, terminateAll, waitFor } from './remote-heap.js';

afterEach(terminateAll);

describe('attaches racing for the last slot while the kept slot is taken', () => {
  it('maxThreads 3: at most 3 threads attached, the late one refused', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 3 });
    const w1 = startHeapWorker();
    const w2 = startHeapWorker();
    await w1.remote.attach(heap.buffer);
    await w2.remote.attach(heap.buffer);
    const kept = await w1.remote.malloc(1000);
    await w1.remote.write(kept, [1, 2, 3]);
    cutOffLargeMalloc(heap); // this thread's slot DEAD, every ordinary slot taken
    const again = SharedHeap.attach(heap.buffer); // takes the kept slot, reclaims the stopped one
    await w2.remote.detach();
    expect(attachedThreads(heap.buffer)).toBe(2); // w1 and again: one of the user's 3 slots left

    const gate = new Int32Array(new SharedArrayBuffer(4));
    const held = startWorker('attach-held-worker', { buffer: heap.buffer, gate });
    const answer = new Promise<{ threadId?: number; error?: string }>((r) => held.once('message', r));
    await waitFor(gate, 0, (v) => v === 1); // past its count, before its claim
    const w3 = startHeapWorker();
    await w3.remote.attach(heap.buffer); // the slot left
    Atomics.store(gate, 0, 2);
    Atomics.notify(gate, 0);
    const a = await answer;
    const p = await w3.remote.malloc(64);
    expect(p).toBeGreaterThan(0);
    await w3.remote.free(p);
    expect(a.threadId).toBeUndefined();
    expect(String(a.error)).toMatch(/all 3 thread slots are taken/);
    expect(attachedThreads(heap.buffer)).toBe(3);
    expect([...(await w1.remote.read(kept, 3))]).toEqual([1, 2, 3]);
    expect(checked(again)).toBe('passes');

    // The slot it backed out of takes a thread once one is free again.
    await w3.remote.detach();
    const w4 = startHeapWorker();
    await w4.remote.attach(heap.buffer);
    const q = await w4.remote.malloc(100);
    expect(q).toBeGreaterThan(0);
    await w4.remote.free(q);
    await w4.remote.detach();
    expect(checked(again)).toBe('passes');
  }, 30_000);
});
