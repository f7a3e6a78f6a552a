/**
 * The worker side of `sabmalloc bench`: what one thread of one timed run does.
 * workers/bench-worker.ts (the piscina task file) only forwards to
 * {@link runBenchTask}; bench/run.ts is the main-thread side.
 *
 * Protocol of a run with T threads, over a small SharedArrayBuffer (the
 * "control", laid out by {@link createControl}):
 *
 * 1. Each thread attaches to the heap (or makes its own @thi.ng/malloc pool, dlmalloc-wasm heap or reference allocator),
 *    does the untimed setup (W3's fill, W5's trace parse), adds 1 to READY
 *    and waits for GO.
 * 2. The main thread waits for READY = T, snapshots heap.stats(), writes the
 *    release time into the control and sets GO: all threads start at once.
 * 3. Each thread runs and times its own synchronous loop (W3 meets the others
 *    at a barrier in the control twice a round), writes its end time, adds 1
 *    to DONE and waits for CLEANUP.
 * 4. The main thread waits for DONE = T, snapshots heap.stats() again (so the
 *    counters cover the timed part only), then sets CLEANUP; each thread
 *    frees what it holds (untimed), detaches and returns its counts.
 *
 * Times are `process.hrtime` nanoseconds (CLOCK_MONOTONIC, one clock for all
 * threads), so wall time = (latest end) - (release) is comparable across
 * threads. If a thread fails it sets ABORT and wakes everyone, so the others
 * throw {@link BenchAbortedError} instead of waiting forever.
 */
import { SharedHeap, type SharedMemory } from '../src/index.js';
import { copyFor } from './copies.js';
import { lockStorm, lockStormCleanup } from './lock-storm.js';
import { loadTrace, readTraceOps, replay, replayLoop, type ReplayAllocator, type Trace } from './replay.js';
import { collectGarbageIfHeavy } from './gc.js';
import { createWasmDlmalloc } from './wasm-dlmalloc.js';
import { ReferenceAllocator } from './reference-alloc.js';
import {
  emptyResult,
  larsonCleanup,
  larsonFill,
  larsonHeld,
  larsonRound,
  larsonRoundLoop,
  slotCleanup,
  slotLoop,
  threadRng,
  w1,
  w2,
  type LarsonBlocks,
  type SlotRun,
  type WorkloadResult,
} from './workloads.js';

/** The workloads that run on JavaScript allocators. */
export type JsWorkload = 'W1' | 'W2' | 'W3' | 'W5' | 'LOCK';
/** The JavaScript (and WebAssembly) allocators a worker can run. */
export const JS_ALLOCATORS = ['sabmalloc', 'thi.ng', 'dlmalloc-wasm', 'reference'] as const;
export type JsAllocatorName = (typeof JS_ALLOCATORS)[number];

/** `name` as a JsAllocatorName; throws for any other (a case the workers cannot run). */
export function jsAllocatorName(name: string): JsAllocatorName {
  if (!(JS_ALLOCATORS as readonly string[]).includes(name)) throw new Error(`bench: no JavaScript allocator named ${JSON.stringify(name)}`);
  return name as JsAllocatorName;
}

/** Parameters of one run of a workload; per thread where that applies. */
export interface WorkloadParams {
  /** W1, W2, LOCK: cycles per thread. */
  cycles?: number;
  /** W1, W2, LOCK: slots per thread. */
  ws?: number;
  seed?: number;
  /** W3 */
  chunks?: number;
  rounds?: number;
  opsPerRound?: number;
  /** W5: trace file, and how many times it is replayed back to back in one run. */
  trace?: string;
  repeats?: number;
  /** W5: the trace parsed, in the binary form of bench/replay.ts writeTraceOps (what the threads load). */
  traceOps?: string;
  /** W5: the trace's operations and peak live requested bytes. */
  traceCount?: number;
  traceLiveBytes?: number;
}

