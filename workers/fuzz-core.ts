/**
 * fuzz: the per-thread half of the randomized heap fuzzer (test/fuzz-heap.test.ts). One Fuzzer
 * per thread keeps that thread's live blocks, each filled with a pattern derived from its tag and
 * checked before it is freed or resized, and makes random calls, good and bad, on the heap.
 * Used directly by the main thread and through workers/fuzz-worker.ts by each worker.
 */
import { DoubleFreeError, HeapCorruptionError, InvalidPointerError, type SharedHeap } from '../src/index.js';

export interface Block {
  p: number;
  size: number;
  tag: number;
}

/** mulberry32: small, seedable, good enough for a fuzzer. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.u32() / 4294967296) * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
}

export interface FuzzConfig {
  debug: boolean;
  /** Largest block asked for (bytes). */
  maxSize: number;
  /** Weight of bad-input calls (0..1 of the ops). */
  badRate: number;
  /** Live blocks to aim at (above it frees are favoured). */
  targetLive: number;
}

export interface FuzzCounts {
  ops: number;
  malloc: number;
  calloc: number;
  realloc: number;
  free: number;
  aligned: number;
  usable: number;
  zero: number;
  bad: number;
  strays: number;
  uafReports: number;
  remoteFrees: number;
  oom: number;
}

export function newCounts(): FuzzCounts {
  return { ops: 0, malloc: 0, calloc: 0, realloc: 0, free: 0, aligned: 0, usable: 0, zero: 0, bad: 0, strays: 0, uafReports: 0, remoteFrees: 0, oom: 0 };
}

export class FuzzFailure extends Error {}

function hex(n: number): string {
  return '0x' + n.toString(16);
}

const UAF_RE = /block at (0x[0-9a-f]+) was written after it was freed/;

export class Fuzzer {
  live = new Map<number, Block>();
  outbox: Block[] = [];
  counts = newCounts();
  log: string[] = [];
  private u8: Uint8Array | undefined;
  private u32: Uint32Array | undefined;
  private nextTag: number;

  constructor(
    public heap: SharedHeap,
    public rng: Rng,
    public who: string,
    public cfg: FuzzConfig,
  ) {
    this.nextTag = (rng.u32() & 0xffff) << 12;
  }

  private trace(s: string): void {
    this.log.push(s);
    if (this.log.length > 60) this.log.shift();
  }

  fail(msg: string): never {
    throw new FuzzFailure(`[${this.who}] ${msg}\n  last ops: ${this.log.slice(-25).join(' | ')}`);
  }

  private views(): { u8: Uint8Array; u32: Uint32Array } {
    const u8 = this.heap.u8;
    if (u8 !== this.u8) {
      this.u8 = u8;
      this.u32 = new Uint32Array(u8.buffer, u8.byteOffset, u8.byteLength >>> 2);
    }
    return { u8, u32: this.u32! };
  }

  fill(b: Block): void {
    const { u8, u32 } = this.views();
    const words = b.size >>> 2;
    const w0 = b.p >>> 2;
    const base = Math.imul(b.tag, 0x9e3779b1);
    for (let j = 0; j < words; j++) u32[w0 + j] = (base + Math.imul(j, 0x01000193)) >>> 0;
    for (let k = words << 2; k < b.size; k++) u8[b.p + k] = (b.tag + k * 7) & 255;
  }

  /** Checks the first `len` bytes (default: all) of b's pattern; fails naming the first bad byte. */
  verify(b: Block, where: string, len = b.size): void {
    const { u8, u32 } = this.views();
    const n = Math.min(len, b.size);
    const words = n >>> 2;
    const w0 = b.p >>> 2;
    const base = Math.imul(b.tag, 0x9e3779b1);
    for (let j = 0; j < words; j++) {
      if (u32[w0 + j] !== (base + Math.imul(j, 0x01000193)) >>> 0) {
        this.fail(`${where}: block ${hex(b.p)} (size ${b.size}, tag ${b.tag}) corrupted at byte offset ${j * 4}: ${hex(u32[w0 + j])}`);
      }
    }
    const fullWords = b.size >>> 2;
    for (let k = words << 2; k < n; k++) {
      const want = k < fullWords << 2 ? ((base + Math.imul(k >>> 2, 0x01000193)) >>> ((k & 3) * 8)) & 255 : (b.tag + k * 7) & 255;
      if (u8[b.p + k] !== want) this.fail(`${where}: block ${hex(b.p)} (size ${b.size}) corrupted at byte ${k}`);
    }
  }

