/**
 * The churn of test/concurrent-misuse.test.ts (from an audit of 2026-12-07), run by each worker
 * and by the main thread: malloc, calloc, realloc, alignedAlloc, free and usableSize over tagged
 * blocks, about a third of the blocks let go handed to another thread through a shared mailbox
 * (which frees, reallocates or keeps them: remote frees), and ~15% misuse whose outcome no other
 * thread can change: interior, misaligned and out-of-heap offsets, bad numbers and types, bad
 * sizes and alignments, sizes no heap holds, usableSize of any offset, every call after detach().
 * Each must throw the documented class with a message naming the call, the argument and the
 * value; anything else is an anomaly, reported to the main thread.
 *
 * Double frees are made at quiet points only (probe(), while every other thread is idle): during
 * the churn a freed offset can be handed out again by another thread before the second call (its
 * slab emptied and taken by another class, or a remote free collected by the slab's owner), and
 * such a second call acts on the new block, as the README documents (the audit saw 0-5 a run).
 *
 * A shared owner map (one Int32 per 16 bytes of heap: the holder's number, TRANSIT while in a
 * mailbox) tells a block handed out twice, or lost in a mailbox, from a correct hand-over.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { DoubleFreeError, HeapStateError, InvalidPointerError, SharedHeap, type SharedMemory } from '../src/index.js';
import { Rand } from './misuse-model-core.js';

export interface ChurnInit {
  buffer: SharedArrayBuffer | SharedMemory;
  /** The owner map. */
  own: SharedArrayBuffer;
  /** MAILBOX Int32 slots per thread (0 or a block's offset). */
  mail: SharedArrayBuffer;
  /** This thread's number, 1 to `threads`. */
  me: number;
  threads: number;
  seed: number;
  heapBytes: number;
  /** The bytes a thread holds at most before it frees more than it allocates. */
  maxLive: number;
}

/** What a thread answers at a quiet point and at the end. */
export interface ChurnReport {
  held: Array<[number, number]>;
  anomalies: string[];
  counts: ChurnCounts;
}

export interface ChurnCounts {
  ops: number;
  misuse: number;
  sent: number;
  remoteFrees: number;
  detaches: number;
  /** Second calls on freed blocks at quiet points, own and received (each one refused). */
  doubleFrees: number;
  receivedDoubleFrees: number;
}

export const MAILBOX = 64;
const TRANSIT = -1;
const MISUSE_RATE = 0.15;
const LARGE_RATE = 0.03;
const DETACH_RATE = 0.05;

const hex = (n: number): string => '0x' + n.toString(16);
const pat = (tag: number, i: number): number => (tag + Math.imul(i, 31) + (i >>> 8)) & 255;

/** Writes the tag and size (bytes 0-7) and the tag's pattern over the block's first 512 and last 64 bytes. */
function tagBlock(u8: Uint8Array, p: number, size: number, tag: number): void {
  for (let k = 0; k < 4; k++) {
    u8[p + k] = (tag >>> (8 * k)) & 255;
    u8[p + 4 + k] = (size >>> (8 * k)) & 255;
  }
  const head = Math.min(size, 512);
  for (let i = 8; i < head; i++) u8[p + i] = pat(tag, i);
  for (let i = Math.max(head, size - 64); i < size; i++) u8[p + i] = pat(tag, i);
}

const word = (u8: Uint8Array, p: number): number => (u8[p]! | (u8[p + 1]! << 8) | (u8[p + 2]! << 16) | (u8[p + 3]! << 24)) >>> 0;

