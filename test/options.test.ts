/**
 * Every value create() accepts works (each option at both ends of its range), and inputs that
 * used to get no clear error get one (issue 8, findings 5, 6 and 9).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLASS_SIZES, HeapStateError, SharedHeap, type HeapOptions } from '../src/index.js';
import { magicIntact } from './fault-internals.js';
import { rng, checked } from './fixtures.js';
import { COUNT, classOf } from '../src/size-classes.js';

const MiB = 1 << 20;
const LARGE_SIZES = [(128 << 10) + 1, 200 << 10, MiB - 16, MiB, 3 * MiB];

/**
 * malloc/free mixes over every class and some large sizes: each block filled with its own
 * pattern, no two blocks overlapping, usableSize at least the size asked for, every pattern
 * intact before its free; then flush and check(). Out of memory (0) is allowed.
 */
function exercise(heap: SharedHeap, seed: number, rounds = 3): void {
  const next = rng(seed);
  const sizes = [0, 1, ...CLASS_SIZES.map((s) => s - 1), ...CLASS_SIZES, ...LARGE_SIZES];
  for (let round = 0; round < rounds; round++) {
    const live: { p: number; n: number; tag: number }[] = [];
    for (let k = 0; k < 3; k++) {
      for (const n of sizes) {
        const p = heap.malloc(n);
        if (p === 0) continue;
        expect(heap.usableSize(p), `malloc(${n}) seed ${seed}`).toBeGreaterThanOrEqual(n);
        const tag = (live.length * 7 + 1) & 0xff;
        heap.u8.fill(tag, p, p + n);
        live.push({ p, n, tag });
      }
      // Free a random third, interleaved with the allocations.
      for (let i = live.length - 1; i >= 0; i--) {
        if (next() % 3 !== 0) continue;
        const b = live[i]!;
        expect(heap.u8.subarray(b.p, b.p + b.n).every((x) => x === b.tag), `block ${b.p} (${b.n} bytes) seed ${seed}`).toBe(true);
        heap.free(b.p);
        live.splice(i, 1);
      }
    }
    const sorted = [...live].sort((a, b) => a.p - b.p);
    for (let i = 1; i < sorted.length; i++) {
      const a = sorted[i - 1]!;
      expect(a.p + Math.max(a.n, 1), `blocks ${a.p} and ${sorted[i]!.p} overlap (seed ${seed})`).toBeLessThanOrEqual(sorted[i]!.p);
    }
    expect(checked(heap), `seed ${seed} round ${round}`).toBe('passes');
    for (const b of live) {
      expect(heap.u8.subarray(b.p, b.p + b.n).every((x) => x === b.tag), `block ${b.p} (${b.n} bytes) seed ${seed}`).toBe(true);
      heap.free(b.p);
    }
    heap.flush();
    expect(checked(heap), `seed ${seed} round ${round} after flush`).toBe('passes');
    expect(heap.stats().liveBytes).toBe(0);
  }
}

/** The smallest initialBytes (a multiple of 1 MiB) create() accepts with these options. */
function smallestInitial(options: HeapOptions): number {
  for (let mib = 1; mib <= 2047; mib++) {
    try {
      SharedHeap.create({ ...options, initialBytes: mib * MiB }).detach();
      return mib * MiB;
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
    }
  }
  throw new Error('no initialBytes accepted');
}