  verifyAll(where: string): void {
    for (const b of this.live.values()) this.verify(b, where);
    for (const b of this.outbox) this.verify(b, where + ' (outbox)');
  }

  randSize(): number {
    const r = this.rng.int(1000);
    const max = this.cfg.maxSize;
    let s: number;
    if (r < 30) s = 0;
    else if (r < 550) s = this.rng.range(1, 128);
    else if (r < 800) s = this.rng.range(129, 4096);
    else if (r < 940) s = this.rng.range(4097, 131072);
    else if (r < 990) s = this.rng.range(131073, 1 << 20);
    else s = this.rng.range(1 << 20, 4 << 20);
    if (this.rng.chance(0.05)) s = this.rng.pick([16, 128, 129, 512, 1024, 4096, 4097, 16384, 131072, 131073, 1 << 20, (1 << 20) + 1]);
    return Math.min(s, max);
  }

  private adopt(p: number, size: number, what: string): Block {
    if (p <= 0 || p % 16 !== 0) this.fail(`${what} returned ${p}: not a positive multiple of 16`);
    const { u8 } = this.views();
    if (p + size > u8.length) this.fail(`${what} returned ${hex(p)}: block of ${size} runs past the heap (${u8.length})`);
    if (this.live.has(p)) this.fail(`${what} returned ${hex(p)}, already live in this thread`);
    const us = this.heap.usableSize(p);
    if (this.cfg.debug ? us !== size : us < size) this.fail(`${what} returned ${hex(p)}: usableSize ${us} for a request of ${size}`);
    const b = { p, size, tag: ++this.nextTag };
    this.fill(b);
    this.live.set(p, b);
    return b;
  }

  private randomLive(): Block | undefined {
    if (this.live.size === 0) return undefined;
    // Map iteration is insertion ordered; pick within a bounded prefix/suffix for speed.
    const k = this.rng.int(Math.min(this.live.size, 64));
    let i = 0;
    for (const b of this.live.values()) if (i++ === k) return b;
    return undefined;
  }

  /** Handles a debug-mode use-after-free report thrown by a call that hands out a block: frees the named block. */
  private onError(e: unknown, what: string): void {
    if (this.cfg.debug && e instanceof HeapCorruptionError) {
      const m = UAF_RE.exec(e.message);
      if (m !== null) {
        const p = parseInt(m[1], 16);
        this.counts.uafReports++;
        this.trace(`uaf-report ${hex(p)}`);
        if (this.live.has(p)) this.fail(`${what}: a use-after-free report names ${hex(p)}, a live block of this thread`);
        this.heap.free(p);
        return;
      }
    }
    this.fail(`${what} threw ${(e as Error)?.stack ?? String(e)}`);
  }

  freeBlock(b: Block, where: string): void {
    this.verify(b, where);
    this.trace(`free ${hex(b.p)}`);
    this.heap.free(b.p);
    this.counts.free++;
  }

