/**
 * The driver of test/options-stress.test.ts: runStress() starts the workers
 * (workers/options-stress-core.ts) on a heap made with the options given, pauses them now and then
 * for check() and a verification of every block recorded, detaches or terminates one when the
 * plan says so, and at the end frees everything and compares the heap with a fresh one.
 */
import { expect } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap, type HeapOptions } from '../src/index.js';
import {
  CTL_WORDS, C_BAD, C_CROSS, C_DONE, C_ERRORS, C_FREED, C_FREE_ALL, C_MISMATCH, C_MSG, C_MSG_CLAIM, C_MSG_LEN, C_OOM, C_OPS, C_PAUSE, C_PAUSED, C_PHASE,
  C_READY, C_REATTACHED, FILLING, FREEING, OWNED, tagOf, verifyBlock, type OptionsStressData,
} from '../workers/options-stress-core.js';
import { carvedHeads, isLiveBlock, slabsWithBlocksOut } from './inspect.js';
import {
  K_LARGE, K_SLAB, LARGE_LIVE, SLOT_SHIFT, SM_BUMP, SM_CLS1, SM_DATA, SM_KIND, SM_LARGE, SM_STATE, ST_ALLOCATED,
} from '../src/layout.js';
import { COUNT, SIZE } from '../src/size-classes.js';
import { startWorker, waitFor } from './remote-heap.js';
import { MiB, rng, until } from './fixtures.js';

const TRANSFERS = 256;
const STALL_MS = 15_000;

export interface Plan {
  workers: number;
  /** Operations per worker. */
  ops: number;
  /** Percent of new blocks that are large (above 128 KiB), up to largeMax bytes. */
  largePct: number;
  largeMax: number;
  /** Small blocks up to 2^(smallBits + 1) bytes, at most 128 KiB (default 17). */
  smallBits?: number;
  /** Worker that detaches and attaches again after every quarter of its operations. */
  reattach?: number;
  /** Worker terminated once the workers did this many operations in all. */
  kill?: { w: number; afterOps: number };
}

/** The least initialBytes create() takes with these options (its error names it). */
export function leastBytes(o: HeapOptions): number {
  try {
    SharedHeap.create({ ...o, initialBytes: 2 * MiB, maxBytes: Math.max(2 * MiB, o.maxBytes ?? 0) }).detach();
    return 2 * MiB;
  } catch (e) {
    const m = /at least (\d+) are needed/.exec((e as Error).message);
    if (m === null) throw e;
    return Number(m[1]);
  }
}

/** Every live block's offset (a quiescent heap): small ones by their state bytes, large runs by their heads. */
function liveBlocks(heap: SharedHeap): number[] {
  const i32 = new Int32Array(heap.buffer);
  const bytes = new Uint8Array(heap.buffer);
  const out: number[] = [];
  for (const { s, mW } of carvedHeads(heap)) {
    if (i32[mW + SM_KIND] === K_LARGE && i32[mW + SM_LARGE] === LARGE_LIVE) out.push(s << SLOT_SHIFT);
    if (i32[mW + SM_KIND] !== K_SLAB) continue;
    const cls = i32[mW + SM_CLS1]! - 1;
    const bump = Math.min(i32[mW + SM_BUMP]!, COUNT[cls]!);
    for (let b = 0; b < bump; b++) if (bytes[i32[mW + SM_STATE]! + b] === ST_ALLOCATED) out.push(i32[mW + SM_DATA]! + b * SIZE[cls]!);
  }
  return out;
}

/** Blocks of `size` the heap gives before it answers 0; all freed again. */
function capacity(heap: SharedHeap, size: number): number {
  const ps: number[] = [];
  for (;;) {
    const p = heap.malloc(size);
    if (p === 0) break;
    ps.push(p);
  }
  for (const p of ps) heap.free(p);
  heap.flush();
  return ps.length;
}

/**
 * Fails, naming the first unexpected error a worker recorded, if any was: waits up to a second for
 * its message to be whole (another worker's count may come first; workers/options-stress-core.ts
 * recordError).
 */
async function expectNoErrors(ctl: Int32Array, seed: number): Promise<void> {
  if (Atomics.load(ctl, C_ERRORS) === 0) return;
  const start = Date.now();
  while (Atomics.load(ctl, C_MSG_CLAIM) !== 2 && Date.now() - start < 1000) await sleep(5);
  expect(Atomics.load(ctl, C_ERRORS), `seed ${seed}: ${message(ctl)}`).toBe(0);
}