describe('every option at the ends of its range works', () => {
  const small = { maxThreads: 2 };
  const cases: [string, HeapOptions][] = [
    ['magazineCapacity 1', { ...small, initialBytes: 32 * MiB, magazineCapacity: 1 }],
    ['magazineCapacity 2', { ...small, initialBytes: 32 * MiB, magazineCapacity: 2 }],
    ['magazineCapacity 3', { ...small, initialBytes: 32 * MiB, magazineCapacity: 3 }],
    ['magazineCapacity 4096', { ...small, initialBytes: 64 * MiB, magazineCapacity: 4096 }],
    ['refillCount 1', { ...small, initialBytes: 32 * MiB, refillCount: 1 }],
    ['refillCount 4096', { ...small, initialBytes: 32 * MiB, refillCount: 4096 }],
    ['magazineCapacity 1, refillCount 4096', { ...small, initialBytes: 32 * MiB, magazineCapacity: 1, refillCount: 4096 }],
    ['magazineCapacity 4096, refillCount 1', { ...small, initialBytes: 64 * MiB, magazineCapacity: 4096, refillCount: 1 }],
    ['drainInterval 1', { ...small, initialBytes: 32 * MiB, drainInterval: 1 }],
    ['drainInterval 2^30', { ...small, initialBytes: 32 * MiB, drainInterval: 2 ** 30 }],
    ['stage1Keep 0', { ...small, initialBytes: 32 * MiB, stage1Keep: 0 }],
    ['stage1Keep 2^20', { ...small, initialBytes: 32 * MiB, stage1Keep: 1 << 20 }],
    ['trimInterval 1', { ...small, initialBytes: 32 * MiB, trimInterval: 1 }],
    ['trimInterval 1, magazineCapacity 1, stage1Keep 0', { ...small, initialBytes: 32 * MiB, trimInterval: 1, magazineCapacity: 1, stage1Keep: 0 }],
    ['trimInterval 2^20', { ...small, initialBytes: 32 * MiB, trimInterval: 1 << 20 }],
    ['maxThreads 1', { initialBytes: 32 * MiB, maxThreads: 1 }],
    ['maxThreads 1024', { initialBytes: 256 * MiB, maxThreads: 1024 }],
    ['initialBytes 2047 MiB (the ceiling)', { ...small, initialBytes: 2047 * MiB }],
    ['debug true, magazineCapacity 1', { ...small, initialBytes: 32 * MiB, debug: true, magazineCapacity: 1 }],
    ['debug false', { ...small, initialBytes: 32 * MiB, debug: false }],
  ];
  it.each(cases)('%s', (_name, options) => {
    const heap = SharedHeap.create(options);
    try {
      exercise(heap, 0x5eed + (options.magazineCapacity ?? 0));
    } finally {
      heap.detach();
    }
  });

  it('the smallest initialBytes, fixed and growable to the ceiling', () => {
    const min = smallestInitial(small);
    const fixed = SharedHeap.create({ ...small, initialBytes: min });
    exercise(fixed, 1); // mostly out of memory: 0 must leave the heap consistent
    fixed.detach();
    const minGrowable = smallestInitial({ ...small, maxBytes: 2047 * MiB });
    const growable = SharedHeap.create({ ...small, initialBytes: minGrowable, maxBytes: 2047 * MiB });
    exercise(growable, 2);
    expect(growable.buffer.byteLength).toBeGreaterThan(minGrowable);
    growable.detach();
  });

  it('a heap too small for its metadata is refused with a RangeError naming initialBytes', () => {
    expect(() => SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 1024 })).toThrow(/options\.initialBytes/);
  });

  // An audit (2026-12-04): the message blamed options.initialBytes, never passed, with its default,
  // and did not name magazineCapacity, whose magazines are most of the metadata there.
  it('too small through magazineCapacity: the error names the options given and their values, and the size that works', () => {
    const e = (() => {
      try {
        SharedHeap.create({ magazineCapacity: 4096 });
      } catch (err) {
        return err as Error;
      }
      throw new Error('accepted');
    })();
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/^SharedHeap\.create\(options\.magazineCapacity\): the default initialBytes 67108864 leaves no room for blocks; .*magazineCapacity 4096 takes \d+ MiB, so initialBytes and maxBytes of at least (\d+) are needed/);
    const need = Number(/at least (\d+) are needed/.exec(e.message)![1]);
    const heap = SharedHeap.create({ magazineCapacity: 4096, initialBytes: need });
    expect(heap.malloc(100)).toBeGreaterThan(0);
    heap.check();
    heap.detach();
    expect(() => SharedHeap.create({ maxBytes: 32 * MiB })).toThrow(/^SharedHeap\.create\(options\.maxBytes\): 33554432 is below the default initialBytes 67108864; pass initialBytes too$/);
    expect(() => SharedHeap.create({ refillCount: 1e308 })).toThrow(/got 1e\+308$/); // no 256-digit hex
  });

  it('where SharedArrayBuffer is not defined (a browser page without cross-origin isolation), create() says what the page needs', () => {
    const saved = globalThis.SharedArrayBuffer;
    try {
      delete (globalThis as { SharedArrayBuffer?: unknown }).SharedArrayBuffer;
      expect(() => SharedHeap.create({})).toThrow(/SharedArrayBuffer is not defined here\. A browser page needs cross-origin isolation: .*Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp/);
    } finally {
      globalThis.SharedArrayBuffer = saved;
    }
    const heap = SharedHeap.create({ initialBytes: 4 * MiB });
    heap.check();
    heap.detach();
  });

  it('the range an error gives for initialBytes and maxBytes starts at a size create() takes', () => {
    for (const name of ['initialBytes', 'maxBytes'] as const) {
      const e = (() => {
        try {
          SharedHeap.create({ ...small, [name]: 1 });
        } catch (err) {
          return err as Error;
        }
        throw new Error('accepted 1');
      })();
      const from = Number(/expected an integer from (\d+) to/.exec(e.message)![1]);
      const heap = SharedHeap.create({ maxThreads: 1, magazineCapacity: 1, initialBytes: from, maxBytes: from });
      expect(heap.malloc(100)).toBeGreaterThan(0);
      heap.check();
      heap.detach();
    }
  });
});

