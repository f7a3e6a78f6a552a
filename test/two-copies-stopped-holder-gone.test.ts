/**
 * An audit of 7bfcd5e (a thread that loads two copies of the package has two slots under its one
 * Node threadId; markDead marks every ATTACHED one). A fault stops the instance of one copy (its
 * slot DEAD) while the thread runs on through the other copy (ATTACHED), which never reclaims that
 * slot (reclaimOwnDead runs at an attach). The thread then ends holding the global lock through the
 * second copy. reclaimWhenGone(threadId) met the holder ATTACHED under the id ('own-reclaim'), asked
 * for the id's Web Lock again and was granted it (the thread gone), and then still took the DEAD
 * slot alone (markForReclaim: a DEAD slot means an ATTACHED one beside it may be the thread attached
 * again, live): the holder was never marked, its lock never broken. reclaimWhenGone stayed pending
 * for good, and the lock held for good (every slow path of every thread waited on it). Once the
 * Web Lock says the thread is gone, every slot under its id goes.
 *
 * The stand-in Web Locks (test/web-locks.ts) see this thread only: the worker's lock is not shown,
 * as after its end. watch() (markDead at the exit) takes both slots; checked here too.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { G_LOCK, TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD, TS_FREE } from '../src/layout.js';
import { internals } from '../src/heap.js';
import { lockHolder } from '../src/lock.js';
import { checked, MiB } from './fixtures.js';
import { useBuiltCopy } from './package-copy.js';
import { startWorker, terminateAll } from './remote-heap.js';
import { installWebLocks, type WebLocksStandIn } from './web-locks.js';

const builtCopy = useBuiltCopy();
let locks: WebLocksStandIn | undefined;
afterEach(async () => {
  locks?.uninstall();
  locks = undefined;
  await terminateAll();
});

interface Said {
  threadId: number;
  slots: number[];
  live: number[];
  thrown: string;
}
const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A heap and a worker whose copy A was stopped by a fault and whose copy B holds the global lock. */
async function stoppedAndHolding(watch: boolean): Promise<{ heap: SharedHeap; w: Worker; said: Said; state: (s: number) => number }> {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const w = startWorker('two-copies-fault-worker', { buffer: heap.buffer, copy: builtCopy(), live: 20 });
  if (watch) heap.watch(w);
  const said = await next<Said>(w);
  const t = internals(heap);
  const state = (s: number): number => Atomics.load(t.i32, t.threadW(s) + TH_STATE);
  expect(said.thrown).toBe('HeapStateError');
  const [a, b] = said.slots as [number, number];
  expect({ a: state(a), b: state(b) }).toEqual({ a: TS_DEAD, b: TS_ATTACHED });
  for (const s of said.slots) expect(Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID)).toBe(said.threadId + 1);
  expect(lockHolder(Atomics.load(t.i32, G_LOCK))).toBe(b);
  return { heap, w, said, state };
}

/** Both slots FREE, the lock free, the worker's live blocks intact and the heap's to free, a heap that checks. */
function afterReclaim(heap: SharedHeap, said: Said, state: (s: number) => number): void {
  const t = internals(heap);
  expect(said.slots.map(state)).toEqual([TS_FREE, TS_FREE]);
  expect(Atomics.load(t.i32, G_LOCK)).toBe(0);
  expect(heap.stats().threadsAttached).toBe(1);
  const big = heap.malloc(3 * MiB); // a slow path that needs the lock
  expect(big).toBeGreaterThan(0);
  heap.free(big);
  for (const p of said.live) {
    expect(Array.from(new Uint8Array(heap.buffer, p, 8))).toEqual(new Array(8).fill(0xa5));
    heap.free(p);
  }
  expect(checked(heap)).toBe('passes');
}

describe('a thread ended holding the lock through one copy of the package, its other copy stopped by a fault', () => {
  it('reclaimWhenGone(threadId) takes both slots and breaks the lock', async () => {
    const { heap, w, said, state } = await stoppedAndHolding(false);
    await w.terminate();
    locks = installWebLocks();
    let answer: boolean | string = 'pending';
    const done = heap.reclaimWhenGone(said.threadId).then(
      (v) => (answer = v),
      (e: unknown) => (answer = String(e)),
    );
    for (let i = 0; i < 300 && answer === 'pending'; i++) await sleep(10);
    expect(answer).toBe(true);
    await done;
    afterReclaim(heap, said, state);
  }, 30_000);

  it('watch(): both slots reclaimed at its exit', async () => {
    const { heap, w, said, state } = await stoppedAndHolding(true);
    await w.terminate();
    for (let i = 0; i < 300 && heap.stats().threadsAttached !== 1; i++) await sleep(10);
    afterReclaim(heap, said, state);
  }, 30_000);
});
