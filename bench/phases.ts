/**
 * `sabmalloc phases --trace PATH`: where a trace's time goes, in two parts: the program's run (its
 * operations up to the final frees) and its exit (the run of frees that ends the trace, where a C
 * program frees what it holds), each timed apart, for sabmalloc (this build); `placement`
 * (bench/ceiling.ts: sabmalloc's own addresses of a recorded replay handed out with no other work,
 * its free empty: what the loop and the pages cost at sabmalloc's placement); the reference floor
 * (bench/reference-alloc.ts: the loop with almost no allocator, at its own placement); and glibc
 * native (bench/native/workloads.c with `--split`, the same loop in C). So a distance in the
 * bench's W5 table can be put where it lies: in the run or in the exit, in sabmalloc's own work
 * (over placement) or in the loop and the pages (placement over glibc).
 *
 * Each round, each side in turn (the order turns every round) replays the whole trace once on a
 * fresh heap (a fresh process for glibc), after priming memory as the bench does (bench/prime.ts).
 * Untimed warm-up rounds come first (not for glibc, whose code does not warm). Reported: each
 * side's median ms of each part over the timed rounds, and its speed on each part against glibc's
 * (glibc's ms over the side's, as the bench's x glibc: above 1, faster than glibc).
 */
import { unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SharedHeap } from '../src/index.js';
import { ceilingHeapOptions, PlacementAllocator, recordPlacement, type Placement } from './ceiling.js';
import { copyFor } from './copies.js';
import { collectGarbageAfterJob, collectGarbageIfHeavy } from './gc.js';
import { nativeAllocators, nativeSkipReason, runNative } from './native.js';
import { primeMemory } from './prime.js';
import { ReferenceAllocator } from './reference-alloc.js';
import { median } from './summarize.js';
import { finalFreesStart, replay, replayLoop, tracePeakLive, writeTraceOps, type ReplayAllocator, type Trace } from './replay.js';
import { checkTraces, loadCheckedTrace } from './trace-prep.js';

export interface PhasesOptions {
  traces: string[];
  /** Timed rounds of each side. */
  rounds: number;
  /** Untimed rounds of each JavaScript side first. */
  warmups: number;
  prime: boolean;
  /** Run glibc native too (needs a C compiler). */
  native: boolean;
}

export interface PhasesSide {
  /** 'sabmalloc', 'placement', 'reference' or 'glibc'. */
  name: string;
  /** ms of the run (operations before the final frees) and of the exit, one entry per timed round. */
  runMs: number[];
  exitMs: number[];
  runMedian: number;
  exitMedian: number;
}

export interface PhasesRow {
  trace: string;
  ops: number;
  /** Index of the first of the final frees (ops - split of them). */
  split: number;
  sides: PhasesSide[];
  /** Why glibc did not run, when it did not. */
  nativeSkipped?: string;
}

interface JsSide {
  name: string;
  create(trace: Trace, placement: Placement): ReplayAllocator & { detach?(): void };
  loop: typeof replayLoop;
}


/** One replay of a JavaScript side on a fresh heap: [run ms, exit ms]. */
function jsRound(side: JsSide, trace: Trace, placement: Placement, split: number): [number, number] {
  const heap = side.create(trace, placement);
  try {
    const r = replay(heap, trace, side.loop, split);
    return [r.partNs![0] / 1e6, r.partNs![1] / 1e6];
  } finally {
    heap.detach?.();
  }
}

