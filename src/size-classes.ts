/**
 * Size classes.
 *
 * Class sizes are multiples of 16: 16, 32, ... 128 in steps of 16, four classes per doubling
 * (160, 192, 224, 256), every multiple of 16 from STEP16_FROM to STEP16_TO (272, 288, ... 512),
 * eight per doubling up to FINE_TO (576, 640, ... 1024), four per doubling above (1280,
 * 1536, ... 4096), two per doubling from TWO_PER_DOUBLING_FROM to TWO_PER_DOUBLING_TO (5, 8, 12,
 * 16 KiB: the first at FIRST_WIDE_CLASS, a quarter above 4 KiB rather than a half), and four
 * again up to MAX_SMALL (20, 24, 28, 32, 40, ... 128 KiB). The objects of
 * parsers and interpreters fall in 256-1024 bytes: there a coarse step is memory lost on every
 * object (jq_customers keeps 85,000 nodes of 392 bytes, which lost 24 bytes each in a 416-byte
 * class; steps of 16 there: footprint 1.20x -> 1.17x peak live). Fewer classes elsewhere, since
 * every class more is one more partly used slab per thread, which for a program with a small
 * live set of strings and buffers is most of its footprint: gawk_records (a live set of mostly
 * 4-64 KiB strings) 2.16x -> 1.96x its peak live bytes with two per doubling from 4 to 16 KiB
 * (64 -> 60 classes; the other traces unchanged). Two per doubling from 4 KiB all the way up gave
 * 1.91x but cost W2, whose 8-32 KiB blocks then fell into 5 classes instead of 9, 5-19% at one
 * thread (alternated in one process; fddecfa); with four per doubling from 16 KiB W2 is as
 * before (9.46 / 9.59, 8.76 / 8.46, 8.64 / 9.30, 7.57 / 7.70 M ops/s alternated) and its
 * footprint too (1.29x).
 * Worst-case internal waste, tested for every size in test/size-classes.test.ts:
 *   size <= 128 or STEP16_FROM < size <= STEP16_TO: usable - size <= 15 bytes
 *   STEP16_TO < size <= FINE_TO:                    usable < 1.125 * size  (an eighth of the power of two below)
 *   TWO_PER_DOUBLING_FROM < size <= 2 * TWO_PER_DOUBLING_FROM: usable < 1.6 * size (8 KiB for 5,121 bytes)
 *   2 * TWO_PER_DOUBLING_FROM < size <= TWO_PER_DOUBLING_TO: usable < 1.5 * size (a half)
 *   other sizes:                                    usable < 1.25 * size   (a quarter)
 *
 * Each class lives in slabs of `SPAN[cls]` slab slots (64 KiB each). A slab of a small class is
 *   [ state bytes: one per block, padded to HDR[cls] ][ COUNT[cls] blocks of SIZE[cls] ]
 * A slab of at most SM_STATE_BYTES blocks (classes from 2560 bytes up) keeps its state bytes in its
 * head slot's meta entry instead (META_STATES[cls] = 1, HDR = 0), so that blocks such as 32 KiB
 * fill a 64 KiB slab exactly.
 * The span is the smallest power of two of slots whose tail waste is at most 1/32 of the slab
 * for small classes, 1/16 for META_STATES classes (smaller slabs keep less memory idle), else
 * the span with the least waste; from FEWEST_SLOTS_FROM up, the smallest span that holds a block.
 * (A tail that no block uses is never touched, so it takes no memory: see SM_TOUCHED.)
 */
import { CLASS_SLOTS, SLOT_BYTES, SLOT_SHIFT, SLOTS_PER_SUPER, SM_STATE_BYTES } from './layout.js';

