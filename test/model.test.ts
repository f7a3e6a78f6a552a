/**
 * Model-based tests (fast-check): random sequences of malloc, calloc, realloc, free, flush and
 * invalid frees run against the heap and against a trivial reference model (a Map of live
 * block -> size and pattern tag). After each command the heap must agree with the model: blocks
 * never overlap ([p, p + usableSize) disjoint), contents survive, invalid frees throw and change
 * nothing; check() runs after every step of the short sequences and every 1,000 steps of one
 * long run.
 *
 * Environment: FC_SEED (replay a failure: fast-check prints the seed and path), MODEL_RUNS (short
 * sequences, default 40), MODEL_STEPS (length of the long run, default 20,000).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DoubleFreeError, InvalidPointerError, MAX_SMALL, SharedHeap, type HeapOptions } from '../src/index.js';
import { classifyBlock, reallocToRun } from '../src/alloc.js';
import { internals } from '../src/heap.js';

const KiB = 1 << 10;
const MiB = 1 << 20;

const SEED = process.env.FC_SEED !== undefined && process.env.FC_SEED !== '' ? Number(process.env.FC_SEED) : undefined;
const RUNS = Number(process.env.MODEL_RUNS ?? 40);
const STEPS = Number(process.env.MODEL_STEPS ?? 20_000);

const HEAP_BYTES = 32 * MiB;
/** Usable bytes the model lets be live at once (mallocs beyond it are skipped): well below the heap. */
const BUDGET = 8 * MiB;
const MAX_LIVE = 300;
const SLOT_META_GUESS = 1 * MiB;

interface Block {
  size: number; // bytes asked for (and filled with the pattern)
  usable: number;
  tag: number; // the pattern's seed
  large: boolean; // a large run (above MAX_SMALL, or a small size realloc moved into a run)
}

interface Model {
  live: Map<number, Block>;
  usable: number; // sum of usable sizes
}

interface Real {
  heap: SharedHeap;
  checkEvery: number;
  steps: number;
  nextTag: number;
  freed: number[]; // offsets freed by the sequence (may since have been handed out again)
  metaBytes: number; // the metadata SuperSlabs: slot metas, pool heads, magazines
}

// ---- Patterns ------------------------------------------------------------------------------

function word(tag: number, w: number): number {
  return Math.imul(tag * 0x10001 + w, 0x9e3779b1) ^ (w << 9);
}
function byteAt(tag: number, i: number): number {
  return (word(tag, i >>> 2) >>> ((i & 3) << 3)) & 0xff;
}
function fill(heap: SharedHeap, p: number, n: number, tag: number): void {
  const i32 = new Int32Array(heap.buffer, 0, heap.u8.length >>> 2);
  const u8 = heap.u8;
  const whole = n >>> 2;
  for (let w = 0; w < whole; w++) i32[(p >>> 2) + w] = word(tag, w);
  for (let i = whole << 2; i < n; i++) u8[p + i] = byteAt(tag, i);
}
/** First of the n bytes at p that does not hold the pattern of `tag`, or -1. */
function firstBad(heap: SharedHeap, p: number, n: number, tag: number): number {
  const i32 = new Int32Array(heap.buffer, 0, heap.u8.length >>> 2);
  const u8 = heap.u8;
  const whole = n >>> 2;
  for (let w = 0; w < whole; w++) {
    if (i32[(p >>> 2) + w] !== word(tag, w)) {
      for (let i = w << 2; ; i++) if (u8[p + i] !== byteAt(tag, i)) return i;
    }
  }
  for (let i = whole << 2; i < n; i++) if (u8[p + i] !== byteAt(tag, i)) return i;
  return -1;
}
function hex(n: number): string {
  return '0x' + n.toString(16);
}

function verifyBlock(r: Real, p: number, b: Block): void {
  const bad = firstBad(r.heap, p, b.size, b.tag);
  if (bad >= 0) throw new Error(`block ${hex(p)} (${b.size} bytes): byte ${bad} was overwritten`);
}

