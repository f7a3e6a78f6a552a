/**
 * A model of a trace's footprint in touched pages and of its realloc copies, for the design
 * question docs/performance.md "What falls short (full text)" raises for gawk_records: what would blocks from a few KiB
 * up gain from runs of 4 KiB pages, shared by all their sizes, instead of slabs of one block size?
 *
 * The model, one thread, no metadata:
 * - The heap is 64 KiB slots; a freed slot (or run of them) is reused lowest address first.
 * - A page that was ever handed out stays counted (a SharedArrayBuffer gives nothing back), as
 *   sabmalloc's footprint counts it (SM_TOUCHED): the result is the pages ever touched.
 * - Sizes below `pagesFrom` (all sizes up to MAX_SMALL when it is absent) take sabmalloc's classes
 *   (SIZE, SPAN, HDR, COUNT): slabs of one class, the lowest slab with room first, a freed block
 *   reused before a new one is carved; the header and each carved block touch their pages.
 * - Sizes from `pagesFrom` to 64 KiB take runs of 4 KiB pages, first fit in the lowest slot with
 *   room, never across slots; a slot whose runs are all freed goes back.
 * - Larger sizes take whole slots.
 * - A thread cache in front, per class (a page count for runs): freed blocks are kept, up to
 *   `cacheEntries` and `cacheBytes` a class, and handed out again last in, first out; every
 *   `drainInterval` frees every cache is emptied back. (sabmalloc's magazines: 64 entries, 256
 *   KiB a class, a periodic drain every 1024 frees, which takes two classes at a time.)
 * - realloc as sabmalloc's: a class block stays put while the new size fits and is above a
 *   quarter of it, else moves with room (alloc.ts reallocRequest); a page run grows into the free
 *   pages after it in its slot, or shrinks in place giving its tail pages back, or moves. A move
 *   copies the smaller of the old usable size and the new size.
 *
 * The lowest slab with room is found by a scan of the class's slabs: meant for small live sets
 * (gawk_records takes seconds; a trace with thousands of slabs a class takes long).
 *
 *   node dist/bench/page-model.js TRACE [--pages-from BYTES] [--cache-entries N] [--cache-bytes N]
 *     [--drain-interval N]
 */
import { parseArgs } from 'node:util';
import { REALLOC_SHRINK, reallocRequest } from '../src/alloc.js';
import { PAGE_BYTES, SLOT_BYTES } from '../src/layout.js';
import { COUNT, HDR, MAX_SMALL, NUM_CLASSES, SIZE, SPAN, classOf } from '../src/size-classes.js';
import { loadTrace, OP_FREE, OP_REALLOC, type Trace } from './replay.js';

const PAGES_PER_SLOT = SLOT_BYTES / PAGE_BYTES; // 16
/** Page runs serve sizes up to one slot. */
export const PAGE_RUN_MAX = SLOT_BYTES;

export interface PageModelOptions {
  /** Sizes from this many bytes up to PAGE_RUN_MAX take page runs; absent: none do. */
  pagesFrom?: number;
  cacheEntries?: number;
  cacheBytes?: number;
  drainInterval?: number;
}

export interface PageModelResult {
  peakLiveBytes: number;
  /** Bytes of the pages ever handed out. */
  touchedBytes: number;
  reallocMoves: number;
  reallocCopiedBytes: number;
}

interface Slab {
  cls: number;
  slot: number;
  live: number;
  carved: number;
  free: number[];
}

interface PageSlot {
  slot: number;
  used: Uint8Array; // per page: 1 while in a run
  pages: number;
}

/** Where a live (or cached) block is. */
type Place =
  | { kind: 'slab'; slab: Slab; index: number; usable: number; cache: number }
  | { kind: 'run'; ps: PageSlot; first: number; pages: number; usable: number; cache: number }
  | { kind: 'large'; slot: number; slots: number; usable: number; cache: -1 };