/** One thread of one timed run. */
export interface RunTask {
  kind: 'run';
  allocator: JsAllocatorName;
  workload: JsWorkload;
  threads: number;
  thread: number;
  params: WorkloadParams;
  control: SharedArrayBuffer;
  /** sabmalloc: the heap, created by the main thread. */
  heap?: SharedArrayBuffer;
  /** sabmalloc: the heap's WebAssembly.Memory when it has one (heap.memory), attached with instead of the buffer. */
  heapMemory?: SharedMemory;
  /** thi.ng and reference: bytes of the pool (buffer) this thread creates. */
  poolBytes?: number;
  /** dlmalloc-wasm: the compiled module (bench/wasm-dlmalloc.ts). */
  wasmPath?: string;
  /** W3: the T larson arrays, each 2 * chunks Int32 words (see LarsonBlocks). */
  larson?: SharedArrayBuffer;
}

/** MICRO's cross-thread free: allocate `count` blocks of `size` bytes and write their offsets to `out`. */
export interface MicroAllocTask {
  kind: 'micro-alloc';
  heap: SharedArrayBuffer;
  out: SharedArrayBuffer;
  count: number;
  size: number;
}

/** MICRO: detach this worker from the heap. */
export interface MicroDetachTask {
  kind: 'micro-detach';
  heap: SharedArrayBuffer;
}

export type BenchTask = RunTask | MicroAllocTask | MicroDetachTask;

/** What one thread reports (counts of shared/workloads.md plus its times). */
export interface ThreadResult extends WorkloadResult {
  thread: number;
  /** hrtime ns when this thread saw GO. */
  startNs: number;
  /** hrtime ns when its timed loop ended. */
  endNs: number;
  /** thi.ng: the pool's top after the timed part (its high-water mark). */
  footprintBytes?: number;
  /** W5: operations by kind. */
  callocs?: number;
  reallocs?: number;
  frees?: number;
}

/** Another thread of the run failed; this one gave up waiting. */
export class BenchAbortedError extends Error {
  readonly code = 'BENCH_ABORTED';
  override name = 'BenchAbortedError';
}

// ---------------------------------------------------------------------------
// The control block

export const CTL_READY = 0;
export const CTL_GO = 1;
export const CTL_DONE = 2;
export const CTL_CLEANUP = 3;
export const CTL_ABORT = 4;
export const CTL_BAR_COUNT = 5;
export const CTL_BAR_GEN = 6;
const CTL_I32_WORDS = 16;
const CTL_F64_BYTE = CTL_I32_WORDS * 4;

/** Float64 index of the release time. */
export const F_START = 0;
/** Float64 index of thread t's end time. */
export function fEnd(t: number): number {
  return 1 + t;
}
/** Float64 index of array a's W3 peak of live requested bytes. */
export function fPeak(threads: number, a: number): number {
  return 1 + threads + a;
}

/** A control block for `threads` threads. */
export function createControl(threads: number): SharedArrayBuffer {
  return new SharedArrayBuffer(CTL_F64_BYTE + 8 * (1 + 2 * threads));
}

export function controlViews(control: SharedArrayBuffer): { ctl: Int32Array; f64: Float64Array } {
  return { ctl: new Int32Array(control, 0, CTL_I32_WORDS), f64: new Float64Array(control, CTL_F64_BYTE) };
}

/** Sets ABORT and wakes every waiter. */
export function abortControl(ctl: Int32Array): void {
  Atomics.store(ctl, CTL_ABORT, 1);
  for (const w of [CTL_GO, CTL_CLEANUP, CTL_BAR_GEN, CTL_READY, CTL_DONE]) Atomics.notify(ctl, w);
}

/** Monotonic nanoseconds, one clock for every thread of the process. */
export function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/** Blocks while ctl[index] === value (re-checking ABORT every second). */
function waitWhile(ctl: Int32Array, index: number, value: number): void {
  while (Atomics.load(ctl, index) === value) {
    if (Atomics.load(ctl, CTL_ABORT) !== 0) throw new BenchAbortedError('bench run aborted: another thread failed');
    Atomics.wait(ctl, index, value, 1000);
  }
}

