/**
 * The main-thread side of `sabmalloc bench`: plans the cases (allocator x
 * workload x threads), runs each one (a warm-up run, then the timed runs),
 * checks the counts, and summarizes. bench/bench-task.ts is the worker side;
 * bench/cli.ts parses the command line and prints.
 *
 * - sabmalloc: every run gets a fresh, non-growable heap created here and
 *   passed to the workers as its buffer; one piscina pool per thread count
 *   (the workers persist across runs, so the warm-up run warms their JIT);
 *   heap.check() after each run; lock and stage counters are the difference
 *   of two heap.stats() snapshots taken around the timed part.
 * - @thi.ng/malloc: single thread, in its own one-worker pool (so the
 *   sabmalloc workers' loops stay monomorphic), on at most
 *   {@link THING_MAX_CYCLES} cycles (it takes ~10-17 us an operation).
 * - Native: bench/native.ts runs the C program with the system allocator and
 *   each LD_PRELOAD library found, on the same parameters.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { SharedHeap, type HeapOptions, type HeapStats, type LockStats } from '../src/index.js';
import { workerEntry } from '../src/node.js';
import {
  abortControl,
  controlViews,
  createControl,
  CTL_CLEANUP,
  CTL_DONE,
  CTL_GO,
  CTL_READY,
  fEnd,
  fPeak,
  F_START,
  nowNs,
  type JsWorkload,
  type RunTask,
  type ThreadResult,
  type WorkloadParams,
} from './bench-task.js';
import { LOCK_DEFAULTS, LOCK_HEAP_OPTIONS } from './lock-storm.js';
import { nativeAllocators, nativeSkipReason, runNative, type NativeAllocator, type NativeParams } from './native.js';
import { loadTrace, OP_FREE, OP_REALLOC, type Trace } from './replay.js';
import { W1_DEFAULTS, W2_DEFAULTS, W3_DEFAULTS } from './workloads.js';

export type Workload = JsWorkload;
export const WORKLOADS: readonly Workload[] = ['W1', 'W2', 'W3', 'W5', 'LOCK'];
/** Workloads defined for one thread only. */
export const SINGLE_THREAD_WORKLOADS: ReadonlySet<Workload> = new Set<Workload>(['W1', 'W5']);
/** Workloads the C program implements. */
export const NATIVE_WORKLOADS: ReadonlySet<Workload> = new Set<Workload>(['W1', 'W2', 'W3']);

/** Cycles per thread of each workload when --cycles is not given (W3: ops per thread; W5: ops replayed). */
export const DEFAULT_CYCLES: Readonly<Record<Workload, number>> = {
  W1: W1_DEFAULTS.cycles,
  W2: W2_DEFAULTS.cycles,
  W3: 2 * W3_DEFAULTS.rounds * W3_DEFAULTS.opsPerRound,
  W5: 1_000_000,
  LOCK: LOCK_DEFAULTS.cycles,
};
/** --smoke: cycles per thread. */
export const SMOKE_CYCLES: Readonly<Record<Workload, number>> = { W1: 20_000, W2: 5_000, W3: 20_000, W5: 3_000, LOCK: 5_000 };
/** @thi.ng/malloc runs on at most this many cycles. */
export const THING_MAX_CYCLES = 100_000;

const MiB = 1 << 20;

/** What one case runs: an allocator on a workload at a thread count. */
export interface CaseSpec {
  /** 'sabmalloc', 'thi.ng', or a native allocator's name ('glibc', 'jemalloc', ...). */
  allocator: string;
  family: 'js' | 'native';
  workload: Workload;
  threads: number;
  params: WorkloadParams;
  /** Cycles per thread this case stands for (W3: ops per thread). */
  cycles: number;
  /** sabmalloc: bytes of the (non-growable) heap. */
  heapBytes?: number;
  /** sabmalloc: extra heap options (LOCK's magazines of one). */
  heapOptions?: Partial<HeapOptions>;
  /** thi.ng: bytes of its pool. */
  poolBytes?: number;
  /** Native: the library preloaded (absent for the system allocator). */
  preload?: string;
  /** Shown in the table's notes column. */
  notes: string[];
}

/** The lock counters of src/stats.ts, as a difference over the timed part (recoveries left out). */
export type LockDelta = Omit<LockStats, 'recoveries'>;

