/**
 * reclaimWhenGone(threadId) and the Web Lock of the id, asked for again where an attachment under
 * the id stands in the way (reclaim.ts reclaimIdNoWait 'own-reclaim'; heap.ts). Four cases, each
 * from an audit of 2026-12-05:
 *
 * An audit of 536dea2 (reclaimWhenGone: an ATTACHED slot found alone at the first try is taken only
 * once the id's Web Lock, asked for again, is granted). A plain browser-style worker (attachAsync
 * under a reserved id, terminated, never faulted) leaves its slot ATTACHED alone: it is still
 * reclaimed (the lock asked again is free, granted at once), and a reclaimWhenGone whose own heap
 * detaches meanwhile settles false, no Web Lock left held. Run against the stand-in Web Locks.
 *
 * An audit of 536dea2 (keptThreadLocks: where reclaimWhenGone's gone mark was refused and it kept
 * the id's Web Lock instead, an attachment under the id that stands in the way, 'own-reclaim', was
 * taken as gone at once: "asked again, never granted; nobody else holds it"). Nobody holds it, but
 * the thread attached again under the id (attach(), Node's threadId, after a fault stopped its
 * instance, which let the lock go) waits for that very lock, live: it was marked DEAD and reclaimed
 * while it ran. The kept lock is let go now and asked for again, behind that attachment's request,
 * as where the mark was taken. Run against the stand-in Web Locks (test/web-locks.ts), made to
 * refuse the gone mark; the attachment is a slot claimed in this thread, its lock asked by `hold`.
 *
 * An audit of 536dea2 (reclaimWhenGone asks for the id's Web Lock again where an attachment under
 * the id stands in the way: reclaimIdNoWait's 'own-reclaim'). Where that request failed (the lock
 * manager rejected it: `held` false), every later try answered 'own-reclaim' again (no try counted,
 * the lock never granted) and no request was made again: with the global lock free, waitLockAsync
 * answered at once, a loop of microtasks that froze the thread for good; with it busy, a wait that
 * went on for good, reclaimWhenGone never settling. It rejects now, naming the failed request.
 * Run against the stand-in Web Locks (test/web-locks.ts), made to fail that one request; the global
 * lock is held meanwhile by another slot (written into the word), so that the old loop waits
 * instead of freezing this test.
 *
 * An audit of 536dea2 (reclaimWhenGone takes an ATTACHED slot under the id found alone at its first
 * try only once the id's Web Lock, asked for again, is granted). That wait means something only if
 * the attachment asked for its lock before its slot showed ATTACHED: attach() under Node's threadId
 * (Node 24.5+ has Web Locks) claimed the slot first and asked a few statements later. A thread that
 * detached (its lock let go, a reclaimWhenGone(threadId) in another thread granted it) and attaches
 * again under the same id: that reclaimWhenGone, trying in between, found the new slot ATTACHED
 * alone, asked for the lock again ahead of the attachment, was granted it at once, and marked the
 * live slot DEAD and reclaimed it while the thread ran. The race spans two threads (the stand-in
 * Web Locks, test/web-locks.ts, see one), so this test checks the order itself: when attach()
 * asks for the id's lock, no slot under the id is ATTACHED yet.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, HeapStateError } from '../src/index.js';
import { attachThread, nodeThreadId } from '../src/attach.js';
import { threadLockName, goneMarkName } from '../src/liveness.js';
import { slotIds } from './fault-internals.js';
import { installWebLocks, type WebLocksStandIn } from './web-locks.js';
import { internals } from '../src/heap.js';
import { G_LOCK, LOCK_HELD, TH_LOCK_GEN, TH_STATE, TH_THREAD_ID, TS_ATTACHED, heapIdOf, lockWord } from '../src/layout.js';

const MiB = 1 << 20;
let locks: WebLocksStandIn | undefined;
afterEach(() => {
  locks?.uninstall();
  locks = undefined;
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A heap whose creator reserved this thread's id and `n` more (workers'), this thread attached under its own with attachAsync. */
async function reserved(stand: WebLocksStandIn, n: number): Promise<{ first: SharedHeap; buffer: SharedArrayBuffer; heapId: number; ids: number[] }> {
  const creator = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const a = creator.newThreadId();
  const ids = Array.from({ length: n }, () => creator.newThreadId());
  const buffer = creator.buffer;
  creator.detach();
  const first = await SharedHeap.attachAsync(buffer, { threadId: a });
  return { first, buffer, heapId: Number(stand.held()[0]!.split(':')[1]), ids };
}