/** Adds 1 to ctl[index] and wakes its waiters. */
function arrive(ctl: Int32Array, index: number): void {
  Atomics.add(ctl, index, 1);
  Atomics.notify(ctl, index);
}

/** A generation barrier of `threads` threads. */
function barrier(ctl: Int32Array, threads: number): void {
  const gen = Atomics.load(ctl, CTL_BAR_GEN);
  if (Atomics.add(ctl, CTL_BAR_COUNT, 1) === threads - 1) {
    Atomics.store(ctl, CTL_BAR_COUNT, 0);
    Atomics.add(ctl, CTL_BAR_GEN, 1);
    Atomics.notify(ctl, CTL_BAR_GEN);
  } else {
    waitWhile(ctl, CTL_BAR_GEN, gen);
  }
}

// ---------------------------------------------------------------------------
// Allocators

interface ThingPool {
  buf: ArrayBufferLike;
  malloc(bytes: number): number;
  calloc(bytes: number, fill?: number): number;
  realloc(ptr: number, bytes: number): number;
  free(ptr: number): boolean;
  stats(): { top: number };
}

/** @thi.ng/malloc's MemPool behind the workloads' allocator interface (its byte view is protected). */
export class ThingAllocator implements ReplayAllocator {
  readonly u8: Uint8Array;
  constructor(readonly pool: ThingPool) {
    this.u8 = new Uint8Array(pool.buf);
  }
  malloc(size: number): number {
    return this.pool.malloc(size);
  }
  free(ptr: number): void {
    this.pool.free(ptr);
  }
  calloc(n: number, size: number): number {
    return this.pool.calloc(n * size);
  }
  /** C semantics, which MemPool lacks: realloc(0, n) is malloc(n), realloc(p, 0) frees p. */
  realloc(ptr: number, size: number): number {
    if (ptr === 0) return this.pool.malloc(size);
    if (size === 0) {
      this.pool.free(ptr);
      return 0;
    }
    return this.pool.realloc(ptr, size);
  }
  footprint(): number {
    return this.pool.stats().top;
  }
}

/** A @thi.ng/malloc pool of `bytes` bytes; rejects when the package is not installed. */
export async function createThingAllocator(bytes: number): Promise<ThingAllocator> {
  const mod = (await import('@thi.ng/malloc')) as unknown as { MemPool: new (opts: { size: number }) => ThingPool };
  return new ThingAllocator(new mod.MemPool({ size: bytes }));
}

const traces = new Map<string, Trace>();

/** A parsed trace, cached per path in this thread: from its binary form if given, else from the text. */
export function cachedTrace(path: string, opsFile?: string): Trace {
  const key = opsFile ?? path;
  let t = traces.get(key);
  if (t === undefined) {
    t = opsFile !== undefined ? readTraceOps(opsFile, path) : loadTrace(path);
    traces.set(key, t);
  }
  return t;
}

// ---------------------------------------------------------------------------
// The task

/** Runs one piscina task. */
export async function runBenchTask(task: BenchTask): Promise<ThreadResult | number> {
  if (task.kind === 'micro-alloc') return microAlloc(task);
  if (task.kind === 'micro-detach') {
    SharedHeap.attach(task.heap).detach();
    return 0;
  }
  return runThread(task);
}

function microAlloc(task: MicroAllocTask): number {
  const heap = SharedHeap.attach(task.heap);
  const out = new Int32Array(task.out);
  const u8 = heap.u8;
  for (let i = 0; i < task.count; i++) {
    const p = heap.malloc(task.size);
    if (p === 0) throw new Error(`MICRO: malloc(${task.size}) returned 0 in the allocating worker`);
    u8[p] = i & 0xff;
    out[i] = p;
  }
  return task.count;
}