describe('numeric options out of range', () => {
  const ranges: [keyof HeapOptions, number, number][] = [
    ['maxThreads', 1, 1024],
    ['magazineCapacity', 1, 4096],
    ['refillCount', 1, 4096],
    ['drainInterval', 1, 2 ** 30],
    ['stage1Keep', 0, 1 << 20],
    ['trimInterval', 0, 1 << 20],
  ];
  it.each(ranges)('%s: below %d, above %d, fractions, NaN and strings are refused, naming the option and the value', (name, min, max) => {
    for (const bad of [min - 1, max + 1, 1.5, NaN, Infinity]) {
      expect(() => SharedHeap.create({ initialBytes: 32 * MiB, [name]: bad }), `${name} ${bad}`).toThrow(
        new RegExp(`SharedHeap\\.create\\(options\\.${name}\\): expected an integer from ${min} to ${max}, got ${String(bad)}`),
      );
    }
    expect(() => SharedHeap.create({ initialBytes: 32 * MiB, [name]: '8' as unknown as number })).toThrow(
      new RegExp(`SharedHeap\\.create\\(options\\.${name}\\): expected a number, got`),
    );
  });
});

describe('trimInterval', () => {
  /** 8 blocks of 16 KiB freed into the magazine, then 8 of 20 KiB: the footprint after, check(), and the data. */
  function run(trimInterval: number, stage1Keep = 0): number {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 2, stage1Keep, trimInterval });
    try {
      const keep = heap.malloc(100);
      heap.u8.fill(0x5a, keep, keep + 100);
      const a: number[] = [];
      for (let k = 0; k < 8; k++) a.push(heap.malloc(16 << 10));
      for (const p of a) heap.free(p); // cached: their slabs stay in use
      const b: number[] = [];
      for (let k = 0; k < 8; k++) {
        const p = heap.malloc(20 << 10);
        heap.u8.fill(k + 1, p, p + (20 << 10));
        b.push(p);
      }
      expect(checked(heap)).toBe('passes');
      expect(b.every((p, k) => heap.u8.subarray(p, p + (20 << 10)).every((x) => x === k + 1))).toBe(true);
      expect(heap.u8.subarray(keep, keep + 100).every((x) => x === 0x5a)).toBe(true);
      return heap.stats().footprintBytes;
    } finally {
      heap.detach();
    }
  }

  it.each([0, 1024])('before a slab is taken from the pool, the other magazines go back, and their slots serve it (stage1Keep %i)', (keep) => {
    const without = run(0, keep);
    const withTrim = run(1, keep);
    // The two 16 KiB slabs emptied by the trim are the slots the 20 KiB slabs take. At the default
    // stage1Keep, 1024, they went to the 16 KiB class's Stage-1 list and saved nothing (348,160
    // bytes either way: an audit, 2026-12-07); a trim gives them to Stage 2 now.
    expect(withTrim).toBeLessThan(without);
    expect(without - withTrim).toBeGreaterThanOrEqual(64 << 10);
  });

  it('gives back the empty slabs of a class whose magazine is empty too', () => {
    // Slab A of 1 KiB blocks emptied and kept by the thread (its blocks drained back one by one
    // through a one-block magazine), the magazine then emptied by a malloc of slab B's block; then
    // a 4 KiB block, whose slab the trim lets take A's slot: no page touched for it. (The trim
    // skipped a class whose magazine was empty, and A stayed: 4,096 bytes more, an audit.)
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 2, stage1Keep: 0, trimInterval: 1, magazineCapacity: 1 });
    try {
      const perSlab = COUNT[classOf(1024)]!;
      const blocks = Array.from({ length: perSlab + 1 }, () => heap.malloc(1024));
      const a = blocks.slice(0, perSlab);
      const b = blocks[perSlab]!;
      expect(new Set(a.map((p) => p >>> 16)).size, 'slab A: one slot').toBe(1);
      expect(b >>> 16, 'B another slab').not.toBe(a[0]! >>> 16);
      for (const p of a) heap.free(p);
      heap.free(b); // drains A's last block: A empty, kept
      const b2 = heap.malloc(1024); // B's block back: the magazine empty
      expect(b2).toBe(b);
      const before = heap.stats().footprintBytes;
      const big = heap.malloc(4096);
      heap.u8.fill(7, big, big + 4096);
      expect(big >>> 16, "the 4 KiB slab on A's slot").toBe(a[0]! >>> 16);
      expect(heap.stats().footprintBytes - before, 'bytes touched for the 4 KiB block').toBe(0);
      expect(checked(heap)).toBe('passes');
      heap.free(big);
      heap.free(b2);
    } finally {
      heap.detach();
    }
  });
});

