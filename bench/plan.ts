/**
 * What `sabmalloc bench` runs: the workloads, their parameters per thread
 * count, the sabmalloc heap's size, the allocators available on this
 * machine, and the list of cases (allocator x workload x threads) in the
 * order they run. Nothing here starts a thread or a process.
 */
import { basename } from 'node:path';
import type { WorkloadParams } from './bench-task.js';
import type { HeapOptions } from '../src/index.js';
import type { CaseSpec, Workload } from './case.js';
import { LOCK_DEFAULTS, LOCK_HEAP_OPTIONS } from './lock-storm.js';
import { nativeAllocators, nativeSkipReason, type NativeAllocator } from './native.js';
import type { PreparedTrace } from './trace-prep.js';
import { W1_DEFAULTS, W2_DEFAULTS, W3_DEFAULTS } from './workloads.js';

export type { Workload } from './case.js';
export const WORKLOADS: readonly Workload[] = ['W1', 'W2', 'W3', 'W5', 'LOCK'];
/**
 * Workloads defined for one thread only. W5 is defined for one thread too (shared/workloads.md),
 * and runs at its own thread counts, --trace-threads (default 1; {@link threadsFor}).
 */
export const SINGLE_THREAD_WORKLOADS: ReadonlySet<Workload> = new Set<Workload>(['W1']);
/** Workloads the C program implements. */
export const NATIVE_WORKLOADS: ReadonlySet<Workload> = new Set<Workload>(['W1', 'W2', 'W3', 'W5']);

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
  /** W5's thread counts (--trace-threads; default [1]). */
  traceThreads?: number[];
  /** Overrides the per-workload cycles (per thread). */
  cycles?: number;
  smoke?: boolean;
  /** W5's traces, parsed (bench/trace-prep.ts): one set of cases each. */
  traces: PreparedTrace[];
  /** Allocators wanted: 'sabmalloc', 'thi.ng', 'dlmalloc-wasm', 'reference', and native names. */
  allocators: Set<string>;
  thingAvailable: boolean;
  /** Whether the WebAssembly peer could be built (bench/wasm-dlmalloc.ts); false if not asked for. */
  wasmAvailable?: boolean;
  natives: NativeAllocator[];
  /** create() options for sabmalloc's heaps (--heap), on top of LOCK's own. */
  heapOptions?: Partial<HeapOptions>;
  /** Told why a case is left out. */
  note?: (message: string) => void;
}

/** How --heap options read in a table note and the header: `trimInterval=16, stage1Keep=0`. */
export function heapOptionsNote(options: Partial<HeapOptions>): string {
  return Object.entries(options)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(', ');
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

/**
 * The workload parameters of `cycles` per thread. W5 replays `trace` as many
 * times back to back as it takes to reach `cycles` operations (once for a
 * real program's trace).
 */
export function paramsFor(workload: Workload, cycles: number, trace?: PreparedTrace): WorkloadParams {
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
      if (trace === undefined) throw new Error('paramsFor(W5): a trace is needed');
      const repeats = Math.max(1, Math.ceil(cycles / Math.max(1, trace.ops)));
      return { trace: trace.path, traceOps: trace.opsFile, traceCount: trace.ops, traceLiveBytes: trace.peakLiveBytes, repeats };
    }
  }
}

/** Operations per thread of a parameter set (what the table's cycles column shows). */
export function opsPerThread(workload: Workload, p: WorkloadParams): number {
  if (workload === 'W3') return 2 * p.rounds! * p.opsPerRound!;
  if (workload === 'W5') return p.traceCount! * (p.repeats ?? 1);
  return p.cycles!;
}

/** Describes a parameter set in a few words. */
export function describeParams(workload: Workload, p: WorkloadParams): string {
  switch (workload) {
    case 'W3':
      return `${p.rounds} rounds x ${fmtInt(p.opsPerRound!)} ops, ${p.chunks} chunks`;
    case 'W5':
      return `${basename(p.trace!)}: ${fmtInt(p.traceCount!)} ops${p.repeats! > 1 ? ` x ${p.repeats} replays` : ''}, peak live ${fmtInt(p.traceLiveBytes!)} B`;
    default:
      return `${fmtInt(p.cycles!)} cycles, ws ${p.ws}`;
  }
}

/** Bytes of the sabmalloc heap for a case: generous, so that it never has to grow (W5: see {@link w5HeapBytes}). */
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
      return w5HeapBytes(p.traceLiveBytes! * threads).initialBytes;
  }
  return Math.min(MAX_HEAP_MIB, mib) * MiB;
}