/**
 * The allocator of this worker's run now (sabmalloc's heap instance, dlmalloc-wasm's instance, a
 * peer's pool), and of its run before, held until the run after it ends: see runThread.
 */
let runAllocator: unknown;
let heldAllocator: unknown;

async function runThread(task: RunTask): Promise<ThreadResult> {
  const rssBefore = process.memoryUsage.rss();
  try {
    return await runThreadOnce(task);
  } finally {
    // The run's allocator stays reachable until the next run of this worker is over, the one
    // before it is let go now: at most two runs' memory a worker. Where sabmalloc's heap died
    // before the next run (collected as below), that run was slower: xmllint_format's warm
    // replays 18.2-18.4 against 22.1-22.4 M ops/s by the medians (its cold run 15.1-17.9 either
    // way), two comparisons each, 2026-12-05: the optimized code the next run reuses depends on
    // objects of the one before (as in bench/gc.ts). Not dlmalloc-wasm's: its calls go to each
    // instance's own exported functions, and with the run before's instance alive the loop's call
    // sites saw two targets (its xmllint_format replays 18.4 against 19.8-20.8 M ops/s).
    heldAllocator = task.allocator === 'dlmalloc-wasm' ? undefined : runAllocator;
    runAllocator = undefined;
    // Untimed, once the run is over: this worker drops the task's references to the run's heap
    // (the allocator held above keeps sabmalloc's heap and the peers' pools until the next run is
    // over; dlmalloc-wasm's memory and the run before's allocator go now) and collects when the
    // process holds a lot (bench/gc.ts collectGarbageIfHeavy), so that the large traces' heaps do
    // not pile up (with every run's memory still mapped the next runs took pages this machine had
    // not handed out lately, whose first touches cost several times more; README, Benchmarks).
    // Not after every run: a collection threw away the optimized code of the loop copies, and the
    // next warm run ran as a cold one (bench/gc.ts). After a turn of the event loop (bench/gc.ts
    // endOfJob): until this task's job ends, attach's WeakRef keeps the heap.
    task.heap = undefined;
    task.heapMemory = undefined;
    await collectGarbageIfHeavy(rssBefore);
  }
}

async function runThreadOnce(task: RunTask): Promise<ThreadResult> {
  const { ctl, f64 } = controlViews(task.control);
  let heap: SharedHeap | undefined;
  try {
    let alloc: ReplayAllocator;
    if (task.allocator === 'sabmalloc') {
      if (task.heap === undefined) throw new Error('bench task: sabmalloc needs the heap buffer');
      heap = SharedHeap.attach(task.heapMemory ?? task.heap);
      alloc = heap;
    } else if (task.allocator === 'dlmalloc-wasm') {
      if (task.wasmPath === undefined) throw new Error('bench task: dlmalloc-wasm needs the module path');
      alloc = createWasmDlmalloc(task.wasmPath);
    } else if (task.allocator === 'reference') {
      alloc = new ReferenceAllocator(task.poolBytes ?? 128 << 20);
    } else {
      alloc = await createThingAllocator(task.poolBytes ?? 256 << 20);
    }
    runAllocator = alloc;
    return runWorkload(task, alloc, ctl, f64); // the peers' footprints are read there
  } catch (err) {
    abortControl(ctl);
    throw err;
  } finally {
    heap?.detach();
  }
}