/** The first unexpected error a worker recorded (its stack, cut short). */
function message(ctl: Int32Array): string {
  let s = '';
  for (let i = 0; i < C_MSG_LEN && ctl[C_MSG + i] !== 0; i++) s += String.fromCharCode(ctl[C_MSG + i]!);
  return s;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** `p`, or a failure naming `what` and the control words after STALL_MS: a hang fails the test instead of stopping the run. */
async function within<T>(what: string, p: Promise<T>, ctl: Int32Array): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`stalled ${STALL_MS} ms waiting for ${what}: ctl ${JSON.stringify(Array.from(ctl.subarray(0, 16)))}`)),
      STALL_MS,
    );
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `plan` on a new heap made with `options`, the workers seeded from `seed`; returns counts of
 * what happened (pauses with check(), operations, out-of-memory answers, cross-thread frees and
 * reallocs, blocks a terminated worker left, the buffer's size at the end in MiB).
 */
export async function runStress(options: HeapOptions, plan: Plan, seed: number): Promise<Record<string, number>> {
  const heap = SharedHeap.create(options);
  const next = rng(seed);
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  const owned = new Int32Array(new SharedArrayBuffer(plan.workers * OWNED * 4));
  const transfer = new Int32Array(new SharedArrayBuffer(TRANSFERS * 4));
  const workers: Worker[] = [];
  const exits: Promise<number>[] = [];
  for (let w = 0; w < plan.workers; w++) {
    const data: OptionsStressData = {
      kind: 'options-stress', buffer: heap.memory ?? heap.buffer, ctl, owned, transfer, w, tag: w + 1, seed: next() | 1, ops: plan.ops,
      largeMax: plan.largeMax, smallBits: plan.smallBits ?? 17, largePct: plan.largePct, mortal: plan.kill?.w === w, reattachEvery: plan.reattach === w ? plan.ops >> 2 : 0,
    };
    const worker = startWorker('options-stress-worker', data);
    heap.watch(worker);
    workers.push(worker);
    exits.push(new Promise((resolve) => worker.once('exit', resolve)));
  }
  await within('the workers to attach', waitFor(ctl, C_READY, (v) => v === plan.workers), ctl);
  let alive = plan.workers;
  let killed = -1;
  let checks = 0;
  const i32 = (): Int32Array => new Int32Array(heap.buffer);
  /** Every block recorded, verified (everyone paused). */
  const verifyAll = (): void => {
    const mem = i32();
    const bad: string[] = [];
    for (let k = 0; k < owned.length; k++) {
      const e = owned[k]!;
      if (e === 0 || (e & (FILLING | FREEING)) !== 0) continue; // a dead worker's, settled at the end
      if (verifyBlock(mem, e) < 0) bad.push(`owned ${k}: ${e}`);
    }
    for (let j = 0; j < TRANSFERS; j++) {
      const p = transfer[j]!;
      if (p !== 0 && verifyBlock(mem, p) < 0) bad.push(`transfer ${j}: ${p}`);
    }
    expect(bad, `seed ${seed}: blocks whose pattern changed`).toEqual([]);
  };
  const start = Date.now();
  while (Atomics.load(ctl, C_DONE) < alive) {
    await sleep(5 + (next() % 30));
    // A worker whose call threw stopped: say what it threw rather than wait for its pause.
    await expectNoErrors(ctl, seed);
    if (plan.kill !== undefined && killed < 0 && Atomics.load(ctl, C_OPS) >= plan.kill.afterOps) {
      killed = plan.kill.w;
      await workers[killed]!.terminate();
      await exits[killed];
      alive--;
      // watch() reclaims the slot on the exit; the others went on meanwhile.
      await until('the reclaim of the terminated worker', () => heap.stats().threads.every((t) => t.state !== 'dead' && t.state !== 'reclaiming'), STALL_MS);
      continue;
    }
    Atomics.store(ctl, C_PAUSE, 1);
    await within('the workers to pause', waitFor(ctl, C_PAUSED, (v) => v === alive, 1), ctl);
    try {
      heap.check();
      verifyAll();
      checks++;
    } finally {
      Atomics.store(ctl, C_PAUSE, 0);
      Atomics.notify(ctl, C_PAUSE);
    }
    // Everyone out of the pause before a worker may be terminated (one stopped there would count as paused for good).
    await within('the workers to resume', waitFor(ctl, C_PAUSED, (v) => v === 0, 1), ctl);
    expect(Date.now() - start, `seed ${seed}: the workers took too long`).toBeLessThan(60_000);
  }
  await expectNoErrors(ctl, seed);
  Atomics.store(ctl, C_FREE_ALL, plan.workers);
  Atomics.notify(ctl, C_FREE_ALL);
  await within('the workers to free their blocks', waitFor(ctl, C_FREED, (v) => v === alive), ctl);
  await expectNoErrors(ctl, seed);
  expect(Atomics.load(ctl, C_MISMATCH), `seed ${seed}: first bad block ${Atomics.load(ctl, C_BAD)}`).toBe(0);
  // What a terminated worker held, and the transfer entries of its share. A record FREEING is
  // stale where the free happened: the block may have been handed out again since, to a worker
  // that put it in the transfer table. Every other block is recorded once (twice: handed out twice).
  const mem = i32();
  let settled = 0;
  const where = new Map<number, string>();
  const twice: string[] = [];
  const note = (p: number, what: string): void => {
    const before = where.get(p);
    if (before !== undefined) twice.push(`${p} in ${before} and ${what} (live ${isLiveBlock(heap, p)}, verifies ${verifyBlock(mem, p)}, tag ${tagOf(mem, p)})`);
    where.set(p, what);
  };
  for (let k = 0; k < owned.length; k++) if (owned[k] !== 0 && (owned[k]! & FREEING) === 0) note(owned[k]! & ~FILLING, `owned ${k} (${owned[k]! & FILLING})`);
  for (let j = 0; j < TRANSFERS; j++) if (transfer[j] !== 0) note(transfer[j]!, `transfer ${j}`);
  expect(twice, `seed ${seed}: blocks recorded twice`).toEqual([]);
  for (let j = 0; j < TRANSFERS; j++) {
    const p = transfer[j]!;
    if (p === 0) continue;
    expect(verifyBlock(mem, p), `seed ${seed}: transfer ${j}: ${p} live ${isLiveBlock(heap, p)} tag ${tagOf(mem, p)} killed ${killed}`).toBeGreaterThan(0);
    heap.free(p);
    settled++;
  }
  for (let k = 0; k < owned.length; k++) {
    const e = owned[k]!;
    if (e === 0) continue;
    const p = e & ~(FILLING | FREEING);
    expect(k >= killed * OWNED && k < (killed + 1) * OWNED, `seed ${seed}: a live worker left owned ${k}`).toBe(true);
    if (e === p) expect(verifyBlock(mem, p), `seed ${seed}: the dead worker's block ${p}`).toBeGreaterThan(0);
    // FREEING and live: everything else is freed by now, so its free had not happened.
    if (e !== (p | FREEING) || isLiveBlock(heap, p)) heap.free(p);
    settled++;
  }
  // A block whose allocating call the terminated worker died in is allocated with no offset known to
  // anyone (README, Dead and misbehaving workers): at most that one, and only if it died in such a call.
  const strays = liveBlocks(heap);
  expect(strays.length, `seed ${seed}: blocks nobody holds ${strays.join(' ')}`).toBeLessThanOrEqual(killed >= 0 && ctl[C_PHASE + killed] === 1 ? 1 : 0);
  for (const p of strays) heap.free(p);
  heap.flush();
  heap.check();
  const s = heap.stats();
  expect({ liveBlocks: s.liveBlocks, liveBytes: s.liveBytes, largeLiveBlocks: s.largeLiveBlocks, attached: s.threadsAttached }, `seed ${seed}`).toEqual({
    liveBlocks: 0, liveBytes: 0, largeLiveBlocks: 0, attached: 1,
  });
  expect(slabsWithBlocksOut(heap), `seed ${seed}`).toEqual([]);
  // Nothing lost: as many blocks fit as in a fresh heap with the same options. Exactly as many
  // small blocks (every slot can serve their class); large runs of 4 slots may find one run fewer
  // or more, where an empty slab kept in a Stage-1 list (given back only when no run fits) sits
  // in a SuperSlab so that the slots freed around it make no run of 4.
  const fresh = SharedHeap.create(options);
  try {
    expect(capacity(heap, 1000), `seed ${seed}: blocks of 1000`).toBe(capacity(fresh, 1000));
    const large = capacity(heap, 200 << 10);
    expect(Math.abs(large - capacity(fresh, 200 << 10)), `seed ${seed}: blocks of 200 KiB: ${large}`).toBeLessThanOrEqual(1);
    expect(capacity(heap, 1000), `seed ${seed}: blocks of 1000 after the large ones`).toBe(capacity(fresh, 1000));
  } finally {
    fresh.detach();
  }
  heap.check();
  await Promise.all(exits);
  const result = {
    checks, settled, ops: Atomics.load(ctl, C_OPS), oom: Atomics.load(ctl, C_OOM), cross: Atomics.load(ctl, C_CROSS),
    reattached: Atomics.load(ctl, C_REATTACHED), grownTo: heap.buffer.byteLength / MiB,
  };
  heap.detach();
  return result;
}
