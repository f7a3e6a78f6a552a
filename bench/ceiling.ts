/**
 * `sabmalloc ceiling`: how fast a trace replays through the benchmark's own replay loop (and W1,
 * and W3 at one thread, through theirs) when the allocator does no work at all, at sabmalloc's own
 * placement; the ceiling a JavaScript allocator that lays blocks out as sabmalloc does could reach
 * on this machine.
 *
 * sabmalloc runs the trace (or workload) once on a fresh heap (untimed) and its placement is
 * recorded: the address each malloc, calloc and realloc returned and the bytes each moving realloc
 * had to keep. Then, alternated round by round, each on fresh memory primed as in the bench
 * (bench/prime.ts), with its own copy of the loop (bench/copies.ts):
 *
 * - sabmalloc, as in `sabmalloc bench`;
 * - `placement`: an allocator that hands out the recorded addresses and does nothing else (free
 *   is empty, a moving realloc copies the kept bytes, calloc zeroes), over the buffer of a heap
 *   just created with the same options: the same kind of memory, the same pages first touched in
 *   the same order, the same blocks read and written by the loop;
 * - glibc's native run of the same operations (bench/native/workloads.c), when a C compiler is there.
 *
 * The loops check every block as in the bench, so a placement that did not hold fails here.
 * sabmalloc's ns per operation over placement's is what its own work costs (metadata, magazines,
 * slow paths, its calls); placement's own bookkeeping (one read of the recorded addresses per
 * operation) is in its figure, so the difference is if anything understated. A variant that also
 * made sabmalloc's metadata reads and writes from recorded addresses was tried and dropped: its
 * bookkeeping (three more recorded arrays read per block) cost more than sabmalloc's own
 * metadata work, so the rows could not be told apart. Runs in the calling thread (the bench runs
 * each case in workers). Not a contender, not in the bench's tables.
 */
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { compileCopy } from './copies.js';
import { collectGarbageAfterJob, collectGarbageIfHeavy } from './gc.js';
import { nativeAllocators, nativeSkipReason, runNative } from './native.js';
import { w5HeapBytes } from './plan.js';
import { primeMemory } from './prime.js';
import { median, spread } from './summarize.js';
import { replay, replayLoop, tracePeakLive, OP_FREE, OP_REALLOC, type ReplayAllocator, type Trace } from './replay.js';
import {
  emptyResult,
  larsonCleanup,
  larsonFill,
  larsonRound,
  larsonRoundLoop,
  slotCleanup,
  slotLoop,
  threadRng,
  w1,
  W1_DEFAULTS,
  W3_DEFAULTS,
  type Allocator,
  type LarsonRoundLoop,
  type WorkloadResult,
} from './workloads.js';

/** What sabmalloc did on one replay of a trace, operation by operation. */
export interface Placement {
  /** Per malloc, calloc or realloc, in trace order: the block returned. */
  readonly addresses: Int32Array;
  /** Per realloc, in trace order: the bytes a moving realloc had to keep (0 when it stayed put). */
  readonly kept: Int32Array;
}

/** The heap options sabmalloc gets for a trace: the bench's (plan.ts w5HeapBytes). */
export function ceilingHeapOptions(trace: Trace): Partial<HeapOptions> {
  const { initialBytes, maxBytes } = w5HeapBytes(tracePeakLive(trace));
  return { initialBytes, maxBytes, maxThreads: 3 };
}

/** Forwards to a heap and notes its placement (untimed: the recording replay is not measured). */
class Recorder implements ReplayAllocator {
  readonly u8: Uint8Array;
  readonly addresses: Int32Array;
  readonly kept: Int32Array;
  #a = 0;
  #r = 0;
  readonly #heap: SharedHeap;
  /** Requested size of each live block, by address (a realloc keeps at most the old request). */
  readonly #sizes = new Map<number, number>();

  /** `outs`: the mallocs, callocs and reallocs to come; `reallocs`: the reallocs. */
  constructor(heap: SharedHeap, outs: number, reallocs: number) {
    this.#heap = heap;
    this.u8 = heap.u8;
    this.addresses = new Int32Array(outs);
    this.kept = new Int32Array(reallocs);
  }

  #out(p: number, size: number): number {
    this.addresses[this.#a++] = p;
    if (p !== 0) this.#sizes.set(p, size);
    return p;
  }

  malloc(size: number): number {
    return this.#out(this.#heap.malloc(size), size);
  }

  calloc(n: number, size: number): number {
    return this.#out(this.#heap.calloc(n, size), n * size);
  }

