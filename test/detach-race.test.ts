/**
 * Remote frees that land while a thread detaches (attach.ts abandonAll). The detaching thread T
 * looks at its notices last in flushThread, then, in abandonAll, collects each slab's remote list
 * and gives the slab up: to the pool when empty, else abandoned (no owner) for the next remote
 * freer to adopt. A freer's chain pushed in between notifies T, which never looks again:
 * - pushed after T's last look and before the collect, with the slab's last blocks: the slab is
 *   empty and goes to the pool with its notice flag set, and its next owner is never notified of
 *   it again, nor gives it back when it is empty (held for good, out of every other class's reach);
 * - pushed after the collect and before the owner store, with the slab's last blocks: the slab is
 *   abandoned with all its blocks on its remote list, and no later free comes to adopt it.
 * Here the worker T pauses at crash points of its detach (workers/detach-race-worker.ts) while the
 * main thread makes those frees; afterwards every slab must be back in the pool and a fill must get
 * what a fresh heap gives.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_COLLECT, CP_GIVE_BACK, CP_PUBLISH, CP_STAGE1_PUSH } from '../src/crash.js';
import { internals } from '../src/heap.js';
import { lockHolder } from '../src/lock.js';
import { LockTimeoutError } from '../src/errors.js';
import { K_SLAB, OWNER_NONE, OWNER_POOL, SLOT_SHIFT, SM_HEAD, SM_INUSE, SM_KIND, SM_NOTIFIED, SM_OWNER, SM_REMOTE, SM_SHIFT, NOTICE_CLOSED, G_LOCK, TH_NOTICE, TH_NOTIFYING, TH_NOTIFY_TO, TH_STATE, TS_ATTACHED } from '../src/layout.js';
import { checked } from './fixtures.js';
import { BIG, OPTIONS, fill, freeAll, freerStopped, fresh, lateNotice, pause, pauseWhere, resume, slabsHeld, slotOf, start } from './notice-helpers.js';
import { ask, terminateAll } from './remote-heap.js';
import type { TestThread as Thread } from './remote-heap.js';

afterEach(terminateAll);

/**
 * T allocates `a` (48-byte blocks: slab A, its first) and `b` (1000 bytes: slab B, after A) for the
 * main thread, and one 5000-byte block that the main thread frees before T detaches: T's last look
 * at its notices collects it, and giving that empty slab back is the first Stage-1 push of the
 * detach, after that look. Returns the blocks and T.
 */
async function setUp(heap: SharedHeap): Promise<{ T: Thread; a: number[]; b: number[] }> {
  const T = await start(heap);
  const { ps: a } = await ask<{ ps: number[] }>(T, { op: 'malloc', n: 64, size: 48 });
  const { ps: b } = await ask<{ ps: number[] }>(T, { op: 'malloc', n: 2, size: 1000 });
  const { ps: c } = await ask<{ ps: number[] }>(T, { op: 'malloc', n: 1, size: 5000 });
  expect(Math.max(...a) >>> SLOT_SHIFT).toBeLessThan(Math.min(...b) >>> SLOT_SHIFT); // abandonAll meets A first
  freeAll(heap, c);
  return { T, a, b };
}