export const MAX_SMALL = 128 << 10; // 128 KiB: larger requests take runs of slab slots
export const STEP16_FROM = 256; // every multiple of 16 in (STEP16_FROM, STEP16_TO] is a class
export const STEP16_TO = 512;
export const FINE_TO = 1024; // eight classes per doubling in (STEP16_TO, FINE_TO], four elsewhere above 128 but in the band below
/** Two classes per doubling in (TWO_PER_DOUBLING_FROM, TWO_PER_DOUBLING_TO]: 5, 8, 12 and 16 KiB. */
export const TWO_PER_DOUBLING_FROM = 4096;
export const TWO_PER_DOUBLING_TO = 16384;
/**
 * The first class of two per doubling: 5 KiB, not 6. SQLite's page cache asks 4,104-4,368 bytes a
 * page (a 4 KiB page and its header), which a 6 KiB class holds with 29-33% lost: sqlite_shop's
 * footprint 1.361x its 28 MiB peak live with 6 KiB, 1.220x with 5 KiB (one replay each). The
 * sizes of 5-6 KiB then take 8 KiB, which gawk_records' strings did not feel: its footprint
 * 1.869x -> 1.844x, and over fourteen option settings (drainInterval 512 and 2048,
 * magazineCapacity 32 and 128, refillCount 16, stage1Keep 8, each with magazines of 256 and
 * 128 KiB a class) 5 KiB was at most 0.041x above 6 KiB and up to 0.045x below, where a 4,608-byte
 * class (a third class in the doubling) took it over 2.0x (docs/performance.md, "Other programs: results and investigations").
 */
export const FIRST_WIDE_CLASS = 5120;
const MAX_BLOCK_ALIGN = 4096; // slab headers are padded so power-of-two classes up to this are naturally aligned
/**
 * Classes from this size take the fewest slots that hold a block: a slab of a few large blocks
 * spread over 2-16 slots stays partly used for as long as any of them lives, while one slot per
 * few blocks goes back to the pool sooner and serves another class (gawk_records, whose live
 * set is mostly 4-64 KiB strings: footprint 2.26x -> 2.04x peak live; W2's speed unchanged).
 */
export const FEWEST_SLOTS_FROM = 4096;

/** Each class's size and how many classes share its doubling (steps of 16 up to 128: 8). */
function buildSizes(): { sizes: number[]; perDoubling: number[] } {
  const sizes: number[] = [];
  const perDoubling: number[] = [];
  for (let s = 16; s <= 128; s += 16) {
    sizes.push(s);
    perDoubling.push(8);
  }
  for (let base = 128; base < MAX_SMALL; base *= 2) {
    const steps =
      base === STEP16_FROM ? STEP16_FROM / 16
      : base >= STEP16_TO && base < FINE_TO ? 8
      : base >= TWO_PER_DOUBLING_FROM && base < TWO_PER_DOUBLING_TO ? 2
      : 4;
    for (let k = 1; k <= steps; k++) {
      sizes.push(base === TWO_PER_DOUBLING_FROM && k === 1 ? FIRST_WIDE_CLASS : base + (base / steps) * k);
      perDoubling.push(steps);
    }
  }
  return { sizes, perDoubling };
}

const BUILT = buildSizes();
export const NUM_CLASSES = BUILT.sizes.length; // 60
if (NUM_CLASSES > CLASS_SLOTS) throw new Error(`size-classes: ${NUM_CLASSES} classes, the layout has room for ${CLASS_SLOTS}`);

// The typed arrays below are annotated with the plain types (Int32Array, Uint8Array): left to
// inference, TypeScript 5.7+ writes `Int32Array<ArrayBuffer>` into the shipped .d.ts, which
// TypeScript before 5.7 rejects ("Type 'Int32Array' is not generic", 13 errors in a user's
// project without skipLibCheck, whatever of the package it imports).

/** Block size of each class, in bytes. */
export const SIZE: Int32Array = Int32Array.from(BUILT.sizes);
/**
 * The package's CLASS_SIZES: a copy of SIZE, so that a program that writes into the array it was
 * given changes its copy, not the table every allocation reads (a typed array cannot be frozen;
 * the exported SIZE itself was written through, an audit).
 */
