/**
 * An audit of 23da6d8 (reclaimWhenGone, reclaim.ts reclaimIdNoWait, takes an attachment under the
 * id that holds the global lock inside its reclaim of a stopped slot under the id as stopped, and
 * breaks its lock). A thread whose instance a fault stopped attaches again with attach() under the
 * same id (Node's threadId, where Node 24.5+ has Web Locks): the stopped instance gives up its Web
 * Lock (SharedHeap #stopStale), and the new attachment asks for the same one a moment later. A
 * reclaimWhenGone(threadId) waiting on that lock is granted in between, while the thread runs on
 * into its own reclaim of the stopped slot (the design's "whichever comes first"). Taken as
 * stopped, the live thread had its lock broken, its new slot marked DEAD and reclaimed while it ran.
 * The Web Lock the new attachment holds says it is alive: reclaimWhenGone asks for the id's lock
 * again and takes the holder as stopped only once that is granted (a thread that ended there).
 * And an older flaw of its tries (a692871): each decided afresh whether a slot under the id was
 * DEAD, so the try after the thread's own reclaim had taken the stopped slot found none and marked
 * the live attachment DEAD, and reclaimed it (answered true); it is decided at the first try now,
 * as reclaim(threadId) decides it once.
 *
 * The thread (workers/reattach-hold-worker.ts) pauses inside that reclaim, holding the lock; the
 * stand-in Web Locks (test/web-locks.ts) see one thread only, so this one holds the lock the new
 * attachment asks for, as the browser would show it.
 *
 * An audit of 7ab504e (reclaimWhenGone, reclaim.ts reclaimIdNoWait: the slots to take decided at
 * the first try, an attachment under the id inside its own reclaim of a stopped slot taken as
 * stopped only once the id's Web Lock is granted again). A thread whose instance a fault stopped
 * attaches again with attach() under the same id (Node's threadId, where Node 24.5+ has Web
 * Locks): the stopped instance gives up its Web Lock, and a reclaimWhenGone(threadId) waiting on
 * it is granted before the new attachment's request of the same lock.
 *
 * 1. attach() runs its reclaim of the stopped slot at once, before that lock is even let go: the
 *    first try found the stopped slot reclaimed and the new attachment ATTACHED alone, marked it
 *    DEAD and reclaimed it while it ran (answered true).
 * 2. A first try that found the stopped slot DEAD and the lock busy (another thread's) left every
 *    later try to DEAD slots only: the new attachment, past its reclaim, taking the lock in a slow
 *    path of its own and ending there (terminated), was never marked, its lock never broken:
 *    reclaimWhenGone pending for good, the lock held for good (each try marked it before 7ab504e).
 *
 * Either way such an attachment is taken only once the id's Web Lock is granted again. The
 * stand-in Web Locks (test/web-locks.ts) see one thread only, so this one holds the lock the new
 * attachment asks for, as the browser would show it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, TH_THREAD_ID, TS_ATTACHED, TS_DEAD, TS_FREE, heapIdOf } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { threadLockName } from '../src/liveness.js';
import { checked } from './fixtures.js';
import { startWorker, terminateAll } from './remote-heap.js';
import { installWebLocks, type WebLocksStandIn } from './web-locks.js';
import { stoppedWorker } from './reattach-hold.js';

let locks: WebLocksStandIn | undefined;
afterEach(async () => {
  locks?.uninstall();
  locks = undefined;
  await terminateAll();
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));

describe('reclaimWhenGone(threadId) while the thread, attached again, runs its own reclaim of the stopped slot', () => {
  it('leaves the live attachment and its lock alone, and answers once that reclaim is done', async () => {
    const ctl = new Int32Array(new SharedArrayBuffer(12));
    const { heap, w, threadId, a, state, slotOf } = await stoppedWorker(ctl);
    const t = internals(heap);
    const first = { threadId, slot: a };
    // The attach again breaks the stopped slot's lock and pauses at its CAS of that slot, holding the lock.
    w.postMessage('attach');
    for (let i = 0; i < 500 && Atomics.load(ctl, 0) !== 2; i++) await sleep(10);
    expect(Atomics.load(ctl, 0), 'paused inside its reclaim of the stopped slot').toBe(2);
    const b = slotOf();
    expect(b).toBeGreaterThanOrEqual(0);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK))).toBe(b);

    locks = installWebLocks();
    let answer: boolean | string = 'pending';
    const gone = heap.reclaimWhenGone(first.threadId).then(
      (v) => (answer = v),
      (e: unknown) => (answer = String(e)),
    );
    // The new attachment's Web Lock, asked for after the stopped instance gave its up: granted
    // once reclaimWhenGone traded the lock for its gone mark, and held while the thread lives.
    const childLock = locks.hold(threadLockName(heapIdOf(heap.buffer), first.threadId));
    const releaseChild = await childLock;
    for (let i = 0; i < 50 && answer === 'pending'; i++) await sleep(10);
    expect({ answer, b: state(b), holder: lockHolder(Atomics.load(t.i32, G_LOCK)) }, 'while the thread runs its reclaim').toEqual({
      answer: 'pending',
      b: TS_ATTACHED,
      holder: b,
    });

    // The thread goes on: its reclaim takes the stopped slot and lets the lock go.
    Atomics.store(ctl, 2, 1);
    Atomics.notify(ctl, 2);
    for (let i = 0; i < 300 && answer === 'pending'; i++) await sleep(10);
    await gone;
    expect(answer, 'the stopped slot was the thread\'s own reclaim\'s').toBe(false);
    expect(state(b)).toBe(TS_ATTACHED);
    expect(Atomics.load(t.i32, t.threadW(b) + TH_THREAD_ID)).toBe(first.threadId + 1);
    expect(state(a)).not.toBe(TS_DEAD);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK))).toBe(-1);
    expect(checked(heap)).toBe('passes');
    releaseChild();
  }, 30_000);
});

/** reclaimWhenGone(threadId) with the stand-in Web Locks, the new attachment's lock held; its answer so far. */
function reclaimWhenGone(heap: SharedHeap, threadId: number): { answer: () => boolean | string; child: Promise<() => void>; done: Promise<unknown> } {
  locks = installWebLocks();
  let answer: boolean | string = 'pending';
  const done = heap.reclaimWhenGone(threadId).then(
    (v) => (answer = v),
    (e: unknown) => (answer = String(e)),
  );
  // Asked for after reclaimWhenGone's request, as the new attachment's is after the stopped instance's.
  const child = locks.hold(threadLockName(heapIdOf(heap.buffer), threadId));
  return { answer: () => answer, child, done };
}