/** [tag, size] of a block tagBlock wrote (of `size` bytes when given), or what is wrong with it. */
export function verifyBlock(u8: Uint8Array, p: number, size?: number): string | [number, number] {
  const tag = word(u8, p);
  const n = word(u8, p + 4);
  if (size !== undefined && n !== size) return `block ${hex(p)}: its header says ${n} bytes, not ${size}`;
  if (n < 8 || n > 64 << 20) return `block ${hex(p)}: its header says ${n} bytes`;
  const head = Math.min(n, 512);
  const bad = (from: number, to: number): number => {
    for (let i = from; i < to; i++) if (u8[p + i] !== pat(tag, i)) return i;
    return -1;
  };
  const i = Math.max(bad(8, head), bad(Math.max(head, n - 64), n));
  return i < 0 ? [tag, n] : `block ${hex(p)} (${n} bytes) byte ${i}: ${u8[p + i]}, not ${pat(tag, i)}`;
}

type ErrorClass = abstract new (...a: never[]) => Error;
type Ptr = 'free' | 'realloc' | 'usableSize';
const PTR_CALLS: readonly Ptr[] = ['free', 'realloc', 'usableSize'];

/** Values of a wrong type and how an error message shows them. */
const BAD_TYPES: ReadonlyArray<[unknown, string]> = [
  ['16', '"16"'], [16n, '16n'], [null, 'null'], [undefined, 'undefined'], [{}, 'an object'], [[16], 'an array'], [true, 'true'],
];

export class Churner {
  /** offset -> bytes, every block this thread holds. */
  readonly held = new Map<number, number>();
  /** The held blocks that came from another thread's mailbox. */
  readonly received = new Set<number>();
  readonly anomalies: string[] = [];
  readonly counts: ChurnCounts = { ops: 0, misuse: 0, sent: 0, remoteFrees: 0, detaches: 0, doubleFrees: 0, receivedDoubleFrees: 0 };
  private liveBytes = 0;
  private readonly own: Int32Array;
  private readonly mail: Int32Array;
  private readonly r: Rand;

  /** `attachAgain` attaches the thread again after a detach() and answers the new instance. */
  constructor(public heap: SharedHeap, private readonly init: ChurnInit, private readonly attachAgain: () => SharedHeap) {
    this.own = new Int32Array(init.own);
    this.mail = new Int32Array(init.mail);
    this.r = new Rand(init.seed);
  }

  private fail(op: string, detail: string): void {
    this.anomalies.push(`thread ${this.init.me}, ${op}: ${detail}`);
  }

  /** `f` must throw a `cls` whose message starts with `prefix` (the call and its argument) and shows `value`. */
  private expectThrow(op: string, f: () => unknown, cls: ErrorClass, prefix: string, value?: string): void {
    let r: unknown;
    try {
      r = f();
    } catch (e) {
      const msg = (e as Error)?.message ?? String(e);
      if (!(e instanceof cls)) this.fail(op, `threw ${(e as Error)?.constructor?.name}: ${msg}, not a ${cls.name}`);
      else if (!msg.startsWith(prefix) || (value !== undefined && !msg.includes(value))) this.fail(op, `message does not name ${prefix} ${value ?? ''}: ${msg}`);
      return;
    }
    this.fail(op, `returned ${String(r)} instead of throwing a ${cls.name}`);
  }

  private ptrCall(f: Ptr, p: unknown): () => unknown {
    const h = this.heap as unknown as Record<Ptr, (...a: unknown[]) => unknown>;
    return f === 'realloc' ? () => h.realloc.call(this.heap, p, 64) : () => h[f].call(this.heap, p);
  }

  /** Takes a block just allocated: nobody may hold it in the owner map; tags it. */
  private claim(p: number, size: number, op: string): void {
    if (p % 16 !== 0) this.fail(op, `${hex(p)} is not 16-aligned`);
    const prev = Atomics.exchange(this.own, p >>> 4, this.init.me);
    if (prev !== 0) this.fail(op, `${hex(p)} handed out while thread ${prev} holds it`);
    tagBlock(this.heap.u8, p, size, (this.r.next() * 2 ** 32) >>> 0 || 1);
    this.held.set(p, size);
    this.liveBytes += size;
  }