describe('remote frees that land while their slab\'s owner detaches', () => {
  it('the last blocks of a slab, freed after the owner\'s last look at its notices: the slab goes to the pool without a stale flag', async () => {
    const heap = SharedHeap.create(OPTIONS);
    const { T, a, b } = await setUp(heap);
    const gate = new Int32Array(new SharedArrayBuffer(8));
    const done = ask(T, { op: 'detach', pauses: [CP_STAGE1_PUSH], gate });
    await pause(gate, 1); // in flushThread, after processNotices; abandonAll next
    freeAll(heap, a); // A's last blocks: a chain, and a notice to T
    resume(gate, 1);
    await done;
    freeAll(heap, b);
    // Slab A's next owner (here the main thread) uses it and frees everything again.
    freeAll(heap, Array.from({ length: 64 }, () => heap.malloc(48)));
    expect(checked(heap)).toBe('passes');
    expect(fill(heap, BIG)).toBe(fresh());
    expect(slabsHeld(heap)).toEqual([]);
    heap.detach();
  });

  it('the last blocks of a slab, freed after abandonAll collected it: the slab is not abandoned with them on its remote list', async () => {
    const heap = SharedHeap.create(OPTIONS);
    const { T, a, b } = await setUp(heap);
    const gate = new Int32Array(new SharedArrayBuffer(8));
    const done = ask(T, { op: 'detach', pauses: [CP_STAGE1_PUSH, CP_COLLECT], gate });
    await pause(gate, 1); // in flushThread, after processNotices
    heap.free(b[0]!); // a chain on B, whose collect in abandonAll is the next pause
    heap.flush();
    resume(gate, 1);
    await pause(gate, 2); // abandonAll: A collected (nothing came) and to be abandoned; B being collected
    freeAll(heap, a); // A's last blocks: a chain, and a notice to T
    resume(gate, 2);
    await done;
    freeAll(heap, [b[1]!]); // B's last block: adopts B (abandoned) and gives it back
    expect(checked(heap)).toBe('passes');
    expect(fill(heap, BIG)).toBe(fresh());
    expect(slabsHeld(heap)).toEqual([]);
    heap.detach();
  });
});

/** The thread slot of the attached thread whose threadId is `id`. */
/**
 * S, pooled, is taken from Stage 1 by the main thread, F frees one of its blocks remotely: the
 * main thread must get the notice (a stale flag would swallow it), and its flush collect the block
 * and pool S again, so that every slab is back in the pool.
 */
async function nextOwnerNotified(heap: SharedHeap, S: number, F: Thread, gateF: Int32Array): Promise<void> {
  const t = internals(heap);
  const ps = Array.from({ length: 64 }, () => heap.malloc(48));
  expect(ps[0]! >>> SLOT_SHIFT).toBe(S);
  await ask(F, { op: 'free', ps: [ps[0]!], pauses: [], gate: gateF });
  expect(Atomics.load(t.i32, t.threadW(slotOf(heap, heap.threadId)) + TH_NOTICE)).toBe(S);
  freeAll(heap, ps.slice(1));
  expect(checked(heap)).toBe('passes');
  expect(slabsHeld(heap)).toEqual([]);
  expect(fill(heap, BIG)).toBe(fresh());
}

