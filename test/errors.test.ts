/**
 * Bad input (src/errors.ts, src/alloc-slow.ts): every misuse of malloc, free, calloc, realloc,
 * usableSize, alignedAlloc (and tryMalloc) throws the right error class, with a stable `code` for
 * HeapError subclasses and a message naming the function, the argument and the value, before
 * anything is changed: the whole buffer is byte-for-byte the same afterwards, check() passes and
 * every live block still holds its pattern. valueOf of an argument is never called.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DoubleFreeError, HeapError, InvalidPointerError, SharedHeap, readHeapMap, type HeapOptions } from '../src/index.js';
import { G_CARVED, SLOT_BYTES, SLOT_SHIFT, SS_TABLE_W, SUPER_SHIFT, ST_ALLOCATED, ST_CACHED, ST_FREE, ST_PENDING } from '../src/layout.js';
import { COUNT, HDR, SIZE, SPAN, classOf } from '../src/size-classes.js';

const KiB = 1 << 10;
const MiB = 1 << 20;

const heaps: SharedHeap[] = [];
function fresh(options: HeapOptions = {}): SharedHeap {
  const heap = SharedHeap.create({ initialBytes: 6 * MiB, maxThreads: 2, ...options });
  heaps.push(heap);
  return heap;
}
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

const hex = (n: number): string => '0x' + n.toString(16);

function patternByte(p: number, i: number): number {
  return (Math.imul((p >>> 4) + (i >>> 2), 0x9e3779b1) >>> ((i & 3) << 3)) & 0xff;
}
function fill(heap: SharedHeap, p: number, n: number): void {
  const u8 = heap.u8;
  for (let i = 0; i < n; i++) u8[p + i] = patternByte(p, i);
}
function firstBad(heap: SharedHeap, p: number, n: number): number {
  const u8 = heap.u8;
  for (let i = 0; i < n; i++) if (u8[p + i] !== patternByte(p, i)) return i;
  return -1;
}

// ---- A heap with live blocks of several kinds ------------------------------------------------

interface Scene {
  heap: SharedHeap;
  live: Map<number, number>; // block -> bytes filled with its pattern
  metaEnd: number; // first byte after the metadata SuperSlabs
  p16: number;
  p32: number;
  p48: number;
  p100: number;
  p5000: number;
  p20k: number; // a class whose state bytes live in the slab's meta entry (when it has few blocks)
  big: number; // a large run
}

function scene(options: HeapOptions = {}): Scene {
  const heap = fresh(options);
  const metaEnd = heap.stats().footprintBytes;
  const live = new Map<number, number>();
  const alloc = (n: number): number => {
    const p = heap.malloc(n);
    expect(p).toBeGreaterThan(0);
    fill(heap, p, n);
    live.set(p, n);
    return p;
  };
  const s: Scene = {
    heap,
    live,
    metaEnd,
    p16: alloc(16),
    p32: alloc(32),
    p48: alloc(48),
    p100: alloc(100),
    p5000: alloc(5000),
    p20k: alloc(20000),
    big: alloc(300 * KiB),
  };
  for (let i = 0; i < 20; i++) alloc(1 + ((i * 397) % 3000)); // neighbours
  heap.check();
  return s;
}

/** Start of the slab holding a small block. */
function slabStart(p: number, size: number): number {
  const bytes = SPAN[classOf(size)] * SLOT_BYTES;
  return p - (p % bytes);
}

/** Byte offset of a slot in a carved SuperSlab that is UNUSED, or -1. */
function unusedSlot(heap: SharedHeap, metaEnd: number): number {
  const i32 = new Int32Array(heap.buffer);
  const carved = Atomics.load(i32, G_CARVED);
  for (let sup = metaEnd >>> SUPER_SHIFT; sup < carved; sup++) {
    const mask = i32[SS_TABLE_W + sup];
    for (let k = 15; k >= 0; k--) if ((mask >>> k) & 1) return (sup << SUPER_SHIFT) + k * SLOT_BYTES;
  }
  return -1;
}

/**
 * Runs a misuse and asserts the error and that nothing changed: the whole buffer is identical,
 * check() passes, every live block holds its pattern.
 */
