/** Helpers of the tests that stop threads inside their notices (detach-race, notice-races): heaps, fills, pauses at crash points. */
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { internals } from '../src/heap.js';
import { K_SLAB, OWNER_POOL, SLOT_SHIFT, SM_SHIFT, SM_HEAD, SM_INUSE, SM_KIND, SM_NOTIFIED, SM_OWNER, SM_REMOTE, TH_NOTIFYING, TH_THREAD_ID, usedSlots } from '../src/layout.js';
import { CP_PUBLISH, CP_STAGE1_PUSH } from '../src/crash.js';
import { MiB, checked } from './fixtures.js';
import { ask, startThread, waitFor } from './remote-heap.js';
import type { TestThread as Thread } from './remote-heap.js';
import { carvedHeads } from './inspect.js';

export const OPTIONS: HeapOptions = { initialBytes: 16 * MiB, maxThreads: 4 };
export const BIG = MiB;
export const start = (heap: SharedHeap): Promise<Thread> => startThread('detach-race-worker', heap.buffer);
export function freeAll(heap: SharedHeap, ps: number[]): void {
  for (const p of ps) heap.free(p);
  heap.flush();
}
export function fill(heap: SharedHeap, size: number): number {
  const ps: number[] = [];
  for (let p = heap.malloc(size); p !== 0; p = heap.malloc(size)) ps.push(p);
  freeAll(heap, ps);
  return ps.length;
}
export function slabsHeld(heap: SharedHeap): string[] {
  const t = internals(heap);
  const i32 = t.i32;
  const out: string[] = [];
  for (const { s, mW } of carvedHeads(heap)) {
    if (i32[mW + SM_KIND] !== K_SLAB) continue;
    const owner = Atomics.load(i32, mW + SM_OWNER);
    const flag = Atomics.load(i32, mW + SM_NOTIFIED);
    if (owner === OWNER_POOL && flag === 0) continue;
    out.push(`slab ${s} owner ${owner} INUSE ${i32[mW + SM_INUSE]} remote list ${Atomics.load(i32, mW + SM_REMOTE) !== 0 ? 'not empty' : 'empty'} NOTIFIED ${flag}`);
  }
  return out;
}
export const fresh = (() => {
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
export async function pause(gate: Int32Array, k: number): Promise<void> {
  await waitFor(gate, 0, (v) => v >= k);
}
export function resume(gate: Int32Array, k: number): void {
  Atomics.store(gate, 1, k);
  Atomics.notify(gate, 1);
}
export function slotOf(heap: SharedHeap, id: number): number {
  const t = internals(heap);
  for (let s = 0; s < usedSlots(t.i32, t.geo.maxThreads); s++) if (Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === id + 1) return s;
  throw new Error(`no slot for thread ${id}`);
}
/** From the thread's current pause (resumed first if `from` > 0), on until `at()` holds at one; it stays paused there. */
export async function pauseWhere(gate: Int32Array, at: () => boolean, from = 0): Promise<number> {
  if (from > 0) resume(gate, from);
  for (let k = from + 1; ; k++) {
    await pause(gate, k);
    if (at()) return k;
    resume(gate, k);
  }
}
/**
 * P allocates 64 blocks of 48 bytes (slab S, its first); F frees all but the first (all of them
 * with `all`): its chain is published and it notifies P, stopped at its first crash point of the
 * remote publish where `at(slotP, slotF, S)` holds. F goes on when `resumeF()` is called.
 */
export async function freerStopped(heap: SharedHeap, at: (i32: Int32Array, slotP: number, slotF: number, S: number) => boolean, all = false) {
  const t = internals(heap);
  const i32 = t.i32;
  const [P, F] = [await start(heap), await start(heap)];
  const [slotP, slotF] = [slotOf(heap, P.id), slotOf(heap, F.id)];
  const { ps: a } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 64, size: 48 });
  const S = a[0]! >>> SLOT_SHIFT;
  const mS = t.metaW(S);
  const gateF = new Int32Array(new SharedArrayBuffer(8));
  const freed = ask(F, { op: 'free', ps: all ? a : a.slice(1), pauses: Array<number>(1024).fill(CP_PUBLISH), gate: gateF });
  const kF = await pauseWhere(gateF, () => at(i32, slotP, slotF, S));
  const resumeF = (): Promise<unknown> => {
    resume(gateF, 1 << 20);
    return freed;
  };
  return { t, i32, P, F, slotP, slotF, a, S, mS, gateF, kF, freed, resumeF };
}
export async function lateNotice(heap: SharedHeap) {
  const t = internals(heap);
  const r = await freerStopped(heap, (i32, _p, slotF, S) => Atomics.load(i32, t.metaW(S) + SM_REMOTE) !== 0 && Atomics.load(i32, t.threadW(slotF) + TH_NOTIFYING) === S);
  freeAll(heap, [r.a[0]!]);
  const { i32, mS, slotP } = r;
  const atPoolingS = (gate: Int32Array): Promise<number> => pauseWhere(gate, () => i32[mS + SM_INUSE] === 0 && Atomics.load(i32, mS + SM_OWNER) === slotP);
  return { ...r, atPoolingS };
}