/** One run of a case. */
export interface RunRecord {
  warmup: boolean;
  seconds: number;
  opsPerSec: number;
  ops: number;
  mallocs: number;
  bytesRequested: number;
  checksum: number;
  peakLiveBytes: number;
  /** sabmalloc: stats().peakFootprintBytes; thi.ng: pool top; native: peak RSS. */
  footprintBytes?: number;
  /** sabmalloc: the heap's metadata (its footprint before the first allocation). */
  metaBytes?: number;
  /** sabmalloc: counters of the timed part. */
  lock?: LockDelta;
  stages?: { stage1: number; stage2: number; stage3: number; stage1Pushes: number };
  remoteFrees?: number;
  /** JS: latest thread start minus the release, in microseconds (how together the threads started). */
  releaseSkewUs?: number;
  /** JS: each thread's own timed loop, in seconds. */
  threadSeconds?: number[];
  /** Native: the shared object malloc came from. */
  mallocLibrary?: string;
}

export interface CaseSummary {
  opsPerSec: { median: number; min: number; max: number };
  /** ops/s median over glibc native's median for the same workload and threads. */
  ratioToGlibc?: number;
  footprintBytes?: number;
  metaBytes?: number;
  peakLiveBytes: number;
  footprintRatio?: number;
  /** Lock counters per million timed operations, over all timed runs. */
  lockPerMops?: { acquisitions: number; contended: number; waits: number; waitMs: number };
  /** Median per run. */
  stages?: { stage1: number; stage2: number; stage3: number };
  remoteFrees?: number;
}

export interface CaseResult {
  spec: CaseSpec;
  warmup?: RunRecord;
  runs: RunRecord[];
  summary?: CaseSummary;
  error?: string;
}

// ---------------------------------------------------------------------------
// Planning

export interface PlanOptions {
  workloads: Workload[];
  threads: number[];
  /** Overrides the per-workload cycles (per thread). */
  cycles?: number;
  smoke?: boolean;
  /** W5's trace file. */
  trace: string;
  /** Allocators wanted: 'sabmalloc', 'thi.ng', and native names. */
  allocators: Set<string>;
  thingAvailable: boolean;
  natives: NativeAllocator[];
}

/** Cycles per thread used for `workload`. */
export function cyclesFor(workload: Workload, opts: { cycles?: number; smoke?: boolean }): number {
  if (opts.cycles !== undefined) return opts.cycles;
  return (opts.smoke ? SMOKE_CYCLES : DEFAULT_CYCLES)[workload];
}

/** W3's rounds and ops per round for `cycles` operations per thread (2 per op: a free and a malloc). */
export function w3Shape(cycles: number): { rounds: number; opsPerRound: number } {
  const opsPerRound = cycles >= 200_000 ? W3_DEFAULTS.opsPerRound : Math.max(1, Math.floor(cycles / 20));
  const rounds = Math.max(1, Math.round(cycles / (2 * opsPerRound)));
  return { rounds, opsPerRound };
}

/** The workload parameters of `cycles` per thread. */
export function paramsFor(workload: Workload, cycles: number, trace: string): WorkloadParams {
  switch (workload) {
    case 'W1':
      return { cycles, ws: W1_DEFAULTS.ws, seed: W1_DEFAULTS.seed };
    case 'W2':
      return { cycles, ws: W2_DEFAULTS.ws, seed: W2_DEFAULTS.seed };
    case 'W3':
      return { chunks: W3_DEFAULTS.chunks, ...w3Shape(cycles), seed: W3_DEFAULTS.seed };
    case 'LOCK':
      return { cycles, ws: LOCK_DEFAULTS.ws, seed: LOCK_DEFAULTS.seed };
    case 'W5': {
      const t = tracePeak(trace);
      return { trace, repeats: Math.max(1, Math.ceil(cycles / Math.max(1, t.ops))) };
    }
  }
}

/** Operations per thread of a parameter set (what the table's cycles column shows). */
export function opsPerThread(workload: Workload, p: WorkloadParams): number {
  if (workload === 'W3') return 2 * p.rounds! * p.opsPerRound!;
  if (workload === 'W5') return tracePeak(p.trace!).ops * (p.repeats ?? 1);
  return p.cycles!;
}

/** Describes a parameter set in a few words. */
export function describeParams(workload: Workload, p: WorkloadParams): string {
  switch (workload) {
    case 'W3':
      return `${p.rounds} rounds x ${fmtInt(p.opsPerRound!)} ops, ${p.chunks} chunks`;
    case 'W5':
      return `${p.trace} x ${p.repeats}`;
    default:
      return `${fmtInt(p.cycles!)} cycles, ws ${p.ws}`;
  }
}