  /** One random call. `canStray`: stray writes into just-freed blocks allowed (no other thread runs). */
  step(canStray: boolean): void {
    const rng = this.rng;
    const h = this.heap;
    this.counts.ops++;
    if (rng.chance(this.cfg.badRate)) {
      try {
        this.bad(canStray);
      } catch (e) {
        if (e instanceof FuzzFailure) throw e;
        this.onError(e, 'bad input');
      }
      return;
    }
    const full = this.live.size > this.cfg.targetLive;
    const r = rng.int(100);
    const what = r < 30 ? (full ? 'free' : 'malloc') : r < 38 ? 'calloc' : r < 52 ? 'realloc' : r < 80 ? 'free' : r < 86 ? 'aligned' : r < 90 ? 'usable' : r < 95 ? 'give' : 'zero';
    try {
      switch (what) {
        case 'malloc': {
          const n = this.randSize();
          this.trace(`malloc ${n}`);
          const p = h.malloc(n);
          this.counts.malloc++;
          if (p === 0) this.counts.oom++;
          else this.adopt(p, n, `malloc(${n})`);
          break;
        }
        case 'calloc': {
          const size = this.randSize();
          const n = size === 0 ? rng.int(3) : rng.range(1, Math.max(1, Math.min(8, Math.floor(this.cfg.maxSize / Math.max(size, 1)))));
          const total = n * size;
          this.trace(`calloc ${n}x${size}`);
          const p = h.calloc(n, size);
          this.counts.calloc++;
          if (p !== 0) {
            const { u8 } = this.views();
            for (let i = 0; i < total; i++) if (u8[p + i] !== 0) this.fail(`calloc(${n}, ${size}) = ${hex(p)}: byte ${i} is ${u8[p + i]}, not 0`);
            this.adopt(p, total, `calloc(${n}, ${size})`);
          }
          break;
        }
        case 'realloc': {
          const b = this.randomLive();
          if (b === undefined || rng.chance(0.1)) {
            const n = this.randSize();
            this.trace(`realloc 0,${n}`);
            const p = h.realloc(0, n);
            if (p === 0) this.counts.oom++;
          else this.adopt(p, n, `realloc(0, ${n})`);
            break;
          }
          const n = rng.chance(0.3) ? rng.range(0, b.size + 64) : rng.chance(0.05) ? 0 : this.randSize();
          this.verify(b, 'before realloc');
          this.trace(`realloc ${hex(b.p)},${b.size}->${n}`);
          const p = h.realloc(b.p, n);
          this.counts.realloc++;
          if (p === 0) {
            this.counts.oom++;
            // realloc(p, 0) answers a unique block as malloc(0) does: 0 only when out of memory, p intact then.
            if (n === 0) this.counts.zero++;
            if (h.usableSize(b.p) < 0) this.fail('unreachable');
            this.verify(b, `after failed realloc(${hex(b.p)}, ${n})`);
            break;
          }
          this.live.delete(b.p);
          const moved = { p, size: b.size, tag: b.tag };
          this.verify(moved, `after realloc(${hex(b.p)}, ${n}) = ${hex(p)}`, n);
          this.adopt(p, n, `realloc(${hex(b.p)}, ${n})`);
          break;
        }
        case 'free': {
          const b = this.randomLive();
          if (b === undefined) break;
          this.live.delete(b.p);
          this.freeBlock(b, 'before free');
          // Only while no other thread runs: a freed block may leave this thread's magazine at once
          // (a drain) and be taken by another thread, whose live block a second free would hit.
          if (canStray && rng.chance(0.1)) this.expectDoubleFree(b.p);
          if (canStray && rng.chance(0.3)) this.stray(b);
          break;
        }
        case 'aligned': {
          const align = 1 << rng.int(21);
          const n = this.randSize();
          this.trace(`aligned ${align},${n}`);
          const p = h.alignedAlloc(align, n);
          this.counts.aligned++;
          if (p !== 0) {
            if (p % align !== 0) this.fail(`alignedAlloc(${align}, ${n}) = ${hex(p)} not aligned`);
            this.adopt(p, n, `alignedAlloc(${align}, ${n})`);
          }
          break;
        }
        case 'usable': {
          const b = this.randomLive();
          if (b === undefined) break;
          const us = h.usableSize(b.p);
          this.counts.usable++;
          if (this.cfg.debug ? us !== b.size : us < b.size) this.fail(`usableSize(${hex(b.p)}) = ${us} for size ${b.size}`);
          break;
        }
        case 'give': {
          const b = this.randomLive();
          if (b === undefined) break;
          this.live.delete(b.p);
          this.outbox.push(b);
          break;
        }
        case 'zero': {
          this.trace('malloc 0');
          const p = h.malloc(0);
          this.counts.zero++;
          if (p === 0) this.counts.oom++;
          else this.adopt(p, 0, 'malloc(0)');
          break;
        }
      }
    } catch (e) {
      if (e instanceof FuzzFailure) throw e;
      this.onError(e, what);
    }
  }