/** Every live block holds its pattern, the heap counts what the model counts, no two blocks overlap. */
function verifyAll(m: Model, r: Real): void {
  const sorted = [...m.live.keys()].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; i++) {
    const p = sorted[i];
    const b = m.live.get(p)!;
    expect(r.heap.usableSize(p)).toBe(b.usable);
    verifyBlock(r, p, b);
    if (i + 1 < sorted.length && p + b.usable > sorted[i + 1]) {
      throw new Error(`blocks ${hex(p)} (+${b.usable}) and ${hex(sorted[i + 1])} overlap`);
    }
  }
  const st = r.heap.stats();
  expect(st.liveBlocks).toBe(m.live.size);
  expect(st.largeLiveBlocks).toBe(countLarge(m));
}
function countLarge(m: Model): number {
  let n = 0;
  for (const b of m.live.values()) if (b.large) n++;
  return n;
}

function afterStep(m: Model, r: Real): void {
  r.steps++;
  if (r.steps % r.checkEvery === 0) {
    r.heap.check();
    verifyAll(m, r);
  }
}

/** A new block q of `usable` bytes must not overlap any live block. */
function expectNoOverlap(m: Model, q: number, usable: number): void {
  for (const [p, b] of m.live) {
    if (q < p + b.usable && p < q + usable) throw new Error(`new block ${hex(q)} (+${usable}) overlaps ${hex(p)} (+${b.usable})`);
  }
}

/**
 * `run`: whether the block may be a large run although its size is small: only where realloc grew
 * a small block by half or more into a run (alloc.ts reallocToRun) or grew a run; `true` for a run
 * that must stay one (realloc of a run where it is). Above MAX_SMALL it is always a run.
 */
function addBlock(m: Model, r: Real, q: number, size: number, run: boolean | 'may' = false): void {
  expect(q).toBeGreaterThan(0);
  expect(q % 16).toBe(0);
  expect(m.live.has(q)).toBe(false);
  const usable = r.heap.usableSize(q);
  expect(usable).toBeGreaterThanOrEqual(size);
  expect(q + usable).toBeLessThanOrEqual(r.heap.u8.length);
  expectNoOverlap(m, q, usable);
  const tag = r.nextTag++;
  fill(r.heap, q, size, tag);
  const large = classifyBlock(internals(r.heap), 'model', 'q', q) < 0;
  if (size > MAX_SMALL || run === true) expect(large, `${hex(q)} (${size} bytes) a large run`).toBe(true);
  else if (run === false) expect(large, `${hex(q)} (${size} bytes) a large run`).toBe(false);
  m.live.set(q, { size, usable, tag, large });
  m.usable += usable;
}

function removeBlock(m: Model, p: number): Block {
  const b = m.live.get(p)!;
  m.live.delete(p);
  m.usable -= b.usable;
  return b;
}

function pick(m: Model, k: number): number {
  const keys = [...m.live.keys()];
  return keys[k % keys.length];
}

// ---- Commands ------------------------------------------------------------------------------

type Cmd = fc.Command<Model, Real>;

function roughUsable(size: number): number {
  return size > MAX_SMALL ? Math.ceil(size / (64 * KiB)) * 64 * KiB : Math.ceil(size * 1.25) + 16;
}

class MallocCmd implements Cmd {
  constructor(readonly size: number) {}
  check(m: Readonly<Model>): boolean {
    return m.live.size < MAX_LIVE && m.usable + roughUsable(this.size) <= BUDGET;
  }
  run(m: Model, r: Real): void {
    const q = r.heap.malloc(this.size);
    // Within the budget a small block must always be found; a large run may meet fragmentation.
    if (q === 0 && this.size > MAX_SMALL) {
      r.heap.check();
    } else {
      addBlock(m, r, q, this.size);
    }
    afterStep(m, r);
  }
  toString(): string {
    return `malloc(${this.size})`;
  }
}

class CallocCmd implements Cmd {
  constructor(
    readonly n: number,
    readonly size: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.live.size < MAX_LIVE && m.usable + roughUsable(this.n * this.size) <= BUDGET;
  }
  run(m: Model, r: Real): void {
    const total = this.n * this.size;
    const q = r.heap.calloc(this.n, this.size);
    if (q === 0 && total > MAX_SMALL) {
      r.heap.check();
    } else {
      expect(q).toBeGreaterThan(0);
      const u8 = r.heap.u8;
      for (let i = 0; i < total; i++) if (u8[q + i] !== 0) throw new Error(`calloc: byte ${i} of ${hex(q)} is ${u8[q + i]}`);
      addBlock(m, r, q, total);
    }
    afterStep(m, r);
  }
  toString(): string {
    return `calloc(${this.n}, ${this.size})`;
  }
}