/** Bytes of the sabmalloc heap for a case: generous, so that it never has to grow. */
export function heapBytesFor(workload: Workload, threads: number, p: WorkloadParams): number {
  let mib: number;
  switch (workload) {
    case 'W1':
      mib = 128;
      break;
    case 'W2':
      mib = 64 + 96 * threads;
      break;
    case 'W3':
      mib = 64 + 16 * threads;
      break;
    case 'LOCK':
      mib = 64 + 64 * threads;
      break;
    case 'W5':
      mib = 64 + Math.ceil((4 * tracePeak(p.trace!).peakLiveBytes) / MiB);
      break;
  }
  return Math.min(2047, mib) * MiB;
}

const tracePeaks = new Map<string, { ops: number; peakLiveBytes: number }>();

/** Operations and peak live bytes of a trace (parsed once). */
export function tracePeak(path: string): { ops: number; peakLiveBytes: number } {
  let r = tracePeaks.get(path);
  if (r === undefined) {
    const t: Trace = loadTrace(path);
    const sizes = new Float64Array(Math.max(1, t.slots));
    let live = 0;
    let peak = 0;
    for (let i = 0; i < t.count; i++) {
      const s = t.slot[i]!;
      const k = t.kind[i]!;
      if (k === OP_FREE) {
        live -= sizes[s]!;
        sizes[s] = 0;
      } else {
        if (k === OP_REALLOC) live -= sizes[s]!;
        sizes[s] = t.size[i]!;
        live += t.size[i]!;
        if (live > peak) peak = live;
      }
    }
    r = { ops: t.count, peakLiveBytes: peak };
    tracePeaks.set(path, r);
  }
  return r;
}

/** Threads a workload runs at, given the --threads list. */
export function threadsFor(workload: Workload, threads: number[]): number[] {
  return SINGLE_THREAD_WORKLOADS.has(workload) ? [1] : threads;
}

/**
 * The cases to run, in order: for each workload and thread count, sabmalloc,
 * then the native allocators, then @thi.ng/malloc (so each comparison is
 * measured close together in time).
 */
export function planCases(o: PlanOptions): CaseSpec[] {
  const cases: CaseSpec[] = [];
  for (const workload of o.workloads) {
    const cycles = cyclesFor(workload, o);
    const params = paramsFor(workload, cycles, o.trace);
    for (const threads of threadsFor(workload, o.threads)) {
      const notes: string[] = [];
      if (SINGLE_THREAD_WORKLOADS.has(workload) && !o.threads.every((t) => t === 1)) notes.push('1 thread only');
      if (o.allocators.has('sabmalloc')) {
        const heapOptions = workload === 'LOCK' ? { ...LOCK_HEAP_OPTIONS } : undefined;
        cases.push({
          allocator: 'sabmalloc',
          family: 'js',
          workload,
          threads,
          params,
          cycles: opsPerThread(workload, params),
          heapBytes: heapBytesFor(workload, threads, params),
          heapOptions,
          notes: workload === 'LOCK' ? [...notes, 'magazines of 1'] : [...notes],
        });
      }
      if (NATIVE_WORKLOADS.has(workload)) {
        for (const n of o.natives) {
          if (!o.allocators.has(n.name)) continue;
          cases.push({
            allocator: n.name,
            family: 'native',
            workload,
            threads,
            params,
            cycles: opsPerThread(workload, params),
            preload: n.preload,
            notes: [...notes, 'footprint = peak RSS'],
          });
        }
      }
      if (o.allocators.has('thi.ng') && o.thingAvailable && threads === 1 && workload !== 'LOCK') {
        const reduced = Math.min(cycles, THING_MAX_CYCLES);
        const p = reduced < cycles ? paramsFor(workload, reduced, o.trace) : params;
        const thingNotes = [...notes];
        if (reduced < cycles) thingNotes.push(`cycles reduced to ${fmtInt(opsPerThread(workload, p))}`);
        cases.push({
          allocator: 'thi.ng',
          family: 'js',
          workload,
          threads: 1,
          params: p,
          cycles: opsPerThread(workload, p),
          poolBytes: workload === 'W2' ? 256 * MiB : workload === 'W5' ? heapBytesFor('W5', 1, p) : 128 * MiB,
          notes: thingNotes,
        });
      }
    }
  }
  return cases;
}

// ---------------------------------------------------------------------------
// Running