/** Runs the comparison; `progress` gets a line a trace. */
export async function measurePhases(o: PhasesOptions, progress: (line: string) => void = () => {}): Promise<PhasesRow[]> {
  checkTraces(o.traces); // every trace before the first is measured
  const js: JsSide[] = [
    {
      name: 'sabmalloc',
      create: (t) => SharedHeap.create(ceilingHeapOptions(t)),
      loop: copyFor(replayLoop, 'sabmalloc (phases)'),
    },
    {
      name: 'placement',
      // Over the buffer of a heap just made with the same options, as bench/ceiling.ts does: the
      // same pages, first touched in the same order.
      create: (t, placement) => {
        const heap = SharedHeap.create(ceilingHeapOptions(t));
        const buffer = heap.buffer;
        heap.detach();
        return new PlacementAllocator(buffer, placement);
      },
      loop: copyFor(replayLoop, 'placement (phases)'),
    },
    {
      name: 'reference',
      // As the bench sizes the floor's buffer: the sabmalloc heap's bytes (bench/run.ts).
      create: (t) => new ReferenceAllocator(ceilingHeapOptions(t).initialBytes!),
      loop: copyFor(replayLoop, 'reference (phases)'),
    },
  ];
  const skip = o.native ? nativeSkipReason() : 'not asked for (--no-native)';
  const glibc = skip === undefined ? nativeAllocators()[0]! : undefined;
  const rows: PhasesRow[] = [];
  for (const path of o.traces) {
    const trace = loadCheckedTrace(path);
    const split = finalFreesStart(trace);
    const placement = recordPlacement(trace, ceilingHeapOptions(trace));
    let rssBefore = process.memoryUsage.rss();
    const primeBytes = 2 * tracePeakLive(trace);
    const sides: PhasesSide[] = js.map((s) => ({ name: s.name, runMs: [], exitMs: [], runMedian: 0, exitMedian: 0 }));
    let opsFile: string | undefined;
    if (glibc !== undefined) {
      sides.push({ name: glibc.name, runMs: [], exitMs: [], runMedian: 0, exitMedian: 0 });
      opsFile = join(tmpdir(), `sabmalloc-phases-${process.pid}-${rows.length}.ops`);
      writeTraceOps(trace, opsFile);
    }
    try {
      for (let r = 0; r < o.warmups + o.rounds; r++) {
        const order = sides.map((_, i) => i);
        if (r % 2 === 1) order.reverse();
        for (const s of order) {
          if (s >= js.length && r < o.warmups) continue; // native code does not warm
          // Heaps of hundreds of MiB a round: collected before they pile up (bench/gc.ts).
          await collectGarbageIfHeavy(rssBefore);
          rssBefore = process.memoryUsage.rss();
          if (o.prime) await primeMemory(primeBytes);
          let part: [number, number];
          if (s < js.length) {
            part = jsRound(js[s]!, trace, placement, split);
          } else {
            const n = await runNative(glibc!, 'W5', { traceOps: opsFile!, split });
            const [a, b] = n.splitSeconds ?? [n.seconds, 0];
            part = [a * 1e3, b * 1e3];
          }
          if (r >= o.warmups) {
            sides[s]!.runMs.push(part[0]);
            sides[s]!.exitMs.push(part[1]);
          }
        }
      }
    } finally {
      if (opsFile !== undefined) unlinkSync(opsFile);
    }
    for (const s of sides) {
      s.runMedian = median(s.runMs);
      s.exitMedian = median(s.exitMs);
    }
    const row: PhasesRow = { trace: trace.name, ops: trace.count, split, sides, ...(skip !== undefined ? { nativeSkipped: skip } : {}) };
    progress(`${trace.name}: ${sides.map((s) => `${s.name} ${s.runMedian.toFixed(1)} + ${s.exitMedian.toFixed(1)} ms`).join(', ')}`);
    rows.push(row);
  }
  await collectGarbageAfterJob();
  return rows;
}

/** ms below which a part's time gets no ratio in the table (two clock reads around a few operations). */
export const RATIO_MIN_MS = 0.1;

/** The table: a line a side a trace (the run, the exit, both; each over glibc's), then every round. */
export function renderPhases(rows: PhasesRow[], o: PhasesOptions): string {
  const lines = [
    `each side replays the whole trace once a round on a fresh heap (glibc: a fresh process)${o.prime ? ', memory primed first' : ''}; ` +
      `${o.warmups} untimed (JavaScript sides) and ${o.rounds} timed rounds, alternated; medians in ms; x glibc: glibc's ms over the side's (above 1: faster)`,
    'trace                    side          final frees      run ms  x glibc    exit ms  x glibc   total ms  x glibc',
  ];
  // A part under RATIO_MIN_MS on either side (gawk_records' exit: 2 frees) is clock noise: no ratio.
  const ratio = (v: number, g: number | undefined): string =>
    (g !== undefined && v >= RATIO_MIN_MS && g >= RATIO_MIN_MS ? (g / v).toFixed(2) : '-').padStart(7);
  for (const r of rows) {
    const g = r.sides.find((s) => s.name === 'glibc' || s.name === 'system');
    for (const s of r.sides) {
      const total = s.runMedian + s.exitMedian;
      lines.push(
        `${r.trace.split('/').pop()!.padEnd(24)} ${s.name.padEnd(12)} ${String(r.ops - r.split).padStart(12)}  ${s.runMedian.toFixed(1).padStart(10)}  ${ratio(s.runMedian, g?.runMedian)}` +
          `  ${s.exitMedian.toFixed(1).padStart(9)}  ${ratio(s.exitMedian, g?.exitMedian)}  ${total.toFixed(1).padStart(9)}  ${ratio(total, g !== undefined ? g.runMedian + g.exitMedian : undefined)}`,
      );
    }
    if (r.nativeSkipped !== undefined) lines.push(`  ${r.trace.split('/').pop()}: glibc ${r.nativeSkipped}`);
  }
  for (const r of rows) {
    for (const s of r.sides) {
      lines.push(`  ${r.trace.split('/').pop()} ${s.name}: run ${s.runMs.map((x) => x.toFixed(0)).join(' ')} | exit ${s.exitMs.map((x) => x.toFixed(0)).join(' ')}`);
    }
  }
  return lines.join('\n') + '\n';
}
