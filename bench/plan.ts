/**
 * What `sabmalloc bench` runs: the workloads, their parameters per thread
 * count, the sabmalloc heap's size, the allocators available on this
 * machine, and the list of cases (allocator x workload x threads) in the
 * order they run. Nothing here starts a thread or a process.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkloadParams } from './bench-task.js';
import type { CaseSpec, Workload } from './case.js';
import { LOCK_DEFAULTS, LOCK_HEAP_OPTIONS } from './lock-storm.js';
import { nativeAllocators, nativeSkipReason, type NativeAllocator } from './native.js';
import { loadTrace, OP_FREE, OP_REALLOC, type Trace } from './replay.js';
import { W1_DEFAULTS, W2_DEFAULTS, W3_DEFAULTS } from './workloads.js';

export type { Workload } from './case.js';
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

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