class FreeCmd implements Cmd {
  constructor(readonly k: number) {}
  check(m: Readonly<Model>): boolean {
    return m.live.size > 0;
  }
  run(m: Model, r: Real): void {
    const p = pick(m, this.k);
    verifyBlock(r, p, m.live.get(p)!);
    r.heap.free(p);
    removeBlock(m, p);
    r.freed.push(p);
    afterStep(m, r);
  }
  toString(): string {
    return `free(#${this.k})`;
  }
}

class ReallocCmd implements Cmd {
  constructor(
    readonly k: number,
    readonly size: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return m.live.size > 0 && m.usable + roughUsable(this.size) <= BUDGET;
  }
  run(m: Model, r: Real): void {
    const p = pick(m, this.k);
    const old = m.live.get(p)!;
    verifyBlock(r, p, old);
    const q = r.heap.realloc(p, this.size);
    if (q === 0) {
      // only a large request may fail, and then the old block is intact
      expect(this.size).toBeGreaterThan(MAX_SMALL);
      verifyBlock(r, p, old);
      expect(r.heap.usableSize(p)).toBe(old.usable);
      r.heap.check();
    } else {
      const keep = Math.min(old.size, this.size);
      const bad = firstBad(r.heap, q, keep, old.tag);
      if (bad >= 0) throw new Error(`realloc(${hex(p)}, ${this.size}) = ${hex(q)}: byte ${bad} was not kept`);
      removeBlock(m, p);
      if (q !== p) r.freed.push(p);
      // A run resized where it is stays a run; a block that moved to grow may have gone into one.
      const grows = this.size > old.usable && (old.large || reallocToRun(this.size, old.usable));
      addBlock(m, r, q, this.size, q === p ? old.large : grows ? 'may' : false);
    }
    afterStep(m, r);
  }
  toString(): string {
    return `realloc(#${this.k}, ${this.size})`;
  }
}

class FlushCmd implements Cmd {
  check(): boolean {
    return true;
  }
  run(m: Model, r: Real): void {
    r.heap.flush();
    afterStep(m, r);
  }
  toString(): string {
    return 'flush()';
  }
}

type InvalidKind = 'interior' | 'unaligned' | 'stale' | 'outside' | 'metadata';

class FreeInvalidCmd implements Cmd {
  constructor(
    readonly kind: InvalidKind,
    readonly k: number,
  ) {}
  check(m: Readonly<Model>): boolean {
    return this.kind === 'outside' || this.kind === 'metadata' || this.kind === 'stale' || m.live.size > 0;
  }
  run(m: Model, r: Real): void {
    const heap = r.heap;
    let p: number;
    let expected: Array<new (message: string) => Error>;
    switch (this.kind) {
      case 'interior': {
        const b = pick(m, this.k);
        p = b + (m.live.get(b)!.usable > 16 ? 16 : 8);
        expected = [InvalidPointerError];
        break;
      }
      case 'unaligned':
        p = pick(m, this.k) + 1 + (this.k % 15);
        expected = [InvalidPointerError];
        break;
      case 'stale': {
        const stale = r.freed.filter((f) => !m.live.has(f));
        if (stale.length === 0) {
          afterStep(m, r);
          return;
        }
        p = stale[this.k % stale.length];
        // a freed block: a double free; when its memory went to another class or run, not a block start
        expected = [DoubleFreeError, InvalidPointerError];
        break;
      }
      case 'outside':
        p = heap.u8.length + 16 * (this.k % 4096);
        expected = [InvalidPointerError];
        break;
      case 'metadata':
        p = 16 * (1 + (this.k % 1000));
        expected = [InvalidPointerError];
        break;
    }
    const before = Buffer.from(new Uint8Array(heap.buffer, 0, r.metaBytes)); // a copy
    const liveBefore = heap.stats().liveBlocks;
    let error: unknown;
    try {
      heap.free(p);
    } catch (e) {
      error = e;
    }
    if (!expected.some((c) => error instanceof c)) {
      throw new Error(`free(${hex(p)}) (${this.kind}): expected ${expected.map((c) => c.name).join(' or ')}, got ${String(error)}`);
    }
    expect((error as Error).message).toContain(`free(ptr): ${hex(p)}`);
    if (!before.equals(Buffer.from(heap.buffer, 0, before.length))) throw new Error(`free(${hex(p)}) (${this.kind}) changed the metadata`);
    expect(heap.stats().liveBlocks).toBe(liveBefore);
    afterStep(m, r);
  }
  toString(): string {
    return `freeInvalid(${this.kind}, #${this.k})`;
  }
}

