/**
 * options-stress: the loop of a worker of test/options-stress.test.ts (started as
 * workers/options-stress-worker.ts). Attaches to the heap and runs a seeded random mix of
 * malloc, calloc, alignedAlloc, realloc, free and usableSize of small and large blocks, handing
 * blocks to the other workers through a shared transfer table, so that many frees and reallocs
 * are of blocks another thread allocated. Every block holds a pattern
 * derived from its offset and from the worker that filled it (header words: its size and that
 * worker's tag), checked before every free and realloc and at the end; a mismatch is counted in
 * the control array with the first block that failed.
 *
 * Every block the worker holds is recorded in shared memory (its row of `owned`, or the transfer
 * table), so the main thread can settle what a terminated worker left: the record is a plain store
 * right after the call that gave the block, with nothing between them where V8 can stop the thread
 * (see test/stress-harness.ts). A worker that may be terminated (`mortal`) does no realloc, whose
 * new block could not be recorded before the old one stops being live.
 *
 * The worker honours a pause (C_PAUSE) every few operations, so that the main thread can run
 * check() and verify every recorded block with everyone stopped.
 */
import { SharedHeap, type SharedMemory } from '../src/index.js';

export const C_MISMATCH = 0; //  blocks whose pattern did not verify (or a call that broke a promise)
export const C_BAD = 1; //       the first such block
export const C_PAUSE = 2; //     1: workers stop at their next poll
export const C_PAUSED = 3; //    workers stopped there
export const C_DONE = 4; //      workers whose operations are done
export const C_FREE_ALL = 5; //  1: workers free what they hold and detach
export const C_FREED = 6; //     workers that did
export const C_ERRORS = 7; //    unexpected exceptions
export const C_OOM = 8; //       allocations answered 0
export const C_CROSS = 9; //     frees and reallocs of a block another worker filled
export const C_OPS = 10; //      operations done (all workers)
export const C_REATTACHED = 11; // detaches and attaches again done mid-run
export const C_READY = 12; //    workers attached
export const C_MSG_CLAIM = 13; // 0; 1 while a worker writes the first error's message into C_MSG; 2 once written
export const C_MSG = 16; //      the first unexpected error's message, as char codes (C_MSG_LEN words)
export const C_MSG_LEN = 200;
/** C_PHASE + w: 1 while worker w is inside an allocating call, until the block it got is recorded. */
export const C_PHASE = C_MSG + C_MSG_LEN;
export const CTL_WORDS = C_PHASE + 16;

export const OWNED = 64; // entries per worker row

/** Low bits of a record (blocks are 16-byte aligned). */
export const FILLING = 1; // allocated, the pattern may be incomplete
export const FREEING = 2; // verified, being freed: the free may or may not have happened

export const SMALL_MAX = 128 << 10;

export interface OptionsStressData {
  kind: 'options-stress';
  buffer: SharedArrayBuffer | SharedMemory;
  ctl: Int32Array;
  owned: Int32Array;
  transfer: Int32Array;
  w: number;
  /** 1.., different for every worker of a run: the pattern's owner. */
  tag: number;
  seed: number;
  ops: number;
  /** Largest large block asked for. */
  largeMax: number;
  /** Percent of new blocks that are large (> 128 KiB). */
  largePct: number;
  /** Small blocks are 16 B to 2^(smallBits + 1) B, at most 128 KiB, spread evenly over the doublings. */
  smallBits: number;
  /** No realloc (a worker the test terminates). */
  mortal: boolean;
  /** Detach and attach again after every this many operations (0: never). */
  reattachEvery: number;
}

function cookie(p: number): number {
  return Math.imul(p, 0x9e3779b1) ^ 0x3c6ef372;
}

/** Word i of the pattern of the block at `p` filled by `tag` (i >= 2; words 0 and 1 are the header). */
function word(p: number, tag: number, i: number): number {
  return Math.imul(cookie(p) ^ Math.imul(tag, 0x85ebca6b), i | 1) ^ i;
}

/** The words of a block of `n` words that fill and verify touch: all of a small one, a sample of a large one. */
function nextWord(i: number, n: number): number {
  if (i < 1024) return i + 1;
  const j = i + 509;
  return j < n - 1 ? j : i === n - 1 ? n : n - 1;
}

export function fillBlock(mem: Int32Array, p: number, size: number, tag: number): void {
  const w = p >>> 2;
  const n = size >>> 2;
  mem[w] = size ^ cookie(p);
  mem[w + 1] = tag ^ cookie(p);
  for (let i = 2; i < n; i = nextWord(i, n)) mem[w + i] = word(p, tag, i);
}