/** A heap whose creator reserved ids a (this thread's) and x (a worker's), attached this thread under a, and a slot under x with its lock held. */
async function setUp(stand: WebLocksStandIn): Promise<{ first: SharedHeap; x: number; release: () => void; name: string }> {
  const { first, buffer, heapId, ids: [x] } = await reserved(stand, 1);
  attachThread(buffer, x); // the worker's slot, ATTACHED
  const name = threadLockName(heapId, x);
  const release = await stand.hold(name);
  return { first, x, release, name };
}

describe('reclaimWhenGone(threadId) of a plain worker (attached, never faulted)', () => {
  it('reclaims its ATTACHED slot once the worker is gone', async () => {
    locks = installWebLocks();
    const { first, x, release } = await setUp(locks);
    const gone = first.reclaimWhenGone(x);
    expect(slotIds(first).some((s) => s.id === x && s.state === 1)).toBe(true);
    release(); // terminated
    expect(await gone).toBe(true);
    expect(slotIds(first).filter((s) => s.id === x)).toEqual([]);
    first.check();
    first.detach();
    await new Promise((r) => setTimeout(r, 10));
    expect(locks.held()).toEqual([]);
  });

  it('settles false, nothing held, when this thread detaches before the worker is gone', async () => {
    locks = installWebLocks();
    const { first, x, release } = await setUp(locks);
    const gone = first.reclaimWhenGone(x);
    first.detach();
    release();
    expect(await gone).toBe(false);
    await new Promise((r) => setTimeout(r, 10));
    expect(locks.held()).toEqual([]);
  });

  it('settles false, nothing held, when this thread detaches while the id\'s lock, asked again, is held by another attachment', async () => {
    locks = installWebLocks();
    const { first, x, release, name } = await setUp(locks);
    const gone = first.reclaimWhenGone(x);
    const other = locks.hold(name); // asked after reclaimWhenGone's request, as an attachment again under x would
    release();
    const releaseOther = await other;
    let answer: boolean | string = 'pending';
    void gone.then((v) => (answer = v));
    await new Promise((r) => setTimeout(r, 100));
    expect(answer, 'the slot under x stands for the attachment holding the lock').toBe('pending');
    first.detach();
    expect(await gone).toBe(false);
    releaseOther();
    await new Promise((r) => setTimeout(r, 10));
    expect(locks.held()).toEqual([]);
  });
});

describe('reclaimWhenGone(threadId) that kept the id\'s Web Lock (its gone mark refused)', () => {
  it('leaves an attachment under the id that waits for that lock alone while it runs, and takes it once gone', async () => {
    locks = installWebLocks();
    const { first, buffer, heapId, ids: [x] } = await reserved(locks, 1);
    const name = threadLockName(heapId, x);
    const releaseStopped = await locks.hold(name); // the stopped instance's lock
    const nav = (globalThis as unknown as { navigator: { locks: { request: (...args: unknown[]) => Promise<unknown> } } }).navigator;
    const request = nav.locks.request;
    nav.locks.request = (n: unknown, ...rest: unknown[]): Promise<unknown> =>
      n === goneMarkName(name) ? Promise.reject(new DOMException('refused', 'InvalidStateError')) : request(n, ...rest);
    let answer: boolean | string = 'pending';
    const gone = first.reclaimWhenGone(x).then(
      (v) => (answer = v),
      (e: unknown) => (answer = String(e)),
    );
    // The thread attaches again under x: its slot ATTACHED, its lock asked for after reclaimWhenGone's.
    attachThread(buffer, x);
    const child = locks.hold(name);
    releaseStopped();
    for (let i = 0; i < 30; i++) await sleep(10);
    expect({ answer, slots: slotIds(first).filter((s) => s.id === x).map((s) => s.state) }, 'while the attachment runs').toEqual({
      answer: 'pending',
      slots: [1],
    });
    const releaseChild = await child; // granted: reclaimWhenGone let the kept lock go
    releaseChild(); // the attachment is gone
    await gone;
    expect(answer).toBe(true);
    expect(slotIds(first).filter((s) => s.id === x)).toEqual([]);
    nav.locks.request = request;
    first.check();
    first.detach();
    await sleep(10);
    expect(locks.held()).toEqual([]);
  });
});