  /** Lets a held block go (before its free or realloc): its tags must be intact and the map must name this thread. */
  private release(p: number): number {
    const size = this.held.get(p)!;
    const v = verifyBlock(this.heap.u8, p, size);
    if (typeof v === 'string') this.fail('verify', v);
    const o = Atomics.exchange(this.own, p >>> 4, 0);
    if (o !== this.init.me) this.fail('verify', `${hex(p)}: the map names thread ${o}`);
    this.held.delete(p);
    this.received.delete(p);
    this.liveBytes -= size;
    return size;
  }

  private size(): number {
    const x = this.r.next();
    if (x < 0.6) return 8 + this.r.below(250);
    if (x < 0.9) return 256 + this.r.below(16 << 10);
    if (x < 1 - LARGE_RATE) return (16 << 10) + this.r.below(112 << 10);
    return (128 << 10) + this.r.below(1400 << 10);
  }

  /** One of the first few held blocks (0 when none). */
  private anyHeld(): number {
    let k = this.r.below(Math.min(this.held.size, 16));
    for (const p of this.held.keys()) if (k-- === 0) return p;
    return 0;
  }

  /** Puts held block p into another thread's mailbox; false when its mailbox is full. */
  private send(p: number): boolean {
    const { me, threads } = this.init;
    const to = 1 + ((me + this.r.below(threads - 1)) % threads); // any thread but this one
    const size = this.held.get(p)!;
    for (let i = (to - 1) * MAILBOX; i < to * MAILBOX; i++) {
      if (Atomics.load(this.mail, i) !== 0) continue;
      const v = verifyBlock(this.heap.u8, p, size);
      if (typeof v === 'string') this.fail('send', v);
      Atomics.store(this.own, p >>> 4, TRANSIT);
      if (Atomics.compareExchange(this.mail, i, 0, p) === 0) {
        this.held.delete(p);
        this.received.delete(p);
        this.liveBytes -= size;
        this.counts.sent++;
        return true;
      }
      Atomics.store(this.own, p >>> 4, me);
    }
    return false;
  }

  /** Takes the blocks in this thread's mailbox; frees half of them at once (remote frees) unless `keep`. */
  receive(keep: boolean): void {
    const me = this.init.me;
    for (let i = (me - 1) * MAILBOX; i < me * MAILBOX; i++) {
      const p = Atomics.load(this.mail, i) === 0 ? 0 : Atomics.exchange(this.mail, i, 0);
      if (p === 0) continue;
      const v = verifyBlock(this.heap.u8, p);
      if (typeof v === 'string') {
        this.fail('receive', v);
        continue;
      }
      const o = Atomics.exchange(this.own, p >>> 4, me);
      if (o !== TRANSIT) this.fail('receive', `${hex(p)}: the map names thread ${o}, not a mailbox`);
      this.held.set(p, v[1]);
      this.received.add(p);
      this.liveBytes += v[1];
      if (!keep && this.r.chance(0.5)) {
        this.release(p);
        this.heap.free(p);
        this.counts.remoteFrees++;
      }
    }
  }