  /**
   * One random call through the main thread's async variants (mallocAsync, callocAsync,
   * reallocAsync, alignedAllocAsync, freeAsync): made while a worker may die holding the lock.
   */
  async stepAsync(): Promise<void> {
    const rng = this.rng;
    const h = this.heap;
    this.counts.ops++;
    const full = this.live.size > this.cfg.targetLive;
    const r = rng.int(100);
    const what = r < 30 ? (full ? 'free' : 'malloc') : r < 40 ? 'calloc' : r < 60 ? 'realloc' : r < 90 ? 'free' : 'aligned';
    try {
      switch (what) {
        case 'malloc': {
          const n = this.randSize();
          this.trace(`mallocAsync ${n}`);
          const p = await h.mallocAsync(n);
          this.counts.malloc++;
          if (p === 0) this.counts.oom++;
          else this.adopt(p, n, `mallocAsync(${n})`);
          break;
        }
        case 'calloc': {
          const size = this.randSize();
          const n = rng.range(1, 3);
          if (n * size > this.cfg.maxSize) break;
          this.trace(`callocAsync ${n}x${size}`);
          const p = await h.callocAsync(n, size);
          this.counts.calloc++;
          if (p !== 0) {
            const { u8 } = this.views();
            for (let i = 0; i < n * size; i++) if (u8[p + i] !== 0) this.fail(`callocAsync(${n}, ${size}) = ${hex(p)}: byte ${i} is ${u8[p + i]}`);
            this.adopt(p, n * size, `callocAsync(${n}, ${size})`);
          }
          break;
        }
        case 'realloc': {
          const b = this.randomLive();
          if (b === undefined) break;
          const n = rng.chance(0.4) ? rng.range(0, b.size + 64) : this.randSize();
          this.verify(b, 'before reallocAsync');
          this.live.delete(b.p);
          this.trace(`reallocAsync ${hex(b.p)},${b.size}->${n}`);
          let p: number;
          try {
            p = await h.reallocAsync(b.p, n);
          } catch (e) {
            this.live.set(b.p, b);
            throw e;
          }
          this.counts.realloc++;
          if (p === 0) {
            this.live.set(b.p, b);
            this.verify(b, `after failed reallocAsync(${hex(b.p)}, ${n})`);
            break;
          }
          this.verify({ p, size: b.size, tag: b.tag }, `after reallocAsync(${hex(b.p)}, ${n}) = ${hex(p)}`, n);
          this.adopt(p, n, `reallocAsync(${hex(b.p)}, ${n})`);
          break;
        }
        case 'free': {
          const b = this.randomLive();
          if (b === undefined) break;
          this.live.delete(b.p);
          this.verify(b, 'before freeAsync');
          this.trace(`freeAsync ${hex(b.p)}`);
          await h.freeAsync(b.p);
          this.counts.free++;
          break;
        }
        case 'aligned': {
          const align = 1 << rng.int(21);
          const n = this.randSize();
          this.trace(`alignedAllocAsync ${align},${n}`);
          const p = await h.alignedAllocAsync(align, n);
          this.counts.aligned++;
          if (p !== 0) {
            if (p % align !== 0) this.fail(`alignedAllocAsync(${align}, ${n}) = ${hex(p)} not aligned`);
            this.adopt(p, n, `alignedAllocAsync(${align}, ${n})`);
          }
          break;
        }
      }
    } catch (e) {
      if (e instanceof FuzzFailure) throw e;
      this.onError(e, what + 'Async');
    }
  }

  /** Frees blocks handed over by another thread (remote frees), or keeps some as its own. */
  receive(blocks: Block[]): void {
    for (const b of blocks) {
      if (this.rng.chance(0.2)) {
        this.verify(b, 'received');
        this.live.set(b.p, b);
        continue;
      }
      this.freeBlock(b, 'before remote free');
      this.counts.remoteFrees++;
    }
  }

