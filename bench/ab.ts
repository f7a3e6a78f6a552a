/**
 * `sabmalloc ab --base DIR`: this build's sabmalloc against another build's, on the same traces,
 * alternated round by round in one process. The figures of a change in the commit messages and
 * docs/performance.md ("base and new alternated in one process") come from this.
 *
 * DIR is a build of another checkout (its `dist`, from `npm run build`): its `src/index.js`,
 * `bench/replay.js` and `bench/copies.js` are imported beside this build's, so both run in this
 * thread, each through its own compiled copy of its own replay loop. Each round, of each side in
 * turn (the order flips every round), replays a trace `repeat` times on one fresh heap (primed
 * memory first, as the bench does): the first replay meets fresh pages, the others the heap's
 * own, as a program that does the same work again would. Untimed warm-up rounds come first.
 * Reported: each side's median ns an operation over the timed rounds, base / new of the medians
 * (above 1: the new build is faster), and the median of the rounds' own base / new ratios.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { copyFor } from './copies.js';
import { w5HeapBytes } from './plan.js';
import { primeMemory } from './prime.js';
import { replay, replayLoop, tracePeakLive, type ReplayAllocator, type Trace } from './replay.js';
import { checkTraces, loadCheckedTrace } from './trace-prep.js';

interface HeapLike extends ReplayAllocator {
  detach(): void;
}

/** What one side needs: a heap factory, the replay driver and its own loop copy. */
interface Side {
  label: string;
  create(options: Partial<HeapOptions>): HeapLike;
  replay: typeof replay;
  loop: typeof replayLoop;
}

export interface AbOptions {
  /** A build directory of the other checkout (with src/index.js and bench/replay.js). */
  base: string;
  traces: string[];
  /** Replays a round, on one heap. */
  repeat: number;
  /** Timed rounds of each side. */
  rounds: number;
  /** Untimed rounds of each side first. */
  warmups: number;
  prime: boolean;
  /**
   * 0: each round on a fresh heap. Above 0: one heap a side for the whole comparison, this many
   * untimed replays on it first, and then each round times `repeat` replays on it: a program's
   * steady state (its pages touched, its slow paths compiled), which fresh heaps hide under their
   * first touches when a trace is short and replayed often (tcl_lists: a fresh heap's first replay
   * took as long as ~100 later ones at 05:45 UTC on 2026-12-06). No prime between rounds then.
   */
  steady?: number;
}

