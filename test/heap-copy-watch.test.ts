/**
 * A copy of a heap's buffer (`heap.buffer.slice()`, a snapshot) is another heap whose header
 * carries the original's heap id, and a thread's registries in src/heap.ts go by heap id. An audit
 * of several heaps at once found two ways a copy took over the original's watches once the thread
 * had detached from the original (a copy beside the original in one thread was refused already):
 * attaching the copy adopted the watches the thread left on the original (#takeOverStale), and
 * watch(worker) on the original's detached instance registered on the copy; either way the
 * watched worker's exit was reclaimed on the copy, and the original kept the dead worker's slot
 * attached for good. Both are refused now (HeapStateError, nothing taken over), and the original's
 * watches stay the original's: the exit is reclaimed there, as without the copy (the control).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { wrap, type Remote } from 'comlink';
import { HeapStateError, SharedHeap } from '../src/index.js';
import { checked, MiB } from './fixtures.js';
import { nodeEndpoint, startWorker, terminateAll } from './remote-heap.js';
import type { MultiHeapApi } from '../workers/multiheap-worker.js';

afterEach(terminateAll);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function worker(): { w: Worker; r: Remote<MultiHeapApi>; exited: Promise<number> } {
  const w = startWorker('multiheap-worker');
  const exited = new Promise<number>((resolve) => w.once('exit', resolve));
  return { w, r: wrap<MultiHeapApi>(nodeEndpoint(w)), exited };
}

/** Threads attached to the heap in `buffer` other than the caller, and its check(), read through a short attachment. */
function othersOn(buffer: SharedArrayBuffer): { others: number[]; check: string } {
  const h = SharedHeap.attach(buffer);
  const me = h.threadId;
  const others = h.stats().threads.filter((t) => t.state === 'attached' && t.threadId !== me).map((t) => t.threadId);
  const check = checked(h);
  h.detach();
  return { others, check };
}

/** A heap and a worker attached to it with some blocks of its own, the worker watched from here. */
async function watchedWorker(): Promise<{ heap: SharedHeap; original: SharedArrayBuffer; w: Worker; exited: Promise<number> }> {
  const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4 });
  const { w, r, exited } = worker();
  await r.attach('A', heap.buffer);
  await r.mixed('A', 100, 1);
  heap.watch(w);
  return { heap, original: heap.buffer, w, exited };
}

/** Ends the worker; its exit is reclaimed on the original: nobody else is attached there, and check() passes. */
async function endedAndReclaimed(w: Worker, exited: Promise<number>, original: SharedArrayBuffer): Promise<void> {
  await w.terminate();
  await exited;
  await sleep(400);
  expect(othersOn(original)).toEqual({ others: [], check: 'passes' });
}

describe('a copy of a heap, in a thread that detached from the original', () => {
  it('is refused while the thread watches workers on the original, whose exit is then reclaimed on the original', async () => {
    const { heap, original, w, exited } = await watchedWorker();
    heap.detach(); // the watch stays the thread's: its exit is reclaimed on this heap (README: detach())
    const snapshot = original.slice(0);
    expect(() => SharedHeap.attach(snapshot)).toThrow(HeapStateError);
    expect(() => SharedHeap.attach(snapshot)).toThrow(/copy of a heap this thread still watches workers on/);
    await endedAndReclaimed(w, exited, original);
    // Once nothing is watched there, the copy attaches: another heap, which the refusal left as it was.
    const copy = SharedHeap.attach(snapshot);
    expect(checked(copy)).toBe('passes');
    copy.detach();
  });

  it('control: without the copy, the same exit is reclaimed on the original', async () => {
    const { heap, original, w, exited } = await watchedWorker();
    heap.detach();
    await endedAndReclaimed(w, exited, original);
  });

  it("watch() on the original's detached instance is refused while the thread is attached to a copy, and watches on the original after", async () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4 });
    const original = heap.buffer;
    heap.detach();
    const copy = SharedHeap.attach(original.slice(0));
    const { w, r, exited } = worker();
    await r.attach('A', original);
    await r.mixed('A', 100, 1);
    expect(() => heap.watch(w)).toThrow(/attached to a copy of its heap/);
    copy.detach();
    heap.watch(w); // README watch(): on a detached instance, "the watch is the thread's all the same"
    await endedAndReclaimed(w, exited, original);
  });

  it('a buffer object of the same memory (as postMessage gives) is no copy: the attach takes the watches over', async () => {
    const { heap, original, w, exited } = await watchedWorker();
    const same = structuredClone(original); // another object for the same memory, as postMessage gives
    expect(same).not.toBe(original);
    heap.detach();
    const again = SharedHeap.attach(same);
    await w.terminate();
    await exited;
    await sleep(400);
    const me = again.threadId;
    expect(again.stats().threads.filter((t) => t.state === 'attached' && t.threadId !== me)).toEqual([]);
    expect(checked(again)).toBe('passes');
    again.detach();
  });
});