  realloc(p: number, size: number): number {
    const old = this.#sizes.get(p) ?? 0;
    this.#sizes.delete(p);
    const q = this.#heap.realloc(p, size);
    this.kept[this.#r++] = q !== p ? Math.min(old, size) : 0;
    return this.#out(q, size);
  }

  free(p: number): void {
    this.#sizes.delete(p);
    this.#heap.free(p);
  }
}

/** Runs `body` on a recorder over a fresh heap of `options` and returns sabmalloc's placement. */
function recordOn(options: Partial<HeapOptions>, outs: number, reallocs: number, body: (r: Recorder) => void): Placement {
  const heap = SharedHeap.create(options);
  try {
    const r = new Recorder(heap, outs, reallocs);
    body(r);
    return { addresses: r.addresses, kept: r.kept };
  } finally {
    heap.detach();
  }
}

/** Replays `trace` on a fresh heap and returns sabmalloc's placement. */
export function recordPlacement(trace: Trace, options: Partial<HeapOptions> = ceilingHeapOptions(trace)): Placement {
  let outs = 0;
  let reallocs = 0;
  for (let i = 0; i < trace.count; i++) {
    if (trace.kind[i] !== OP_FREE) outs++;
    if (trace.kind[i] === OP_REALLOC) reallocs++;
  }
  return recordOn(options, outs, reallocs, (r) => replay(r, trace));
}

/**
 * Hands out a recorded placement and does nothing else: free is empty, a moving realloc copies the
 * bytes it must keep, calloc zeroes its block. Good for one run of what it was recorded from.
 */
export class PlacementAllocator implements ReplayAllocator {
  readonly buffer: SharedArrayBuffer;
  readonly u8: Uint8Array;
  private readonly addresses: Int32Array;
  private readonly kept: Int32Array;
  private a = 0;
  private r = 0;

  constructor(buffer: SharedArrayBuffer, placement: Placement) {
    this.buffer = buffer;
    this.u8 = new Uint8Array(buffer);
    this.addresses = placement.addresses;
    this.kept = placement.kept;
  }

  malloc(_size: number): number {
    return this.addresses[this.a++]!;
  }

  calloc(n: number, size: number): number {
    const q = this.addresses[this.a++]!;
    this.u8.fill(0, q, q + n * size); // a block used before holds its old bytes here; sabmalloc zeroes it too
    return q;
  }

  realloc(p: number, _size: number): number {
    const q = this.addresses[this.a++]!;
    const keep = this.kept[this.r++]!;
    if (keep > 0) this.u8.copyWithin(q, p, p + keep);
    return q;
  }

