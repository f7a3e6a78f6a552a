/**
 * many-threads: a worker of test/many-threads-*.test.ts. Attaches to the heap and runs a
 * seeded mix of malloc, calloc, realloc and free of 8 B..maxSize until ctl[C_STOP] is set, handing
 * blocks to the other workers (and the main thread) through a shared queue (a plain SAB of block
 * offsets exchanged with Atomics.exchange), so that many frees are cross-thread. Each block's first
 * and last words hold a tag derived from its offset, checked before it is freed or reallocated.
 * Every exception is counted (C_ERRORS) and the first one's name and message are posted. At the
 * stop it frees what it holds, detaches and posts its counts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap, type SharedMemory } from '../src/index.js';
import { Rng } from './fuzz-core.js';

export const C_STOP = 0; //     1: stop, free what you hold, detach
export const C_READY = 1; //    workers attached
export const C_OPS = 2; //      operations done, all workers
export const C_ERRORS = 3; //   exceptions thrown by a heap call
export const C_ZERO = 4; //     allocations answered 0
export const C_BAD = 5; //      blocks whose tag did not verify
export const C_DONE = 6; //     workers that stopped, freed and detached
export const C_CROSS = 7; //    blocks taken from the queue (to free them, mostly allocated elsewhere)
export const C_MAXCALL = 8; //  longest single heap call in a worker, microseconds
export const C_GO = 9; //       1: start the loop (all workers attached)
export const CTL_WORDS = 16;

export interface AuditWorkerData {
  buffer: SharedArrayBuffer | SharedMemory;
  ctl: Int32Array;
  queue: Int32Array;
  seed: number;
  /** Largest block asked for (bytes). */
  maxSize: number;
  /** Per mille of new blocks drawn from 8 B..maxSize rather than mostly small (default 15). */
  largePermille?: number;
  /** Blocks held at once. */
  hold: number;
  /** 1: never free what it holds at the stop (a worker to be terminated). */
  mortal?: boolean;
}

const d = workerData as AuditWorkerData;

function tag(p: number): number {
  return Math.imul(p, 0x9e3779b1) ^ 0x1234567;
}