/** Where the sample trace is, from bench/ (sources) or dist/bench/ (build); undefined if absent. */
export function defaultTracePath(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'traces', 'sample.trace'), join(here, '..', '..', 'bench', 'traces', 'sample.trace')];
  return candidates.map((p) => resolve(p)).find((p) => existsSync(p));
}

/** Whether @thi.ng/malloc can be imported (it is a devDependency). */
export async function thingAvailable(): Promise<boolean> {
  try {
    await import('@thi.ng/malloc');
    return true;
  } catch {
    return false;
  }
}

/** The native allocators, or why there are none. */
export function nativePeers(): { natives: NativeAllocator[]; skip?: string } {
  const skip = nativeSkipReason();
  return skip !== undefined ? { natives: [], skip } : { natives: nativeAllocators() };
}

export type RunListener = (spec: CaseSpec, run: RunRecord, index: number, total: number) => void;

/** Runs cases; owns the piscina pools (one per allocator and thread count). Call close() at the end. */
export class BenchRunner {
  private readonly pools = new Map<string, Piscina>();

  /** Runs one case: a warm-up run, then `runs` timed runs. Never throws: a failure is the case's `error`. */
  async runCase(spec: CaseSpec, runs: number, onRun?: RunListener): Promise<CaseResult> {
    const result: CaseResult = { spec, runs: [] };
    try {
      for (let i = 0; i <= runs; i++) {
        const rec = await this.runOnce(spec, i === 0);
        if (i === 0) result.warmup = rec;
        else result.runs.push(rec);
        onRun?.(spec, rec, i, runs);
      }
      checkRunsAgree(result);
      result.summary = summarize(result);
    } catch (err) {
      result.error = err instanceof Error ? err.message : String(err);
    }
    return result;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy()));
  }

  /** The pool for an allocator at a thread count: exactly `threads` workers, one task each. */
  pool(key: string, threads: number): Piscina {
    let pool = this.pools.get(key);
    if (pool === undefined) {
      const entry = workerEntry('bench-worker');
      pool = new Piscina({
        filename: entry.filename,
        execArgv: entry.execArgv,
        minThreads: threads,
        maxThreads: threads,
        concurrentTasksPerWorker: 1,
        idleTimeout: 24 * 3600_000,
      });
      this.pools.set(key, pool);
    }
    return pool;
  }

  private runOnce(spec: CaseSpec, warmup: boolean): Promise<RunRecord> {
    return spec.family === 'native' ? runNativeOnce(spec, warmup) : this.runJsOnce(spec, warmup);
  }

  private async runJsOnce(spec: CaseSpec, warmup: boolean): Promise<RunRecord> {
    const T = spec.threads;
    const pool = this.pool(`${spec.allocator}:${T}`, T);
    const control = createControl(T);
    const { ctl, f64 } = controlViews(control);
    let heap: SharedHeap | undefined;
    let metaBytes: number | undefined;
    if (spec.allocator === 'sabmalloc') {
      heap = SharedHeap.create({
        initialBytes: spec.heapBytes,
        maxBytes: spec.heapBytes,
        maxThreads: T + 2,
        ...spec.heapOptions,
      });
      metaBytes = heap.stats().footprintBytes;
    }
    const chunks = spec.params.chunks ?? 0;
    const larson = spec.workload === 'W3' ? new SharedArrayBuffer(T * 2 * chunks * 4) : undefined;
    let failure: unknown;
    const tasks: Promise<ThreadResult>[] = [];
    for (let t = 0; t < T; t++) {
      const task: RunTask = {
        kind: 'run',
        allocator: spec.allocator === 'sabmalloc' ? 'sabmalloc' : 'thi.ng',
        workload: spec.workload,
        threads: T,
        thread: t,
        params: spec.params,
        control,
        heap: heap?.buffer,
        poolBytes: spec.poolBytes,
        larson,
      };
      tasks.push(
        (pool.run(task) as Promise<ThreadResult>).catch((err: unknown) => {
          failure ??= err;
          abortControl(ctl);
          throw err;
        }),
      );
    }
    const settled = Promise.allSettled(tasks);
    try {
      await waitCount(ctl, CTL_READY, T, () => failure, 300_000, 'threads to get ready');
      const before = heap?.stats();
      f64[F_START] = nowNs();
      Atomics.store(ctl, CTL_GO, 1);
      Atomics.notify(ctl, CTL_GO);
      await waitCount(ctl, CTL_DONE, T, () => failure, Infinity, 'threads to finish');
      const after = heap?.stats();
      Atomics.store(ctl, CTL_CLEANUP, 1);
      Atomics.notify(ctl, CTL_CLEANUP);
      const results = await Promise.all(tasks);
      heap?.check();
      return jsRecord(spec, warmup, results, f64, before, after, metaBytes);
    } catch (err) {
      abortControl(ctl);
      await settled;
      throw failure ?? err;
    } finally {
      heap?.detach();
    }
  }
}