export function modelPages(trace: Trace, o: PageModelOptions = {}): PageModelResult {
  const pagesFrom = o.pagesFrom ?? Infinity;
  const cacheEntries = o.cacheEntries ?? 0;
  const cacheBytes = o.cacheBytes ?? 0;
  const drainInterval = o.drainInterval ?? 0;

  // Slots: free ones reused lowest first; touched pages never forgotten.
  const freeSlots = new Set<number>();
  let top = 0;
  const touched = new Set<number>();
  const touch = (from: number, end: number): void => {
    for (let p = Math.floor(from / PAGE_BYTES); p < Math.ceil(end / PAGE_BYTES); p++) touched.add(p);
  };
  const takeSlots = (n: number): number => {
    const align = n <= 16 ? n : 16;
    for (const s of [...freeSlots].sort((a, b) => a - b)) {
      if (s % align !== 0) continue;
      let ok = true;
      for (let k = 1; k < n && ok; k++) ok = freeSlots.has(s + k);
      if (!ok) continue;
      for (let k = 0; k < n; k++) freeSlots.delete(s + k);
      return s;
    }
    while (top % align !== 0) freeSlots.add(top++);
    const s = top;
    top += n;
    return s;
  };
  const giveSlots = (s: number, n: number): void => {
    for (let k = 0; k < n; k++) freeSlots.add(s + k);
  };

  const slabs: Slab[][] = Array.from({ length: NUM_CLASSES }, () => []);
  const pageSlots: PageSlot[] = [];
  // Caches: classes 0 .. NUM_CLASSES-1, then page counts 1 .. 16 at NUM_CLASSES + pages.
  const caches: Place[][] = Array.from({ length: NUM_CLASSES + PAGES_PER_SLOT + 1 }, () => []);
  const cacheCap = (usable: number): number => Math.min(cacheEntries, Math.floor(cacheBytes / usable));

  const newSlabBlock = (cls: number): Place => {
    let best: Slab | undefined;
    for (const sl of slabs[cls]!) if ((sl.free.length > 0 || sl.carved < COUNT[cls]!) && (best === undefined || sl.slot < best.slot)) best = sl;
    if (best === undefined) {
      best = { cls, slot: takeSlots(SPAN[cls]!), live: 0, carved: 0, free: [] };
      slabs[cls]!.push(best);
      if (HDR[cls]! > 0) touch(best.slot * SLOT_BYTES, best.slot * SLOT_BYTES + HDR[cls]!);
    }
    let index: number;
    if (best.free.length > 0) index = best.free.pop()!;
    else {
      index = best.carved++;
      const at = best.slot * SLOT_BYTES + HDR[cls]! + index * SIZE[cls]!;
      touch(at, at + SIZE[cls]!);
    }
    best.live++;
    return { kind: 'slab', slab: best, index, usable: SIZE[cls]!, cache: cls };
  };
  const findRun = (ps: PageSlot, pages: number): number => {
    for (let first = 0, run = 0; first + run < PAGES_PER_SLOT; ) {
      if (ps.used[first + run] !== 0) {
        first += run + 1;
        run = 0;
      } else if (++run === pages) return first;
    }
    return -1;
  };
  const takeRun = (ps: PageSlot, first: number, pages: number): void => {
    for (let p = first; p < first + pages; p++) ps.used[p] = 1;
    ps.pages += pages;
    touch(ps.slot * SLOT_BYTES + first * PAGE_BYTES, ps.slot * SLOT_BYTES + (first + pages) * PAGE_BYTES);
  };
  const newRun = (pages: number): Place => {
    for (const ps of pageSlots) {
      const first = findRun(ps, pages);
      if (first >= 0) {
        takeRun(ps, first, pages);
        return { kind: 'run', ps, first, pages, usable: pages * PAGE_BYTES, cache: NUM_CLASSES + pages };
      }
    }
    const ps: PageSlot = { slot: takeSlots(1), used: new Uint8Array(PAGES_PER_SLOT), pages: 0 };
    pageSlots.push(ps);
    pageSlots.sort((a, b) => a.slot - b.slot);
    takeRun(ps, 0, pages);
    return { kind: 'run', ps, first: 0, pages, usable: pages * PAGE_BYTES, cache: NUM_CLASSES + pages };
  };
  const releaseRunPages = (ps: PageSlot, first: number, pages: number): void => {
    for (let p = first; p < first + pages; p++) ps.used[p] = 0;
    ps.pages -= pages;
    if (ps.pages === 0) {
      pageSlots.splice(pageSlots.indexOf(ps), 1);
      giveSlots(ps.slot, 1);
    }
  };
  const release = (w: Place): void => {
    if (w.kind === 'large') giveSlots(w.slot, w.slots);
    else if (w.kind === 'run') releaseRunPages(w.ps, w.first, w.pages);
    else {
      const sl = w.slab;
      sl.free.push(w.index);
      if (--sl.live === 0) {
        slabs[sl.cls]!.splice(slabs[sl.cls]!.indexOf(sl), 1);
        giveSlots(sl.slot, SPAN[sl.cls]!);
      }
    }
  };

  const alloc = (size: number): Place => {
    if (size > MAX_SMALL && size > PAGE_RUN_MAX) {
      const slots = Math.ceil(size / SLOT_BYTES);
      const slot = takeSlots(slots);
      touch(slot * SLOT_BYTES, slot * SLOT_BYTES + size);
      return { kind: 'large', slot, slots, usable: slots * SLOT_BYTES, cache: -1 };
    }
    const pages = Math.max(1, Math.ceil(size / PAGE_BYTES));
    const key = size >= pagesFrom && size <= PAGE_RUN_MAX ? NUM_CLASSES + pages : classOf(size);
    const cached = caches[key]!.pop();
    if (cached !== undefined) return cached;
    return key >= NUM_CLASSES ? newRun(pages) : newSlabBlock(key);
  };
  let frees = 0;
  const free = (w: Place): void => {
    if (w.cache >= 0 && caches[w.cache]!.length < cacheCap(w.usable)) caches[w.cache]!.push(w);
    else release(w);
    if (drainInterval > 0 && ++frees % drainInterval === 0) {
      for (const c of caches) for (let e = c.pop(); e !== undefined; e = c.pop()) release(e);
    }
  };

  const where: (Place | undefined)[] = new Array(trace.slots);
  const sizes = new Float64Array(trace.slots);
  let live = 0;
  let peakLive = 0;
  let moves = 0;
  let copied = 0;
  for (let i = 0; i < trace.count; i++) {
    const k = trace.kind[i]!;
    const s = trace.slot[i]!;
    const size = trace.size[i]!;
    if (k === OP_FREE) {
      free(where[s]!);
      where[s] = undefined;
      live -= sizes[s]!;
      continue;
    }
    if (k === OP_REALLOC) {
      const w = where[s]!;
      live += size - sizes[s]!;
      sizes[s] = size;
      if (live > peakLive) peakLive = live;
      if (w.kind === 'slab' && size <= w.usable && (size > w.usable >>> REALLOC_SHRINK || w.usable <= 16)) continue;
      if (w.kind === 'run' && size <= PAGE_RUN_MAX && size >= pagesFrom) {
        const pages = Math.max(1, Math.ceil(size / PAGE_BYTES));
        if (pages <= w.pages) {
          releaseRunPages(w.ps, w.first + pages, w.pages - pages); // never empties the slot
          w.pages = pages;
          w.usable = pages * PAGE_BYTES;
          w.cache = NUM_CLASSES + pages;
          continue;
        }
        let room = w.first + w.pages + (pages - w.pages) <= PAGES_PER_SLOT;
        for (let p = w.first + w.pages; room && p < w.first + pages; p++) room = w.ps.used[p] === 0;
        if (room) {
          takeRun(w.ps, w.first + w.pages, pages - w.pages);
          w.pages = pages;
          w.usable = pages * PAGE_BYTES;
          w.cache = NUM_CLASSES + pages;
          continue;
        }
      }
      if (w.kind === 'large' && size > MAX_SMALL && Math.ceil(size / SLOT_BYTES) === w.slots) continue;
      const q = alloc(size < pagesFrom ? reallocRequest(size, w.usable) : size);
      moves++;
      copied += Math.min(w.usable, size);
      free(w);
      where[s] = q;
      continue;
    }
    where[s] = alloc(size);
    sizes[s] = size;
    live += size;
    if (live > peakLive) peakLive = live;
  }
  return { peakLiveBytes: peakLive, touchedBytes: touched.size * PAGE_BYTES, reallocMoves: moves, reallocCopiedBytes: copied };
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'pages-from': { type: 'string' },
      'cache-entries': { type: 'string' },
      'cache-bytes': { type: 'string' },
      'drain-interval': { type: 'string' },
    },
  });
  if (positionals.length !== 1) {
    process.stderr.write('usage: page-model TRACE [--pages-from BYTES] [--cache-entries N] [--cache-bytes N] [--drain-interval N]\n');
    process.exitCode = 2;
    return;
  }
  const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  const r = modelPages(loadTrace(positionals[0]!), {
    pagesFrom: num(values['pages-from']),
    cacheEntries: num(values['cache-entries']),
    cacheBytes: num(values['cache-bytes']),
    drainInterval: num(values['drain-interval']),
  });
  process.stdout.write(
    `peak live ${(r.peakLiveBytes / 2 ** 20).toFixed(2)} MiB; pages touched ${(r.touchedBytes / 2 ** 20).toFixed(2)} MiB ` +
      `(${(r.touchedBytes / r.peakLiveBytes).toFixed(2)}x); realloc: ${r.reallocMoves} moves, ` +
      `${(r.reallocCopiedBytes / 1e6).toFixed(1)} MB copied\n`,
  );
}

if (process.argv[1] !== undefined && /page-model\.[jt]s$/.test(process.argv[1])) main();