  /** One step of the churn: an allocation, a realloc, a usableSize, a hand-over, a free, or misuse. */
  step(): void {
    const h = this.heap;
    this.counts.ops++;
    const x = this.r.next();
    if (x < MISUSE_RATE) {
      this.counts.misuse++;
      this.misuse();
      return;
    }
    if (x < 0.2 && this.held.size > 0) this.receive(false);
    if ((x < 0.45 && this.liveBytes <= this.init.maxLive) || this.held.size === 0) {
      const k = this.r.below(10);
      const n = this.size();
      if (k < 6) {
        const p = h.malloc(n);
        if (p !== 0) this.claim(p, n, `malloc(${n})`);
      } else if (k < 8) {
        const count = 1 + this.r.below(4);
        const each = Math.max(8, Math.ceil(n / count / 4));
        const p = h.calloc(count, each);
        if (p === 0) return;
        const u8 = h.u8;
        for (let i = 0, upto = Math.min(count * each, 4096); i < upto; i++) {
          if (u8[p + i] !== 0) {
            this.fail(`calloc(${count}, ${each})`, `${hex(p)} byte ${i} is ${u8[p + i]}`);
            break;
          }
        }
        this.claim(p, count * each, `calloc(${count}, ${each})`);
      } else {
        const a = 2 ** (4 + this.r.below(this.r.chance(0.9) ? 8 : 17));
        const p = h.alignedAlloc(a, n);
        if (p === 0) return;
        if (p % a !== 0) this.fail(`alignedAlloc(${a}, ${n})`, `${hex(p)} is not aligned`);
        this.claim(p, n, `alignedAlloc(${a}, ${n})`);
      }
      return;
    }
    const p = this.anyHeld();
    if (x < 0.6) {
      const tag = word(h.u8, p);
      const old = this.release(p);
      const n = this.r.chance(0.5) ? Math.max(8, (old * (0.3 + this.r.next())) | 0) : this.size();
      const q = h.realloc(p, n);
      if (q === 0) {
        // Out of memory: the block is left as it was.
        Atomics.store(this.own, p >>> 4, this.init.me);
        this.held.set(p, old);
        this.liveBytes += old;
        return;
      }
      // realloc keeps the tag and the pattern up to the smaller size.
      const u8 = h.u8;
      if (word(u8, q) !== tag) this.fail(`realloc(${hex(p)}, ${n})`, `moved to ${hex(q)} without its tag`);
      for (let i = 8, keep = Math.min(old, n, 512); i < keep; i++) {
        if (u8[q + i] !== pat(tag, i)) {
          this.fail(`realloc(${hex(p)}, ${n})`, `${hex(q)} byte ${i} not kept`);
          break;
        }
      }
      this.claim(q, n, `realloc(${hex(p)}, ${n})`);
      return;
    }
    if (x < 0.7) {
      const u = h.usableSize(p);
      if (u < this.held.get(p)!) this.fail(`usableSize(${hex(p)})`, `${u} < ${this.held.get(p)} bytes asked`);
      return;
    }
    if (x < 0.8 && this.init.threads > 1 && this.send(p)) return;
    this.release(p);
    h.free(p);
  }