export const CLASS_SIZES: Int32Array = Int32Array.from(BUILT.sizes);
/** How many classes share each class's doubling: 2 for the wide ones (TWO_PER_DOUBLING_FROM..TO), which cache twice the bytes. */
export const PER_DOUBLING: Uint8Array = Uint8Array.from(BUILT.perDoubling);
/** Slots per slab of each class. */
export const SPAN: Int32Array = new Int32Array(NUM_CLASSES);
/** Bytes of state-byte header before the first block (multiple of 16). */
export const HDR: Int32Array = new Int32Array(NUM_CLASSES);
/** Blocks per slab. */
export const COUNT: Int32Array = new Int32Array(NUM_CLASSES);
/** 1 when the class's state bytes live in the slab's head meta entry (see above). */
export const META_STATES: Uint8Array = new Uint8Array(NUM_CLASSES);
/** Alignment every block of the class has (power of two). */
export const ALIGN: Int32Array = new Int32Array(NUM_CLASSES);
/**
 * Exact division for free(): a block offset `off` within a slab is `idx * SIZE` exactly, and
 * SIZE = 2^DIV_SHIFT * odd. Then idx = imul(off >>> DIV_SHIFT, DIV_INV) with DIV_INV the inverse
 * of the odd part mod 2^32 (a multiplication, no division), provided (off & DIV_MASK) == 0
 * and the result is below COUNT (both tested, which is what makes the result exact). The fast
 * paths (heap.ts free and realloc, magazine.ts freeSmall) fold the two tests into one: with
 * q = imul(off, DIV_INV) rotated right by DIV_SHIFT, a block start gives its index, an offset
 * that is not a multiple of 2^DIV_SHIFT gives its low bits on top (at least 2^(32 - DIV_SHIFT)),
 * and a multiple of 2^DIV_SHIFT but not of SIZE gives more than 2^32 / SIZE (the divisibility
 * test by the modular inverse): all at or above COUNT, so `idx >>> 0 < COUNT` alone decides. One
 * mask load and test fewer on every free: W1 in one process 40.8-41.8 -> 44.4-45.7 M ops/s.
 */
export const DIV_SHIFT: Int32Array = new Int32Array(NUM_CLASSES);
export const DIV_MASK: Int32Array = new Int32Array(NUM_CLASSES);
export const DIV_INV: Int32Array = new Int32Array(NUM_CLASSES);
/** DIV_SHIFT, DIV_INV, DIV_MASK and COUNT of each class side by side (free() reads one line):
 * entry `cls << FD_LOG2_WORDS` (= cls * FD_WORDS), fields FD_* (entry | field). */
export const FD_SHIFT = 0;
export const FD_INV = 1;
export const FD_MASK = 2;
export const FD_COUNT = 3;
export const FD_LOG2_WORDS = 2;
export const FD_WORDS = 1 << FD_LOG2_WORDS;
export const FREE_DIV: Int32Array = new Int32Array(NUM_CLASSES * FD_WORDS);
/**
 * Index of the block at byte offset `off` from block 0 of a slab of class `cls`, by free()'s exact
 * division (a multiply by the inverse of the size's odd part, then a rotate right by its power of
 * two): an offset that is not a block start, or one below block 0, gives an index whose unsigned
 * value is at or above COUNT[cls]. For slow paths; free's and realloc's fast paths (heap.ts) keep
 * their own copies inline.
 */
export function blockIndex(cls: number, off: number): number {
  const d = cls * FD_WORDS;
  const q = Math.imul(off, FREE_DIV[d + FD_INV]);
  const sh = FREE_DIV[d + FD_SHIFT];
  return (q >>> sh) | (q << (32 - sh));
}

/** Class of a request, indexed by (size + 15) >>> 4: one load on the fast path. */
export const CLASS_OF_GRANULE: Uint8Array = new Uint8Array((MAX_SMALL >>> 4) + 1);

function lowbit(x: number): number {
  return x & -x;
}

function slabGeometry(size: number, span: number): { hdr: number; count: number; waste: number } {
  const bytes = span * SLOT_BYTES;
  const a = Math.min(lowbit(size), MAX_BLOCK_ALIGN);
  let count = Math.floor(bytes / (size + 1));
  for (;;) {
    const hdr = Math.ceil(Math.max(count, 1) / a) * a;
    const fit = Math.floor((bytes - hdr) / size);
    if (fit >= count) {
      // the header holds `count` state bytes; recheck that one more block does not fit
      const hdr2 = Math.ceil((count + 1) / a) * a;
      if ((count + 1) * size + hdr2 <= bytes) {
        count++;
        continue;
      }
      return { hdr, count, waste: bytes - hdr - count * size };
    }
    count--;
  }
}