/**
 * Bytes to prime before each run of a comparison (bench/prime.ts), the same for every allocator
 * in it: what the runs touch at most, with room. W5: as much as sabmalloc's heap
 * ({@link w5HeapBytes}: twice the trace's peak live bytes plus 64 MiB; the footprints are
 * 1.06-1.36x peak live on the large traces, and with 1.25x instead 2 of 24 replays of
 * lua_inventory and xmllint_format still met the expensive faults, with 2x none of 24); W2: 64 MiB a thread (2,048 slots of at most 32 KiB) plus 64; the
 * others 64 MiB.
 */
export function primeBytesFor(workload: Workload, threads: number, p: WorkloadParams): number {
  if (workload === 'W5') return w5HeapBytes(p.traceLiveBytes! * threads).initialBytes;
  if (workload === 'W2') return (64 + 64 * threads) * MiB;
  return 64 * MiB;
}

/** The largest heap sabmalloc takes (offsets stay below 2^31), in MiB. */
const MAX_HEAP_MIB = 2047;
/** W5's headroom above twice the trace's peak live bytes, in MiB. */
const W5_SLACK_MIB = 64;

/**
 * The sabmalloc heap of a W5 replay: a heap of a fixed size, twice the trace's
 * peak live bytes (times the threads that replay it at once) plus 64 MiB (at most 2047 MiB), as create() makes by
 * default (maxBytes = initialBytes), and so on a shared WebAssembly.Memory,
 * whose memory.copy realloc uses (src/wasm-copy.ts; a growable heap grows a
 * SharedArrayBuffer instead and copies with copyWithin). Pages it never
 * touches cost nothing: the footprint reported (stats().peakFootprintBytes,
 * metadata included) counts the pages the heap handed out or wrote, what the
 * operating system holds for it once the blocks are written (an upper bound: the
 * replay writes each block's ends only, so a large block's middle pages are counted
 * here and not in the natives' RSS; within 6% on the four shared traces). (Until the heaps
 * had a memory this was a growable heap from 64 MiB, so that a replay paid
 * for growing it: a few grows of the buffer in a replay of a second.)
 * Twice the peak live bytes covers size-class rounding (at most 25%), slabs
 * and magazines that are partly used, and blocks freed late; the 64 MiB are
 * for the metadata and for traces whose live set is small. A trace that
 * needs more fails with out of memory, naming its line.
 */
export function w5HeapBytes(peakLiveBytes: number): { initialBytes: number; maxBytes: number } {
  const maxMib = Math.min(MAX_HEAP_MIB, Math.ceil((2 * peakLiveBytes) / MiB) + W5_SLACK_MIB);
  return { initialBytes: maxMib * MiB, maxBytes: maxMib * MiB };
}

/**
 * Threads a workload runs at, given the --threads list; W5 at the --trace-threads list (default
 * 1), where each thread replays the whole trace at once (sabmalloc's workers on the one shared
 * heap, the natives' threads in one process): an extension of W5's definition for one thread,
 * real programs' traffic from several threads at a time.
 */
export function threadsFor(workload: Workload, threads: number[], traceThreads: number[] = [1]): number[] {
  if (workload === 'W5') return traceThreads;
  return SINGLE_THREAD_WORKLOADS.has(workload) ? [1] : threads;
}

/**
 * The cases to run, in order: for each workload (W5: each trace) and thread
 * count, sabmalloc, then the native allocators, then @thi.ng/malloc (so each
 * comparison is measured close together in time).
 */