describe('reclaimWhenGone(threadId) whose request of the id\'s Web Lock again fails', () => {
  it('settles (rejects, naming it) instead of trying for good, and leaves the slot and the heap alone', async () => {
    locks = installWebLocks();
    const { first, buffer, heapId, ids: [x, y] } = await reserved(locks, 2);
    attachThread(buffer, x); // a worker under x, its slot ATTACHED
    const other = attachThread(buffer, y); // another worker, which holds the global lock meanwhile
    const name = threadLockName(heapId, x);
    const release = await locks.hold(name);
    const nav = (globalThis as unknown as { navigator: { locks: { request: (...args: unknown[]) => Promise<unknown> } } }).navigator;
    const request = nav.locks.request;
    let failing = false;
    nav.locks.request = (n: unknown, ...rest: unknown[]): Promise<unknown> =>
      failing && n === name ? Promise.reject(new DOMException('refused', 'InvalidStateError')) : request(n, ...rest);
    const t = internals(first);
    let answer: boolean | string = 'pending';
    const gone = first.reclaimWhenGone(x).then(
      (v) => (answer = v),
      (e: unknown) => (answer = e instanceof HeapStateError ? e.message : `other: ${String(e)}`),
    );
    failing = true; // reclaimWhenGone's first request made: the one asked again fails
    Atomics.store(t.i32, G_LOCK, lockWord(other.slot, LOCK_HELD, Atomics.load(t.i32, t.threadW(other.slot) + TH_LOCK_GEN))); // held by that attachment
    release(); // the worker gone: the lock granted, the slot found ATTACHED alone, the lock asked for again
    for (let i = 0; i < 100 && answer === 'pending'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(answer).toMatch(/^reclaimWhenGone\(threadId\): .*Web Lock of threadId \d+.*failed/);
    Atomics.store(t.i32, G_LOCK, 0);
    await gone;
    nav.locks.request = request;
    expect(slotIds(first).some((s) => s.id === x && s.state === 1)).toBe(true); // not taken without knowing
    first.check();
    first.detach();
  });
});

describe('attach() under Node\'s threadId, where there are Web Locks', () => {
  it('asks for the id\'s Web Lock before its slot shows ATTACHED', async () => {
    const created = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const buffer = created.buffer;
    const { geo } = internals(created);
    const i32 = new Int32Array(buffer);
    created.detach();
    locks = installWebLocks();
    const id = nodeThreadId();
    expect(id).toBeGreaterThanOrEqual(0);
    const name = threadLockName(heapIdOf(buffer), id);
    const nav = (globalThis as unknown as { navigator: { locks: { request: (...args: unknown[]) => Promise<unknown> } } }).navigator;
    const request = nav.locks.request;
    const seen: string[] = [];
    nav.locks.request = (n: unknown, ...rest: unknown[]): Promise<unknown> => {
      if (n === name) {
        // What a reclaimWhenGone(id) in another thread would find now, in the shared buffer.
        const states: number[] = [];
        for (let s = 0; s < geo.maxThreads; s++) {
          const w = geo.threadsW + s * geo.threadWords;
          if (Atomics.load(i32, w + TH_THREAD_ID) === id + 1) states.push(Atomics.load(i32, w + TH_STATE));
        }
        seen.push(states.includes(TS_ATTACHED) ? 'a slot under the id ATTACHED' : 'no slot under the id ATTACHED');
      }
      return request(n, ...rest);
    };
    const heap = SharedHeap.attach(buffer);
    nav.locks.request = request;
    expect(seen).toEqual(['no slot under the id ATTACHED']);
    expect(await heap.threadLockHeld()).toBe(true);
    expect(locks.held()).toEqual([name]);
    const p = heap.malloc(100);
    heap.free(p);
    heap.check();
    heap.detach();
    await new Promise((r) => setTimeout(r, 10));
    expect(locks.held()).toEqual([]);
  });

  it('lets the lock go where no slot is free (the attach refused)', async () => {
    const created = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 1 });
    const buffer = created.buffer;
    locks = installWebLocks();
    // Another "thread" holds the only slot: the attach of this one (after detach, the slot taken) fails.
    created.detach();
    attachThread(buffer, -1);
    expect(() => SharedHeap.attach(buffer)).toThrow(/all 1 thread slots are taken/);
    await new Promise((r) => setTimeout(r, 10));
    expect(locks.held()).toEqual([]);
  });
});