describe('a remote freer late to notify an owner that gives the slab up', () => {
  /**
   * lateNotice, with P (S's live owner) stopped at its first crash point of `path` just before it
   * pools S (or gives its slots back), while the main thread frees Z's block (another slab of P's: a
   * notice to P) and F goes on: its notice puts S onto P's list ahead of Z. Then P goes on, and
   * `gone` checks how S left; the main thread takes a slab of S's class, at S again; F frees one of
   * its blocks (a remote free: its notice skipped, S being flagged); P looks at its notices. P must
   * take S off its list without losing Z, and notice S's remote free to the main thread.
   */
  async function lateNoticeThenTakenAgain(heap: SharedHeap, path: number, gone: (i32: Int32Array, mS: number) => void): Promise<void> {
    const { t, i32, P, F, slotP, slotF, S, mS, gateF, atPoolingS, resumeF } = await lateNotice(heap);
    const { ps: zs } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 1, size: 1000 });
    const mZ = t.metaW(i32[t.smW + ((zs[0]! >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD]!);
    const gateP = new Int32Array(new SharedArrayBuffer(8));
    const flushed = ask(P, { op: 'free', ps: [], pauses: Array<number>(1024).fill(path), gate: gateP });
    await atPoolingS(gateP);
    freeAll(heap, [zs[0]!]); // Z on P's notice list
    await resumeF(); // S pushed onto P's list ahead of Z
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(slotF + 1);
    resume(gateP, 1 << 20);
    await flushed;
    gone(i32, mS);
    const ps = Array.from({ length: 64 }, () => heap.malloc(48));
    expect(ps[0]! >>> SLOT_SHIFT).toBe(S);
    await ask(F, { op: 'free', ps: [ps[0]!], pauses: [], gate: gateF });
    await ask(P, { op: 'free', ps: [], pauses: [], gate: gateP }); // P looks at its notices
    expect(Atomics.load(i32, mZ + SM_NOTIFIED)).toBe(0);
    expect(Atomics.load(i32, mZ + SM_REMOTE)).toBe(0); // Z's block collected
    // P took S off its list and, S being the main thread's now with a remote list not empty,
    // noticed it to the main thread.
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(slotP + 1);
    expect(Atomics.load(i32, t.threadW(slotOf(heap, heap.threadId)) + TH_NOTICE)).toBe(S);
    freeAll(heap, ps.slice(1));
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(0);
    expect(Atomics.load(i32, mS + SM_REMOTE)).toBe(0); // the remote free collected
    expect(checked(heap)).toBe('passes');
    expect(slabsHeld(heap)).toEqual([]);
    heap.detach();
  }

  it("a live owner pools a slab whose late notice then reaches its list: the owner's next look clears the flag, and no other slab of that list is lost", async () => {
    // F's chain of slab S's blocks is published; F stops before its flag CAS. The main thread frees
    // S's last block; P, S's live owner, collects everything and stops just before it pools S. Z,
    // another slab of P's, gets a notice. F goes on: its flag CAS succeeds and it reads P as the
    // owner, so S goes onto P's notice list (S -> Z) and reaches the pool flagged. The flag is
    // P's to clear, when it takes its list: a thread that took S from the pool and cleared it
    // itself let S onto a second list while still on P's, and P's walk then lost Z (an audit, 5
    // of 5 runs, against a clear in Stage 1's take that was tried and reverted).
    await lateNoticeThenTakenAgain(SharedHeap.create(OPTIONS), CP_STAGE1_PUSH, (i32, mS) => {
      expect(Atomics.load(i32, mS + SM_OWNER)).toBe(OWNER_POOL);
    });
  });

  it("a live owner gives a slab's slots back before its late notice reaches its list: the slab carved anew keeps the flag, and the owner's look notices its remote frees to the new owner", async () => {
    // As above with no Stage 1 (stage1Keep 0): P gives S's slots back, and the main thread carves a
    // new slab there while S is on P's list. The carve cleared the flag, so a remote free of the
    // new slab put S on the main thread's list too, whose link S shares: P's walk then went on
    // along the main thread's list, and Z, after S on P's list, was lost (its flag set for good).
    await lateNoticeThenTakenAgain(SharedHeap.create({ ...OPTIONS, stage1Keep: 0 }), CP_GIVE_BACK, (i32, mS) => {
      expect(i32[mS + SM_KIND]).not.toBe(K_SLAB); // its slots given back
    });
  });

  it('a detaching owner pools a slab whose late notice then comes: the notice finds its list closed and clears the flag, and the next owner is notified', async () => {
    // As above, but P detaches: its last look at its notices takes S's (the main thread's), and it
    // stops just before it pools S, empty. F goes on: its flag CAS succeeds (the look cleared the
    // flag) and it reads P as the owner. P never looks again: a notice pushed onto its list stayed
    // there, S went to the pool flagged, and its next owner was never notified of a remote free of
    // S again, nor gave S back (until 2026-12-03 a window listed as not fixed). Since the last look
    // closes P's list, F clears its own flag instead.
    const heap = SharedHeap.create(OPTIONS);
    const { i32, P, F, slotP, S, mS, gateF, atPoolingS, resumeF } = await lateNotice(heap);
    const gateP = new Int32Array(new SharedArrayBuffer(8));
    const detached = ask(P, { op: 'detach', pauses: Array<number>(1024).fill(CP_STAGE1_PUSH), gate: gateP });
    await atPoolingS(gateP);
    expect(Atomics.load(i32, internals(heap).threadW(slotP) + TH_NOTICE)).toBe(NOTICE_CLOSED);
    await resumeF(); // P's list found closed
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(0);
    resume(gateP, 1 << 20);
    await detached;
    expect(Atomics.load(i32, mS + SM_OWNER)).toBe(OWNER_POOL);
    await nextOwnerNotified(heap, S, F, gateF);
    heap.detach();
  });

  it("a reclaim pools a dead owner's slab whose late notice then comes: the notice finds the dead owner's list closed and clears the flag", async () => {
    // The same window, with P killed and R reclaiming it: the reclaim's look at P's notices is the
    // last, and closes P's list.
    const heap = SharedHeap.create(OPTIONS);
    const { i32, P, F, slotP, S, mS, gateF, atPoolingS, resumeF } = await lateNotice(heap);
    const R = await start(heap);
    await P.w.terminate();
    const gateR = new Int32Array(new SharedArrayBuffer(8));
    const reclaimed = ask<{ done: boolean }>(R, { op: 'reclaim', id: P.id, pauses: Array<number>(1024).fill(CP_STAGE1_PUSH), gate: gateR });
    await atPoolingS(gateR);
    expect(Atomics.load(i32, internals(heap).threadW(slotP) + TH_NOTICE)).toBe(NOTICE_CLOSED);
    await resumeF(); // P's list found closed
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(0);
    resume(gateR, 1 << 20);
    expect((await reclaimed).done).toBe(true);
    expect(Atomics.load(i32, mS + SM_OWNER)).toBe(OWNER_POOL);
    await nextOwnerNotified(heap, S, F, gateF);
    heap.detach();
  });
});