function jsRecord(
  spec: CaseSpec,
  warmup: boolean,
  results: ThreadResult[],
  f64: Float64Array,
  before: HeapStats | undefined,
  after: HeapStats | undefined,
  metaBytes: number | undefined,
): RunRecord {
  const T = spec.threads;
  const start = f64[F_START]!;
  let end = start;
  let latestStart = start;
  let ops = 0;
  let mallocs = 0;
  let bytesRequested = 0;
  let checksum = 0;
  let peakLive = 0;
  let elapsedNs = 0;
  let footprint: number | undefined;
  for (const r of results) {
    end = Math.max(end, r.endNs, f64[fEnd(r.thread)]!);
    latestStart = Math.max(latestStart, r.startNs);
    ops += r.ops;
    mallocs += r.mallocs + (r.callocs ?? 0);
    bytesRequested += r.bytesRequested;
    checksum = (checksum + r.checksum) >>> 0;
    peakLive += r.peakLiveBytes;
    elapsedNs += r.elapsedNs;
    if (r.footprintBytes !== undefined) footprint = Math.max(footprint ?? 0, r.footprintBytes);
  }
  if (spec.workload === 'W3') for (let a = 0; a < T; a++) peakLive += f64[fPeak(T, a)]!;
  // W5 replays the trace several times, each followed by an untimed cleanup: count the replays only.
  const seconds = spec.workload === 'W5' ? elapsedNs / 1e9 : (end - start) / 1e9;
  const rec: RunRecord = {
    warmup,
    seconds,
    opsPerSec: seconds > 0 ? ops / seconds : 0,
    ops,
    mallocs,
    bytesRequested,
    checksum,
    peakLiveBytes: peakLive,
    footprintBytes: footprint,
    releaseSkewUs: (latestStart - start) / 1e3,
    threadSeconds: results.map((r) => r.elapsedNs / 1e9),
  };
  if (before !== undefined && after !== undefined) {
    rec.footprintBytes = after.peakFootprintBytes;
    rec.metaBytes = metaBytes;
    const l0 = before.lock;
    const l1 = after.lock;
    rec.lock = {
      acquisitions: l1.acquisitions - l0.acquisitions,
      contended: l1.contended - l0.contended,
      spins: l1.spins - l0.spins,
      waits: l1.waits - l0.waits,
      wakes: l1.wakes - l0.wakes,
      waitMs: l1.waitMs - l0.waitMs,
      maxWaitMs: l1.maxWaitMs,
    };
    rec.stages = {
      stage1: after.stages.stage1 - before.stages.stage1,
      stage2: after.stages.stage2 - before.stages.stage2,
      stage3: after.stages.stage3 - before.stages.stage3,
      stage1Pushes: after.stages.stage1Pushes - before.stages.stage1Pushes,
    };
    const remote = (s: HeapStats): number => s.threads.reduce((sum, th) => sum + th.remoteFrees, 0);
    rec.remoteFrees = remote(after) - remote(before);
  }
  return rec;
}