function expectMisuse(
  s: Scene,
  call: () => unknown,
  errorClass: new (...args: never[]) => Error,
  tokens: string[],
  code?: string,
): Error {
  const { heap } = s;
  const before = Buffer.from(heap.u8); // a copy of the whole heap
  const liveBefore = heap.stats().liveBlocks;
  let error: unknown;
  let result: unknown;
  try {
    result = call();
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${errorClass.name}, the call returned ${String(result)}`).toBeInstanceOf(errorClass);
  const err = error as Error;
  if (code !== undefined) {
    expect(err).toBeInstanceOf(HeapError);
    expect((err as HeapError).code).toBe(code);
    expect(err.name).toBe(errorClass.name);
  }
  for (const t of tokens) expect(err.message, 'the message names the function, the argument and the value').toContain(t);
  const after = Buffer.from(heap.buffer, 0, before.length);
  if (!before.equals(after)) {
    let i = 0;
    while (before[i] === after[i]) i++;
    throw new Error(`the failed call changed the heap (first changed byte at ${hex(i)}: ${before[i]} -> ${after[i]})`);
  }
  heap.check();
  expect(heap.stats().liveBlocks).toBe(liveBefore);
  for (const [p, n] of s.live) {
    const bad = firstBad(heap, p, n);
    if (bad >= 0) throw new Error(`live block ${hex(p)}: byte ${bad} changed`);
  }
  return err;
}

// ---- Argument type and range ----------------------------------------------------------------

let valueOfCalls = 0;
const countingValueOf = {
  valueOf(): number {
    valueOfCalls++;
    return 16;
  },
  toString(): string {
    valueOfCalls++;
    return '16';
  },
};
const throwingValueOf = {
  valueOf(): number {
    throw new Error('valueOf was called');
  },
  toString(): string {
    throw new Error('toString was called');
  },
  [Symbol.toPrimitive](): number {
    throw new Error('Symbol.toPrimitive was called');
  },
};

interface Target {
  fn: string;
  arg: string;
  call: (s: Scene, v: unknown) => unknown;
}
/* eslint-disable @typescript-eslint/no-explicit-any */
const targets: Target[] = [
  { fn: 'malloc', arg: 'size', call: (s, v) => s.heap.malloc(v as any) },
  { fn: 'tryMalloc', arg: 'size', call: (s, v) => s.heap.tryMalloc(v as any) },
  { fn: 'free', arg: 'ptr', call: (s, v) => s.heap.free(v as any) },
  { fn: 'calloc', arg: 'n', call: (s, v) => s.heap.calloc(v as any, 8) },
  { fn: 'calloc', arg: 'size', call: (s, v) => s.heap.calloc(8, v as any) },
  { fn: 'realloc', arg: 'ptr', call: (s, v) => s.heap.realloc(v as any, 16) },
  { fn: 'realloc', arg: 'size', call: (s, v) => s.heap.realloc(s.p100, v as any) },
  { fn: 'usableSize', arg: 'ptr', call: (s, v) => s.heap.usableSize(v as any) },
  { fn: 'alignedAlloc', arg: 'align', call: (s, v) => s.heap.alignedAlloc(v as any, 16) },
  { fn: 'alignedAlloc', arg: 'size', call: (s, v) => s.heap.alignedAlloc(16, v as any) },
];
const pointerTargets = targets.filter((t) => t.arg === 'ptr');

const notNumbers: Array<{ what: string; value: unknown; shown: string }> = [
  { what: 'a string', value: '16', shown: '"16"' },
  { what: 'an empty string', value: '', shown: '""' },
  { what: 'a BigInt', value: 16n, shown: '16n' },
  { what: 'null', value: null, shown: 'null' },
  { what: 'undefined', value: undefined, shown: 'undefined' },
  { what: 'an object', value: {}, shown: 'object' },
  { what: 'an object with a counting valueOf', value: countingValueOf, shown: 'object' },
  { what: 'an object whose valueOf throws', value: throwingValueOf, shown: 'object' },
  { what: 'a Number object', value: Object(16), shown: 'object' },
  { what: 'an array', value: [16], shown: 'array' },
  { what: 'an empty array', value: [], shown: 'array' },
  { what: 'true', value: true, shown: 'true' },
  { what: 'false', value: false, shown: 'false' },
  { what: 'a symbol', value: Symbol('x'), shown: 'symbol' },
  { what: 'a function', value: () => 16, shown: 'function' },
];

const badNumbers: Array<{ what: string; value: number; shown: string }> = [
  { what: 'NaN', value: NaN, shown: 'NaN' },
  { what: 'Infinity', value: Infinity, shown: 'Infinity' },
  { what: '-Infinity', value: -Infinity, shown: '-Infinity' },
  { what: '-1', value: -1, shown: '-1' },
  { what: '-16', value: -16, shown: '-16' },
  { what: '1.5', value: 1.5, shown: '1.5' },
  { what: '16.25', value: 16.25, shown: '16.25' },
  { what: '2**53', value: 2 ** 53, shown: '9007199254740992' },
  { what: '-(2**53)', value: -(2 ** 53), shown: '-9007199254740992' },
  { what: '1e300', value: 1e300, shown: '1e+300' },
];

describe('TypeError for non-numbers (valueOf never called)', () => {
  const cases = targets.flatMap((t) => notNumbers.map((v) => ({ ...t, ...v })));
  it.each(cases)('$fn($arg) with $what', ({ fn, arg, call, value, shown }) => {
    const s = scene();
    const before = valueOfCalls;
    expectMisuse(s, () => call(s, value), TypeError, [`${fn}(${arg})`, shown]);
    expect(valueOfCalls).toBe(before);
  });

  it('never called valueOf or toString of any argument', () => {
    expect(valueOfCalls).toBe(0);
  });
});

describe('RangeError for NaN, infinities, negatives, fractions and unsafe integers', () => {
  const cases = targets.flatMap((t) => badNumbers.map((v) => ({ ...t, ...v })));
  it.each(cases)('$fn($arg) with $what', ({ fn, arg, call, value, shown }) => {
    const s = scene();
    expectMisuse(s, () => call(s, value), RangeError, [`${fn}(${arg})`, shown]);
  });

  it.each([0, 3, 24, 1000, 2 * MiB, 2 ** 30])('alignedAlloc(align) with %i (not a power of two up to 1 MiB)', (align) => {
    const s = scene();
    expectMisuse(s, () => s.heap.alignedAlloc(align, 16), RangeError, ['alignedAlloc(align)', String(align)]);
  });

  it('a safe but huge size is not misuse: out of memory, 0', () => {
    const s = scene();
    expect(s.heap.malloc(2 ** 53 - 1)).toBe(0);
    expect(s.heap.calloc(2 ** 53 - 1, 1)).toBe(0);
    expect(s.heap.alignedAlloc(64, 2 ** 53 - 1)).toBe(0);
    expect(s.heap.realloc(s.p100, 2 ** 53 - 1)).toBe(0);
    s.heap.check();
    expect(firstBad(s.heap, s.p100, 100)).toBe(-1);
  });
});

// ---- Pointers -------------------------------------------------------------------------------

const invalidPointers: Array<{ what: string; at: (s: Scene) => number }> = [
  { what: 'the end of the heap', at: (s) => s.heap.u8.length },
  { what: 'past the end of the heap', at: (s) => s.heap.u8.length + 16 },
  { what: 'far past the end (2**31 - 16)', at: () => 2 ** 31 - 16 },
  { what: 'far past the end (2**32)', at: () => 2 ** 32 },
  { what: 'far past the end (2**40)', at: () => 2 ** 40 },
  { what: 'metadata (16)', at: () => 16 },
  { what: 'metadata (64)', at: () => 64 },
  { what: 'metadata (4096)', at: () => 4096 },
  { what: 'metadata (the last 16 bytes)', at: (s) => s.metaEnd - 16 },
  { what: 'interior: p+16 of a 32-byte block', at: (s) => s.p32 + 16 },
  { what: 'interior: p+8 of a 32-byte block', at: (s) => s.p32 + 8 },
  { what: 'interior: p+1 of a 100-byte block', at: (s) => s.p100 + 1 },
  { what: 'interior: p+48 of a 100-byte block', at: (s) => s.p100 + 48 },
  { what: 'interior: p+4096 of a 5000-byte block', at: (s) => s.p5000 + 4096 },
  { what: 'interior: p+16 of a 20000-byte block', at: (s) => s.p20k + 16 },
  { what: 'interior: p+16 of a large block', at: (s) => s.big + 16 },
  { what: 'interior: p+64 KiB of a large block', at: (s) => s.big + SLOT_BYTES },
  {
    what: "a slab's header (its state bytes)",
    at: (s) => {
      const start = slabStart(s.p48, 48);
      expect(HDR[classOf(48)]).toBeGreaterThan(16);
      return start + 16;
    },
  },
  {
    what: "past a slab's last block",
    at: (s) => {
      const cls = classOf(48);
      const past = slabStart(s.p48, 48) + HDR[cls] + COUNT[cls] * SIZE[cls];
      expect(past % 16).toBe(0);
      expect(past).toBeLessThan(slabStart(s.p48, 48) + SPAN[cls] * SLOT_BYTES);
      return past;
    },
  },
  {
    what: 'never allocated: the last block of a slab',
    at: (s) => {
      const cls = classOf(48);
      return slabStart(s.p48, 48) + HDR[cls] + (COUNT[cls] - 1) * SIZE[cls];
    },
  },
  {
    what: 'never allocated: an UNUSED slot of a carved SuperSlab',
    at: (s) => {
      const p = unusedSlot(s.heap, s.metaEnd);
      expect(p).toBeGreaterThan(0);
      return p;
    },
  },
  { what: 'never allocated: a SuperSlab not carved yet', at: (s) => s.heap.u8.length - SLOT_BYTES },
];

describe('InvalidPointerError for offsets that are not a block', () => {
  const cases = pointerTargets.flatMap((t) => invalidPointers.map((v) => ({ ...t, ...v })));
  it.each(cases)('$fn($arg) at $what', ({ fn, arg, call, at }) => {
    const s = scene();
    const p = at(s);
    expect(s.live.has(p)).toBe(false);
    expectMisuse(s, () => call(s, p), InvalidPointerError, [`${fn}(${arg})`, hex(p)], 'ERR_INVALID_POINTER');
  });

  it('usableSize(0) and realloc of metadata are invalid, free(0) is a no-op', () => {
    const s = scene();
    expectMisuse(s, () => s.heap.usableSize(0), InvalidPointerError, ['usableSize(ptr)', '0x0'], 'ERR_INVALID_POINTER');
    s.heap.free(0);
    s.heap.check();
  });
});

/** Each sets up a block that is no longer allocated and returns its offset. */
const freedBlocks: Array<{ what: string; make: (s: Scene) => number }> = [
  {
    what: 'a block just freed',
    make: (s) => {
      const q = s.heap.malloc(64);
      s.heap.free(q);
      return q;
    },
  },
  {
    what: 'a block freed, then other frees in between',
    make: (s) => {
      const q = s.heap.malloc(64);
      const others = Array.from({ length: 10 }, () => s.heap.malloc(64));
      s.heap.free(q);
      for (const o of others) s.heap.free(o);
      s.heap.free(s.heap.malloc(5000));
      return q;
    },
  },
  {
    what: 'a block freed and flushed to its slab',
    make: (s) => {
      const q = s.heap.malloc(64);
      const keep = s.heap.malloc(64); // the slab stays in use
      fill(s.heap, keep, 64);
      s.live.set(keep, 64);
      s.heap.free(q);
      s.heap.flush();
      return q;
    },
  },
  {
    what: 'a block of a slab emptied into Stage 1',
    make: (s) => {
      const cls = classOf(3000);
      const blocks = Array.from({ length: COUNT[cls] }, () => s.heap.malloc(3000));
      for (const b of blocks) s.heap.free(b);
      s.heap.flush();
      expect(s.heap.stats().classes[cls].stage1Slabs).toBeGreaterThan(0);
      return blocks[COUNT[cls] >>> 1];
    },
  },
  {
    what: 'a block of a class with few blocks per slab (20 KiB)',
    make: (s) => {
      const q = s.heap.malloc(20000);
      s.heap.free(q);
      return q;
    },
  },
  {
    what: 'the old block after realloc moved it',
    make: (s) => {
      const q = s.heap.malloc(20);
      const moved = s.heap.realloc(q, 5000);
      expect(moved).not.toBe(q);
      s.live.set(moved, 0);
      return q;
    },
  },
  {
    what: 'a large block',
    make: (s) => {
      const q = s.heap.malloc(200 * KiB);
      s.heap.free(q);
      return q;
    },
  },
  {
    what: 'a large block, then other large frees in between',
    make: (s) => {
      const q = s.heap.malloc(200 * KiB);
      const r = s.heap.malloc(100 * KiB);
      s.heap.free(q);
      s.heap.free(r);
      return q;
    },
  },
  {
    what: 'a multi-SuperSlab block',
    make: (s) => {
      const q = s.heap.malloc(1.5 * MiB);
      expect(q).toBeGreaterThan(0);
      s.heap.free(q);
      return q;
    },
  },
];

describe('DoubleFreeError for a second free', () => {
  const cases = [
    { fn: 'free', call: (s: Scene, p: number) => s.heap.free(p) },
    { fn: 'realloc', call: (s: Scene, p: number) => s.heap.realloc(p, 16) },
  ].flatMap((t) => freedBlocks.map((v) => ({ ...t, ...v })));

  it.each(cases)('$fn(ptr) of $what', ({ fn, call, make }) => {
    const s = scene();
    const p = make(s);
    expectMisuse(s, () => call(s, p), DoubleFreeError, [`${fn}(ptr)`, hex(p)], 'ERR_DOUBLE_FREE');
    // and again: a repeated misuse is still reported the same way
    expectMisuse(s, () => call(s, p), DoubleFreeError, [`${fn}(ptr)`, hex(p)], 'ERR_DOUBLE_FREE');
  });

  it.each(freedBlocks)('usableSize(ptr) of $what is a HeapError naming it', ({ make }) => {
    const s = scene();
    const p = make(s);
    const err = expectMisuse(s, () => s.heap.usableSize(p), HeapError, ['usableSize(ptr)', hex(p)]);
    expect(['ERR_DOUBLE_FREE', 'ERR_INVALID_POINTER']).toContain((err as HeapError).code);
  });

  it('a block carved from fresh bytes into a magazine and never handed out (CLEAN) is refused as never used, not as a double free', () => {
    const s = scene();
    const p = s.heap.malloc(64);
    const next = p + s.heap.usableSize(p); // carved by the same refill, waiting in the magazine
    const err = expectMisuse(s, () => s.heap.free(next), InvalidPointerError, ['free(ptr)', hex(next)], 'ERR_INVALID_POINTER');
    expect(err.message).toContain('is not allocated: malloc has not returned it yet (a block never used)');
    expectMisuse(s, () => s.heap.usableSize(next), InvalidPointerError, ['usableSize(ptr)', hex(next)], 'ERR_INVALID_POINTER');
  });

  it('a block carved again from bytes used before and not handed out is refused by a message that says it may be an offset malloc never returned', () => {
    const s = scene();
    // A slab of 64-byte blocks used and emptied: its blocks go back, the slab to the pool, and
    // the next refill carves it again below its touched mark (CACHED: their bytes were written).
    const ps = Array.from({ length: 200 }, () => s.heap.malloc(64));
    for (const q of ps) s.heap.free(q);
    s.heap.flush();
    const p = s.heap.malloc(64);
    const next = p + s.heap.usableSize(p);
    expect(ps).toContain(next);
    const err = expectMisuse(s, () => s.heap.free(next), DoubleFreeError, ['free(ptr)', hex(next)], 'ERR_DOUBLE_FREE');
    expect(err.message).toContain('is not allocated: it is free (a double free, unless malloc never returned this offset)');
  });

  it('every block of a slab freed twice in a row, in two different orders', () => {
    const s = scene();
    const blocks = Array.from({ length: 300 }, () => s.heap.malloc(48));
    for (const b of blocks) s.heap.free(b);
    for (const b of [...blocks].reverse()) {
      expectMisuse(s, () => s.heap.free(b), DoubleFreeError, ['free(ptr)', hex(b)], 'ERR_DOUBLE_FREE');
    }
    s.heap.flush();
    for (let i = 0; i < blocks.length; i += 7) {
      expectMisuse(s, () => s.heap.free(blocks[i]), DoubleFreeError, ['free(ptr)', hex(blocks[i])], 'ERR_DOUBLE_FREE');
    }
  });

  it('a block whose slab went back to Stage 2 (more empty slabs than the class keeps) is reported as a double free', () => {
    const s = scene({ stage1Keep: 32 });
    const cls = classOf(7000); // a class the scene does not use
    const blocks = Array.from({ length: 40 * COUNT[cls] }, () => s.heap.malloc(7000)); // more slabs than stage1Keep
    expect(blocks.every((b) => b > 0)).toBe(true);
    for (const b of blocks) s.heap.free(b);
    s.heap.flush();
    // blocks whose slot is UNUSED now (its free bit in the SuperSlab table is set)
    const i32 = new Int32Array(s.heap.buffer);
    const inUnusedSlot = (b: number): boolean =>
      ((i32[SS_TABLE_W + (b >>> SUPER_SHIFT)] >>> ((b >>> SLOT_SHIFT) & 15)) & 1) === 1;
    const returned = blocks.filter(inUnusedSlot);
    expect(returned.length).toBeGreaterThan(0);
    for (const q of returned.slice(0, 3)) {
      expectMisuse(s, () => s.heap.free(q), DoubleFreeError, ['free(ptr)', hex(q)], 'ERR_DOUBLE_FREE');
    }
  });
});

// ---- Payloads never confuse the detection -----------------------------------------------------

describe('block payloads', () => {
  it('a payload of any byte value (0..255, including the state codes) never causes a false error', () => {
    const heap = fresh({ initialBytes: 8 * MiB });
    const sizes = [16, 32, 48, 100, 1000, 5000, 20000, 200 * KiB];
    for (let v = 0; v < 256; v++) {
      const blocks = sizes.map((n) => {
        const p = heap.malloc(n);
        heap.u8.fill(v, p, p + heap.usableSize(p));
        return p;
      });
      heap.check();
      // free in an order that depends on v; nothing may throw
      for (let k = 0; k < blocks.length; k++) heap.free(blocks[(k * 3 + v) % blocks.length]);
      if (v % 32 === 0) heap.flush();
      heap.check();
    }
    expect(heap.stats().liveBlocks).toBe(0);
  });

  it('a payload full of block offsets, slab starts and state codes never causes a false error', () => {
    const heap = fresh({ initialBytes: 8 * MiB });
    const all: number[] = [];
    for (let i = 0; i < 2000; i++) all.push(heap.malloc(16 + ((i * 37) % 600)));
    const i32 = new Int32Array(heap.buffer);
    for (let i = 0; i < all.length; i++) {
      const p = all[i];
      const words = heap.usableSize(p) >>> 2;
      for (let w = 0; w < words; w++) {
        const k = (i + w) % 4;
        i32[(p >>> 2) + w] =
          k === 0 ? all[(i + w + 1) % all.length] : k === 1 ? p : k === 2 ? (p >>> SLOT_SHIFT) << SLOT_SHIFT : ST_CACHED * 0x01010101;
      }
    }
    heap.check();
    // free every other block, flush (free lists now run through blocks), then free the rest
    for (let i = 0; i < all.length; i += 2) heap.free(all[i]);
    heap.flush();
    heap.check();
    for (let i = 1; i < all.length; i += 2) heap.free(all[i]);
    heap.check();
    expect(heap.stats().liveBlocks).toBe(0);
    for (let i = 0; i < all.length; i += 97) expect(() => heap.free(all[i])).toThrow(DoubleFreeError);
  });
});

describe('the other calls that take a value from the caller', () => {
  it("reclaim() refuses an object that is not a Worker, and a Worker's throwing getter stops nothing", () => {
    const { heap, live } = scene();
    const notWorker = {
      get threadId(): number {
        throw new Error('a getter of the caller');
      },
    };
    expect(() => heap.reclaim(notWorker as never)).toThrow(TypeError);
    expect(() => heap.reclaim(notWorker as never)).toThrow(/^reclaim\(threadId\): expected a threadId or a Worker, got an object$/);
    const workerLike = { once: () => undefined, get threadId(): number { throw new Error('a getter of the caller'); } };
    expect(() => heap.reclaim(workerLike as never)).toThrow(/^a getter of the caller$/);
    // The thread goes on: nothing was marked, nothing stopped.
    const p = heap.malloc(100);
    expect(p).not.toBe(0);
    heap.free(p);
    heap.check();
    for (const [b, n] of live) expect(firstBad(heap, b, n)).toBe(-1);
    expect(SharedHeap.attach(heap.buffer)).toBe(heap);
  });

  it("watch() refuses a Worker-like object whose threadId is not a number with a TypeError naming it, and one that exited with a RangeError", () => {
    const { heap, live } = scene();
    expect(() => heap.watch({ threadId: '3' as never, once: () => undefined })).toThrow(TypeError);
    expect(() => heap.watch({ threadId: '3' as never, once: () => undefined })).toThrow(/^watch\(worker\): worker\.threadId: expected a number, got "3" \(a string\)$/);
    expect(() => heap.watch({ threadId: -1, once: () => undefined })).toThrow(RangeError);
    expect(() => heap.watch({ threadId: -1, once: () => undefined })).toThrow(/the worker has exited already \(threadId -1\)/);
    heap.check();
    for (const [b, n] of live) expect(firstBad(heap, b, n)).toBe(-1);
  });

  it('readHeapMap() names its argument and value, and takes heap.memory as attach() does', () => {
    const heap = fresh();
    for (const bad of [undefined, null, 5, {}, new ArrayBuffer(8)]) {
      expect(() => readHeapMap(bad as never)).toThrow(/^readHeapMap\(buffer\): expected a heap's SharedArrayBuffer \(heap\.buffer\) or its memory \(heap\.memory\), got /);
    }
    expect(() => readHeapMap(new SharedArrayBuffer(3))).toThrow(/^readHeapMap\(buffer\): the SharedArrayBuffer of 3 bytes is not a sabmalloc heap/);
    expect(heap.memory).toBeDefined();
    expect(readHeapMap(heap.memory!).kind).toEqual(readHeapMap(heap.buffer).kind);
  });

  it('-0 reads as -0 in an error', () => {
    expect(() => SharedHeap.create({ initialBytes: -0 })).toThrow(/got -0$/);
    const heap = fresh();
    expect(() => heap.alignedAlloc(-0, 16)).toThrow(/got -0$/);
  });

  it("attach() refuses a cut copy of a heap's buffer", () => {
    const heap = fresh({ initialBytes: 8 * MiB });
    const part = heap.buffer.slice(0, 4 * MiB);
    expect(() => SharedHeap.attach(part)).toThrow(/^SharedHeap\.attach\(buffer\): the buffer holds 4194304 bytes where its heap's header says 8388608: a cut copy/);
    heap.check();
  });
});

describe("the errors' names", () => {
  it('survive a minifier: each class keeps its own name in a minified bundle', async () => {
    // The name was new.target.name, which a minifier renames: `Br: free(ptr): ...` in a browser
    // bundle built with esbuild --minify (an audit, 2026-12-04). Exports keep their names.
    const { buildSync } = await import('esbuild');
    const out = buildSync({ entryPoints: ['src/errors.ts'], bundle: true, minify: true, format: 'esm', write: false, logLevel: 'silent' });
    const min = (await import(`data:text/javascript,${encodeURIComponent(out.outputFiles[0]!.text)}`)) as Record<string, new (m: string) => Error>;
    const names = ['InvalidPointerError', 'DoubleFreeError', 'HeapCorruptionError', 'ThreadSlotsExhaustedError', 'LockTimeoutError', 'HeapStateError'];
    expect(names.map((n) => new min[n]!('m').name)).toEqual(names);
    expect(names.filter((n) => min[n]!.name === n)).not.toEqual(names); // the classes themselves were renamed
  });
});
