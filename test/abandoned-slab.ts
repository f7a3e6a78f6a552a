/**
 * What test/adopt-abandoned-stopped.test.ts and test/freer-adopts-stopped.test.ts both set up: a
 * slab of 64-byte blocks left abandoned by a worker that detached, and a worker
 * (workers/stop-at-cas-worker.ts) run until it stops at a chosen CAS on the heap's words.
 */
import { Worker } from 'node:worker_threads';
import { expect } from 'vitest';
import type { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { ABANDONED_W, OWNER_NONE, SLOT_SHIFT, SM_OWNER } from '../src/layout.js';
import { classOf } from '../src/size-classes.js';
import { startHeapWorker, startWorker } from './remote-heap.js';

export interface AbandonedSlab {
  /** The slab's slot, its meta word index and its class (64 bytes). */
  S: number;
  mS: number;
  cls: number;
  /** The 40 blocks the worker took, block k filled with 0x11 + k; the even ones freed, the odd ones live. */
  ps: number[];
}

/** A worker takes 40 blocks of 64 bytes (one slab), frees every other one, flushes and detaches: the slab abandoned. */
export async function abandonedSlab(heap: SharedHeap): Promise<AbandonedSlab> {
  const t = internals(heap);
  const cls = classOf(64);
  const D = startHeapWorker();
  await D.remote.attach(heap.buffer);
  const ps: number[] = [];
  for (let k = 0; k < 40; k++) ps.push(await D.remote.malloc(64));
  ps.forEach((p, k) => heap.u8.fill(0x11 + k, p, p + 64));
  for (let k = 0; k < 40; k += 2) await D.remote.free(ps[k]!);
  await D.remote.flush();
  await D.remote.detach();
  const S = ps[0]! >>> SLOT_SHIFT;
  const mS = t.metaW(S);
  expect(ps.every((p) => p >>> SLOT_SHIFT === S), "all of the worker's blocks in one slab").toBe(true);
  expect(t.i32[ABANDONED_W + cls], 'the slab is on its abandoned list').toBe(S);
  expect(Atomics.load(t.i32, mS + SM_OWNER)).toBe(OWNER_NONE);
  return { S, mS, cls, ps };
}

export type StopOp = { malloc: number } | { free: number } | { flush: true };

/**
 * Runs `ops` in a fresh stop-at-cas worker armed to exit at the CAS of the word `index` from
 * `expected` (or `after` Atomics calls later). `exited`: the worker exited (else it finished its
 * ops, and runs on); `stopped`: it exited at the armed stop; `threadId` for the reclaim.
 */
export async function stoppedAtCas(
  heap: SharedHeap,
  ops: StopOp[],
  stop: { index: number; expected: number; after: number },
): Promise<{ worker: Worker; threadId: number; exited: boolean; stopped: boolean }> {
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const worker = startWorker('stop-at-cas-worker', { buffer: heap.buffer });
  const hello = await new Promise<{ threadId: number; slot: number }>((r) => worker.once('message', r));
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  worker.postMessage({ ops, stop, gate });
  const answer = await Promise.race([new Promise((r) => worker.once('message', r)), exited.then(() => 'exited')]);
  return { worker, threadId: hello.threadId, exited: answer === 'exited', stopped: Atomics.load(gate, 0) === 1 };
}