describe('reclaimWhenGone(threadId) granted the lock a stopped instance gave up, the thread attached again under the id', () => {
  it('leaves the new attachment alone when its own reclaim of the stopped slot is done already, and takes it once gone', async () => {
    const ctl = new Int32Array(new SharedArrayBuffer(12));
    const { heap, w, threadId, a, state, slotOf } = await stoppedWorker(ctl);
    const t = internals(heap);
    Atomics.store(ctl, 2, 1); // no pause inside its reclaim
    w.postMessage('attach');
    // Its reclaim marks the stopped slot RECLAIMING, then FREE once done: wait for the end, not the start.
    for (let i = 0; i < 500 && (state(a) !== TS_FREE || slotOf() < 0); i++) await sleep(10);
    const b = slotOf();
    expect({ a: state(a), found: b >= 0 }, 'the stopped slot reclaimed by the attach again').toEqual({ a: TS_FREE, found: true });

    const r = reclaimWhenGone(heap, threadId);
    const releaseChild = await r.child;
    for (let i = 0; i < 50 && r.answer() === 'pending'; i++) await sleep(10);
    expect({ answer: r.answer(), b: state(b) }, 'while the thread runs on').toEqual({ answer: 'pending', b: TS_ATTACHED });

    await w.terminate();
    releaseChild(); // its Web Lock, gone with it
    for (let i = 0; i < 300 && r.answer() === 'pending'; i++) await sleep(10);
    expect(r.answer()).toBe(true);
    expect(state(b)).toBe(TS_FREE);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK))).toBe(-1);
    expect(checked(heap)).toBe('passes');
  }, 30_000);

  it('breaks the lock of the new attachment that ended holding it after its own reclaim', async () => {
    const ctl = new Int32Array(new SharedArrayBuffer(12));
    const { heap, w, threadId, a, state, slotOf } = await stoppedWorker(ctl);
    const t = internals(heap);
    // A live thread takes the global lock (breaking the stopped slot's), so the first try finds it busy.
    const ctlH = new Int32Array(new SharedArrayBuffer(8));
    const h = startWorker('lock-gate-worker', { buffer: heap.buffer, ctl: ctlH });
    const hSaid = await next<{ slot: number }>(h);
    for (let i = 0; i < 500 && Atomics.load(ctlH, 0) !== 1; i++) await sleep(10);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK))).toBe(hSaid.slot);
    // The attach again: no pause inside its reclaim (which waits for h), then it takes the lock and keeps it.
    Atomics.store(ctl, 2, 1);
    Atomics.store(ctl, 1, 1);
    w.postMessage('attach');
    for (let i = 0; i < 500 && slotOf() < 0; i++) await sleep(10);
    const b = slotOf();
    expect(b).toBeGreaterThanOrEqual(0);

    const r = reclaimWhenGone(heap, threadId);
    const releaseChild = await r.child;
    for (let i = 0; i < 20; i++) await sleep(10);
    expect({ answer: r.answer(), a: state(a) }, 'the first try: the lock busy').toEqual({ answer: 'pending', a: TS_DEAD });

    // h lets the lock go; this thread's event loop held until the attachment reclaimed the stopped
    // slot and took the lock again, so that no try sees that reclaim or the lock free in between.
    Atomics.store(ctlH, 1, 1);
    Atomics.notify(ctlH, 1);
    for (let i = 0, c = Atomics.load(ctl, 0); i < 500 && c !== 1; i++, c = Atomics.load(ctl, 0)) Atomics.wait(ctl, 0, c, 10);
    expect({ a: state(a), holder: lockHolder(Atomics.load(t.i32, G_LOCK)) }).toEqual({ a: TS_FREE, holder: b });
    for (let i = 0; i < 20; i++) await sleep(10);
    expect({ answer: r.answer(), b: state(b) }, 'while the thread runs on, holding the lock').toEqual({ answer: 'pending', b: TS_ATTACHED });

    await w.terminate(); // ends holding the lock
    releaseChild(); // its Web Lock, gone with it
    for (let i = 0; i < 300 && r.answer() === 'pending'; i++) await sleep(10);
    expect(r.answer(), 'the ended attachment reclaimed').toBe(true);
    expect(state(b)).toBe(TS_FREE);
    expect(lockHolder(Atomics.load(t.i32, G_LOCK)), 'its lock, broken and let go').toBe(-1);
    expect(checked(heap)).toBe('passes');
  }, 30_000);
});