/**
 * After lateNotice, the lists of the late-notice tests: a third worker R (for remote frees, gate
 * gateR), and Z, a slab of P's with a remote free noticed onto P's list, while P is paused just
 * before it pools S (its flush, `flushed`, under way until gateP lets it go on).
 */
export async function slabBehindS(heap: SharedHeap, late: Awaited<ReturnType<typeof lateNotice>>) {
  const { t, i32, P, atPoolingS } = late;
  const R = await start(heap);
  const gateR = new Int32Array(new SharedArrayBuffer(8));
  const { ps: zs } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 1, size: 1000 });
  const Z = i32[t.smW + ((zs[0]! >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD]!;
  const gateP = new Int32Array(new SharedArrayBuffer(8));
  const flushed = ask(P, { op: 'free', ps: [], pauses: Array<number>(1024).fill(CP_STAGE1_PUSH), gate: gateP });
  await atPoolingS(gateP); // P collected S (empty, flag 0) and stops just before it pools S
  freeAll(heap, [zs[0]!]); // Z on P's notice list
  return { R, gateR, Z, mZ: t.metaW(Z), gateP, flushed };
}

/**
 * P (a started test thread) allocates slab S1 (64 blocks of 48 bytes) and S2 (2 of 1000 bytes); the
 * main thread frees one block of each, so that P's notice list is S2 -> S1, both flagged.
 */
export async function twoNoticed(heap: SharedHeap, P: Thread) {
  const t = internals(heap);
  const i32 = t.i32;
  const { ps: a } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 64, size: 48 });
  const { ps: b } = await ask<{ ps: number[] }>(P, { op: 'malloc', n: 2, size: 1000 });
  const mS1 = t.metaW(a[0]! >>> SLOT_SHIFT);
  const mS2 = t.metaW(i32[t.smW + ((b[0]! >>> SLOT_SHIFT) << SM_SHIFT) + SM_HEAD]!);
  freeAll(heap, [a[0]!]);
  freeAll(heap, [b[0]!]);
  return { t, i32, a, b, mS1, mS2 };
}

/**
 * The end of the late-notice tests (after slabBehindS): P looks at its notices (S, then Z) and
 * `afterLook` reads what the test wants at that moment; then the main thread frees `rest`, R and P
 * detach, and the main thread detaches after its check. Returns Z's flag and remote list after
 * the look, what `afterLook` read, the slabs still held and check()'s verdict.
 */
export async function endLateNotice<A>(
  heap: SharedHeap,
  b: { i32: Int32Array; mZ: number; P: Thread; gateP: Int32Array; R: Thread; gateR: Int32Array },
  rest: number[],
  afterLook: () => A,
) {
  await ask(b.P, { op: 'free', ps: [], pauses: [], gate: b.gateP }); // P looks at its notices: S, then Z
  const z = { flag: Atomics.load(b.i32, b.mZ + SM_NOTIFIED), remote: Atomics.load(b.i32, b.mZ + SM_REMOTE) !== 0 ? 'not empty' : 'empty' };
  const after = afterLook();
  freeAll(heap, rest);
  await ask(b.R, { op: 'detach', pauses: [], gate: b.gateR });
  await ask(b.P, { op: 'detach', pauses: [], gate: b.gateP });
  const held = slabsHeld(heap);
  const check = checked(heap);
  heap.detach();
  return { z, after, held, check };
}