  expectDoubleFree(p: number): void {
    this.expectError(() => this.heap.free(p), DoubleFreeError, 'free', 'ptr', p);
  }

  /** A write into block b, just freed, while no other thread runs: only where the README says it is harmless. */
  stray(b: Block): void {
    const { u8 } = this.views();
    const usable = Math.max(b.size, 16); // no usableSize() on a freed block: stay within what was asked (16 for tiny)
    const small = (this.cfg.debug ? b.size + 9 : b.size) <= 131072;
    // Non-debug small blocks: bytes 0..3 may hold a remote list's link (layout.ts FREE_LINK_W): keep out. (Bytes
    // 4..7 hold its check, FREE_CHECK_W: a write there alone is told from the link, remote.ts linkOf.)
    // Debug small blocks: bytes 4..7 hold the freed mark, 8.. the fill: a write there is reported at hand-out (HeapCorruptionError).
    // Large runs hold nothing of the allocator's (their metas are outside).
    const lo = small ? 4 : 0;
    const limit = this.cfg.debug && small ? Math.min(usable, b.size) : usable;
    if (limit <= lo) return;
    const n = this.rng.range(1, Math.min(32, limit - lo));
    const at = this.rng.range(lo, limit - n);
    for (let i = 0; i < n; i++) u8[b.p + at + i] = this.rng.int(256);
    // A realistic stray: a pointer-looking word.
    if (limit - lo >= 8 && this.rng.chance(0.5)) {
      const w = (b.p + lo + 3 + this.rng.int(limit - lo - 7)) & ~3;
      if (w >= b.p + lo && w + 4 <= b.p + limit) new DataView(u8.buffer, u8.byteOffset).setInt32(w, b.p + 16 * this.rng.int(64), true);
    }
    this.counts.strays++;
    this.trace(`stray ${hex(b.p)}+${at}x${n}`);
  }

  expectError(fn: () => unknown, cls: abstract new (...a: never[]) => Error, fname: string, arg: string, value: unknown): void {
    this.counts.bad++;
    let got: unknown;
    try {
      const r = fn();
      this.fail(`${fname}(${arg}=${String(value)}) returned ${String(r)}, expected ${cls.name}`);
    } catch (e) {
      if (e instanceof FuzzFailure) throw e;
      got = e;
    }
    const e = got as Error;
    const seen = got as { constructor?: { name?: string }; message?: string } | undefined;
    if (!(e instanceof cls)) this.fail(`${fname}(${arg}=${String(value)}) threw ${seen?.constructor?.name}: ${seen?.message}, expected ${cls.name}`);
    const msg = e.message;
    if (!msg.startsWith(`${fname}(${arg})`)) this.fail(`${cls.name} message does not name ${fname}(${arg}): ${msg}`);
    const v =
      typeof value === 'number' && Number.isInteger(value) && value >= 0
        ? [String(value), hex(value)]
        : typeof value === 'number' || typeof value === 'string'
          ? [typeof value === 'string' ? JSON.stringify(value) : String(value)]
          : value === null || value === undefined
            ? [String(value)]
            : [typeof value, String(value)];
    if (!v.some((s) => msg.includes(s))) this.fail(`${cls.name} message does not name the value ${String(value)}: ${msg}`);
  }