describe("a remote freer that read a thread as a slab's owner just before that thread detached", () => {
  /**
   * P allocates 64 blocks of 48 bytes (slab S); F frees all but the first and stops inside its
   * notice to P, its flag set and P read as the owner: `named`, after it named P's slot in
   * TH_NOTIFY_TO and read the owner again (just before its push), else just before it names it.
   * Then P detaches (S, one block out, abandoned).
   */
  async function freerNamingDetached(heap: SharedHeap, named = true) {
    const t = internals(heap);
    const r = await freerStopped(
      heap,
      (i32, slotP, slotF, S) => Atomics.load(i32, t.metaW(S) + SM_NOTIFIED) === slotF + 1 && (Atomics.load(i32, t.threadW(slotF) + TH_NOTIFY_TO) === slotP + 1) === named,
    );
    await ask(r.P, { op: 'detach', pauses: [], gate: new Int32Array(new SharedArrayBuffer(8)) });
    expect(Atomics.load(r.i32, r.mS + SM_OWNER)).toBe(OWNER_NONE);
    return r;
  }

  it("a thread attaching meanwhile does not get the detached thread's slot, and the notice reaches no list", async () => {
    // The slot P left is the first free one. A thread that took it reopened its notice list, and
    // F's notice, meant for P, went onto it: S was then on the list of a thread that never owned
    // it, flagged, and the next remote free of S adopted it but could not give it back once empty
    // (the flag stayed until that thread looked), or, once S had another owner, its notice put S
    // on a second list, whose link it shares (an audit's reading, 2026-12-03).
    const heap = SharedHeap.create(OPTIONS);
    const { t, i32, slotP, a, S, mS, resumeF } = await freerNamingDetached(heap);
    const Q = await start(heap);
    const slotQ = slotOf(heap, Q.id);
    expect(slotQ).not.toBe(slotP);
    await resumeF(); // F finds P's list closed; it clears its flag
    expect(Atomics.load(i32, t.threadW(slotQ) + TH_NOTICE)).not.toBe(S);
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(0);
    freeAll(heap, [a[0]!]); // S's last block: S adopted, collected, empty, pooled
    expect(checked(heap)).toBe('passes');
    expect(slabsHeld(heap)).toEqual([]);
    expect(fill(heap, BIG)).toBe(fresh());
    heap.detach();
  });

  it("stopped before it named the slot: a thread attaching meanwhile may get it, and the freer's second read of the owner keeps the notice off its list", async () => {
    const heap = SharedHeap.create(OPTIONS);
    const { t, i32, slotP, a, S, mS, resumeF } = await freerNamingDetached(heap, false);
    const Q = await start(heap);
    const slotQ = slotOf(heap, Q.id);
    expect(slotQ).toBe(slotP); // the first free slot, named by nobody yet
    await resumeF(); // F names the slot, reads S's owner again: none; it clears its flag
    expect(Atomics.load(i32, t.threadW(slotQ) + TH_NOTICE)).not.toBe(S);
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(0);
    freeAll(heap, [a[0]!]);
    expect(checked(heap)).toBe('passes');
    expect(slabsHeld(heap)).toEqual([]);
    expect(fill(heap, BIG)).toBe(fresh());
    heap.detach();
  });

  it('an attach that finds only that slot free waits for the freer, and gives up with a clear error when it stays stopped', async () => {
    const heap = SharedHeap.create({ ...OPTIONS, maxThreads: 3 });
    const { i32, P, slotP, a, mS, resumeF } = await freerNamingDetached(heap);
    const t0 = Date.now();
    const { error } = await ask<{ error?: string }>(P, { op: 'attach' });
    expect(error).toMatch(/ThreadSlotsExhaustedError: SharedHeap\.attach\(buffer\): the only free thread slots are named by a remote free under way/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150); // it waited before giving up
    await resumeF();
    const again = await ask<{ error?: string; threadId?: number }>(P, { op: 'attach' });
    expect(again.error).toBeUndefined();
    expect(slotOf(heap, again.threadId!)).toBe(slotP);
    expect(Atomics.load(i32, mS + SM_NOTIFIED)).toBe(0);
    freeAll(heap, [a[0]!]);
    expect(checked(heap)).toBe('passes');
    expect(slabsHeld(heap)).toEqual([]);
    heap.detach();
  });

  it('a freer killed there leaves the slot named until its reclaim', async () => {
    const heap = SharedHeap.create({ ...OPTIONS, maxThreads: 3 });
    const { P, F, slotP, a } = await freerNamingDetached(heap);
    await F.w.terminate();
    expect((await ask<{ error?: string }>(P, { op: 'attach' })).error).toMatch(/named by a remote free under way/);
    expect(heap.reclaim(F.id)).toBe(true);
    const again = await ask<{ error?: string; threadId?: number }>(P, { op: 'attach' });
    expect(again.error).toBeUndefined();
    expect(slotOf(heap, again.threadId!)).toBe(slotP);
    freeAll(heap, [a[0]!]);
    expect(checked(heap)).toBe('passes');
    expect(slabsHeld(heap)).toEqual([]);
    heap.detach();
  });
});