function run(): void {
  const heap = SharedHeap.attach(d.buffer);
  const { ctl, queue } = d;
  parentPort!.postMessage({ kind: 'attached', threadId: heap.threadId });
  Atomics.add(ctl, C_READY, 1);
  Atomics.notify(ctl, C_READY);
  while (Atomics.load(ctl, C_GO) === 0) Atomics.wait(ctl, C_GO, 0, 50);
  const rng = new Rng(d.seed);
  const rnd = (): number => rng.u32();
  const large = d.largePermille ?? 15;
  const size = (): number => {
    const r = rnd() % 1000;
    if (r >= 1000 - large) return 8 + (rnd() % d.maxSize); // up to maxSize (large runs above 128 KiB)
    if (r < 850) return 8 + (rnd() % 1017); // 8 B..1 KiB
    return 1024 + (rnd() % (16 << 10)); // ..17 KiB
  };
  const ptr = new Int32Array(d.hold);
  let ops = 0;
  let maxCall = 0;
  let firstError: { name: string; message: string } | undefined;
  const view = new Int32Array(heap.buffer); // over a growable buffer, a view that tracks its length
  const i32 = () => view;
  // Word 0: tag(p); word 1: the size asked; the last word: tag(p) ^ size (sizes are multiples of 4, at least 8).
  const mark = (p: number, n: number) => {
    const v = i32();
    v[p >>> 2] = tag(p);
    v[(p >>> 2) + 1] = n;
    v[(p + n - 4) >>> 2] = tag(p) ^ n;
  };
  const ok = (p: number): boolean => {
    const v = i32();
    if (v[p >>> 2] !== tag(p)) return false;
    const n = v[(p >>> 2) + 1]!;
    if (n < 12 || n > d.maxSize + 12 || v[(p + n - 4) >>> 2] !== (tag(p) ^ n)) return false;
    return true;
  };
  const round = (n: number) => (n < 12 ? 12 : n & ~3);
  const qn = queue.length;
  const STEP = 256;
  while (Atomics.load(ctl, C_STOP) === 0) {
    for (let k = 0; k < STEP; k++) {
      const i = rnd() % d.hold;
      const r = rnd() % 100;
      const t0 = performance.now();
      try {
        if (ptr[i] === 0) {
          const n = round(size());
          let p: number;
          if (r < 15) {
            p = heap.calloc(1, n);
            if (p !== 0 && (heap.u8[p] !== 0 || heap.u8[p + n - 1] !== 0)) Atomics.add(ctl, C_BAD, 1);
          } else p = heap.malloc(n);
          if (p === 0) Atomics.add(ctl, C_ZERO, 1);
          else {
            mark(p, n);
            ptr[i] = p;
          }
        } else if (r < 20) {
          const p = ptr[i]!;
          if (!ok(p)) Atomics.add(ctl, C_BAD, 1);
          const n = round(size());
          const q = heap.realloc(p, n);
          if (q === 0) Atomics.add(ctl, C_ZERO, 1);
          else {
            if (i32()[q >>> 2] !== tag(p) && n >= 4) Atomics.add(ctl, C_BAD, 1);
            mark(q, n);
            ptr[i] = q;
          }
        } else if (r < 60) {
          // Hand it on: exchange with a queue entry; whatever comes back is freed here (cross-thread).
          const p = ptr[i]!;
          ptr[i] = 0;
          const back = Atomics.exchange(queue, rnd() % qn, p);
          if (back !== 0) {
            Atomics.add(ctl, C_CROSS, 1);
            if (!ok(back)) Atomics.add(ctl, C_BAD, 1);
            if ((r & 1) === 0) {
              // Kept, resized here: a realloc of a block another thread allocated.
              const n = round(size());
              const q = heap.realloc(back, n);
              if (q === 0) {
                Atomics.add(ctl, C_ZERO, 1);
                heap.free(back);
              } else {
                if (i32()[q >>> 2] !== tag(back)) Atomics.add(ctl, C_BAD, 1);
                mark(q, n);
                ptr[i] = q;
              }
            } else heap.free(back);
          }
        } else {
          const p = ptr[i]!;
          if (!ok(p)) Atomics.add(ctl, C_BAD, 1);
          heap.free(p);
          ptr[i] = 0;
        }
      } catch (e) {
        Atomics.add(ctl, C_ERRORS, 1);
        if (firstError === undefined) {
          firstError = { name: (e as Error).name, message: String((e as Error).message).slice(0, 400) };
          parentPort!.postMessage({ kind: 'error', ...firstError });
        }
      }
      const dt = performance.now() - t0;
      if (dt > maxCall) maxCall = dt;
      ops++;
    }
    Atomics.add(ctl, C_OPS, STEP);
  }
  const us = Math.round(maxCall * 1000);
  for (;;) {
    const m = Atomics.load(ctl, C_MAXCALL);
    if (us <= m || Atomics.compareExchange(ctl, C_MAXCALL, m, us) === m) break;
  }
  if (d.mortal === true) return;
  try {
    for (let i = 0; i < d.hold; i++) if (ptr[i] !== 0) heap.free(ptr[i]!);
    heap.detach();
  } catch (e) {
    Atomics.add(ctl, C_ERRORS, 1);
    parentPort!.postMessage({ kind: 'error', name: (e as Error).name, message: String((e as Error).message).slice(0, 400) });
  }
  parentPort!.postMessage({ kind: 'done', ops, maxCallMs: maxCall });
  Atomics.add(ctl, C_DONE, 1);
  Atomics.notify(ctl, C_DONE);
}

if (parentPort !== null && (workerData as Partial<AuditWorkerData> | null)?.ctl !== undefined) run();