export interface AbRow {
  trace: string;
  ops: number;
  /** ns an operation, one entry per timed round. */
  baseNs: number[];
  newNs: number[];
  baseMedian: number;
  newMedian: number;
  /** baseMedian / newMedian: above 1 when the new build is faster. */
  speedup: number;
  /**
   * The median of the rounds' own ratios, baseNs[r] / newNs[r]: the two runs of a round are
   * adjacent in time, so a drift of the machine's speed across the rounds (which moves both
   * medians) cancels in each ratio. (2026-12-07, lua_inventory, 20 rounds on a machine whose
   * speed drifted by a third through the run: the medians' ratio 1.052, the rounds' 1.04.)
   */
  pairedSpeedup: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function sideOf(dir: string | undefined, label: string): Promise<Side> {
  if (dir === undefined) {
    return { label, create: (o) => SharedHeap.create(o), replay, loop: copyFor(replayLoop, `sabmalloc (ab ${label})`) };
  }
  const url = (p: string): string => pathToFileURL(resolve(dir, p)).href;
  let heapMod: { SharedHeap: { create(o: Partial<HeapOptions>): HeapLike } };
  let replayMod: { replay: typeof replay; replayLoop: typeof replayLoop };
  let copiesMod: { copyFor: typeof copyFor };
  try {
    heapMod = (await import(url('src/index.js'))) as typeof heapMod;
    replayMod = (await import(url('bench/replay.js'))) as typeof replayMod;
    copiesMod = (await import(url('bench/copies.js'))) as typeof copiesMod;
  } catch (err) {
    throw new Error(`--base ${dir}: not a build directory with src/index.js, bench/replay.js and bench/copies.js (${(err as Error).message})`);
  }
  return {
    label,
    create: (o) => heapMod.SharedHeap.create(o),
    replay: replayMod.replay,
    loop: copiesMod.copyFor(replayMod.replayLoop, `sabmalloc (ab ${label})`),
  };
}

/** `repeat` replays of `trace` on `heap`; ns an operation. */
function replays(side: Side, heap: HeapLike, trace: Trace, repeat: number): number {
  let ns = 0;
  for (let k = 0; k < repeat; k++) ns += side.replay(heap, trace, side.loop).elapsedNs;
  return ns / (repeat * Math.max(1, trace.count));
}

/** One round of one side: `repeat` replays on one fresh heap; ns an operation. */
function round(side: Side, trace: Trace, options: Partial<HeapOptions>, repeat: number): number {
  const heap = side.create(options);
  try {
    return replays(side, heap, trace, repeat);
  } finally {
    heap.detach();
  }
}

/** Runs the comparison; `progress` gets a line a trace. */
export async function measureAb(o: AbOptions, progress: (line: string) => void = () => {}): Promise<AbRow[]> {
  checkTraces(o.traces); // every trace before the first is measured
  const sides = [await sideOf(o.base, 'base'), await sideOf(undefined, 'new')];
  const rows: AbRow[] = [];
  for (const path of o.traces) {
    const trace = loadCheckedTrace(path);
    const peak = tracePeakLive(trace);
    const options = { ...w5HeapBytes(peak), maxThreads: 3 };
    const primeBytes = 2 * peak;
    const ns: number[][] = [[], []];
    const steady = o.steady ?? 0;
    // Steady: one heap a side, made and replayed `steady` times before the first round.
    const heaps = steady > 0 ? sides.map((side) => side.create(options)) : [];
    try {
      for (let s = 0; s < heaps.length; s++) replays(sides[s]!, heaps[s]!, trace, steady);
      for (let r = 0; r < o.warmups + o.rounds; r++) {
        const order = r % 2 === 0 ? [0, 1] : [1, 0];
        for (const s of order) {
          if (o.prime && steady === 0) await primeMemory(primeBytes);
          const v = steady > 0 ? replays(sides[s]!, heaps[s]!, trace, o.repeat) : round(sides[s]!, trace, options, o.repeat);
          if (r >= o.warmups) ns[s]!.push(v);
        }
      }
    } finally {
      for (const h of heaps) h.detach();
    }
    const baseMedian = median(ns[0]!);
    const newMedian = median(ns[1]!);
    const pairedSpeedup = median(ns[0]!.map((b, r) => b / ns[1]![r]!));
    const row = { trace: trace.name, ops: trace.count, baseNs: ns[0]!, newNs: ns[1]!, baseMedian, newMedian, speedup: baseMedian / newMedian, pairedSpeedup };
    progress(`${trace.name}: base ${baseMedian.toFixed(1)}, new ${newMedian.toFixed(1)} ns an operation`);
    rows.push(row);
  }
  return rows;
}

/** The table: a row a trace, then every round's figures. */
export function renderAb(rows: AbRow[], o: AbOptions): string {
  const heapText = (o.steady ?? 0) > 0 ? `on one heap a side for every round, after ${o.steady} untimed replays on it` : 'on one fresh heap';
  const lines = [`base: ${o.base}; ${o.repeat} replay(s) a round ${heapText}, ${o.warmups} untimed and ${o.rounds} timed rounds a side, alternated`,
    'trace                      ops  base ns/op  new ns/op  base/new  round by round'];
  for (const r of rows) {
    lines.push(`${r.trace.split('/').pop()!.padEnd(22)} ${String(r.ops).padStart(8)}  ${r.baseMedian.toFixed(1).padStart(10)}  ${r.newMedian.toFixed(1).padStart(9)}  ${r.speedup.toFixed(3).padStart(8)}  ${r.pairedSpeedup.toFixed(3).padStart(14)}`);
  }
  lines.push('base/new: the ratio of the medians; round by round: the median of each round\'s base / new (above 1: new faster)');
  for (const r of rows) {
    lines.push(`  ${r.trace.split('/').pop()}: base ${r.baseNs.map((x) => x.toFixed(0)).join(' ')} | new ${r.newNs.map((x) => x.toFixed(0)).join(' ')}`);
  }
  return lines.join('\n') + '\n';
}
