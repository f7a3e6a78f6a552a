/**
 * A thread of test/concurrent-misuse.test.ts (from an audit of 2026-12-07) that holds a thread
 * slot of a heap with no slot to spare: as a worker (workerData.kind 'slot') it churns until it is
 * terminated, posting every block it hands over; as a piscina task module (kind 'pool', the default
 * export) it churns `ops` operations a task and returns the blocks it hands over. Either way the
 * thread attaches when it loads, and a refused attach is reported (the 'attach-error' message, or
 * every task thrown), not thrown.
 *
 * Every block it holds is in a shared map (one Int32 per 16 bytes of heap: the block's size, set
 * once the block is tagged, cleared before its free or realloc), so that the main thread can check
 * and free what a terminated thread left; a block it hands over stays in the map until the main
 * thread frees it (takeRecorded). Tags: the size's low byte first, the offset's bits 4-11 last.
 */
import { isMainThread, parentPort, threadId, workerData } from 'node:worker_threads';
import { SharedHeap, type SharedMemory } from '../src/index.js';
import { Rand } from './misuse-model-core.js';

export interface SlotInit {
  kind: 'slot' | 'pool';
  buffer: SharedArrayBuffer | SharedMemory;
  /** The map of held blocks. */
  own: SharedArrayBuffer;
  seed: number;
}

/** What a churn hands over: blocks for the main thread to free (after takeRecorded). */
export interface Handed {
  out: number[];
  threadId: number;
}

const MAX_LARGE = 300_000;
const MAX_HELD = 300;

function tag(u8: Uint8Array, p: number, n: number): void {
  u8[p] = n & 255;
  u8[p + n - 1] = (p >>> 4) & 255;
}

/** Whether the block at p of n bytes still has its tags. */
function tagged(u8: Uint8Array, p: number, n: number): boolean {
  return u8[p] === (n & 255) && u8[p + n - 1] === ((p >>> 4) & 255);
}

/**
 * Takes block p out of the map (main thread): its size, or 0 when the map had no block there
 * (freed already); throws when the block lost its tags.
 */
export function takeRecorded(own: Int32Array, u8: Uint8Array, p: number): number {
  const n = Atomics.exchange(own, p >>> 4, 0);
  if (n !== 0 && !tagged(u8, p, n)) throw new Error(`block 0x${p.toString(16)} (${n} bytes) lost its tags`);
  return n;
}

const init = workerData as SlotInit | undefined;
let heap: SharedHeap | undefined;
let attachError: { name: string; message: string } | undefined;
if (!isMainThread && (init?.kind === 'slot' || init?.kind === 'pool')) {
  try {
    heap = SharedHeap.attach(init.buffer);
  } catch (e) {
    attachError = { name: (e as Error).constructor.name, message: (e as Error).message };
  }
}

const r = new Rand(Math.imul(init?.seed ?? 1, 65_599) ^ threadId); // each pool thread a sequence of its own
const held: number[] = [];

/** One operation: a malloc or calloc (3% large), or on a held block a hand-over, a realloc or a free. */
function one(h: SharedHeap, own: Int32Array, out: number[]): void {
  const x = r.next();
  if (x < 0.5 || held.length === 0) {
    const n = r.chance(0.97) ? 8 + r.below(4000) : 130_000 + r.below(MAX_LARGE - 130_000);
    const p = r.chance(0.1) ? h.calloc(1, n) : h.malloc(n);
    if (p === 0) return;
    tag(h.u8, p, n);
    Atomics.store(own, p >>> 4, n);
    held.push(p);
    return;
  }
  const i = r.below(held.length);
  const p = held[i]!;
  const n = Atomics.load(own, p >>> 4);
  if (!tagged(h.u8, p, n)) throw new Error(`block 0x${p.toString(16)} (${n} bytes) lost its tags`);
  held[i] = held[held.length - 1]!;
  held.pop();
  if (x < 0.6) {
    out.push(p);
    return;
  }
  Atomics.store(own, p >>> 4, 0);
  if (x < 0.7) {
    const m = 8 + r.below(3000);
    const q = h.realloc(p, m);
    if (q === 0) {
      Atomics.store(own, p >>> 4, n);
      held.push(p);
      return;
    }
    tag(h.u8, q, m);
    Atomics.store(own, q >>> 4, m);
    held.push(q);
    return;
  }
  h.free(p);
}

function churn(h: SharedHeap, own: Int32Array, ops: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < ops; i++) one(h, own, out);
  while (held.length > MAX_HELD) {
    const p = held.pop()!;
    Atomics.store(own, p >>> 4, 0);
    h.free(p);
  }
  return out;
}

if (parentPort !== null && init?.kind === 'slot') {
  const port = parentPort;
  if (heap === undefined) port.postMessage({ type: 'attach-error', ...attachError });
  else {
    const h = heap;
    const own = new Int32Array(init.own);
    port.postMessage({ type: 'ready', threadId: h.threadId });
    // From the event loop, so that the thread answers asks to flush, and a terminate() lands anywhere.
    const loop = (): void => {
      const out = churn(h, own, 200);
      if (out.length > 0) port.postMessage({ type: 'blocks', out });
      setImmediate(loop);
    };
    loop();
  }
}

/** The piscina task: churns `ops` operations; answers the blocks handed over. */
export default function task({ ops }: { ops: number }): Handed {
  if (heap === undefined) throw new Error(`attach refused: ${attachError?.name}: ${attachError?.message}`);
  return { out: churn(heap, new Int32Array(init!.own), ops), threadId: heap.threadId };
}