describe('a detaching thread killed while it gives a slab up', () => {
  it('killed just after the slab has no owner, with a chain of its last blocks on its remote list: the slab is on its abandoned list, and taken from there', async () => {
    // T gives S up (blocks out: abandoned) and is killed right after storing "no owner". F's chain
    // of all of S's blocks landed on S's remote list just then, and F was killed before its notice.
    // No remote free will come to adopt S: only its abandoned list can lead a thread to it.
    const heap = SharedHeap.create(OPTIONS);
    const t = internals(heap);
    const i32 = t.i32;
    const [T, F] = [await start(heap), await start(heap)];
    const slotF = slotOf(heap, F.id);
    const { ps: a } = await ask<{ ps: number[] }>(T, { op: 'malloc', n: 64, size: 48 });
    const S = a[0]! >>> SLOT_SHIFT;
    const mS = t.metaW(S);
    const gateT = new Int32Array(new SharedArrayBuffer(8));
    void ask(T, { op: 'detach', pauses: Array<number>(1024).fill(CP_GIVE_BACK), gate: gateT });
    await pauseWhere(gateT, () => Atomics.load(i32, mS + SM_OWNER) === OWNER_NONE);
    const gateF = new Int32Array(new SharedArrayBuffer(8));
    void ask(F, { op: 'free', ps: a, pauses: Array<number>(1024).fill(CP_PUBLISH), gate: gateF });
    await pauseWhere(gateF, () => Atomics.load(i32, mS + SM_REMOTE) !== 0 && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFYING) === S);
    await Promise.all([T.w.terminate(), F.w.terminate()]);
    expect(heap.reclaim(T.id)).toBe(true);
    expect(heap.reclaim(F.id)).toBe(true);
    const ps = Array.from({ length: 64 }, () => heap.malloc(48)); // a slab of S's class: S, from its abandoned list
    expect(ps.some((p) => p >>> SLOT_SHIFT === S)).toBe(true);
    freeAll(heap, ps);
    expect(checked(heap)).toBe('passes');
    expect(slabsHeld(heap)).toEqual([]);
    expect(fill(heap, BIG)).toBe(fresh());
    heap.detach();
  });
});

