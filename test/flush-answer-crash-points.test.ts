/**
 * An audit (threads dying): an idle thread answers an ask to flush from its event loop
 * (flush-ask.ts), outside any call of the program's. Stopped before each Atomics call it makes
 * from its answer on (as worker.terminate() can stop it) and reclaimed by watch(), it must leave a
 * heap that passes check(), a free lock, and all of its memory back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK } from '../src/layout.js';
import { checked, MiB } from './fixtures.js';
import { startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Outcome { calls: number; stopped: boolean; failure: string }

async function run(n: number): Promise<Outcome> {
  const heap = SharedHeap.create({ initialBytes: 4 * MiB, maxThreads: 4, magazineCapacity: 16 });
  const t = internals(heap);
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const w = startWorker('answer-crash-worker', { buffer: heap.buffer, n, ctl });
  heap.watch(w);
  const exited = new Promise((r) => w.once('exit', r));
  const first = await new Promise<{ blocks: number[] }>((r) => w.once('message', r));
  const total = first.blocks.length;
  for (const p of first.blocks) heap.free(p); // remote frees: onto the worker's slabs' lists
  heap.flush();
  // Out of memory: the main thread asks the worker, which flushes (and may be stopped there).
  const mine: number[] = [];
  for (let round = 0; round < 20 && mine.length < total - 64; round++) {
    for (let p = heap.malloc(1000); p !== 0; p = heap.malloc(1000)) mine.push(p);
    await sleep(5);
  }
  let calls = -1;
  if (n === 0) {
    w.postMessage('report');
    calls = (await new Promise<{ calls: number }>((r) => w.once('message', r))).calls;
  }
  await w.terminate();
  await exited;
  await sleep(5);
  const stopped = Atomics.load(ctl, 0) === 1;
  for (const p of mine) heap.free(p);
  heap.flush();
  const verdict = checked(heap);
  const lock = Atomics.load(t.i32, G_LOCK);
  const again: number[] = [];
  for (let p = heap.malloc(1000); p !== 0; p = heap.malloc(1000)) again.push(p);
  for (const p of again) heap.free(p);
  const failure = verdict !== 'passes' || lock !== 0 || again.length < total - 64 ? `n=${n}: check ${verdict}, lock ${lock}, got ${mine.length} then ${again.length} of ${total}` : '';
  heap.detach();
  return { calls, stopped, failure };
}

describe('an idle thread stopped at each Atomics call of its answer to an ask to flush', () => {
  it('leaves a heap that watch() puts right', async () => {
    const first = await run(0);
    expect(first.failure).toBe('');
    expect(first.calls).toBeGreaterThan(10);
    const failures: string[] = [];
    let stops = 0;
    const step = Math.max(1, Math.floor(first.calls / Number(process.env.OOM_CRASH_STOPS ?? 60)));
    for (let n = 1; n <= first.calls; n += step) {
      const r = await run(n);
      if (r.stopped) stops++;
      if (r.failure !== '') failures.push(r.failure);
    }
    expect(stops).toBeGreaterThan(0);
    expect(failures).toEqual([]);
  }, 600_000);
});
