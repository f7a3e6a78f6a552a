/**
 * Runs the cases of bench/plan.ts: a warm-up run (the cold figure), untimed warm-up runs for the
 * allocators written in JavaScript or WebAssembly, then the timed runs.
 *
 * - sabmalloc: every run gets a fresh heap created here and passed to the
 *   workers as its buffer; each case gets a fresh piscina pool of exactly
 *   `threads` workers, kept for its runs and closed after them, so the
 *   warm-up run is the first call of the timed loop in those workers (the
 *   cold figure) and the timed runs are warm;
 *   heap.check() after each run; lock and stage counters are the difference
 *   of two heap.stats() snapshots taken around the timed part.
 * - @thi.ng/malloc, dlmalloc-wasm and the reference allocator: single thread, in their own
 *   one-worker pool.
 * - Native: bench/native.ts runs the C program with the system allocator and
 *   each LD_PRELOAD library found, on the same parameters.
 *
 * bench/bench-task.ts is the worker side. Validation (check.ts) and
 * statistics (summarize.ts) come after, in the caller.
 */
import { Piscina } from 'piscina';
import { SharedHeap, type HeapStats } from '../src/index.js';
import { workerEntry } from './worker-entry.js';
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
  jsAllocatorName,
  nowNs,
  type RunTask,
  type ThreadResult,
} from './bench-task.js';
import type { CaseResult, CaseSpec, RunRecord } from './case.js';
import { collectGarbage } from './gc.js';
import { primeBytesFor } from './plan.js';
import { primeMemory } from './prime.js';
import { runNative, type NativeParams, type NativeWorkload } from './native.js';
import { wasmBinaryPath } from './wasm-dlmalloc.js';

/** A pause before each release, so that the collection's background work (sweeping, unmapping) is done. */
const SETTLE_MS = 100;

/** `index` 0 is the cold run, 1 .. warmups the untimed ones, then the timed runs. */
export type RunListener = (spec: CaseSpec, run: RunRecord, index: number, total: number, warmups: number) => void;

/**
 * Untimed runs a case gets after its cold run: `warmups` for the allocators that run in V8, where
 * the first calls of a timed loop still run in code compiled on-stack or about to be replaced
 * (sabmalloc's gawk_records replay, runs 1 to 6 in one worker: 15.9, 21.7, 28.2, 27.6, 28.2,
 * 26.4 M ops/s); none for a native one, whose every run is a fresh process.
 */
export function warmupsFor(spec: CaseSpec, warmups: number): number {
  return spec.family === 'native' ? 0 : warmups;
}

/** Runs cases; owns the piscina pools (one per case, and MICRO's). Call close() at the end. */
export class BenchRunner {
  private readonly pools = new Map<string, Piscina>();
  private caseCount = 0;
  /** Whether each run is primed (bench/prime.ts; the CLI's --no-prime turns it off). */
  private readonly prime: boolean;

  constructor(options: { prime?: boolean } = {}) {
    this.prime = options.prime ?? true;
  }

  /**
   * Runs the cases of one comparison (one workload, trace and thread count, one case per
   * allocator), their results in the same order: each case's cold run and untimed warm-up runs
   * back to back, then the timed runs in turn, the first of every case, then the second, and so
   * on, so that a machine whose speed drifts during the comparison shifts every allocator's
   * median alike instead of the ratio. Never throws: a failure is that case's `error`, and the
   * others go on. Check each result with check.ts and summarize it with summarize.ts.
   */
  async runGroup(specs: CaseSpec[], runs: number, onRun?: RunListener, warmups = 0): Promise<CaseResult[]> {
    const cases = specs.map((spec) => ({
      spec,
      w: warmupsFor(spec, warmups),
      result: { spec, warmups: warmupsFor(spec, warmups), runs: [] } as CaseResult,
      poolKey: `case ${++this.caseCount}: ${spec.allocator} ${spec.workload} ${spec.trace ?? ''} ${spec.threads}`,
    }));
    const step = async (c: (typeof cases)[number], i: number): Promise<void> => {
      if (c.result.error !== undefined) return;
      try {
        const untimed = i <= c.w;
        // Untimed, before every run of every allocator: the previous runs' heaps collected (bench/gc.ts), then the prime (bench/prime.ts).
        collectGarbage();
        if (this.prime) await primeMemory(primeBytesFor(c.spec.workload, c.spec.threads, c.spec.params));
        const rec = c.spec.family === 'native' ? await runNativeOnce(c.spec, untimed) : await this.runJsOnce(c.spec, c.poolKey, untimed);
        if (i === 0) c.result.warmup = rec;
        else if (!untimed) c.result.runs.push(rec);
        onRun?.(c.spec, rec, i, runs, c.w);
      } catch (err) {
        c.result.error = err instanceof Error ? err.message : String(err);
        await this.closePool(c.poolKey);
      }
    };
    try {
      for (const c of cases) for (let i = 0; i <= c.w; i++) await step(c, i);
      for (let k = 1; k <= runs; k++) for (const c of cases) await step(c, c.w + k);
    } finally {
      for (const c of cases) await this.closePool(c.poolKey);
    }
    return cases.map((c) => c.result);
  }

