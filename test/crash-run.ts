/**
 * One run of a crash scenario (workers/crash-scenarios.ts) in a worker stopped at its n-th crash
 * point, Atomics call or interrupt point, then reclaimed by the main thread, with every check of
 * test/crash-points.test.ts (whose helpers these were): a prompt reclaim, a free lock, check(),
 * the large-run count, every other live block's bytes, nothing left allocated beyond the call in
 * flight, and the heap usable after. test/crash-interrupt-points.test.ts runs it in a worker of
 * its own.
 */
import { Worker } from 'node:worker_threads';
import { DoubleFreeError, InvalidPointerError, SharedHeap } from '../src/index.js';
import { workerEntry } from '../bench/worker-entry.js';
import { CRASH_PATHS } from '../src/crash.js';
import { internals } from '../src/heap.js';
import { G_LARGE_POOLED, isDeepTop, largePooledSlots, S1_HEAD_W, S1_SLOT_MASK, SLOT_SHIFT, SM_NOTIFIED, SM_OWNER, SM_REMOTE, TH_FLAGGED, TH_NOTICE, TH_NOTIFYING, TH_POPPING, TH_TOP } from '../src/layout.js';
import { ownedSlabs } from '../src/slots.js';
import { COUNT, classOf } from '../src/size-classes.js';
import {
  ATOMICS_STOP, CRASH_SCENARIOS, C_KEEP, C_STOPPED, C_VICTIM, LEDGER_ENTRIES, L_COUNT, L_FIRST, L_INFLIGHT, patternOf, type CrashScenario, type CrashWorkerData,
} from '../workers/crash-scenarios.js';
import { lockWord } from './fault-internals.js';
import { startHeapWorker } from './remote-heap.js';
import { allBytes, checked } from './fixtures.js';
import { isLiveBlock } from './inspect.js';

export interface RunResult {
  counts: number[] | undefined;
  stoppedAt: string;
  failures: string[];
  /** A fault run: the fault was thrown inside a call into the heap's slow paths (not in the scenario's own code). */
  inHeap?: boolean;
  /** The stop's stack, where the worker posted one. */
  where?: string;
}

/** Another worker than workers/crash-worker.ts to run a scenario in, and what it needs. */
export interface RunVia {
  worker?: { filename: string; execArgv: string[] };
  /** Added to the worker's data. */
  data?: Record<string, unknown>;
  /** Scenarios beside CRASH_SCENARIOS. */
  scenarios?: Record<string, CrashScenario>;
  /** The scenario may stop after its thread's slot went FREE (a detach): a reclaim then finds nothing. */
  mayEndFree?: boolean;
}

/** C_STOPPED's value for a stop at an interrupt point (test/crash-interrupt-points.test.ts). */
export const INTERRUPT_STOP = 2000;

