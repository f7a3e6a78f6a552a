/**
 * The heap's thread ids (G_NEXT_THREAD_ID: newThreadId(), and attach() in a thread with no Node
 * threadId) at the end of their range, set near it in the buffer (as after a billion ids): the
 * last ids handed out work like every other, the next call is refused, and the ids handed out
 * earlier go on working. Before, the word was bumped by Atomics.add past 2^31 - 1 to -2^31: every
 * id ever handed out then read as "not handed out" (attachAsync and reclaimWhenGone refused them).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapStateError, SharedHeap } from '../src/index.js';
import { G_NEXT_THREAD_ID } from '../src/layout.js';
import { installWebLocks, type WebLocksStandIn } from './web-locks.js';

const MiB = 1 << 20;
let locks: WebLocksStandIn | undefined;
let restore: (() => void) | undefined;
afterEach(() => {
  locks?.uninstall();
  locks = undefined;
  restore?.();
  restore = undefined;
});

/** Makes this thread look like a browser's (no Node threadId: src/attach.ts nodeThreadId) until `restore`. */
function withoutNodeThreadId(): void {
  const proc = process as unknown as { getBuiltinModule: (name: string) => unknown };
  const real = proc.getBuiltinModule;
  proc.getBuiltinModule = (name: string) => (name === 'node:worker_threads' || name === 'worker_threads' ? {} : real.call(process, name));
  restore = () => {
    proc.getBuiltinModule = real;
  };
}

describe('thread ids at the end of their range', () => {
  it('newThreadId hands out ids up to the last that fits, then refuses; the earlier ids still attach and reclaim', async () => {
    locks = installWebLocks();
    const creator = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const i32 = new Int32Array(creator.buffer);
    Atomics.store(i32, G_NEXT_THREAD_ID, 2 ** 31 - 4);
    const ids = [creator.newThreadId(), creator.newThreadId(), creator.newThreadId()];
    expect(ids).toEqual([2 ** 31 - 4, 2 ** 31 - 3, 2 ** 31 - 2]);
    expect(() => creator.newThreadId()).toThrow(HeapStateError);
    expect(() => creator.newThreadId()).toThrow(/^newThreadId\(\): this heap has handed out all its thread ids/);
    expect(Atomics.load(i32, G_NEXT_THREAD_ID)).toBe(2 ** 31 - 1);
    const kept = creator.malloc(100);
    creator.u8.fill(9, kept, kept + 100);
    // An id whose worker never came: reclaimWhenGone takes it (its Web Lock is free).
    await expect(creator.reclaimWhenGone(ids[0]!)).resolves.toBe(false);
    const buffer = creator.buffer;
    creator.detach();
    for (const id of ids.slice(1)) {
      const heap = await SharedHeap.attachAsync(buffer, { threadId: id });
      expect(heap.threadId).toBe(id);
      expect(heap.stats().threads.map((s) => s.threadId)).toContain(id);
      const p = heap.malloc(100);
      expect(p).toBeGreaterThan(0);
      heap.free(p);
      heap.check();
      expect(heap.u8.subarray(kept, kept + 100).every((b) => b === 9)).toBe(true);
      heap.detach();
    }
  });

  it('attach() of a thread with no Node threadId takes the last id, then is refused, the heap intact', () => {
    const creator = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const buffer = creator.buffer;
    const kept = creator.malloc(100);
    creator.u8.fill(7, kept, kept + 100);
    Atomics.store(new Int32Array(buffer), G_NEXT_THREAD_ID, 2 ** 31 - 2);
    creator.detach();
    withoutNodeThreadId();
    const last = SharedHeap.attach(buffer);
    expect(last.threadId).toBe(2 ** 31 - 2);
    last.detach();
    expect(() => SharedHeap.attach(buffer)).toThrow(HeapStateError);
    expect(() => SharedHeap.attach(buffer)).toThrow(/^SharedHeap\.attach\(buffer\): this heap has handed out all its thread ids/);
    restore!();
    restore = undefined;
    const again = SharedHeap.attach(buffer); // a Node thread, under its own id
    again.check();
    expect(again.stats().threads.length).toBe(1);
    expect(again.u8.subarray(kept, kept + 100).every((b) => b === 7)).toBe(true);
    again.free(kept);
    again.detach();
  });
});
