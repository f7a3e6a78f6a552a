/**
 * An audit of 5d43d86 (one reclaim(threadId) takes every DEAD slot under the id: a stopped instance
 * and an attachment of the same thread beside it). The reclaim of a thread's watched workers
 * (reclaimSlot, TH_WATCHING: Node ended them with it) still took one slot per worker: a watched
 * worker that a fault stopped and that was attaching again when the tree ended has two slots
 * under its id, the stopped one (DEAD) and the new one (marked DEAD with its watcher), and one of
 * them stayed DEAD for good, under an id nobody knows (the worker's parent, which watched it, ended
 * too): a thread slot lost, and the slabs and magazines of that instance with it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals, testHoldGlobalLock } from '../src/heap.js';
import { TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD, TS_FREE } from '../src/layout.js';
import { lockRelease } from '../src/lock.js';
import { checked, MiB } from './fixtures.js';
import { endStarted, startNamed } from './nested-watch-helpers.js';

afterEach(endStarted);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the reclaim of a watcher whose watched worker stopped by a fault was attaching again', () => {
  it('takes both slots of that worker', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 8 });
    const t = internals(heap);
    const state = (s: number): number => Atomics.load(t.i32, t.threadW(s) + TH_STATE);
    const slotsOf = (id: number): number[] => {
      const out: number[] = [];
      for (let s = 0; s < 8; s++) if (Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === id + 1 && state(s) !== TS_FREE) out.push(s);
      return out;
    };
    const w = startNamed('nested-reattach-worker', { buffer: heap.buffer, role: 'parent' });
    heap.watch(w);
    const messages: Record<string, unknown>[] = [];
    w.on('message', (m: Record<string, unknown>) => messages.push(m));
    const until = async (f: () => boolean): Promise<boolean> => {
      for (let i = 0; i < 500 && !f(); i++) await sleep(10);
      return f();
    };
    expect(await until(() => messages.some((m) => 'threadId' in m))).toBe(true);
    const child = messages.find((m) => 'threadId' in m) as { threadId: number; slot: number };
    expect(state(child.slot)).toBe(TS_DEAD);

    // This thread breaks the stopped slot's lock and keeps it: the child's attach again waits in its reclaim.
    testHoldGlobalLock(heap);
    w.postMessage('attach');
    expect(await until(() => slotsOf(child.threadId).length === 2)).toBe(true);
    const [a, b] = slotsOf(child.threadId);
    expect([a, b].map(state).sort()).toEqual([TS_ATTACHED, TS_DEAD].sort());

    // The tree ends (the child with its parent); watch() reclaims the parent, and with it the child,
    // once the lock is free.
    const exited = new Promise((r) => w.once('exit', r));
    await w.terminate();
    await exited;
    t.runner.lockDepth = 1;
    lockRelease(t);
    await until(() => slotsOf(child.threadId).length === 0);
    expect(slotsOf(child.threadId).map((s) => ({ s, state: state(s) })), 'slots left under the child\'s id').toEqual([]);
    expect(checked(heap)).toBe('passes');
  }, 30_000);
});