/** The block's size if its pattern holds, else -1. */
export function verifyBlock(mem: Int32Array, p: number): number {
  const w = p >>> 2;
  const size = mem[w]! ^ cookie(p);
  const tag = mem[w + 1]! ^ cookie(p);
  if (size < 16 || size > 64 << 20 || (size & 3) !== 0 || tag <= 0 || tag > 1 << 16 || w + (size >>> 2) > mem.length) return -1;
  const n = size >>> 2;
  for (let i = 2; i < n; i = nextWord(i, n)) if (mem[w + i] !== word(p, tag, i)) return -1;
  return size;
}

export function tagOf(mem: Int32Array, p: number): number {
  return mem[(p >>> 2) + 1]! ^ cookie(p);
}

/**
 * Whether the first `keep` bytes of the block at `q` are those of the block that was at `p`
 * (a realloc's copy).
 */
function verifyMoved(mem: Int32Array, q: number, p: number, tag: number, size: number, keep: number): boolean {
  const w = q >>> 2;
  const n = keep >>> 2;
  if (mem[w] !== (size ^ cookie(p)) || mem[w + 1] !== (tag ^ cookie(p))) return false;
  // The sample of the old size, up to the part kept.
  const oldN = size >>> 2;
  for (let i = 2; i < oldN; i = nextWord(i, oldN)) {
    if (i >= n) break;
    if (mem[w + i] !== word(p, tag, i)) return false;
  }
  return true;
}

function bad(ctl: Int32Array, p: number): void {
  if (Atomics.add(ctl, C_MISMATCH, 1) === 0) Atomics.store(ctl, C_BAD, p);
}

/**
 * Counts an unexpected exception; the first one's stack goes to C_MSG. The message is claimed and
 * written before the count moves, and C_MSG_CLAIM says when it is whole: the main thread, which
 * looks at the count, read an empty message when the count came first (a CI failure reported as
 * "seed 71815: : expected 1 to be +0").
 */
export function recordError(ctl: Int32Array, e: unknown): void {
  if (Atomics.compareExchange(ctl, C_MSG_CLAIM, 0, 1) === 0) {
    const m = String((e as Error)?.stack ?? e).slice(0, C_MSG_LEN - 1);
    for (let i = 0; i < m.length; i++) ctl[C_MSG + i] = m.charCodeAt(i);
    Atomics.store(ctl, C_MSG_CLAIM, 2);
  }
  Atomics.add(ctl, C_ERRORS, 1);
}