  free(_p: number): void {}
}

export const CEILING_ROWS = ['sabmalloc', 'placement', 'glibc'] as const;
export type CeilingRow = (typeof CEILING_ROWS)[number];

/** One trace's figures: M ops/s of each timed run, by row (glibc's empty without a C compiler). */
export interface CeilingResult {
  trace: string;
  ops: number;
  runs: Record<CeilingRow, number[]>;
  /** Why glibc's row is empty, if it is. */
  nativeSkipped?: string;
}

export interface CeilingOptions {
  /** Timed rounds (each runs every row once), after one untimed round. */
  runs: number;
  /** Prime memory before each run, as the bench does (default true). */
  prime?: boolean;
  /** The parsed trace written in binary form, for the native replayer (else no glibc row). */
  traceOps?: string;
  /** Called after each run, for progress. */
  onRun?: (row: CeilingRow, round: number, opsPerSec: number) => void;
}

/**
 * The rounds every measurement makes (the first untimed): sabmalloc on a fresh heap of `options`,
 * then the placement over the buffer of another such heap just created (the same kind of memory,
 * its metadata initialized, the thread detached), then `native` when given; each after a prime
 * of `primeBytes` (unless o.prime is false), and a collection when the process holds a lot
 * (bench/gc.ts collectGarbageIfHeavy: a collection before every run threw the loops' optimized
 * code away). `run(row, alloc)` makes one
 * timed run and returns its ops/s.
 */
async function alternate(
  o: CeilingOptions,
  options: Partial<HeapOptions>,
  primeBytes: number,
  placement: Placement,
  run: (row: 'sabmalloc' | 'placement', alloc: SharedHeap | PlacementAllocator) => number,
  native: (() => Promise<number>) | undefined,
): Promise<Record<CeilingRow, number[]>> {
  const runs: Record<CeilingRow, number[]> = { sabmalloc: [], placement: [], glibc: [] };
  let rssBefore = process.memoryUsage.rss();
  const prepare = async (): Promise<void> => {
    // After a turn of the event loop (bench/gc.ts endOfJob): the rounds run in one job otherwise
    // (no await without the native row), and create()'s WeakRef kept every heap of the job.
    await collectGarbageIfHeavy(rssBefore);
    rssBefore = process.memoryUsage.rss();
    if (o.prime !== false) await primeMemory(primeBytes);
  };
  for (let round = 0; round <= o.runs; round++) {
    for (const row of ['sabmalloc', 'placement'] as const) {
      await prepare();
      const heap = SharedHeap.create(options);
      let opsPerSec: number;
      if (row === 'sabmalloc') {
        opsPerSec = run(row, heap);
        heap.detach();
      } else {
        const buffer = heap.buffer;
        heap.detach();
        opsPerSec = run(row, new PlacementAllocator(buffer, placement));
      }
      if (round > 0) runs[row].push(opsPerSec / 1e6);
      o.onRun?.(row, round, opsPerSec);
    }
    if (native !== undefined) {
      await prepare();
      const opsPerSec = await native();
      if (round > 0) runs.glibc.push(opsPerSec / 1e6);
      o.onRun?.('glibc', round, opsPerSec);
    }
  }
  await collectGarbageAfterJob();
  return runs;
}

/** Measures one trace: the rows alternated, round by round (the first round untimed). */
export async function measureCeiling(trace: Trace, o: CeilingOptions): Promise<CeilingResult> {
  const options = ceilingHeapOptions(trace);
  const placement = recordPlacement(trace, options);
  const loops = { sabmalloc: compileCopy(replayLoop, 'ceiling sabmalloc'), placement: compileCopy(replayLoop, 'ceiling placement') };
  const skip = o.traceOps === undefined ? 'no parsed trace file given' : nativeSkipReason();
  const traceOps = o.traceOps;
  const native = skip === undefined && traceOps !== undefined
    ? async () => (await runNative(nativeAllocators()[0]!, 'W5', { traceOps })).opsPerSec
    : undefined;
  const runs = await alternate(o, options, options.maxBytes!, placement, (row, alloc) => replay(alloc, trace, loops[row]).opsPerSec, native);
  return { trace: trace.name, ops: trace.count, runs, ...(skip !== undefined ? { nativeSkipped: skip } : {}) };
}

/** W1 as the bench runs it (plan.ts): the default cycles, ws and seed; sabmalloc's heap of 128 MiB. */
export const W1_CEILING_HEAP: Partial<HeapOptions> = { initialBytes: 128 << 20, maxBytes: 128 << 20, maxThreads: 3 };

/** Runs W1 on a fresh heap and returns sabmalloc's placement (one address per malloc; W1 makes no realloc). */
export function recordW1Placement(cycles: number, options: Partial<HeapOptions> = W1_CEILING_HEAP): Placement {
  return recordOn(options, cycles, 0, (r) => slotCleanup(r, w1(r, { cycles }))); // at most one malloc a cycle
}

/**
 * W1 (random_mixed) the same way as {@link measureCeiling} a trace: sabmalloc, its recorded
 * placement handed out by an allocator that does nothing else, and glibc's native W1, alternated
 * round by round on fresh primed memory (64 MiB, as the bench primes W1).
 */
export async function measureW1Ceiling(o: CeilingOptions & { cycles?: number }): Promise<CeilingResult> {
  const cycles = o.cycles ?? W1_DEFAULTS.cycles;
  const placement = recordW1Placement(cycles);
  const loops = { sabmalloc: compileCopy(slotLoop, 'ceiling sabmalloc'), placement: compileCopy(slotLoop, 'ceiling placement') };
  const skip = nativeSkipReason();
  const native = skip === undefined
    ? async () => (await runNative(nativeAllocators()[0]!, 'W1', { cycles, ws: W1_DEFAULTS.ws, seed: W1_DEFAULTS.seed })).opsPerSec
    : undefined;
  const runs = await alternate(o, W1_CEILING_HEAP, 64 << 20, placement, (row, alloc) => {
    const run = w1(alloc, { cycles }, loops[row]);
    slotCleanup(alloc, run);
    return (cycles * 1e9) / run.result.elapsedNs;
  }, native);
  return { trace: 'W1', ops: cycles, runs, ...(skip !== undefined ? { nativeSkipped: skip } : {}) };
}

/** sabmalloc's heap for W3 at one thread, as the bench gives it (plan.ts: 64 + 16 MiB a thread). */
export const W3_CEILING_HEAP: Partial<HeapOptions> = { initialBytes: 80 << 20, maxBytes: 80 << 20, maxThreads: 3 };

/** W3 (larson) at one thread, on `alloc`: the untimed fill, then the timed rounds; returns the tally. */
function w3OneThread(alloc: Allocator, rounds: number, loop?: LarsonRoundLoop): WorkloadResult {
  const { chunks, opsPerRound, seed } = W3_DEFAULTS;
  const rng = threadRng(seed, 0);
  const tally = emptyResult();
  const blocks = larsonFill(alloc, rng, chunks, undefined, tally);
  for (let round = 0; round < rounds; round++) larsonRound(alloc, rng, blocks, opsPerRound, tally, loop);
  larsonCleanup(alloc, blocks);
  return tally;
}

/** Runs W3 at one thread on a fresh heap and returns sabmalloc's placement (the fill's blocks included). */
export function recordW3Placement(rounds: number, options: Partial<HeapOptions> = W3_CEILING_HEAP): Placement {
  return recordOn(options, W3_DEFAULTS.chunks + rounds * W3_DEFAULTS.opsPerRound, 0, (r) => w3OneThread(r, rounds));
}

/**
 * W3 (larson) at one thread the same way as {@link measureW1Ceiling}: the bench's chunks, operations
 * per round and seed; `rounds` (default the bench's 100) timed as the sum of the rounds' own times.
 */
export async function measureW3Ceiling(o: CeilingOptions & { rounds?: number }): Promise<CeilingResult> {
  const rounds = o.rounds ?? W3_DEFAULTS.rounds;
  const placement = recordW3Placement(rounds);
  const loops = { sabmalloc: compileCopy(larsonRoundLoop, 'ceiling sabmalloc'), placement: compileCopy(larsonRoundLoop, 'ceiling placement') };
  const { chunks, opsPerRound, seed } = W3_DEFAULTS;
  const skip = nativeSkipReason();
  const native = skip === undefined
    ? async () => (await runNative(nativeAllocators()[0]!, 'W3', { threads: 1, chunks, rounds, opsPerRound, seed })).opsPerSec
    : undefined;
  const ops = 2 * rounds * opsPerRound;
  const runs = await alternate(o, W3_CEILING_HEAP, 64 << 20, placement, (row, alloc) => {
    const tally = w3OneThread(alloc, rounds, loops[row]);
    return (tally.ops * 1e9) / tally.elapsedNs;
  }, native);
  return { trace: 'W3 at one thread', ops, runs, ...(skip !== undefined ? { nativeSkipped: skip } : {}) };
}

/**
 * sabmalloc's ns per operation over the placement's, round by round (the two rows of a round run
 * one after the other, so a machine whose speed drifts between rounds moves both): each round's
 * difference, for their median and range.
 */
export function ownWorkNs(r: CeilingResult): number[] {
  const n = Math.min(r.runs.sabmalloc.length, r.runs.placement.length);
  return Array.from({ length: n }, (_, i) => 1e3 / r.runs.sabmalloc[i]! - 1e3 / r.runs.placement[i]!);
}

/**
 * The table for one measurement: median M ops/s (min-max), x glibc, ns per operation, and
 * sabmalloc's ns over placement (the median of the rounds' differences, and their range).
 */
export function renderCeiling(r: CeilingResult): string {
  const g = median(r.runs.glibc);
  const lines = [`${r.trace}: ${r.ops.toLocaleString('en-US')} operations, ${r.runs.sabmalloc.length} timed rounds`];
  lines.push('  row             M ops/s (min-max)     x glibc  ns/op  over placement');
  const cells = (['placement', 'sabmalloc', 'glibc'] as const).map((row) => {
    const s = spread(r.runs[row]);
    const range = r.runs[row].length > 0 ? `${s.median.toFixed(1)} (${s.min.toFixed(1)}-${s.max.toFixed(1)})` : 'n/a';
    return { row, m: s.median, range, ns: 1e3 / s.median };
  });
  const own = ownWorkNs(r);
  const d = spread(own);
  const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
  for (const c of cells) {
    const ratio = Number.isFinite(g) && Number.isFinite(c.m) ? (c.m / g).toFixed(2) : 'n/a';
    const ns = Number.isFinite(c.ns) ? c.ns.toFixed(1) : 'n/a';
    const over = c.row === 'sabmalloc' && own.length > 0 ? `${signed(d.median)} ns (${signed(d.min)} to ${signed(d.max)})` : '';
    lines.push(`  ${c.row.padEnd(15)} ${c.range.padEnd(21)} ${ratio.padStart(7)}  ${ns.padStart(5)}  ${over}`);
  }
  if (r.nativeSkipped !== undefined) lines.push(`  glibc: not run (${r.nativeSkipped})`);
  return lines.join('\n');
}