describe('finding 5: magazineCapacity 1', () => {
  it('after frees of every class, malloc of every class gets a block of its size, and check() passes', () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2, magazineCapacity: 1 });
    for (const n of Array.from(CLASS_SIZES)) {
      const ps = [heap.malloc(n), heap.malloc(n), heap.malloc(n)];
      for (const p of ps) heap.free(p); // the one-block magazine is full from the second free on: drains
    }
    const wrong = Array.from(CLASS_SIZES).filter((n) => heap.usableSize(heap.malloc(n)) < n);
    expect({ wrong, check: checked(heap) }).toEqual({ wrong: [], check: 'passes' });
    heap.detach();
  });
});

describe('finding 6: the constructor is not public', () => {
  it('new SharedHeap(buffer, 0) cannot write to the heap', () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 });
    const Ctor = SharedHeap as unknown as new (buffer: SharedArrayBuffer, id: number) => SharedHeap;
    let error: unknown;
    try {
      new Ctor(heap.buffer, 0).malloc(16);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/SharedHeap\.create|SharedHeap\.attach/);
    expect(magicIntact(heap.buffer)).toBe(true);
    expect(checked(heap)).toBe('passes');
    heap.detach();
  });
});

describe('finding 9: inputs that get a clear error', () => {
  it('an unknown option is refused, naming it and the known ones', () => {
    expect(() => SharedHeap.create({ inititalBytes: 16 * MiB } as HeapOptions)).toThrow(
      /SharedHeap\.create\(options\): unknown option "inititalBytes".*initialBytes/,
    );
  });

  it('attach(new SharedArrayBuffer(8)) says the buffer is not a heap', () => {
    let error: unknown;
    try {
      SharedHeap.attach(new SharedArrayBuffer(8));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(HeapStateError);
    expect((error as Error).message).toMatch(/SharedHeap\.attach\(buffer\): .*not a sabmalloc heap.*8 bytes/);
  });

  it('sizes are rounded up to 1 MiB, and the README states that and the ceiling', () => {
    const heap = SharedHeap.create({ initialBytes: 5 * MiB + 1, maxThreads: 2 });
    expect(heap.buffer.byteLength).toBe(6 * MiB);
    heap.detach();
    expect(() => SharedHeap.create({ initialBytes: 2047 * MiB + 1 })).toThrow(/2146435072/);
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toMatch(/rounded up to a multiple of 1 MiB/);
    expect(readme).toMatch(/2,146,435,072/);
  });

  it("the least sizes the README names for maxThreads are create()'s", () => {
    // An audit: the README said "2 MiB up to maxThreads 16", where 2 MiB holds up to 31.
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const m = /\(2 MiB up to `maxThreads` (\d+), 3 MiB up to (\d+), 4 MiB at the default 64, (\d+) MiB at 1024/.exec(readme);
    expect(m).not.toBeNull();
    const fits = (mib: number, maxThreads: number): boolean => {
      try {
        SharedHeap.create({ initialBytes: mib * MiB, maxThreads }).detach();
        return true;
      } catch (e) {
        expect(e).toBeInstanceOf(RangeError);
        return false;
      }
    };
    const [two, three, at1024] = [Number(m![1]), Number(m![2]), Number(m![3])];
    expect([fits(2, two), fits(2, two + 1), fits(3, three), fits(3, three + 1)]).toEqual([true, false, true, false]);
    expect([fits(4, 64), fits(3, 64), fits(at1024, 1024), fits(at1024 - 1, 1024)]).toEqual([true, false, true, false]);
  });

  it('after detach(), every call throws HeapStateError naming it', () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 });
    const p = heap.malloc(10);
    heap.detach();
    const calls: [string, () => unknown][] = [
      ['stats()', () => heap.stats()],
      ['check()', () => heap.check()],
      ['flush()', () => heap.flush()],
      ['malloc(size)', () => heap.malloc(10)],
      ['free(ptr)', () => heap.free(p)],
      ['calloc(n, size)', () => heap.calloc(1, 10)],
      ['realloc(ptr, size)', () => heap.realloc(p, 20)],
      ['realloc(ptr, size)', () => heap.realloc(0, 20)], // malloc's fast path when attached: still realloc's error here
      ['usableSize(ptr)', () => heap.usableSize(p)],
      ['alignedAlloc(align, size)', () => heap.alignedAlloc(64, 10)],
      ['tryMalloc(size)', () => heap.tryMalloc(10)],
      ['reclaim(threadId)', () => heap.reclaim(12345)],
    ];
    const outcomes = calls.map(([name, call]) => {
      try {
        call();
        return `${name}: no error`;
      } catch (e) {
        const msg = (e as Error).message;
        return e instanceof HeapStateError && msg.startsWith(name) && /detached/.test(msg) ? `${name}: ok` : `${name}: ${msg}`;
      }
    });
    expect(outcomes).toEqual(calls.map(([name]) => `${name}: ok`));
  });
});
