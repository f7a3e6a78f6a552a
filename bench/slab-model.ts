/**
 * A model of a trace's memory under ideal slabs, the floor that docs/performance.md "What falls short (full text)" gives
 * for gawk_records: every size class keeps its blocks in slabs of its own (sabmalloc's SPAN and
 * COUNT, or other classes), a malloc goes to the class's lowest-numbered slab that has room, no
 * thread cache holds anything, and a slab goes back to a pool shared by every class the moment
 * its last block is freed. Blocks above MAX_SMALL take whole slots. The model prints the most
 * slots in use at once against the peak live bytes, and the sum over classes of each class's own
 * peak of usable bytes (what slabs of one class each could not go below).
 *
 *   node dist/bench/slab-model.js TRACE [--per-doubling-from BYTES --per-doubling N]
 *
 * With --per-doubling-from, classes above BYTES are N per doubling (one slot a slab, or the fewest
 * slots that hold a block) instead of sabmalloc's.
 */
import { parseArgs } from 'node:util';
import { SLOT_BYTES } from '../src/layout.js';
import { COUNT, MAX_SMALL, SIZE, SPAN, classOf } from '../src/size-classes.js';
import { loadTrace, OP_FREE, OP_REALLOC, type Trace } from './replay.js';

interface ClassShape {
  key: string;
  usable: number;
  span: number;
  count: number;
}

interface Slab {
  live: number;
  id: number;
}

export interface ModelResult {
  peakLiveBytes: number;
  peakSlots: number;
  /** Sum over classes of each class's peak usable bytes. */
  sumOfClassPeaks: number;
}

/** sabmalloc's classes, or N per doubling above `from` bytes. */
export function classShapes(from?: number, perDoubling?: number): (size: number) => ClassShape {
  const mids: number[] = [];
  if (from !== undefined && perDoubling !== undefined) {
    for (let b = from; b < MAX_SMALL; b *= 2) for (let k = 1; k <= perDoubling; k++) mids.push(Math.ceil((b + (b / perDoubling) * k) / 16) * 16);
  }
  const cache = new Map<number, ClassShape>();
  return (size: number): ClassShape => {
    if (size > MAX_SMALL) {
      const span = Math.ceil(size / SLOT_BYTES);
      return { key: `large${size}`, usable: size, span, count: 1 };
    }
    if (from === undefined || size <= from) {
      const c = classOf(size);
      let s = cache.get(c);
      if (s === undefined) cache.set(c, (s = { key: `c${c}`, usable: SIZE[c]!, span: SPAN[c]!, count: COUNT[c]! }));
      return s;
    }
    const usable = mids.find((m) => m >= size)!;
    const span = Math.ceil(usable / SLOT_BYTES);
    return { key: `m${usable}`, usable, span, count: Math.floor((span * SLOT_BYTES) / usable) };
  };
}

export function modelTrace(trace: Trace, shapeOf: (size: number) => ClassShape): ModelResult {
  const slabs = new Map<string, Slab[]>();
  const where: Array<{ shape: ClassShape; slab: Slab } | undefined> = new Array(trace.slots);
  const sizes = new Float64Array(trace.slots);
  const classLive = new Map<string, number>();
  const classPeak = new Map<string, number>();
  let slots = 0;
  let peakSlots = 0;
  let live = 0;
  let peakLive = 0;
  let nextId = 0;
  const free = (s: number): void => {
    const w = where[s]!;
    where[s] = undefined;
    live -= sizes[s]!;
    classLive.set(w.shape.key, classLive.get(w.shape.key)! - w.shape.usable);
    if (--w.slab.live === 0) {
      const list = slabs.get(w.shape.key)!;
      list.splice(list.indexOf(w.slab), 1);
      slots -= w.shape.span;
    }
  };
  const alloc = (s: number, size: number): void => {
    const shape = shapeOf(size);
    let list = slabs.get(shape.key);
    if (list === undefined) slabs.set(shape.key, (list = []));
    let best: Slab | undefined;
    for (const sl of list) if (sl.live < shape.count && (best === undefined || sl.id < best.id)) best = sl;
    if (best === undefined) {
      best = { live: 0, id: nextId++ };
      list.push(best);
      slots += shape.span;
    }
    best.live++;
    where[s] = { shape, slab: best };
    sizes[s] = size;
    live += size;
    const cl = (classLive.get(shape.key) ?? 0) + shape.usable;
    classLive.set(shape.key, cl);
    if (cl > (classPeak.get(shape.key) ?? 0)) classPeak.set(shape.key, cl);
  };
  for (let i = 0; i < trace.count; i++) {
    const k = trace.kind[i]!;
    const s = trace.slot[i]!;
    if (k === OP_FREE || k === OP_REALLOC) free(s);
    if (k !== OP_FREE) alloc(s, trace.size[i]!);
    if (live > peakLive) peakLive = live;
    if (slots > peakSlots) peakSlots = slots;
  }
  let sum = 0;
  for (const v of classPeak.values()) sum += v;
  return { peakLiveBytes: peakLive, peakSlots, sumOfClassPeaks: sum };
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { 'per-doubling-from': { type: 'string' }, 'per-doubling': { type: 'string' } },
  });
  if (positionals.length !== 1) {
    process.stderr.write('usage: slab-model TRACE [--per-doubling-from BYTES --per-doubling N]\n');
    process.exitCode = 2;
    return;
  }
  const from = values['per-doubling-from'] !== undefined ? Number(values['per-doubling-from']) : undefined;
  const per = values['per-doubling'] !== undefined ? Number(values['per-doubling']) : undefined;
  const r = modelTrace(loadTrace(positionals[0]!), classShapes(from, per));
  const x = (b: number): string => (b / r.peakLiveBytes).toFixed(2);
  process.stdout.write(
    `peak live ${(r.peakLiveBytes / 2 ** 20).toFixed(2)} MiB; ideal slabs: at most ${r.peakSlots} slots in use ` +
      `(${x(r.peakSlots * SLOT_BYTES)}x); sum of per-class peaks ${x(r.sumOfClassPeaks)}x\n`,
  );
}

if (process.argv[1] !== undefined && /slab-model\.[jt]s$/.test(process.argv[1])) main();