  private async closePool(key: string): Promise<void> {
    const pool = this.pools.get(key);
    this.pools.delete(key);
    await pool?.destroy();
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

  private async runJsOnce(spec: CaseSpec, poolKey: string, warmup: boolean): Promise<RunRecord> {
    const T = spec.threads;
    const pool = this.pool(poolKey, T);
    const control = createControl(T);
    const { ctl, f64 } = controlViews(control);
    let heap: SharedHeap | undefined;
    let metaBytes: number | undefined;
    if (spec.allocator === 'sabmalloc') {
      heap = SharedHeap.create({
        initialBytes: spec.heapBytes,
        maxBytes: spec.heapMaxBytes ?? spec.heapBytes,
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
        allocator: jsAllocatorName(spec.allocator),
        workload: spec.workload,
        threads: T,
        thread: t,
        params: spec.params,
        control,
        heap: heap?.buffer,
        heapMemory: heap?.memory,
        poolBytes: spec.poolBytes,
        wasmPath: spec.allocator === 'dlmalloc-wasm' ? wasmBinaryPath() : undefined,
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
      await new Promise((r) => setTimeout(r, SETTLE_MS)); // let the collection's background work finish
      const before = heap?.stats();
      // The process's minor page faults (every thread's) from the release to the last thread done.
      const faults0 = process.resourceUsage().minorPageFault;
      f64[F_START] = nowNs();
      Atomics.store(ctl, CTL_GO, 1);
      Atomics.notify(ctl, CTL_GO);
      await waitCount(ctl, CTL_DONE, T, () => failure, Infinity, 'threads to finish');
      const faults = process.resourceUsage().minorPageFault - faults0;
      const after = heap?.stats();
      Atomics.store(ctl, CTL_CLEANUP, 1);
      Atomics.notify(ctl, CTL_CLEANUP);
      const results = await Promise.all(tasks);
      heap?.check();
      const rec = jsRecord(spec, warmup, results, f64, before, after, metaBytes);
      rec.minorFaults = faults;
      return rec;
    } catch (err) {
      abortControl(ctl);
      await settled;
      throw failure ?? err;
    } finally {
      heap?.detach();
      heap = undefined;
      // Untimed: the heaps the workers have let go (a worker holds its run's until its next run is
      // over: bench/bench-task.ts runThread).
      collectGarbage();
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
  let maxElapsedNs = 0;
  let footprint: number | undefined;
  for (const r of results) {
    end = Math.max(end, r.endNs, f64[fEnd(r.thread)]!);
    latestStart = Math.max(latestStart, r.startNs);
    ops += r.ops;
    mallocs += r.mallocs + (r.callocs ?? 0);
    bytesRequested += r.bytesRequested;
    checksum = (checksum + r.checksum) >>> 0;
    peakLive += r.peakLiveBytes;
    if (r.elapsedNs > maxElapsedNs) maxElapsedNs = r.elapsedNs;
    if (r.footprintBytes !== undefined) footprint = Math.max(footprint ?? 0, r.footprintBytes);
  }
  if (spec.workload === 'W3') for (let a = 0; a < T; a++) peakLive += f64[fPeak(T, a)]!;
  // W5 replays the trace several times, each followed by an untimed cleanup: count the replays
  // only, the slowest thread's (its threads replay at once; bench/native/workloads.c takes the same).
  const seconds = spec.workload === 'W5' ? maxElapsedNs / 1e9 : (end - start) / 1e9;
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
    rec.carvedBytes = after.peakCarvedBytes;
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
      // The heap keeps the largest wait of its whole life: that of the timed part when it rose
      // during it, 0 with no wait there; else at most the smaller of the two bounds known.
      maxWaitMs: l1.waits === l0.waits ? 0 : l1.maxWaitMs > l0.maxWaitMs ? l1.maxWaitMs : Math.min(l0.maxWaitMs, l1.waitMs - l0.waitMs),
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

/** Atomics.waitAsync (Node 16+, Chromium), typed here: the compiler's library predates it. */
const waitAsync = (Atomics as unknown as {
  waitAsync(i32: Int32Array, index: number, value: number, timeoutMs: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

async function waitCount(
  ctl: Int32Array,
  index: number,
  count: number,
  failed: () => unknown,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let v = Atomics.load(ctl, index); v < count; v = Atomics.load(ctl, index)) {
    const f = failed();
    if (f !== undefined) throw f;
    if (Date.now() > deadline) throw new Error(`bench: timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    // Asleep until a thread arrives (they notify) or 20 ms pass (a failed task does not notify):
    // polling every millisecond woke this thread a thousand times a second beside the timed ones.
    const w = waitAsync(ctl, index, v, 20);
    if (w.async) await w.value;
  }
}

async function runNativeOnce(spec: CaseSpec, warmup: boolean): Promise<RunRecord> {
  const p = spec.params;
  let params: NativeParams;
  if (spec.workload === 'W5') {
    params = { traceOps: p.traceOps, repeats: p.repeats, threads: spec.threads }; // the file the JS threads load
  } else if (spec.workload === 'W3') {
    params = { seed: p.seed, threads: spec.threads, chunks: p.chunks, rounds: p.rounds, opsPerRound: p.opsPerRound };
  } else {
    params = { seed: p.seed, cycles: p.cycles, ws: p.ws };
    if (spec.workload !== 'W1') params.threads = spec.threads;
  }
  const r = await runNative({ name: spec.allocator, preload: spec.preload }, spec.workload as NativeWorkload, params);
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
    minorFaults: r.minorFaults,
  };
}