  /** One bad input, expecting the documented error; nothing may change. */
  bad(quiet: boolean): void {
    const h = this.heap;
    const rng = this.rng;
    const b = this.randomLive();
    const badNums: unknown[] = [NaN, -1, -16, 1.5, Infinity, -Infinity, 2 ** 53, -0.5];
    let k = rng.int(12);
    if (!quiet && (k === 7 || k === 11)) k = 5; // double frees only while no other thread can take the block
    this.trace(`bad#${k}`);
    switch (k) {
      case 0: {
        const v = rng.pick(badNums);
        this.expectError(() => h.malloc(v as number), RangeError, 'malloc', 'size', v);
        break;
      }
      case 1: {
        const v = rng.pick(['5', null, undefined, {}, 10n, true] as unknown[]);
        const f = rng.pick(['malloc', 'free', 'usableSize'] as const);
        const arg = f === 'malloc' ? 'size' : 'ptr';
        this.expectError(() => (h[f] as (x: unknown) => unknown).call(h, v), TypeError, f, arg, v);
        break;
      }
      case 2: {
        const v = rng.pick(badNums);
        if (rng.chance(0.5)) this.expectError(() => h.calloc(v as number, 4), RangeError, 'calloc', 'n', v);
        else this.expectError(() => h.calloc(3, v as number), RangeError, 'calloc', 'size', v);
        break;
      }
      case 3: {
        const v = rng.pick(badNums);
        if (b === undefined) break;
        this.expectError(() => h.realloc(b.p, v as number), RangeError, 'realloc', 'size', v);
        break;
      }
      case 4: {
        const v = rng.pick(badNums);
        this.expectError(() => h.free(v as number), RangeError, 'free', 'ptr', v);
        break;
      }
      case 5: {
        // An interior pointer of a live block.
        if (b === undefined || b.size < 2) break;
        const q = b.p + rng.range(1, b.size - 1);
        const f = rng.pick(['free', 'realloc', 'usableSize'] as const);
        if (f === 'free') this.expectError(() => h.free(q), InvalidPointerError, 'free', 'ptr', q);
        else if (f === 'realloc') this.expectError(() => h.realloc(q, 10), InvalidPointerError, 'realloc', 'ptr', q);
        else this.expectError(() => h.usableSize(q), InvalidPointerError, 'usableSize', 'ptr', q);
        break;
      }
      case 6: {
        // Offsets malloc never returned: misaligned, in the metadata, outside the heap.
        const len = h.u8.length;
        const q = rng.pick([rng.range(1, 15), 16 * rng.range(1, 4096), len + 16 * rng.int(1000), 2 ** 31 - 16, rng.range(1, len - 1) | 1]);
        this.expectError(() => h.free(q), InvalidPointerError, 'free', 'ptr', q);
        break;
      }
      case 7: {
        // Double free of a fresh block, one call after the other.
        const n = this.randSize();
        let p = 0;
        try {
          p = h.malloc(n);
        } catch (e) {
          this.onError(e, 'malloc for double free');
          break;
        }
        if (p === 0) break;
        const blk = this.adopt(p, n, `malloc(${n})`);
        this.live.delete(p);
        this.freeBlock(blk, 'double-free victim');
        this.expectDoubleFree(p);
        if (rng.chance(0.3)) this.expectError(() => h.realloc(p, 8), DoubleFreeError, 'realloc', 'ptr', p);
        break;
      }
      case 8: {
        const a = rng.pick([0, 3, 6, 12, 24, 2 << 20, 1 << 30, -1, NaN, 1.5]);
        this.expectError(() => h.alignedAlloc(a, 16), RangeError, 'alignedAlloc', 'align', a);
        break;
      }
      case 9: {
        const v = rng.pick(badNums);
        this.expectError(() => h.alignedAlloc(64, v as number), RangeError, 'alignedAlloc', 'size', v);
        break;
      }
      case 10: {
        const v = rng.pick(badNums);
        this.expectError(() => h.usableSize(v as number), RangeError, 'usableSize', 'ptr', v);
        break;
      }
      case 11: {
        // realloc of a freed block (double free through realloc)
        const n = rng.range(1, 300);
        const p = h.malloc(n);
        if (p === 0) break;
        h.free(p);
        this.expectError(() => h.realloc(p, n + 1), DoubleFreeError, 'realloc', 'ptr', p);
        break;
      }
    }
  }

  /** Frees every block this thread holds (live and outbox), checking each. */
  freeAll(): void {
    for (const b of [...this.live.values(), ...this.outbox]) this.freeBlock(b, 'final free');
    this.live.clear();
    this.outbox = [];
  }
}