  /** Misuse that no other thread can change the outcome of. */
  private misuse(): void {
    const h = this.heap;
    const r = this.r;
    const hb = this.init.heapBytes;
    const f = r.pick(PTR_CALLS);
    switch (r.below(10)) {
      case 0: {
        // An offset inside a block this thread holds.
        if (this.held.size === 0) return;
        const p = this.anyHeld();
        const u = h.usableSize(p);
        const q = p + (u > 16 ? 16 * (1 + r.below(Math.min(u, 1 << 20) / 16 - 1)) : 8);
        this.expectThrow(`${f}(inside ${hex(p)})`, this.ptrCall(f, q), InvalidPointerError, `${f}(ptr):`, hex(q));
        return;
      }
      case 1: {
        if (this.held.size === 0) return;
        const q = this.anyHeld() + 1 + r.below(15);
        this.expectThrow(`${f}(misaligned)`, this.ptrCall(f, q), InvalidPointerError, `${f}(ptr):`, hex(q));
        return;
      }
      case 2: {
        const q = r.pick([hb, hb + 16 * (1 + r.below(1000)), 2 ** 31 - 16, 2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER - 15]);
        this.expectThrow(`${f}(past the heap)`, this.ptrCall(f, q), InvalidPointerError, `${f}(ptr):`, hex(q));
        return;
      }
      case 3: {
        const v = r.pick([-16, -1, 1.5, 16.5, NaN, Infinity, -Infinity, 2 ** 53, -0.5]);
        this.expectThrow(`${f}(${v})`, this.ptrCall(f, v), RangeError, `${f}(ptr):`, String(v));
        return;
      }
      case 4: {
        const v = r.pick([-1, -4096, NaN, 0.5, 100.25, Infinity, 2 ** 53, 2 ** 60]);
        const s = String(v);
        const calls: Array<[string, () => unknown, string]> = [
          [`malloc(${s})`, () => h.malloc(v), 'malloc(size):'],
          [`tryMalloc(${s})`, () => h.tryMalloc(v), 'tryMalloc(size):'],
          [`calloc(${s}, 8)`, () => h.calloc(v, 8), 'calloc(n):'],
          [`calloc(2, ${s})`, () => h.calloc(2, v), 'calloc(size):'],
          [`alignedAlloc(64, ${s})`, () => h.alignedAlloc(64, v), 'alignedAlloc(size):'],
        ];
        // A held block's realloc to a bad size: refused, the block left as it was (its tags are checked later).
        if (this.held.size > 0) {
          const p = this.anyHeld();
          calls.push([`realloc(held, ${s})`, () => h.realloc(p, v), 'realloc(size):']);
        }
        const [op, call, prefix] = r.pick(calls);
        this.expectThrow(op, call, RangeError, prefix, s);
        return;
      }
      case 5: {
        // Valid sizes no heap of this size holds: 0, no error.
        const v = r.pick([2 ** 31, 2 ** 40, hb, hb * 2]);
        const g = r.pick(['malloc', 'calloc', 'alignedAlloc', 'tryMalloc'] as const);
        try {
          const q = g === 'malloc' ? h.malloc(v) : g === 'calloc' ? h.calloc(1 << 16, (v / (1 << 16)) | 0) : g === 'alignedAlloc' ? h.alignedAlloc(1 << 20, v) : h.tryMalloc(v);
          if (q !== 0) this.fail(`${g}(${v})`, `returned ${hex(q)}, not 0`);
        } catch (e) {
          this.fail(`${g}(${v})`, `threw ${(e as Error).constructor.name}: ${(e as Error).message}`);
        }
        return;
      }
      case 6: {
        const a = r.pick([0, 3, 24, 48, 2 ** 21, 2 ** 30, -16, 1.5, NaN]);
        this.expectThrow(`alignedAlloc(${a}, 64)`, () => h.alignedAlloc(a, 64), RangeError, 'alignedAlloc(align):', String(a));
        return;
      }
      case 7: {
        const [v, text] = r.pick(BAD_TYPES);
        const g = r.pick(['malloc', ...PTR_CALLS] as const);
        const call = g === 'malloc' ? () => h.malloc(v as number) : this.ptrCall(g, v);
        this.expectThrow(`${g}(${text})`, call, TypeError, `${g}(${g === 'malloc' ? 'size' : 'ptr'}):`, text);
        return;
      }
      case 8: {
        // usableSize of any offset in the heap: a size, or the offset refused as no live block's start.
        const p = 16 + (r.chance(0.5) ? 16 * r.below(hb / 16 - 1) : r.below(hb - 16));
        try {
          const u = h.usableSize(p);
          if (!(u >= 8)) this.fail(`usableSize(${hex(p)})`, `answered ${u}`);
        } catch (e) {
          const msg = (e as Error).message;
          if (!(e instanceof InvalidPointerError || e instanceof DoubleFreeError)) this.fail(`usableSize(${hex(p)})`, `threw ${(e as Error).constructor.name}: ${msg}`);
          else if (!msg.startsWith(`usableSize(ptr): ${hex(p)}`)) this.fail(`usableSize(${hex(p)})`, `message does not name the offset: ${msg}`);
        }
        return;
      }
      case 9: {
        // Every call after detach() throws HeapStateError naming it; then the thread attaches again.
        if (!r.chance(DETACH_RATE)) return;
        this.counts.detaches++;
        const p = this.held.size > 0 ? this.anyHeld() : 16;
        h.detach();
        const after: Array<[string, () => unknown]> = [
          ['malloc(size)', () => h.malloc(16)],
          ['calloc(n, size)', () => h.calloc(1, 16)],
          ['alignedAlloc(align, size)', () => h.alignedAlloc(64, 16)],
          ['tryMalloc(size)', () => h.tryMalloc(16)],
          ['free(ptr)', () => h.free(p)],
          ['realloc(ptr, size)', () => h.realloc(p, 64)],
          ['usableSize(ptr)', () => h.usableSize(p)],
          ['flush()', () => h.flush()],
        ];
        for (const [name, call] of after) this.expectThrow(`${name} after detach()`, call, HeapStateError, `${name}: this thread has detached`);
        this.heap = this.attachAgain();
        return;
      }
    }
  }

