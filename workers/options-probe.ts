/**
 * Probes of create()'s options (test/options-documented.test.ts, test/drain-interval-counts.test.ts): the same probes run in the thread
 * that created a heap and in a worker that attached to it, each measuring what an option does
 * through the public calls (stats(), usableSize, errors) and, where nothing public shows it, the
 * calling thread's magazine depth read from the layout words.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { MAG_ENTRY_WORDS } from '../src/layout.js';
import { classOf, COUNT } from '../src/size-classes.js';

/** Blocks in the calling thread's magazine of `size`'s class (its top less its base, in entries). */
export function magazineDepth(heap: SharedHeap, size: number): number {
  const t = internals(heap);
  const cls = classOf(size);
  return (t.i32[t.topW + cls]! - t.magazineBase(cls)) / MAG_ENTRY_WORDS;
}

function myThread(heap: SharedHeap) {
  const t = heap.stats().threads.find((x) => x.threadId === heap.threadId && x.state === 'attached');
  if (t === undefined) throw new Error('no attached thread of mine in stats()');
  return t;
}

/** The most blocks the magazine of `size` held while `n` blocks of that size were freed one at a time (after mallocs of them all). */
export function mostCached(heap: SharedHeap, size: number, n: number): number {
  const ps: number[] = [];
  for (let i = 0; i < n; i++) ps.push(heap.malloc(size));
  let most = magazineDepth(heap, size);
  for (const p of ps) {
    heap.free(p);
    most = Math.max(most, magazineDepth(heap, size));
  }
  return most;
}

/**
 * Blocks one refill moves into an empty magazine of 16-byte blocks, from a slab with thousands of
 * free blocks below its touched mark (so neither the slab's free blocks nor the 4 KiB fresh-page
 * limit bound it): [refills counted, blocks taken].
 */
export function oneRefill(heap: SharedHeap): [number, number] {
  const size = 16;
  const per = COUNT[classOf(size)]!;
  const ps: number[] = [];
  for (let i = 0; i < 2 * per; i++) ps.push(heap.malloc(size));
  for (let i = 0; i < ps.length; i++) if (i % per !== 0) heap.free(ps[i]!); // one block stays live in each slab
  heap.flush();
  const before = myThread(heap).refills;
  heap.malloc(size);
  return [myThread(heap).refills - before, magazineDepth(heap, size) + 1];
}

/**
 * The number of the free (counted from 1) after which the thread first looked at another class's
 * magazine: a 2 KiB block is freed into its magazine (free 1), then `n` 16-byte blocks; a periodic
 * look takes the 2 KiB magazine in turn and drains it whole (a class above 1 KiB). -1: no look in
 * the n + 1 frees.
 */
export function firstLook(heap: SharedHeap, n: number): number {
  const a = heap.malloc(2048);
  const bs: number[] = [];
  for (let i = 0; i < n; i++) bs.push(heap.malloc(16));
  heap.free(a);
  if (magazineDepth(heap, 2048) === 0) return 1;
  for (let i = 0; i < bs.length; i++) {
    heap.free(bs[i]!);
    if (magazineDepth(heap, 2048) === 0) return i + 2;
  }
  return -1;
}

/** Debug mode's marks as this thread sees them: usableSize of a 10-byte block, and what free says of a write past its end. */
export function debugProbe(heap: SharedHeap): { usable: number; overrun: string } {
  const p = heap.malloc(10);
  const usable = heap.usableSize(p);
  heap.u8[p + 10] = 0x77;
  let overrun = 'no error';
  try {
    heap.free(p);
  } catch (e) {
    overrun = (e as Error).name;
  }
  return { usable, overrun };
}

export type Probe = 'mostCached16' | 'mostCached1024' | 'oneRefill' | 'firstLook' | 'debug' | 'stats';

export function runProbe(heap: SharedHeap, probe: Probe, arg = 0): unknown {
  switch (probe) {
    case 'mostCached16': return mostCached(heap, 16, arg);
    case 'mostCached1024': return mostCached(heap, 1024, arg);
    case 'oneRefill': return oneRefill(heap);
    case 'firstLook': return firstLook(heap, arg);
    case 'debug': return debugProbe(heap);
    case 'stats': return heap.stats().bufferBytes;
  }
}

// As a worker (workerData { probe: true, buffer }): attach, post { threadId }, then answer
// each { probe, arg } with { result } or { error }.
const data = workerData as { probe?: boolean; buffer?: SharedArrayBuffer } | undefined;
if (parentPort !== null && data?.probe === true) {
  const port = parentPort;
  let heap: SharedHeap | undefined;
  try {
    heap = SharedHeap.attach(data.buffer!);
    port.postMessage({ threadId: heap.threadId });
  } catch (e) {
    port.postMessage({ error: `${(e as Error).name}: ${(e as Error).message}` });
  }
  port.on('message', (m: { probe: Probe; arg?: number; detach?: boolean }) => {
    try {
      if (m.detach === true) {
        heap?.detach();
        port.postMessage({ result: 'detached' });
        return;
      }
      port.postMessage({ result: runProbe(heap!, m.probe, m.arg) });
    } catch (e) {
      port.postMessage({ error: `${(e as Error).name}: ${(e as Error).message}` });
    }
  });
}