/** The dead thread the reclaim scenario reclaims: a worker with cached, remote-freed and live blocks. */
async function makeVictim(heap: SharedHeap, extra: number[]): Promise<number> {
  const v = startHeapWorker();
  const id = await v.remote.attach(heap.buffer);
  const blocks: number[] = [];
  for (let k = 0; k < 14; k++) blocks.push(await v.remote.malloc(k % 2 === 0 ? 64 : 3000));
  for (let k = 0; k < 6; k++) await v.remote.free(blocks[k]!); // in its magazines (some drained)
  for (let k = 6; k < 10; k++) heap.free(blocks[k]!); // remote frees to its slabs, noticed
  heap.flush();
  extra.push(...blocks.slice(10)); // still allocated when it dies
  // It frees blocks of the main thread (remote: published onto the main thread's slab, noticed) ...
  const theirs = [heap.malloc(64), heap.malloc(64), heap.malloc(64)];
  for (const p of theirs) await v.remote.free(p);
  await v.remote.flush();
  // It holds a deep magazine (magazine.ts deepen) of ten 40 KiB blocks, more than a journal area
  // takes at once here (magazineCapacity 4), and ten more of them allocated.
  const deep: number[] = [];
  for (let k = 0; k < 20; k++) deep.push(await v.remote.malloc(40 * 1024));
  for (let k = 0; k < 10; k++) await v.remote.free(deep[k]!);
  extra.push(...deep.slice(10));
  const tid = heap.stats().threads.find((x) => x.threadId === id)!.tid;
  {
    const t = internals(heap);
    if (!isDeepTop(t.i32[t.threadW(tid) + TH_TOP + classOf(40 * 1024)]!, t.geo.metaSupers)) throw new Error('the victim has no deep magazine');
  }
  await v.worker.terminate();
  // ... and is made to look stopped between its CAS of the slab's notice flag and its push onto
  // the main thread's notice list: the flag says noticed, the list is empty, TH_NOTIFYING and
  // TH_FLAGGED name the slab. Reclaiming it must leave the flag for the main thread to settle.
  const t = internals(heap);
  const noticeW = t.threadW(t.runner.slot) + TH_NOTICE;
  const noticed = theirs[0]! >>> SLOT_SHIFT;
  if (Atomics.load(t.i32, noticeW) !== noticed || Atomics.load(t.i32, t.metaW(noticed) + SM_NOTIFIED) !== tid + 1) {
    throw new Error('the victim did not notice the main thread of its remote frees');
  }
  Atomics.store(t.i32, noticeW, 0);
  t.i32[t.threadW(tid) + TH_NOTIFYING] = noticed;
  t.i32[t.threadW(tid) + TH_FLAGGED] = noticed;
  // It also dies holding its claim on a slab of a Stage-1 list, as a stop between a pop's claim
  // and its unlinking CAS leaves it: the reclaim takes that list whole to repair it.
  const cls = classOf(1024);
  const slab = Array.from({ length: COUNT[cls]! }, () => heap.malloc(1024));
  for (const p of slab) heap.free(p);
  heap.flush(); // the empty slab goes to Stage 1 (stage1Keep 1)
  const claimed = Atomics.load(t.i32, S1_HEAD_W + cls) & S1_SLOT_MASK;
  if (claimed === 0) throw new Error('no Stage-1 slab to claim');
  Atomics.store(t.i32, t.metaW(claimed) + SM_OWNER, tid);
  t.i32[t.threadW(tid) + TH_POPPING] = claimed;
  return id;
}

/** The slabs owned by thread slot `slot` whose remote list is not empty, as 'slot (notice flag)'. */
function remoteListsOf(heap: SharedHeap, slot: number): string[] {
  const t = internals(heap);
  return ownedSlabs(t, slot)
    .filter((s) => Atomics.load(t.i32, t.metaW(s) + SM_REMOTE) !== 0)
    .map((s) => `${s} (${Atomics.load(t.i32, t.metaW(s) + SM_NOTIFIED)})`);
}