  /** A second free, realloc and usableSize of `p`, freed just before: each refused as a double free. */
  private secondCalls(p: number, what: string): void {
    const h = this.heap;
    const calls: Array<[string, () => unknown]> = [
      ['free', () => h.free(p)],
      ['realloc', () => h.realloc(p, 100)],
      ['realloc', () => h.realloc(p, 200_000)],
      ['usableSize', () => h.usableSize(p)],
    ];
    for (const [name, call] of calls) {
      this.expectThrow(`${name}(${what} ${hex(p)}) again`, call, DoubleFreeError, `${name}(ptr):`, hex(p));
      this.counts.doubleFrees++;
    }
  }

  /**
   * Double frees, at a quiet point (no other thread allocates or frees meanwhile, so no freed
   * offset is handed out again): a small and a large block of this thread's, and a block received
   * from another thread (freed remotely).
   */
  probe(): void {
    const h = this.heap;
    for (const n of [8 + this.r.below(2000), (130 << 10) + this.r.below(300 << 10)]) {
      const p = h.malloc(n);
      if (p === 0) continue;
      this.claim(p, n, `malloc(${n})`);
      this.release(p);
      h.free(p);
      this.secondCalls(p, n > 128 << 10 ? 'freed large' : 'freed small');
    }
    this.receive(true);
    const p = this.received.values().next().value;
    if (p !== undefined) {
      this.release(p);
      h.free(p);
      this.secondCalls(p, 'received and freed');
      this.counts.receivedDoubleFrees++;
    }
  }

  /** Takes its mailbox and checks every held block; answers them with the anomalies so far (then cleared). */
  report(): ChurnReport {
    this.receive(true);
    for (const [p, size] of this.held) {
      const v = verifyBlock(this.heap.u8, p, size);
      if (typeof v === 'string') this.fail('report', v);
    }
    return { held: [...this.held], anomalies: this.anomalies.splice(0), counts: this.counts };
  }

  /** Frees every block held (its mailbox's too) and flushes. */
  freeAll(): void {
    this.receive(true);
    for (const p of [...this.held.keys()]) {
      this.release(p);
      this.heap.free(p);
    }
    this.heap.flush();
  }
}

export type ChurnRequest = { type: 'churn'; ops: number } | { type: 'probe' } | { type: 'report' } | { type: 'freeAll' };

if (parentPort !== null && (workerData as { kind?: string } | null)?.kind === 'churn') {
  const init = workerData as ChurnInit;
  const port = parentPort;
  const c = new Churner(SharedHeap.attach(init.buffer), init, () => SharedHeap.attach(init.buffer));
  // One answer to each request: a ChurnReport, or { error } for an exception no step expects.
  port.on('message', (m: ChurnRequest) => {
    try {
      if (m.type === 'churn') for (let i = 0; i < m.ops; i++) c.step();
      else if (m.type === 'probe') c.probe();
      else if (m.type === 'freeAll') c.freeAll();
      port.postMessage(c.report());
    } catch (e) {
      port.postMessage({ error: `${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}` });
    }
  });
  port.postMessage({ threadId: c.heap.threadId });
}