async function waitCount(
  ctl: Int32Array,
  index: number,
  count: number,
  failed: () => unknown,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Atomics.load(ctl, index) < count) {
    const f = failed();
    if (f !== undefined) throw f;
    if (Date.now() > deadline) throw new Error(`bench: timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function runNativeOnce(spec: CaseSpec, warmup: boolean): Promise<RunRecord> {
  const p = spec.params;
  const params: NativeParams = { seed: p.seed };
  if (spec.workload !== 'W1') params.threads = spec.threads;
  if (spec.workload === 'W3') {
    params.chunks = p.chunks;
    params.rounds = p.rounds;
    params.opsPerRound = p.opsPerRound;
  } else {
    params.cycles = p.cycles;
    params.ws = p.ws;
  }
  const r = await runNative({ name: spec.allocator, preload: spec.preload }, spec.workload as 'W1' | 'W2' | 'W3', params);
  return {
    warmup,
    seconds: r.seconds,
    opsPerSec: r.opsPerSec,
    ops: r.ops,
    mallocs: r.mallocs,
    bytesRequested: r.bytesRequested,
    checksum: r.checksum,
    peakLiveBytes: r.peakLiveBytes,
    footprintBytes: r.peakRssBytes,
    mallocLibrary: r.mallocLibrary,
  };
}

// ---------------------------------------------------------------------------
// Checks and summaries

const COUNT_FIELDS = ['ops', 'mallocs', 'bytesRequested', 'checksum', 'peakLiveBytes'] as const;

/** Every run of a case (the warm-up too) must have done the same operations. */
export function checkRunsAgree(c: CaseResult): void {
  const all = [...(c.warmup ? [c.warmup] : []), ...c.runs];
  const first = all[0];
  if (first === undefined) return;
  for (const [i, r] of all.entries()) {
    for (const f of COUNT_FIELDS) {
      if (r[f] !== first[f]) {
        throw new Error(`${f} differs between runs of ${c.spec.allocator} ${c.spec.workload}: ${first[f]} in the first, ${r[f]} in run ${i}`);
      }
    }
  }
}

/**
 * Cases of the same workload, threads and parameters must have done the same
 * operations whatever the allocator (sabmalloc, native, thi.ng): a mismatch
 * marks the later case as failed.
 */
export function checkCasesAgree(cases: CaseResult[]): void {
  const seen = new Map<string, CaseResult>();
  for (const c of cases) {
    const r = c.runs[0];
    if (c.error !== undefined || r === undefined) continue;
    const key = `${c.spec.workload}|${c.spec.threads}|${JSON.stringify(c.spec.params)}`;
    const ref = seen.get(key);
    if (ref === undefined) {
      seen.set(key, c);
      continue;
    }
    const r0 = ref.runs[0]!;
    for (const f of ['mallocs', 'bytesRequested', 'checksum'] as const) {
      if (r[f] !== r0[f]) {
        c.error = `${f} ${r[f]} differs from ${ref.spec.allocator}'s ${r0[f]} on the same ${c.spec.workload} parameters`;
        c.summary = undefined;
        break;
      }
    }
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? s[n >>> 1]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export function summarize(c: CaseResult): CaseSummary {
  const runs = c.runs.length > 0 ? c.runs : c.warmup ? [c.warmup] : [];
  const ops = runs.map((r) => r.opsPerSec);
  const s: CaseSummary = {
    opsPerSec: { median: median(ops), min: Math.min(...ops), max: Math.max(...ops) },
    peakLiveBytes: runs[0]?.peakLiveBytes ?? 0,
  };
  const fps = runs.map((r) => r.footprintBytes).filter((x): x is number => x !== undefined);
  if (fps.length > 0) {
    s.footprintBytes = median(fps);
    if (s.peakLiveBytes > 0) s.footprintRatio = s.footprintBytes / s.peakLiveBytes;
  }
  if (runs[0]?.metaBytes !== undefined) s.metaBytes = runs[0].metaBytes;
  if (runs.every((r) => r.lock !== undefined)) {
    const totalOps = runs.reduce((a, r) => a + r.ops, 0);
    const per = (f: (r: RunRecord) => number): number =>
      totalOps > 0 ? (runs.reduce((a, r) => a + f(r), 0) / totalOps) * 1e6 : 0;
    s.lockPerMops = {
      acquisitions: per((r) => r.lock!.acquisitions),
      contended: per((r) => r.lock!.contended),
      waits: per((r) => r.lock!.waits),
      waitMs: per((r) => r.lock!.waitMs),
    };
    s.stages = {
      stage1: median(runs.map((r) => r.stages!.stage1)),
      stage2: median(runs.map((r) => r.stages!.stage2)),
      stage3: median(runs.map((r) => r.stages!.stage3)),
    };
    s.remoteFrees = median(runs.map((r) => r.remoteFrees ?? 0));
  }
  return s;
}

/** Fills in each summary's ratio to glibc (or the system allocator) native on the same workload and threads. */
export function addRatios(cases: CaseResult[]): void {
  const ref = new Map<string, number>();
  for (const c of cases) {
    if (c.spec.family === 'native' && c.spec.preload === undefined && c.summary !== undefined) {
      ref.set(`${c.spec.workload}|${c.spec.threads}`, c.summary.opsPerSec.median);
    }
  }
  for (const c of cases) {
    const r = ref.get(`${c.spec.workload}|${c.spec.threads}`);
    if (c.summary !== undefined && r !== undefined && r > 0) c.summary.ratioToGlibc = c.summary.opsPerSec.median / r;
  }
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
