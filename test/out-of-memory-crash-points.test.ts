/**
 * An audit (threads dying, hangs): a worker out of memory on a heap whose memory an idle thread
 * holds runs the out-of-memory paths (its own flush, the asks to flush, their waits: flush-ask.ts)
 * that no crash-point scenario runs. Stopped before each of its Atomics calls (as
 * worker.terminate() can stop it) and reclaimed, the heap must pass check(), the lock must be
 * free, the idle thread's ask word must not stay ASKED, and the heap must still serve what it holds.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { FA_LISTENING, G_LOCK, TH_FLUSH_ASK } from '../src/layout.js';
import { checked, MiB } from './fixtures.js';
import { startWorker, terminateAll, waitFor } from './remote-heap.js';

afterEach(terminateAll);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(n: number): Promise<{ calls: number; notifies: number[]; stopped: boolean; heap: SharedHeap; id: number; held: number[]; blocks: number }> {
  const heap = SharedHeap.create({ initialBytes: 4 * MiB, maxThreads: 4, magazineCapacity: 16 });
  const blocks: number[] = [];
  for (let p = heap.malloc(1000); p !== 0; p = heap.malloc(1000)) blocks.push(p);
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const ledger = new Int32Array(new SharedArrayBuffer(4 * 65536));
  const w = startWorker('oom-crash-worker', { buffer: heap.buffer, n, blocks, ctl, ledger });
  let calls = -1;
  let notifies: number[] = [];
  w.on('message', (m: { calls: number; notifies: number[] }) => ((calls = m.calls), (notifies = m.notifies)));
  await new Promise((r) => w.once('exit', r));
  return { calls, notifies, stopped: Atomics.load(ctl, 0) === 1, heap, id: Atomics.load(ctl, 1) - 1, held: [...ledger].filter((p) => p !== 0), blocks: blocks.length };
}

describe('a worker stopped at each Atomics call of its out-of-memory paths', () => {
  it('leaves a heap that its reclaim puts right', async () => {
    const first = await run(0);
    const total = first.calls;
    first.heap.detach();
    expect(total).toBeGreaterThan(10);
    const step = Math.max(1, Math.floor(total / Number(process.env.OOM_CRASH_STOPS ?? 150)));
    // A sample of every step-th call, and every notify (an ask's notify follows its CAS: the
    // window an audit found), each the same from run to run (the worker's calls are).
    const stops = new Set<number>(first.notifies);
    for (let n = 1; n <= total; n += step) stops.add(n);
    expect(first.notifies.length).toBeGreaterThan(0);
    const failures: string[] = [];
    for (const n of [...stops].sort((x, y) => x - y)) {
      const { stopped, heap, id, held, blocks } = await run(n);
      if (!stopped) continue;
      const t = internals(heap);
      heap.reclaim(id);
      const verdict = checked(heap);
      const lock = Atomics.load(t.i32, G_LOCK);
      const ask = await Promise.race([waitFor(t.i32, t.thW + TH_FLUSH_ASK, (v) => v === FA_LISTENING), sleep(300).then(() => -1)]);
      for (const p of held) heap.free(p); // the dead worker's live blocks, freed by the program
      heap.flush();
      // Everything back: the heap serves as many 1000-byte blocks as the main thread first took.
      const again: number[] = [];
      for (let p = heap.malloc(1000); p !== 0; p = heap.malloc(1000)) again.push(p);
      const cap = again.length;
      // The one call in flight may keep its block: a large run made live for a malloc cut off
      // before it returned is nobody's (test/crash-points.test.ts allows it the same way).
      const inFlight = Math.ceil(heap.stats().largeLiveBytes / 1024);
      for (const p of again) heap.free(p);
      const verdict2 = checked(heap);
      if (verdict !== 'passes' || verdict2 !== 'passes' || lock !== 0 || ask === -1 || cap + inFlight < blocks - 64) {
        failures.push(`n=${n}: check ${verdict} / ${verdict2}, lock ${lock}, ask ${ask}, cap ${cap} (+${inFlight} in flight) of ${blocks}, held ${held.length}`);
      }
      heap.detach();
    }
    expect(failures).toEqual([]);
  }, 600_000);
});
