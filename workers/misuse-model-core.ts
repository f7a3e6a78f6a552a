/**
 * misuse-model: a seeded, model-based differential run of the public API under misuse
 * (test/misuse-model.test.ts). A MisuseModel keeps every block its thread owns (offset, requested
 * size, usable size, a content seed whose pattern fills the whole usable range) and makes random
 * calls, valid and invalid, interleaved. After an invalid call it asserts that the call threw a
 * HeapError, TypeError or RangeError whose message names the call, the argument and the value,
 * and (in a quiet heap) that check() passes and every owned block keeps its pattern; after a
 * valid call, that the block is aligned, as large as asked, and overlaps no other owned block.
 * Used by the main thread directly and by workers/misuse-model-worker.ts in each worker.
 */
import { DoubleFreeError, HeapCorruptionError, HeapError, HeapStateError, InvalidPointerError, MAX_SMALL, type SharedHeap } from '../src/index.js';

export interface Owned {
  p: number;
  size: number;
  usable: number;
  seed: number;
}

/** mulberry32, seeded: the same seed gives the same sequence of calls on one thread. */
export class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let x = this.s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(a: readonly T[]): T {
    return a[this.below(a.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const KiB = 1024;
const MiB = 1 << 20;
const SLOT = 64 * KiB;

/** The pattern byte i of a block filled under `seed`. */
function patternByte(seed: number, i: number): number {
  return (seed + Math.imul(i, 7) + (i >>> 8) * 13) & 255;
}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

/** How an error message may show a bad value (errors.ts describe, or hex for a pointer). */
function valueTexts(v: unknown): string[] {
  switch (typeof v) {
    case 'number':
      if (Object.is(v, -0)) return ['-0', '0x0'];
      return Number.isSafeInteger(v) && v >= 0 ? [String(v), hex(v)] : [String(v)];
    case 'bigint':
      return [`${v}n`];
    case 'string':
      return [JSON.stringify(v)];
    case 'undefined':
      return ['undefined'];
    case 'boolean':
      return [String(v)];
    default:
      if (v === null) return ['null'];
      return Array.isArray(v) ? ['an array'] : ['an object'];
  }
}

/** Every kind of bad size: non-numbers, NaN, infinities, negatives, fractions, unsafe integers. */
export const BAD_SIZES: readonly unknown[] = [
  -1, -16, -(2 ** 31), NaN, Infinity, -Infinity, 0.5, 16.5, 1e-300, 2 ** 53, 2 ** 64, Number.MAX_VALUE, -Number.MIN_VALUE,
  '16', '', 16n, 0n, undefined, null, {}, [], [16], true, false, { valueOf: () => 16 }, new Number(16),
];

/** Bad values for a pointer that are not numbers or not non-negative safe integers. */
export const BAD_POINTER_VALUES: readonly unknown[] = [
  -1, -16, NaN, Infinity, -Infinity, 16.5, 0.1, 2 ** 53, '4194304', 16n, undefined, null, {}, [], true, { valueOf: () => 0 },
];

/** Sizes that are valid and too large for any heap: answered 0 (out of memory), no error. */
const HUGE_SIZES: readonly number[] = [2 ** 31, 2 ** 32, 2 ** 31 - 1, 2 ** 40, Number.MAX_SAFE_INTEGER];

export interface Counts {
  valid: number;
  invalid: number;
  async: number;
  zero: number;
  crossFrees: number;
  crossReallocs: number;
  checks: number;
}

export function newCounts(): Counts {
  return { valid: 0, invalid: 0, async: 0, zero: 0, crossFrees: 0, crossReallocs: 0, checks: 0 };
}

export class MisuseFailure extends Error {}

/** A word to wait on for a pause (Atomics.wait, which Node allows on its main thread too). */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

export class MisuseModel {
  readonly owned = new Map<number, Owned>();
  /** Offsets this thread freed (or let go through realloc), newest last, for use-after-free misuse in quiet phases. */
  readonly freed: number[] = [];
  readonly counts = newCounts();
  private nextSeed = 1;
  /** Whether other threads may run meanwhile: then no check(), and no misuse with offsets this thread does not own. */
  concurrent = false;
  /** A log of the last calls, for the failure message. */
  private readonly log: string[] = [];

  constructor(
    readonly heap: SharedHeap,
    readonly rand: Rand,
    readonly who: string,
    readonly debug: boolean,
    readonly heapBytes: number,
    readonly maxLive: number,
  ) {
    this.nextSeed = (rand.below(200) + 1) | 0;
  }

  fail(msg: string): never {
    throw new MisuseFailure(`${this.who}: ${msg}\nlast calls:\n  ${this.log.slice(-12).join('\n  ')}`);
  }

  private note(s: string): void {
    this.log.push(s);
    if (this.log.length > 64) this.log.splice(0, 32);
  }

  liveBytes(): number {
    let n = 0;
    for (const b of this.owned.values()) n += b.usable;
    return n;
  }

  // ---- the model's own checks --------------------------------------------------------------

  fill(b: Owned): void {
    const u8 = this.heap.u8;
    for (let i = 0; i < b.usable; i++) u8[b.p + i] = patternByte(b.seed, i);
  }

  verify(b: Owned, upTo = b.usable, what = 'its pattern'): void {
    const u8 = this.heap.u8;
    for (let i = 0; i < upTo; i++) {
      if (u8[b.p + i] !== patternByte(b.seed, i)) {
        this.fail(`block ${hex(b.p)} (size ${b.size}, usable ${b.usable}) lost ${what} at byte ${i}: ${u8[b.p + i]} != ${patternByte(b.seed, i)}`);
      }
    }
  }

  verifyAll(): void {
    for (const b of this.owned.values()) this.verify(b);
  }

  /** check() where no other thread runs, and every owned block's pattern. */
  quietChecks(): void {
    if (!this.concurrent) {
      // An idle thread answers an ask to flush (made by a call out of memory) from its event loop,
      // at a moment of its own: a walk meanwhile can read its magazines half drained, and check()
      // says so (README, check()). Walked again once every ask was answered (up to 2 s).
      for (let tries = 0; ; tries++) {
        try {
          this.heap.check();
          break;
        } catch (e) {
          const msg = (e as Error).message;
          if (!/ask to flush unanswered|asks to flush unanswered/.test(msg) || tries >= 400) this.fail(`check() failed: ${msg}`);
          Atomics.wait(PAUSE, 0, 0, 5);
        }
      }
      this.counts.checks++;
    }
    this.verifyAll();
  }

  /** A new block p of `size` requested bytes from `call`: aligned, big enough, overlapping nothing owned. */
  adopt(call: string, p: number, size: number, align = 16): Owned | undefined {
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0) this.fail(`${call} returned ${String(p)}`);
    if (p === 0) {
      this.counts.zero++;
      return undefined;
    }
    if (p % 16 !== 0 || p % align !== 0) this.fail(`${call} returned ${hex(p)}, not ${Math.max(16, align)}-aligned`);
    if (this.owned.has(p)) this.fail(`${call} returned ${hex(p)}, a block this thread still owns`);
    let usable: number;
    try {
      usable = this.heap.usableSize(p);
    } catch (e) {
      this.fail(`usableSize(${hex(p)}) of the block ${call} returned threw ${(e as Error).message}`);
    }
    if (usable < size) this.fail(`${call} returned ${hex(p)} with usableSize ${usable} < ${size}`);
    if (this.debug && usable !== size) this.fail(`debug mode: usableSize(${hex(p)}) ${usable} != requested ${size}`);
    if (p + usable > this.heap.u8.length) this.fail(`${call} returned ${hex(p)}+${usable}, beyond the heap (${this.heap.u8.length})`);
    for (const o of this.owned.values()) {
      if (p < o.p + Math.max(o.usable, 1) && o.p < p + Math.max(usable, 1)) {
        this.fail(`${call} returned ${hex(p)}..+${usable}, overlapping owned ${hex(o.p)}..+${o.usable}`);
      }
    }
    const b: Owned = { p, size, usable, seed: this.nextSeed++ & 0xffff };
    this.owned.set(p, b);
    this.forget(p);
    return b;
  }

  /** p is live again (handed out, or received): no longer a freed offset to misuse. */
  private forget(p: number): void {
    const i = this.freed.indexOf(p);
    if (i >= 0) this.freed.splice(i, 1);
  }

  private released(p: number): void {
    this.owned.delete(p);
    this.freed.push(p);
    if (this.freed.length > 32) this.freed.shift();
  }

  /** Asserts the call threw a clear error for `arg` = `value` of `call`; then the quiet checks. */
  expectError(call: string, arg: string | readonly string[], value: unknown, thrown: unknown, ok: boolean): void {
    this.counts.invalid++;
    const args = typeof arg === 'string' ? [arg] : arg;
    if (ok) this.fail(`${call}(${args.join(', ')} = ${valueTexts(value)[0]}) did not throw`);
    const e = thrown as Error;
    const kind = e instanceof HeapError || e instanceof TypeError || e instanceof RangeError;
    if (!kind || e instanceof HeapCorruptionError || e instanceof HeapStateError) {
      this.fail(`${call} with ${args.join('/')} = ${valueTexts(value)[0]} threw ${e?.name}: ${e?.message}`);
    }
    const msg = e.message;
    const named = args.some((a) => msg.startsWith(`${call}(${a}): `));
    if (!named) this.fail(`${call}: the message does not name the call and argument ${args.join('/')}: ${msg}`);
    if (!valueTexts(value).some((v) => msg.includes(v))) this.fail(`${call}: the message does not show the value ${valueTexts(value)[0]}: ${msg}`);
    this.quietChecks();
  }

  private syncCall(call: string, fn: () => unknown): { ok: boolean; v: unknown; e: unknown } {
    this.note(call);
    try {
      return { ok: true, v: fn(), e: undefined };
    } catch (e) {
      return { ok: false, v: undefined, e };
    }
  }

  private async asyncCall(call: string, fn: () => Promise<unknown>): Promise<{ ok: boolean; v: unknown; e: unknown }> {
    this.note(call);
    this.counts.async++;
    try {
      return { ok: true, v: await fn(), e: undefined };
    } catch (e) {
      return { ok: false, v: undefined, e };
    }
  }

  private expectValid(call: string, r: { ok: boolean; v: unknown; e: unknown }): unknown {
    if (!r.ok) this.fail(`${call} threw: ${(r.e as Error)?.stack ?? String(r.e)}`);
    this.counts.valid++;
    return r.v;
  }

  // ---- what the calls are given ------------------------------------------------------------

  /** The share of sizes drawn at the large runs' edges beyond the usual mix (0: the usual mix). */
  largeBias = 0;

  size(): number {
    const r = this.largeBias > 0 && this.rand.chance(this.largeBias) ? 0.8 + this.rand.next() * 0.2 : this.rand.next();
    if (r < 0.35) return this.rand.below(257);
    if (r < 0.55) return 257 + this.rand.below(4096);
    if (r < 0.65) return this.rand.below(MAX_SMALL + 1);
    if (r < 0.8) return MAX_SMALL - 32 + this.rand.below(65); // straddles MAX_SMALL
    if (r < 0.95) {
      // the large runs' edges: whole slots, 1 MiB (one SuperSlab), and just either side
      const k = this.rand.pick([2, 3, 4, 8, 9, 15, 16, 17, 24]);
      return k * SLOT + this.rand.pick([-16, -15, -1, 0, 1, 15, 16]);
    }
    return this.rand.pick([MiB - 1, MiB, MiB + 1, 2 * MiB - 16, 2 * MiB + 1]);
  }

  private anyOwned(): Owned | undefined {
    if (this.owned.size === 0) return undefined;
    const k = this.rand.below(this.owned.size);
    let i = 0;
    for (const b of this.owned.values()) if (i++ === k) return b;
    return undefined;
  }

  /**
   * An integer offset that is not the start of a block this thread owns, nor (in a quiet heap)
   * of any live block: interior, misaligned, metadata, beyond the heap; and in a quiet heap also
   * one past the end, freed, never allocated.
   */
  badPointer(): { p: number; kind: string } | undefined {
    const b = this.anyOwned();
    const choices: Array<() => { p: number; kind: string } | undefined> = [
      () => (b === undefined ? undefined : { p: b.p + 1, kind: 'misaligned' }),
      () => (b === undefined ? undefined : { p: b.p + 8, kind: 'misaligned' }),
      () => (b === undefined || b.usable < 32 ? undefined : { p: b.p + 16 * (1 + this.rand.below(Math.floor(b.usable / 16) - 1)), kind: 'interior' }),
      () => (b === undefined || b.usable <= SLOT ? undefined : { p: b.p + SLOT * (1 + this.rand.below(Math.floor(b.usable / SLOT) - 1 || 1)), kind: 'interior slot' }),
      () => (b === undefined ? undefined : { p: b.p + Math.floor(b.usable / 2) - ((b.p + Math.floor(b.usable / 2)) % 16), kind: 'middle' }),
      () => ({ p: this.rand.pick([16, 64, 4096, 65536, 1 << 19]), kind: 'metadata' }),
      () => ({ p: this.rand.pick([this.heapBytes, this.heapBytes + 16, 2 ** 31 - 16, 2 ** 31, 2 ** 32, 2 ** 32 + 16, 2 ** 40, Number.MAX_SAFE_INTEGER - 15]), kind: 'beyond' }),
    ];
    if (!this.concurrent) {
      choices.push(
        () => (b === undefined ? undefined : { p: b.p + b.usable, kind: 'one past the end' }),
        () => (this.freed.length === 0 ? undefined : { p: this.rand.pick(this.freed), kind: 'freed' }),
        () => ({ p: 16 * this.rand.below(Math.floor(this.heapBytes / 16)), kind: 'random' }),
        () => (b === undefined ? undefined : { p: b.p - (b.p % SLOT) + this.rand.pick([0, 16, 64, 256]), kind: 'slot start' }),
        () => (b === undefined ? undefined : { p: b.p - (b.p % SLOT) + SLOT - 16, kind: 'slot end' }),
        () => (b === undefined || b.p < 32 ? undefined : { p: b.p - 16, kind: 'before' }),
      );
    }
    for (let tries = 0; tries < 8; tries++) {
      const c = this.rand.pick(choices)();
      if (c === undefined || c.p === 0 || this.owned.has(c.p)) continue;
      if (!this.concurrent && this.liveElsewhere(c.p)) continue;
      return c;
    }
    return undefined;
  }

  /** Whether p is the start of a live block this thread does not own (in a quiet single-owner run: none). */
  liveElsewhere(p: number): boolean {
    return this.others?.(p) ?? false;
  }
  /** Set by the test when other threads own blocks too (so that a "bad" offset is not one of theirs). */
  others: ((p: number) => boolean) | undefined;

  // ---- the calls ---------------------------------------------------------------------------

  /** One random call, valid or not. */
  step(): void {
    const r = this.rand.next();
    if (r < 0.3) this.validAlloc();
    else if (r < 0.45) this.validFree();
    else if (r < 0.6) this.validRealloc();
    else if (r < 0.65) this.validUsable();
    else if (r < 0.7) this.validOther();
    else this.invalidCall();
    while (this.liveBytes() > this.maxLive) this.validFree();
  }

  validAlloc(): void {
    const k = this.rand.below(6);
    const size = this.rand.chance(0.03) ? this.rand.pick(HUGE_SIZES) : this.size();
    if (k === 0 || k === 1) {
      const call = `malloc(${size})`;
      const p = this.expectValid(call, this.syncCall(call, () => this.heap.malloc(size))) as number;
      this.adoptFilled(call, p, size);
    } else if (k === 2) {
      const n = this.rand.chance(0.2) ? this.rand.pick([0, 1, 2 ** 32 - 1, 2 ** 31]) : 1 + this.rand.below(64);
      const each = n > 64 || n === 0 ? this.rand.pick([0, 1, 16, size]) : Math.floor(size / n);
      const call = `calloc(${n}, ${each})`;
      const p = this.expectValid(call, this.syncCall(call, () => this.heap.calloc(n, each))) as number;
      const total = n * each;
      if (total > 2 ** 31 && p !== 0) this.fail(`${call} returned ${hex(p)} for ${total} bytes`);
      if (p !== 0) {
        const u8 = this.heap.u8;
        for (let i = 0; i < total; i++) if (u8[p + i] !== 0) this.fail(`${call} = ${hex(p)}: byte ${i} is ${u8[p + i]}, not 0`);
      }
      this.adoptFilled(call, p, total);
    } else if (k === 3) {
      const align = 2 ** this.rand.below(21);
      const call = `alignedAlloc(${align}, ${size})`;
      const p = this.expectValid(call, this.syncCall(call, () => this.heap.alignedAlloc(align, size))) as number;
      this.adoptFilled(call, p, size, align);
    } else if (k === 4) {
      const call = `tryMalloc(${size})`;
      const p = this.expectValid(call, this.syncCall(call, () => this.heap.tryMalloc(size))) as number;
      this.adoptFilled(call, p, size);
    } else {
      const call = `realloc(0, ${size})`;
      const p = this.expectValid(call, this.syncCall(call, () => this.heap.realloc(this.rand.chance(0.5) ? 0 : -0, size))) as number;
      this.adoptFilled(call, p, size);
    }
  }

  private adoptFilled(call: string, p: number, size: number, align = 16): void {
    if (size > this.heapBytes && p !== 0) this.fail(`${call} returned ${hex(p)} for more bytes than the heap has`);
    const b = this.adopt(call, p, size, align);
    if (b !== undefined) this.fill(b);
  }

  validFree(): void {
    const b = this.anyOwned();
    if (b === undefined) {
      const z = this.rand.chance(0.5) ? 0 : -0;
      this.expectValid('free(0)', this.syncCall('free(0)', () => this.heap.free(z)));
      return;
    }
    this.verify(b);
    const call = `free(${hex(b.p)})`;
    this.expectValid(call, this.syncCall(call, () => this.heap.free(b.p)));
    this.released(b.p);
  }

  validRealloc(): void {
    const b = this.anyOwned();
    if (b === undefined) return;
    this.verify(b);
    const size = this.rand.chance(0.1) ? 0 : this.rand.chance(0.03) ? this.rand.pick(HUGE_SIZES) : this.size();
    const call = `realloc(${hex(b.p)}, ${size})`;
    const q = this.expectValid(call, this.syncCall(call, () => this.heap.realloc(b.p, size))) as number;
    this.afterRealloc(call, b, size, q);
  }

  /** The model after realloc(b.p, size) returned q. */
  afterRealloc(call: string, b: Owned, size: number, q: number): void {
    if (q === 0) {
      this.verify(b, b.usable, 'its contents after a failed realloc');
      this.counts.zero++;
      return;
    }
    const keep = Math.min(size, b.usable);
    const u8 = this.heap.u8;
    for (let i = 0; i < keep; i++) {
      if (u8[q + i] !== patternByte(b.seed, i)) this.fail(`${call} = ${hex(q)}: byte ${i} not kept (${u8[q + i]} != ${patternByte(b.seed, i)})`);
    }
    this.owned.delete(b.p);
    if (q !== b.p) this.released(b.p);
    const nb = this.adopt(call, q, size);
    if (nb !== undefined) this.fill(nb);
  }

  validUsable(): void {
    const b = this.anyOwned();
    if (b === undefined) return;
    const call = `usableSize(${hex(b.p)})`;
    const u = this.expectValid(call, this.syncCall(call, () => this.heap.usableSize(b.p)));
    if (u !== b.usable) this.fail(`${call} = ${String(u)}, was ${b.usable}`);
  }

  validOther(): void {
    if (this.concurrent) return;
    if (this.rand.chance(0.5)) {
      this.quietChecks();
      return;
    }
    const s = this.expectValid('stats()', this.syncCall('stats()', () => this.heap.stats())) as { liveBlocks: number };
    if (this.countLive && s.liveBlocks !== this.countLive()) this.fail(`stats().liveBlocks ${s.liveBlocks} != the model's ${this.countLive()}`);
  }
  /** Set where this thread's blocks are all the live blocks (stats().liveBlocks must match). */
  countLive: (() => number) | undefined;

  invalidCall(): void {
    const h = this.heap;
    const k = this.rand.below(9);
    const bad = this.rand.pick(BAD_SIZES);
    const b = this.anyOwned();
    switch (k) {
      case 0: {
        const r = this.syncCall('malloc(bad)', () => h.malloc(bad as number));
        return this.expectError('malloc', 'size', bad, r.e, r.ok);
      }
      case 1: {
        const r = this.syncCall('tryMalloc(bad)', () => h.tryMalloc(bad as number));
        return this.expectError('tryMalloc', 'size', bad, r.e, r.ok);
      }
      case 2: {
        const first = this.rand.chance(0.5);
        const good = this.rand.below(100);
        const r = this.syncCall('calloc(bad)', () => (first ? h.calloc(bad as number, good) : h.calloc(good, bad as number)));
        return this.expectError('calloc', first ? 'n' : 'size', bad, r.e, r.ok);
      }
      case 3: {
        // alignedAlloc: a bad align (not a power of two, too large, or not an integer) or a bad size
        const badAlign = this.rand.pick<unknown>([0, 3, 24, 48, 100, 2 * MiB, 4 * MiB, 2 ** 31, 2 ** 32, 2 ** 33, 2 ** 52, -16, -(2 ** 31), 16.5, NaN, '16', 16n, undefined]);
        if (this.rand.chance(0.5)) {
          const size = this.size();
          const r = this.syncCall(`alignedAlloc(${String(badAlign)}, ${size})`, () => h.alignedAlloc(badAlign as number, size));
          return this.expectError('alignedAlloc', 'align', badAlign, r.e, r.ok);
        }
        const r = this.syncCall('alignedAlloc(64, bad)', () => h.alignedAlloc(64, bad as number));
        return this.expectError('alignedAlloc', 'size', bad, r.e, r.ok);
      }
      case 4: {
        // realloc of a live block to a bad size: the block stays
        if (b === undefined) return;
        const r = this.syncCall(`realloc(${hex(b.p)}, bad)`, () => h.realloc(b.p, bad as number));
        this.expectError('realloc', 'size', bad, r.e, r.ok);
        return this.validUsableOf(b);
      }
      default: {
        // a bad pointer to free, realloc or usableSize: a bad value, or an offset that is no block start
        const fn = this.rand.pick(['free', 'realloc', 'usableSize'] as const);
        let value: unknown;
        let kind: string;
        if (this.rand.chance(0.3)) {
          value = this.rand.pick(BAD_POINTER_VALUES);
          kind = 'value';
        } else {
          const c = this.badPointer();
          if (c === undefined) return;
          value = c.p;
          kind = c.kind;
        }
        const size = this.size();
        const call = `${fn}(${typeof value === 'number' ? hex(value) : String(value)} [${kind}])`;
        const r = this.syncCall(call, () =>
          fn === 'free' ? h.free(value as number) : fn === 'realloc' ? h.realloc(value as number, size) : h.usableSize(value as number),
        );
        this.expectError(fn, 'ptr', value, r.e, r.ok);
        if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && !(r.e instanceof InvalidPointerError || r.e instanceof DoubleFreeError)) {
          this.fail(`${call} threw ${(r.e as Error).name}, not InvalidPointerError/DoubleFreeError: ${(r.e as Error).message}`);
        }
        if (b !== undefined) this.validUsableOf(b);
      }
    }
  }

  private validUsableOf(b: Owned): void {
    if (!this.owned.has(b.p)) return;
    const u = this.expectValid(`usableSize(${hex(b.p)})`, this.syncCall('usableSize', () => this.heap.usableSize(b.p)));
    if (u !== b.usable) this.fail(`usableSize(${hex(b.p)}) = ${String(u)} after a refused call, was ${b.usable}`);
  }

  /** One random asynchronous call (the *Async forms), valid or not. */
  async stepAsync(): Promise<void> {
    const h = this.heap;
    const k = this.rand.below(11);
    const size = this.size();
    const bad = this.rand.pick(BAD_SIZES);
    const b = this.anyOwned();
    switch (k) {
      case 0: {
        const call = `mallocAsync(${size})`;
        return this.adoptFilled(call, this.expectValid(call, await this.asyncCall(call, () => h.mallocAsync(size))) as number, size);
      }
      case 1: {
        const n = 1 + this.rand.below(8);
        const each = Math.floor(size / n);
        const call = `callocAsync(${n}, ${each})`;
        const p = this.expectValid(call, await this.asyncCall(call, () => h.callocAsync(n, each))) as number;
        if (p !== 0) for (let i = 0; i < n * each; i++) if (h.u8[p + i] !== 0) this.fail(`${call} = ${hex(p)}: byte ${i} not 0`);
        return this.adoptFilled(call, p, n * each);
      }
      case 2: {
        const align = 2 ** this.rand.below(21);
        const call = `alignedAllocAsync(${align}, ${size})`;
        return this.adoptFilled(call, this.expectValid(call, await this.asyncCall(call, () => h.alignedAllocAsync(align, size))) as number, size, align);
      }
      case 3: {
        if (b === undefined) return;
        this.verify(b);
        const call = `freeAsync(${hex(b.p)})`;
        this.expectValid(call, await this.asyncCall(call, () => h.freeAsync(b.p)));
        this.released(b.p);
        return;
      }
      case 4: {
        if (b === undefined) return;
        this.verify(b);
        const to = this.rand.chance(0.1) ? 0 : size;
        const call = `reallocAsync(${hex(b.p)}, ${to})`;
        const q = this.expectValid(call, await this.asyncCall(call, () => h.reallocAsync(b.p, to))) as number;
        return this.afterRealloc(call, b, to, q);
      }
      case 5: {
        const r = await this.asyncCall('mallocAsync(bad)', () => h.mallocAsync(bad as number));
        return this.expectError('mallocAsync', 'size', bad, r.e, r.ok);
      }
      case 6: {
        const first = this.rand.chance(0.5);
        const r = await this.asyncCall('callocAsync(bad)', () => (first ? h.callocAsync(bad as number, 8) : h.callocAsync(8, bad as number)));
        return this.expectError('callocAsync', first ? 'n' : 'size', bad, r.e, r.ok);
      }
      case 7: {
        const badAlign = this.rand.pick<unknown>([0, 3, 24, 2 * MiB, 2 ** 31, 2 ** 32, -16, 16.5, NaN, '16']);
        const r = await this.asyncCall('alignedAllocAsync(bad)', () => h.alignedAllocAsync(badAlign as number, size));
        return this.expectError('alignedAllocAsync', 'align', badAlign, r.e, r.ok);
      }
      case 10: {
        // Misuse: reallocAsync of a block and free of it in the same tick (a double free): one of
        // the two is refused, or realloc left the block where it was (then free freed it). Quiet heaps only.
        if (b === undefined || this.concurrent) return;
        this.verify(b);
        const to = this.rand.chance(0.5) ? size : b.usable + 1 + this.rand.below(3 * SLOT);
        this.note(`reallocAsync(${hex(b.p)}, ${to}) with free(${hex(b.p)}) in the same tick`);
        this.counts.async++;
        const pending = h.reallocAsync(b.p, to).then(
          (q) => ({ ok: true, q, e: undefined as unknown }),
          (e: unknown) => ({ ok: false, q: 0, e }),
        );
        let freeErr: unknown;
        try {
          h.free(b.p);
        } catch (e) {
          freeErr = e;
        }
        // The block right after it, if this thread owns it, freed too (a valid free) half the time:
        // the slots a move may then take from the old block's offset on.
        const after = this.owned.get(b.p + b.usable);
        if (after !== undefined && after !== b && this.rand.chance(0.5)) {
          this.verify(after);
          this.expectValid(`free(${hex(after.p)})`, this.syncCall(`free(${hex(after.p)})`, () => h.free(after.p)));
          this.released(after.p);
        }
        const r = await pending;
        this.owned.delete(b.p);
        this.released(b.p);
        if (!r.ok && !(r.e instanceof HeapError)) this.fail(`reallocAsync raced by free threw ${(r.e as Error)?.name}: ${(r.e as Error)?.message}`);
        if (freeErr !== undefined && !(freeErr instanceof DoubleFreeError)) this.fail(`free raced with reallocAsync threw ${(freeErr as Error)?.name}: ${(freeErr as Error)?.message}`);
        if (freeErr === undefined) {
          // free took the block: reallocAsync must have been refused, or have kept the block where it was.
          if (r.ok && r.q !== b.p && r.q !== 0) this.fail(`reallocAsync(${hex(b.p)}, ${to}) resolved to ${hex(r.q)} and the free of ${hex(b.p)} in the same tick succeeded too`);
          if (r.ok && r.q === b.p) this.released(b.p);
        } else {
          // free refused: reallocAsync moved the block first (synchronously)
          if (!r.ok || r.q === 0 || r.q === b.p) this.fail(`free(${hex(b.p)}) was refused though reallocAsync answered ${r.ok ? hex(r.q) : (r.e as Error).message}`);
          const keep = Math.min(to, b.usable);
          for (let i = 0; i < keep; i++) if (h.u8[r.q + i] !== patternByte(b.seed, i)) this.fail(`reallocAsync raced: byte ${i} not kept`);
          const nb = this.adopt(`reallocAsync(${hex(b.p)}, ${to})`, r.q, to);
          if (nb !== undefined) this.fill(nb);
        }
        this.quietChecks();
        return;
      }
      default: {
        const fn = this.rand.pick(['freeAsync', 'reallocAsync'] as const);
        const c = this.rand.chance(0.3) ? { p: this.rand.pick(BAD_POINTER_VALUES) as number, kind: 'value' } : this.badPointer();
        if (c === undefined) return;
        if (fn === 'reallocAsync' && b !== undefined && this.rand.chance(0.3)) {
          // a live block, a bad size: refused, the block stays
          const r = await this.asyncCall(`reallocAsync(${hex(b.p)}, bad)`, () => h.reallocAsync(b.p, bad as number));
          this.expectError('reallocAsync', 'size', bad, r.e, r.ok);
          return this.validUsableOf(b);
        }
        const r = await this.asyncCall(`${fn}(${String(c.p)} [${c.kind}])`, () => (fn === 'freeAsync' ? h.freeAsync(c.p) : h.reallocAsync(c.p, size)));
        this.expectError(fn, 'ptr', c.p, r.e, r.ok);
        if (b !== undefined) this.validUsableOf(b);
      }
    }
  }

  /**
   * Misuse of a block just freed, in a quiet heap: a second free, realloc and usableSize of it,
   * each refused with DoubleFreeError (or InvalidPointerError where its slot was given back).
   */
  misuseFreed(p: number): void {
    if (this.concurrent || this.owned.has(p) || this.liveElsewhere(p)) return;
    const fn = this.rand.pick(['free', 'realloc', 'usableSize'] as const);
    const r = this.syncCall(`${fn}(${hex(p)} [just freed])`, () =>
      fn === 'free' ? this.heap.free(p) : fn === 'realloc' ? this.heap.realloc(p, 32) : this.heap.usableSize(p),
    );
    this.expectError(fn, 'ptr', p, r.e, r.ok);
    if (!(r.e instanceof DoubleFreeError || r.e instanceof InvalidPointerError)) this.fail(`${fn}(${hex(p)}) of a freed block threw ${(r.e as Error).name}`);
  }

  /** Blocks handed over by another thread (as numbers, with their model): checked, then owned here. */
  receive(blocks: readonly Owned[]): void {
    for (const b of blocks) {
      this.note(`receive(${hex(b.p)})`);
      for (const o of this.owned.values()) {
        if (b.p < o.p + Math.max(o.usable, 1) && o.p < b.p + Math.max(b.usable, 1)) {
          this.fail(`received ${hex(b.p)}..+${b.usable}, overlapping owned ${hex(o.p)}..+${o.usable}`);
        }
      }
      const u = this.heap.usableSize(b.p);
      if (u !== b.usable) this.fail(`usableSize(${hex(b.p)}) here is ${u}, ${b.usable} where it came from`);
      this.verify(b, b.usable, 'its pattern on the way over');
      this.owned.set(b.p, { ...b });
      this.forget(b.p);
    }
  }

  /** Offsets another thread freed (handed back with its blocks): misused here too, in quiet phases. */
  learnFreed(ps: readonly number[]): void {
    for (const p of ps) {
      if (this.owned.has(p) || this.freed.includes(p)) continue;
      this.freed.push(p);
      if (this.freed.length > 32) this.freed.shift();
    }
  }

  /** Takes up to n owned blocks out of the model, to hand to another thread. */
  handOut(n: number): Owned[] {
    const out: Owned[] = [];
    while (out.length < n && this.owned.size > 0) {
      const b = this.anyOwned()!;
      this.owned.delete(b.p);
      out.push(b);
    }
    return out;
  }

  /**
   * A worker's round on the blocks it was handed: each one freed (then, in a quiet heap, misused
   * as freed), reallocated, or kept; then `ops` random calls. Every block left is handed back.
   */
  async round(blocks: readonly Owned[], ops: number): Promise<Owned[]> {
    this.receive(blocks);
    for (const b of blocks) {
      const r = this.rand.next();
      if (r < 0.4) {
        this.verify(b);
        const call = `free(${hex(b.p)}) [cross-thread]`;
        this.expectValid(call, this.syncCall(call, () => this.heap.free(b.p)));
        this.released(b.p);
        this.counts.crossFrees++;
        if (this.rand.chance(0.5)) this.misuseFreed(b.p);
      } else if (r < 0.7) {
        const size = this.rand.chance(0.1) ? 0 : this.size();
        const call = `realloc(${hex(b.p)}, ${size}) [cross-thread]`;
        const q = this.expectValid(call, this.syncCall(call, () => this.heap.realloc(b.p, size))) as number;
        this.afterRealloc(call, b, size, q);
        this.counts.crossReallocs++;
        if (q !== 0 && q !== b.p && this.rand.chance(0.5)) this.misuseFreed(b.p);
      }
    }
    for (let i = 0; i < ops; i++) {
      if (this.rand.chance(0.05)) await this.stepAsync();
      else this.step();
    }
    return this.handOut(this.owned.size);
  }

  freeAll(): void {
    for (const b of [...this.owned.values()]) {
      this.verify(b);
      this.heap.free(b.p);
      this.released(b.p);
    }
  }
}