for (let cls = 0; cls < NUM_CLASSES; cls++) {
  const size = SIZE[cls];
  let chosen: { span: number; hdr: number; count: number; meta: boolean } | null = null;
  let best: { span: number; hdr: number; count: number; meta: boolean } | null = null;
  let bestFrac = 2;
  for (let span = 1; span <= SLOTS_PER_SUPER && chosen === null; span *= 2) {
    const bytes = span * SLOT_BYTES;
    const inMeta = Math.floor(bytes / size);
    const g =
      inMeta >= 1 && inMeta <= SM_STATE_BYTES
        ? { span, hdr: 0, count: inMeta, meta: true, waste: bytes - inMeta * size }
        : { span, ...slabGeometry(size, span), meta: false };
    if (g.count < 1) continue;
    const frac = g.waste / bytes;
    if (size >= FEWEST_SLOTS_FROM) chosen = g;
    else if (frac <= (g.meta ? 1 / 16 : 1 / 32) && g.count >= (g.meta ? 2 : 4)) chosen = g;
    else if (frac < bestFrac - 1e-9) {
      bestFrac = frac;
      best = g;
    }
  }
  const g = chosen ?? best!;
  SPAN[cls] = g.span;
  HDR[cls] = g.hdr;
  COUNT[cls] = g.count;
  META_STATES[cls] = g.meta ? 1 : 0;
  ALIGN[cls] = Math.min(lowbit(size), g.hdr === 0 ? SLOT_BYTES : lowbit(g.hdr), SLOT_BYTES);
}

function oddInverse(d: number): number {
  // Newton's iteration for the inverse of an odd d modulo 2^32: each step doubles the correct bits.
  let x = d;
  for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(d, x));
  return x;
}

for (let cls = 0; cls < NUM_CLASSES; cls++) {
  const size = SIZE[cls];
  const shift = 31 - Math.clz32(lowbit(size));
  DIV_SHIFT[cls] = shift;
  DIV_MASK[cls] = (1 << shift) - 1;
  DIV_INV[cls] = oddInverse(size >>> shift);
  const d = cls * FD_WORDS;
  FREE_DIV[d + FD_SHIFT] = shift;
  FREE_DIV[d + FD_INV] = DIV_INV[cls];
  FREE_DIV[d + FD_MASK] = DIV_MASK[cls];
  FREE_DIV[d + FD_COUNT] = COUNT[cls];
}

/**
 * A slab's blocks in 32 regions (at most) of 2^REGION_SHIFT[cls] blocks each, at least 4 (one
 * word of state bytes), for SM_FREE_REGIONS (layout.ts): a refill scans the state bytes of the
 * regions whose bit is set, a word at a time, instead of following links through freed blocks.
 */
export const REGION_SHIFT: Int32Array = Int32Array.from(COUNT, (count) => Math.max(2, 32 - Math.clz32(Math.ceil(count / 32) - 1)));

for (let g = 0, cls = 0; g < CLASS_OF_GRANULE.length; g++) {
  while (SIZE[cls] < g * 16) cls++;
  CLASS_OF_GRANULE[g] = cls;
}
CLASS_OF_GRANULE[0] = 0; // malloc(0) returns a unique 16-byte block

/** Class for a request of `size` bytes (0 <= size <= MAX_SMALL). */
export function classOf(size: number): number {
  return CLASS_OF_GRANULE[(size + 15) >>> 4];
}

/** Smallest class whose blocks hold `size` bytes and are aligned to `align`, or -1. */
export function alignedClassOf(size: number, align: number): number {
  if (size > MAX_SMALL) return -1;
  for (let cls = classOf(size); cls < NUM_CLASSES; cls++) {
    if (ALIGN[cls] >= align) return cls;
  }
  return -1;
}

/** Bytes of a slab of class `cls`. */
export function slabBytes(cls: number): number {
  return SPAN[cls] << SLOT_SHIFT;
}