export function run(d: OptionsStressData): void {
  const { ctl, owned, transfer, w, tag, ops } = d;
  let heap = SharedHeap.attach(d.buffer);
  Atomics.add(ctl, C_READY, 1);
  Atomics.notify(ctl, C_READY);
  let x = d.seed | 0 || 1;
  const rnd = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const mem = (): Int32Array => new Int32Array(heap.buffer); // the buffer may have grown: a view of its current length
  let i32 = mem();
  const row = w * OWNED;
  const T = transfer.length;
  const pause = (): void => {
    if (Atomics.load(ctl, C_PAUSE) === 0) return;
    Atomics.add(ctl, C_PAUSED, 1);
    Atomics.notify(ctl, C_PAUSED);
    while (Atomics.load(ctl, C_PAUSE) !== 0) Atomics.wait(ctl, C_PAUSE, 1, 50);
    Atomics.sub(ctl, C_PAUSED, 1);
  };
  const newSize = (): number => {
    const r = rnd();
    if (r % 100 < d.largePct) return (SMALL_MAX + 4 + (rnd() % (d.largeMax - SMALL_MAX))) & ~3;
    // Small sizes spread evenly over the doublings from 16 B up (d.smallBits), at most 128 KiB.
    const bits = 4 + (rnd() % (d.smallBits - 3));
    return Math.max(16, Math.min(SMALL_MAX, (1 << bits) + (rnd() % (1 << bits)))) & ~3;
  };
  for (let op = 0; op < ops; op++) {
    if ((op & 15) === 0) pause();
    if (d.reattachEvery > 0 && op > 0 && op % d.reattachEvery === 0) {
      heap.detach();
      heap = SharedHeap.attach(d.buffer);
      Atomics.add(ctl, C_REATTACHED, 1);
    }
    if (i32.length * 4 !== heap.buffer.byteLength) i32 = mem();
    const k = row + (rnd() % OWNED);
    const e = owned[k]!;
    const r = rnd() % 100;
    if (e === 0) {
      const size = newSize();
      let p: number;
      ctl[C_PHASE + w] = 1; // plain stores: what a terminated worker was doing
      if (r < 55) {
        p = heap.malloc(size);
        owned[k] = p | FILLING;
      } else if (r < 75) {
        p = heap.calloc(size >>> 2, 4);
        owned[k] = p | FILLING;
        if (p !== 0) {
          if (i32.length * 4 !== heap.buffer.byteLength) i32 = mem();
          const n = size >>> 2;
          for (let i = 0; i < n; i = nextWord(i, n)) if (i32[(p >>> 2) + i] !== 0) { bad(ctl, p); break; }
        }
      } else if (r < 90 || d.mortal) {
        // 16 B .. 64 KiB, and now and then 128 KiB .. 1 MiB (large runs of whole SuperSlabs).
        const align = rnd() % 16 === 0 ? 128 << (10 + (rnd() % 4)) : 16 << (rnd() % 13);
        p = heap.alignedAlloc(align, size);
        owned[k] = p | FILLING;
        if (p % align !== 0) bad(ctl, p);
      } else {
        p = heap.realloc(0, size);
        owned[k] = p | FILLING;
      }
      ctl[C_PHASE + w] = 0;
      if (p === 0) {
        owned[k] = 0;
        Atomics.add(ctl, C_OOM, 1);
      } else {
        if (i32.length * 4 !== heap.buffer.byteLength) i32 = mem();
        fillBlock(i32, p, size, tag);
        owned[k] = p;
      }
    } else if (r < 30) {
      const p = e;
      if (verifyBlock(i32, p) < 0) bad(ctl, p);
      if (tagOf(i32, p) !== tag) Atomics.add(ctl, C_CROSS, 1);
      owned[k] = p | FREEING;
      heap.free(p);
      owned[k] = 0;
    } else if (r < 45 && !d.mortal) {
      const p = e;
      const size = verifyBlock(i32, p);
      if (size < 0) bad(ctl, p);
      const from = tagOf(i32, p);
      if (from !== tag) Atomics.add(ctl, C_CROSS, 1);
      const to = rnd() % 4 === 0 ? Math.max(16, (size >>> 1) & ~3) : newSize();
      const q = heap.realloc(p, to);
      if (q === 0) {
        Atomics.add(ctl, C_OOM, 1); // the old block is still live, unchanged
        if (verifyBlock(i32, p) !== size) bad(ctl, p);
      } else {
        owned[k] = q;
        if (i32.length * 4 !== heap.buffer.byteLength) i32 = mem();
        if (!verifyMoved(i32, q, p, from, size, Math.min(size, to))) bad(ctl, q);
        fillBlock(i32, q, to, tag);
      }
    } else if (r < 50) {
      const p = e;
      const size = verifyBlock(i32, p);
      if (size < 0 || heap.usableSize(p) < size) bad(ctl, p);
    } else {
      const got = Atomics.exchange(transfer, rnd() % T, e);
      owned[k] = got; // recorded at once (see the file's comment)
    }
    if ((op & 1023) === 1023) Atomics.add(ctl, C_OPS, 1024);
    if (op % 997 === 0 && rnd() % 4 === 0) heap.stats();
    if (op % 499 === 0 && rnd() % 2 === 0) heap.flush();
  }
  Atomics.add(ctl, C_DONE, 1);
  Atomics.notify(ctl, C_DONE);
  // Idle, honouring pauses, until told to free everything.
  while (Atomics.load(ctl, C_FREE_ALL) === 0) {
    pause();
    Atomics.wait(ctl, C_FREE_ALL, 0, 5);
  }
  if (i32.length * 4 !== heap.buffer.byteLength) i32 = mem();
  const workers = Atomics.load(ctl, C_FREE_ALL);
  for (let k = row; k < row + OWNED; k++) {
    const p = owned[k]!;
    if (p === 0) continue;
    if (verifyBlock(i32, p) < 0) bad(ctl, p);
    owned[k] = p | FREEING;
    heap.free(p);
    owned[k] = 0;
  }
  // This worker's share of the transfer table: mostly blocks the others filled.
  for (let j = w; j < T; j += workers) {
    const p = Atomics.exchange(transfer, j, 0);
    if (p === 0) continue;
    if (verifyBlock(i32, p) < 0) bad(ctl, p);
    heap.free(p);
  }
  heap.detach();
  Atomics.add(ctl, C_FREED, 1);
  Atomics.notify(ctl, C_FREED);
}