export async function runOnce(name: string, n: number, atomics = false, fault = false, via?: RunVia): Promise<RunResult> {
  const scenario = CRASH_SCENARIOS[name] ?? via?.scenarios?.[name];
  if (scenario === undefined) throw new Error(`no crash scenario ${name}`);
  const heap = SharedHeap.create(scenario.options);
  const failures: string[] = [];
  // The main thread's own live blocks, each with its pattern.
  const mine: [number, number][] = [];
  for (let k = 0; k < 12; k++) {
    const size = [24, 200, 5000][k % 3]!;
    const p = heap.malloc(size);
    heap.u8.fill(0xc0 + k, p, p + size);
    mine.push([p, size]);
  }
  const d: CrashWorkerData = {
    kind: 'crash', buffer: heap.buffer, scenario: name, n, atomics, fault,
    ledger: new Int32Array(new SharedArrayBuffer(4 * (L_FIRST + LEDGER_ENTRIES))),
    sizes: new Int32Array(new SharedArrayBuffer(4 * LEDGER_ENTRIES)),
    ctl: new Int32Array(new SharedArrayBuffer(16)),
  };
  d.ledger[L_INFLIGHT] = -1;
  const extra: number[] = []; // blocks to free at the end without a pattern (the victim's)
  let victimId = -1;
  if (name === 'reclaim') {
    victimId = await makeVictim(heap, extra);
    Atomics.store(d.ctl, C_VICTIM, victimId);
  }
  const e = via?.worker ?? workerEntry('crash-worker');
  const w = new Worker(e.filename, { execArgv: e.execArgv, workerData: { ...d, ...via?.data } });
  const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
  const messages: { where?: string; attached?: boolean; threadId?: number; done?: boolean; counts?: number[]; faulted?: string; stopped?: boolean; outside?: boolean }[] = [];
  let notify = (): void => {};
  w.on('message', (m) => {
    messages.push(m);
    notify();
  });
  w.on('error', (err) => failures.push(`worker error: ${err.message}`));
  const next = (): Promise<(typeof messages)[number] | undefined> =>
    messages.length > 0 ? Promise.resolve(messages.shift()) : Promise.race([new Promise<undefined>((r) => (notify = () => r(undefined))), exited.then(() => undefined)]).then(() => messages.shift());
  const hello = await next();
  const threadId = hello?.threadId ?? -1;
  scenario.mainMiddle?.(heap, d);
  w.postMessage('go');
  let end = await next();
  let where: string | undefined;
  if (end?.where !== undefined) {
    where = end.where; // the stop's stack, which the interrupt worker posts when asked (via.data.where)
    end = await next();
  }
  if (n > 0 && end?.done) failures.push(`finished without stopping at crash point ${n}`);
  if (fault && end?.done !== true && end?.outside !== true) {
    // The cut-off call threw HeapStateError naming the RangeError, and the thread stopped using the heap.
    if (!(end?.faulted ?? '').startsWith('HeapStateError') || !(end?.faulted ?? '').includes('cut off by RangeError')) {
      failures.push(`the cut-off call threw ${end?.faulted}`);
    }
    if (end?.stopped !== true) failures.push('the thread did not stop using the heap after the cut-off call');
  }
  if (n === 0) await w.terminate();
  await exited;
  const stopped = Atomics.load(d.ctl, C_STOPPED);
  const stoppedAt =
    n === 0 ? 'none' : stopped === ATOMICS_STOP ? 'atomics call' : stopped === INTERRUPT_STOP ? 'interrupt point' : (CRASH_PATHS[stopped - 1] ?? 'unknown');

  if (name === 'reclaim') {
    // Another thread may take what the stopped reclaimer gave back before anyone reclaims it: the
    // main thread takes a block of the deep magazines' class without waiting (the slab of the
    // victim's deep magazine, once given back, comes first) and frees it into its magazine. A
    // reclaimer stopped after that give-back but before it moved the victim's top left the top
    // in the block, and the next reclaim gave the main thread's cached block back as the victim's
    // (an audit: check() failed, and malloc handed the block out twice).
    const p = heap.tryMalloc(64 * 1024);
    if (p !== 0) heap.free(p);
  }
  // The test states the worker stopped: reclaim by threadId must be prompt.
  const t0 = performance.now();
  let reclaimed: unknown;
  try {
    reclaimed = heap.reclaim(threadId);
    if (victimId >= 0) heap.reclaim(victimId); // finished by the first reclaim, or still to do
  } catch (err) {
    reclaimed = (err as Error).message;
  }
  const ms = performance.now() - t0;
  // A detach stopped after its slot went FREE leaves nothing under the id to reclaim.
  const gone = via?.mayEndFree === true && reclaimed === false && !heap.stats().threads.some((x) => x.threadId === threadId);
  if (reclaimed !== true && !gone) failures.push(`reclaim(${threadId}) returned ${String(reclaimed)}`);
  if (ms > 1000) failures.push(`reclaim took ${Math.round(ms)} ms`);
  if (lockWord(heap.buffer) !== 0) failures.push(`lock word ${lockWord(heap.buffer)} after the reclaim`);
  const c1 = checked(heap);
  if (c1 !== 'passes') failures.push(`check() after the reclaim: ${c1}`);
  // The large-run lists' count agrees with the lists (no push or pop is under way now): a thread
  // stopped between a list and the count is repaired and recounted.
  const ti = internals(heap);
  const counted = Atomics.load(ti.i32, G_LARGE_POOLED);
  const held = largePooledSlots(ti.i32, ti.smW);
  if (counted !== held) failures.push(`G_LARGE_POOLED ${counted} after the reclaim, the large-run lists hold ${held} slots`);
  mine.forEach(([p, size], k) => {
    if (!allBytes(heap.u8, p, p + size, 0xc0 + k)) failures.push(`the main thread's block ${p} lost its bytes`);
  });
  // Free everything; the call in flight may or may not have freed (or got) its block.
  const inflight = d.ledger[L_INFLIGHT]!;
  let allowed = 0;
  for (let i = 0; i < d.ledger[L_COUNT]! + (inflight >= 0 ? 1 : 0); i++) {
    const p = d.ledger[L_FIRST + i]!;
    if (i === inflight) {
      allowed = 2 * d.sizes[i]! + (64 << 10);
      const keep = Atomics.load(d.ctl, C_KEEP);
      if (p !== 0 && keep > 0 && isLiveBlock(heap, p) && !allBytes(heap.u8, p, p + keep, patternOf(i))) {
        failures.push(`the worker's block ${i} (${p}), stopped in realloc, lost its first ${keep} bytes`);
      }
      if (p !== 0) {
        try {
          heap.free(p);
        } catch (err) {
          if (!(err instanceof DoubleFreeError || err instanceof InvalidPointerError)) throw err;
        }
      }
      continue;
    }
    if (p === 0) continue;
    const size = d.sizes[i]!;
    if (!allBytes(heap.u8, p, p + size, patternOf(i))) failures.push(`the worker's block ${i} (${p}) lost its bytes`);
    try {
      heap.free(p);
    } catch (err) {
      failures.push(`free of the worker's block ${i} (${p}): ${(err as Error).message}`);
    }
  }
  for (const p of extra) heap.free(p);
  for (const [p] of mine) heap.free(p);
  heap.flush();
  // The flush took this thread's notices: no slab of its own keeps blocks freed by the dead worker
  // on its remote list (a notice the worker flagged and never pushed would leave them there).
  const waiting = remoteListsOf(heap, internals(heap).runner.slot);
  if (waiting.length > 0) failures.push(`after the flush, slabs of the main thread hold remote frees: ${waiting.join(', ')}`);
  const c2 = checked(heap);
  if (c2 !== 'passes') failures.push(`check() after freeing everything: ${c2}`);
  const live = heap.stats().liveBytes;
  if (live > allowed) failures.push(`${live} bytes still allocated, the call in flight accounts for at most ${allowed}`);
  // The heap works on: allocate and free across classes.
  const again: number[] = [];
  for (let k = 0; k < 40; k++) again.push(heap.malloc(16 + k * 97));
  for (const p of again) heap.free(p);
  heap.flush();
  const c3 = checked(heap);
  if (c3 !== 'passes') failures.push(`check() after more use: ${c3}`);
  heap.detach();
  return { counts: end?.counts, stoppedAt, failures, inHeap: end?.faulted !== undefined, where };
}

/** Runs `jobs` two at a time (the machine has two cores). */
export async function inPairs<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let nextJob = 0;
  const lane = async (): Promise<void> => {
    while (nextJob < jobs.length) {
      const k = nextJob++;
      out[k] = await jobs[k]!();
    }
  };
  await Promise.all([lane(), lane()]);
  return out;
}