function runWorkload(task: RunTask, alloc: ReplayAllocator, ctl: Int32Array, f64: Float64Array): ThreadResult {
  const { workload, threads: T, thread: t, params: p } = task;
  // Each allocator runs its own copy of the timed loop (bench/copies.ts), which calls its methods directly.
  const name = task.allocator;
  const start = (): number => {
    arrive(ctl, CTL_READY);
    waitWhile(ctl, CTL_GO, 0);
    return nowNs();
  };
  const finish = (): number => {
    const end = nowNs();
    f64[fEnd(t)] = end;
    arrive(ctl, CTL_DONE);
    waitWhile(ctl, CTL_CLEANUP, 0);
    return end;
  };
  // The peers' own high-water marks (sabmalloc's footprint comes from stats() in the main thread).
  const peer = name !== 'sabmalloc';
  const footprint = (): number | undefined => (peer ? alloc.footprint?.() : undefined);

  if (workload === 'W1' || workload === 'W2' || workload === 'LOCK') {
    const startNs = start();
    let run: SlotRun;
    if (workload === 'W1') run = w1(alloc, { cycles: p.cycles, ws: p.ws, seed: p.seed }, copyFor(slotLoop, name));
    else if (workload === 'W2') run = w2(alloc, { cycles: p.cycles, ws: p.ws, seed: p.seed, thread: t }, copyFor(slotLoop, name));
    else run = lockStorm(alloc, { cycles: p.cycles, ws: p.ws, seed: p.seed, thread: t });
    const fp = footprint();
    const endNs = finish();
    if (workload === 'LOCK') lockStormCleanup(alloc, run);
    else slotCleanup(alloc, run);
    return { ...run.result, thread: t, startNs, endNs, footprintBytes: fp };
  }

  if (workload === 'W3') {
    const chunks = p.chunks!;
    const rounds = p.rounds!;
    const opsPerRound = p.opsPerRound!;
    if (task.larson === undefined) throw new Error('bench task: W3 needs the larson arrays');
    const arrays: LarsonBlocks[] = [];
    for (let a = 0; a < T; a++) arrays.push(new Int32Array(task.larson, a * 2 * chunks * 4, 2 * chunks));
    const rng = threadRng(p.seed!, t);
    const tally = emptyResult();
    larsonFill(alloc, rng, chunks, arrays[t], tally);
    f64[fPeak(T, t)] = tally.peakLiveBytes;
    const loop = copyFor(larsonRoundLoop, name);
    const startNs = start();
    for (let round = 0; round < rounds; round++) {
      const a = larsonHeld(t, round, T);
      tally.peakLiveBytes = f64[fPeak(T, a)]!;
      larsonRound(alloc, rng, arrays[a]!, opsPerRound, tally, loop);
      f64[fPeak(T, a)] = tally.peakLiveBytes;
      barrier(ctl, T); // all threads are done with their arrays
      // hand-off: thread t now holds the array thread (t + 1) % T held
      barrier(ctl, T); // all threads have taken theirs
    }
    const fp = footprint();
    const endNs = finish();
    larsonCleanup(alloc, arrays[larsonHeld(t, rounds, T)]!);
    // The per-array peaks are in the control (fPeak); the harness adds them up.
    return { ...tally, peakLiveBytes: 0, thread: t, startNs, endNs, footprintBytes: fp };
  }

  // W5: replay the trace `repeats` times (each replay frees what the trace left live, untimed).
  const trace = cachedTrace(p.trace!, p.traceOps);
  const repeats = p.repeats ?? 1;
  const total: ThreadResult = {
    ...emptyResult(),
    thread: t,
    startNs: 0,
    endNs: 0,
    callocs: 0,
    reallocs: 0,
    frees: 0,
  };
  let fp = 0;
  const loop = copyFor(replayLoop, name);
  total.startNs = start();
  for (let k = 0; k < repeats; k++) {
    const r = replay(alloc, trace, loop);
    total.ops += r.ops;
    total.mallocs += r.mallocs;
    total.callocs! += r.callocs;
    total.reallocs! += r.reallocs;
    total.frees! += r.frees;
    total.bytesRequested += r.bytesRequested;
    total.checksum = (total.checksum + r.checksum) >>> 0;
    if (r.peakLiveBytes > total.peakLiveBytes) total.peakLiveBytes = r.peakLiveBytes;
    total.elapsedNs += r.elapsedNs;
    if (r.footprintBytes !== undefined && r.footprintBytes > fp) fp = r.footprintBytes;
  }
  total.footprintBytes = peer ? fp : undefined;
  total.endNs = finish();
  return total;
}