// ---- Arbitraries ---------------------------------------------------------------------------

const sizeArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 256 }) },
  { weight: 4, arbitrary: fc.integer({ min: 257, max: 8192 }) },
  { weight: 3, arbitrary: fc.integer({ min: 8192, max: 32 * KiB }) }, // W2's range
  { weight: 1, arbitrary: fc.integer({ min: 32 * KiB, max: MAX_SMALL }) },
  { weight: 1, arbitrary: fc.integer({ min: MAX_SMALL + 1, max: 3 * MiB }) },
);
const indexArb = fc.nat({ max: 1 << 20 });

const commandArbs = [
  sizeArb.map((s) => new MallocCmd(s)),
  sizeArb.map((s) => new MallocCmd(s)),
  indexArb.map((k) => new FreeCmd(k)),
  indexArb.map((k) => new FreeCmd(k)),
  fc.tuple(indexArb, sizeArb).map(([k, s]) => new ReallocCmd(k, s)),
  fc.tuple(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 4096 })).map(([n, s]) => new CallocCmd(n, s)),
  fc.constant(new FlushCmd()),
  fc
    .tuple(fc.constantFrom<InvalidKind>('interior', 'unaligned', 'stale', 'outside', 'metadata'), indexArb)
    .map(([kind, k]) => new FreeInvalidCmd(kind, k)),
];

function runSequence(cmds: Iterable<Cmd>, checkEvery: number, options: HeapOptions = {}): void {
  const heap = SharedHeap.create({ initialBytes: HEAP_BYTES, maxThreads: 2, ...options });
  try {
    const real: Real = { heap, checkEvery, steps: 0, nextTag: 1, freed: [], metaBytes: heap.stats().footprintBytes };
    const model: Model = { live: new Map(), usable: 0 };
    fc.modelRun(() => ({ model, real }), cmds);
    heap.check();
    verifyAll(model, real);
    // free everything: the heap ends empty and consistent
    for (const [p, b] of model.live) {
      verifyBlock(real, p, b);
      heap.free(p);
    }
    heap.flush();
    heap.check();
    expect(heap.stats().liveBlocks).toBe(0);
    expect(heap.stats().largeLiveBytes).toBe(0);
  } finally {
    heap.detach();
  }
}

describe('model-based sequences', () => {
  it(`${RUNS} short random sequences, check() after every step`, () => {
    fc.assert(
      fc.property(fc.commands(commandArbs, { maxCommands: 150, size: 'max' }), (cmds) => runSequence(cmds, 1)),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it(`${RUNS} short sequences with tiny magazines, frequent drains and no Stage-1 keep (every slow path), check() after every step`, () => {
    const tiny: HeapOptions = { magazineCapacity: 4, refillCount: 2, drainInterval: 3, stage1Keep: 0 };
    fc.assert(
      fc.property(fc.commands(commandArbs, { maxCommands: 150, size: 'max' }), (cmds) => runSequence(cmds, 1, tiny)),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it(`one long run of ${STEPS} steps, check() every 1,000 steps`, () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(...commandArbs), { minLength: STEPS, maxLength: STEPS }), (cmds) => runSequence(cmds, 1000)),
      { numRuns: 1, seed: SEED, endOnFailure: true }, // no shrinking of a sequence this long: replay with FC_SEED
    );
  });

  it('the model catches a broken heap (an allocator that hands out overlapping blocks fails)', () => {
    // Prove the harness can fail: wrap malloc so that every other call hands out the previous block again.
    const heap = SharedHeap.create({ initialBytes: HEAP_BYTES, maxThreads: 2 });
    try {
      const real: Real = { heap, checkEvery: 1_000_000, steps: 0, nextTag: 1, freed: [], metaBytes: SLOT_META_GUESS };
      const model: Model = { live: new Map(), usable: 0 };
      const malloc = heap.malloc.bind(heap);
      let last = 0;
      let n = 0;
      heap.malloc = (size: number): number => (n++ % 2 === 1 && last !== 0 ? last : (last = malloc(size)));
      const cmds = [new MallocCmd(100), new MallocCmd(100)];
      expect(() => fc.modelRun(() => ({ model, real }), cmds)).toThrow();
    } finally {
      heap.detach();
    }
  });
});
