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
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { CP_COLLECT, CP_PUBLISH, CP_STAGE1_PUSH } from '../src/crash.js';
import { internals } from '../src/heap.js';
import { G_CARVED, K_SLAB, OWNER_POOL, SLOT_SHIFT, SM_HEAD, SM_INUSE, SM_KIND, SM_NOTIFIED, SM_OWNER, SM_REMOTE, SUPER_SHIFT, TH_NOTIFYING, TH_THREAD_ID, usedSlots } from '../src/layout.js';
import { checked, MiB } from './fixtures.js';
import { ask, startThread, terminateAll, waitFor } from './remote-heap.js';
import type { TestThread as Thread } from './remote-heap.js';

afterEach(terminateAll);

const OPTIONS: HeapOptions = { initialBytes: 16 * MiB, maxThreads: 4 };
const BIG = MiB; // a fill of these needs whole SuperSlabs: one slab held anywhere costs one block

const start = (heap: SharedHeap): Promise<Thread> => startThread('detach-race-worker', heap.buffer);

function freeAll(heap: SharedHeap, ps: number[]): void {
  for (const p of ps) heap.free(p);
  heap.flush();
}

/** Blocks of `size` the heap gives until it is full (all freed again). */
function fill(heap: SharedHeap, size: number): number {
  const ps: number[] = [];
  for (let p = heap.malloc(size); p !== 0; p = heap.malloc(size)) ps.push(p);
  freeAll(heap, ps);
  return ps.length;
}

/** Slabs not in the pool, or flagged: none once every block was freed and every thread flushed. */
function slabsHeld(heap: SharedHeap): string[] {
  const t = internals(heap);
  const i32 = t.i32;
  const out: string[] = [];
  const end = Atomics.load(i32, G_CARVED) << (SUPER_SHIFT - SLOT_SHIFT);
  for (let s = t.geo.metaSupers << (SUPER_SHIFT - SLOT_SHIFT); s < end; s++) {
    const mW = t.metaW(s);
    if (i32[mW + SM_KIND] !== K_SLAB || i32[mW + SM_HEAD] !== s) continue;
    const owner = Atomics.load(i32, mW + SM_OWNER);
    const flag = Atomics.load(i32, mW + SM_NOTIFIED);
    if (owner === OWNER_POOL && flag === 0) continue;
    out.push(`slab ${s} owner ${owner} INUSE ${i32[mW + SM_INUSE]} remote list ${Atomics.load(i32, mW + SM_REMOTE) !== 0 ? 'not empty' : 'empty'} NOTIFIED ${flag}`);
  }
  return out;
}

const fresh = (() => {
  let n = -1;
  return (): number => {
    if (n < 0) {
      const heap = SharedHeap.create(OPTIONS);
      n = fill(heap, BIG);
      heap.detach();
    }
    return n;
  };
})();

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

async function pause(gate: Int32Array, k: number): Promise<void> {
  await waitFor(gate, 0, (v) => v >= k);
}

function resume(gate: Int32Array, k: number): void {
  Atomics.store(gate, 1, k);
  Atomics.notify(gate, 1);
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
function slotOf(heap: SharedHeap, id: number): number {
  const t = internals(heap);
  for (let s = 0; s < usedSlots(t.i32, t.geo.maxThreads); s++) if (Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === id + 1) return s;
  throw new Error(`no slot for thread ${id}`);
}

/** Lets the thread go on through its pauses (resuming each) until `at()` holds at one; it stays paused there. */
async function pauseWhere(gate: Int32Array, at: () => boolean): Promise<void> {
  for (let k = 1; ; k++) {
    await pause(gate, k);
    if (at()) return;
    resume(gate, k);
  }
}

describe('a remote freer late to notify an owner that gives the slab up', () => {
  it("its notice flag, set after the owner collected the slab's last blocks and before the owner pooled it, does not stay with the slab in the pool", async () => {
    // F's chain of slab A's last blocks is published; F stops before its flag CAS. T, detaching,
    // collects them, finds A empty and stops before it pools A (its owner still T). F goes on: its
    // flag CAS succeeds and it reads T as the owner, so the notice goes to T, which never looks
    // again. A reaches the pool flagged; whoever takes it next must not keep the flag.
    const heap = SharedHeap.create(OPTIONS);
    const t = internals(heap);
    const i32 = t.i32;
    const [T, F] = [await start(heap), await start(heap)];
    const { ps: a } = await ask<{ ps: number[] }>(T, { op: 'malloc', n: 64, size: 48 });
    const slabA = a[0]! >>> SLOT_SHIFT;
    const mW = t.metaW(slabA);
    const [slotT, slotF] = [slotOf(heap, T.id), slotOf(heap, F.id)];
    const gateF = new Int32Array(new SharedArrayBuffer(8));
    const freed = ask(F, { op: 'free', ps: a, pauses: Array<number>(1024).fill(CP_PUBLISH), gate: gateF });
    await pauseWhere(gateF, () => Atomics.load(i32, mW + SM_REMOTE) !== 0 && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFYING) === slabA);
    expect(Atomics.load(i32, mW + SM_NOTIFIED)).toBe(0);
    const gateT = new Int32Array(new SharedArrayBuffer(8));
    const detached = ask(T, { op: 'detach', pauses: Array<number>(1024).fill(CP_STAGE1_PUSH), gate: gateT });
    await pauseWhere(gateT, () => Atomics.load(i32, mW + SM_REMOTE) === 0 && i32[mW + SM_INUSE] === 0 && Atomics.load(i32, mW + SM_OWNER) === slotT);
    resume(gateF, 1 << 20);
    await freed;
    expect(Atomics.load(i32, mW + SM_NOTIFIED)).toBe(slotF + 1); // the late notice, sent to T
    resume(gateT, 1 << 20);
    await detached;
    expect(Atomics.load(i32, mW + SM_OWNER)).toBe(OWNER_POOL);
    // The main thread takes A from the pool, uses it and frees everything.
    const ps = Array.from({ length: 64 }, () => heap.malloc(48));
    expect(ps[0]! >>> SLOT_SHIFT).toBe(slabA);
    freeAll(heap, ps);
    expect(checked(heap)).toBe('passes');
    expect(slabsHeld(heap)).toEqual([]);
    expect(fill(heap, BIG)).toBe(fresh());
    heap.detach();
  });
});