export function planCases(o: PlanOptions): CaseSpec[] {
  const cases: CaseSpec[] = [];
  for (const workload of o.workloads) {
    const cycles = cyclesFor(workload, o);
    const traces: (PreparedTrace | undefined)[] = workload === 'W5' ? o.traces : [undefined];
    for (const trace of traces) {
      const params = paramsFor(workload, cycles, trace);
      const traceField = trace !== undefined ? { trace: trace.name } : {};
      for (const threads of threadsFor(workload, o.threads, o.traceThreads)) {
        const notes: string[] = [];
        if (SINGLE_THREAD_WORKLOADS.has(workload) && !o.threads.every((t) => t === 1)) notes.push('1 thread only');
        if (o.allocators.has('sabmalloc')) {
          const user = o.heapOptions ?? {};
          const userNote = Object.keys(user).length > 0 ? heapOptionsNote(user) : undefined;
          const mine = workload === 'LOCK' ? { ...LOCK_HEAP_OPTIONS, ...user } : { ...user };
          const heapOptions = Object.keys(mine).length > 0 ? mine : undefined;
          cases.push({
            allocator: 'sabmalloc',
            family: 'js',
            workload,
            ...traceField,
            threads,
            params,
            cycles: opsPerThread(workload, params),
            heapBytes: heapBytesFor(workload, threads, params),
            heapMaxBytes: workload === 'W5' ? w5HeapBytes(params.traceLiveBytes! * threads).maxBytes : undefined,
            heapOptions,
            heapNote: userNote,
            notes: [...notes, ...(workload === 'LOCK' ? ['magazines of 1'] : []), ...(userNote !== undefined ? [userNote] : [])],
          });
        }
        if (NATIVE_WORKLOADS.has(workload)) {
          for (const n of o.natives) {
            if (!o.allocators.has(n.name)) continue;
            cases.push({
              allocator: n.name,
              family: 'native',
              workload,
              ...traceField,
              threads,
              params,
              cycles: opsPerThread(workload, params),
              preload: n.preload,
              notes: [...notes, workload === 'W5' ? 'footprint = peak RSS growth' : 'footprint = peak RSS'],
            });
          }
        }
        // A single-thread JavaScript or WebAssembly peer on the full workload.
        const oneThread = (allocator: string, note: string, poolBytes?: number): CaseSpec => ({
          allocator,
          family: 'js',
          workload,
          ...traceField,
          threads: 1,
          params,
          cycles: opsPerThread(workload, params),
          ...(poolBytes !== undefined ? { poolBytes } : {}),
          notes: [...notes, note],
        });
        if (o.allocators.has('dlmalloc-wasm') && o.wasmAvailable === true && threads === 1 && WASM_WORKLOADS.has(workload)) {
          cases.push(oneThread('dlmalloc-wasm', 'footprint = memory size'));
        }
        if (o.allocators.has('reference') && threads === 1 && REFERENCE_WORKLOADS.has(workload)) {
          const bytes = workload === 'W5' ? referenceBytesFor(params.traceLiveBytes!) : workload === 'W2' ? 256 * MiB : 128 * MiB;
          cases.push(oneThread('reference', 'not a contender: one thread, no sharing', bytes));
        }
        if (o.allocators.has('thi.ng') && o.thingAvailable && threads === 1 && workload !== 'LOCK') {
          if (trace !== undefined && trace.ops > THING_MAX_CYCLES) {
            o.note?.(`thi.ng: W5 ${trace.name}: skipped: ${fmtInt(trace.ops)} operations (it takes ~10-17 us an operation; at most ${fmtInt(THING_MAX_CYCLES)})`);
            continue;
          }
          const reduced = Math.min(cycles, THING_MAX_CYCLES);
          const p = reduced < cycles ? paramsFor(workload, reduced, trace) : params;
          const thingNotes = [...notes];
          if (reduced < cycles) thingNotes.push(`cycles reduced to ${fmtInt(opsPerThread(workload, p))}`);
          cases.push({
            allocator: 'thi.ng',
            family: 'js',
            workload,
            ...traceField,
            threads: 1,
            params: p,
            cycles: opsPerThread(workload, p),
            poolBytes:
              workload === 'W2'
                ? 256 * MiB
                : workload === 'W5'
                  ? Math.min(MAX_HEAP_MIB, 64 + Math.ceil((4 * p.traceLiveBytes!) / MiB)) * MiB
                  : 128 * MiB,
            notes: thingNotes,
          });
        }
      }
    }
  }
  return cases;
}

/**
 * The workloads bench/reference-alloc.ts runs, at one thread: the floor of the timed loop itself.
 * It is a free list per size class over a plain ArrayBuffer, a 16-byte header before each block
 * (double frees caught by a state word there), nothing shared with another thread and nothing
 * given back to a common pool, so it shows what the JavaScript loop and the buffer cost with
 * almost no allocator in between: how close to it sabmalloc is, and how close the loop lets any
 * JavaScript allocator come to the natives.
 */
export const REFERENCE_WORKLOADS = new Set<Workload>(['W1', 'W2', 'W3', 'W5']);

/** The reference allocator's buffer for a W5 trace: it never reuses a block for another size (gawk_records: 2.27x its peak live bytes). */
export function referenceBytesFor(peakLiveBytes: number): number {
  return Math.min(MAX_HEAP_MIB, 64 + Math.ceil((4 * peakLiveBytes) / MiB)) * MiB;
}

/** The workloads the WebAssembly peer runs: one heap, one thread (W3 frees across threads, LOCK is about the lock). */
export const WASM_WORKLOADS: ReadonlySet<Workload> = new Set<Workload>(['W1', 'W2', 'W5']);

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