describe('a detach that gives up waiting for the global lock', () => {
  it('changes nothing: the thread stays attached, the heap checks, its notice list stays open and a remote free of its slab is collected', async () => {
    // W holds the lock (stopped inside its own detach's locked section). The main thread's detach()
    // gives up after 3 s (LockTimeoutError). It used to take the lock only in abandonAll, after its
    // last look at its notices had closed its list and its empty slabs had gone back: check()
    // failed (a current slab not owned), and a remote free of its slab S then cleared its flag
    // against the closed list, so S's remote list was never collected (an audit's repro).
    const heap = SharedHeap.create(OPTIONS);
    const t = internals(heap);
    const i32 = t.i32;
    const me = slotOf(heap, heap.threadId);
    const a = Array.from({ length: 64 }, () => heap.malloc(48));
    const S = a[0]! >>> SLOT_SHIFT;
    const mS = t.metaW(S);
    const W = await start(heap);
    const slotW = slotOf(heap, W.id);
    const { ps: w } = await ask<{ ps: number[] }>(W, { op: 'malloc', n: 1, size: 48 }); // a slab W abandons, under the lock
    const gateW = new Int32Array(new SharedArrayBuffer(8));
    const detachedW = ask(W, { op: 'detach', pauses: Array<number>(64).fill(CP_GIVE_BACK), gate: gateW });
    await pauseWhere(gateW, () => lockHolder(Atomics.load(i32, G_LOCK)) === slotW);
    expect(() => heap.detach()).toThrow(LockTimeoutError);
    expect(Atomics.load(i32, t.threadW(me) + TH_STATE)).toBe(TS_ATTACHED);
    expect(Atomics.load(i32, t.threadW(me) + TH_NOTICE)).not.toBe(NOTICE_CLOSED);
    resume(gateW, 1 << 20);
    await detachedW;
    expect(checked(heap)).toBe('passes'); // the main thread's slabs, lists and magazines as they were
    const F = await start(heap);
    await ask(F, { op: 'free', ps: a, pauses: [], gate: new Int32Array(new SharedArrayBuffer(8)) }); // S's every block, remotely
    freeAll(heap, w); // W's block: its slab, abandoned, adopted and given back
    expect(Atomics.load(i32, mS + SM_REMOTE)).toBe(0);
    expect(i32[mS + SM_INUSE]).toBe(0);
    expect(checked(heap)).toBe('passes');
    expect(slabsHeld(heap)).toEqual([]);
    heap.detach();
  });
});
