/**
 * watchPool (sabmalloc/node) and a piscina thread that attached but never became ready. piscina
 * emits 'workerCreate' for a thread started after the pool's construction (minThreads 0, or a pool
 * growing toward maxThreads) only once the thread has loaded the task module, and the recipe's task
 * module attaches while it loads: a thread that the pool destroyed in between (pool.destroy() right
 * after a run()), or that threw or exited while loading after its attach, was never watched, and
 * its slot stayed taken for good (threadsAttached one higher per such thread, up to
 * ThreadSlotsExhaustedError). watchPool now also watches the pool's threads at Node's process
 * 'worker' event, which comes a tick after any Worker is constructed, before its 'exit' can.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Piscina } from 'piscina';
import { workerEntry } from '../bench/worker-entry.js';
import { SharedHeap } from '../src/index.js';
import { watchPool } from '../src/node.js';
import type { PoolAttachData } from '../workers/pool-attach-task.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits (the event loop running) until `ok()` or the deadline; answers ok() then. */
async function until(ok: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await sleep(5);
  return ok();
}

/** A heap, a pool of at most one thread started on demand (minThreads 0) over it, watched. */
function setup(atLoad: PoolAttachData['atLoad']): { heap: SharedHeap; pool: Piscina; control: Int32Array; errors: unknown[] } {
  const heap = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 4 });
  heaps.push(heap);
  const control = new Int32Array(new SharedArrayBuffer(8));
  const pool = new Piscina({
    filename: workerEntry('pool-attach-task').filename,
    workerData: { buffer: heap.buffer, control, atLoad } satisfies PoolAttachData,
    minThreads: 0,
    maxThreads: 1,
  });
  const errors: unknown[] = [];
  pool.on('error', (e: unknown) => errors.push(e)); // piscina's report of a thread that failed while loading
  watchPool(heap, pool);
  return { heap, pool, control, errors };
}

describe('watchPool and a pool thread that attached before it was ready', () => {
  it('pool.destroy() while the thread still loads: its slot comes back', async () => {
    const { heap, pool, control } = setup('hold');
    const run = pool.run(64).then(
      () => 'resolved',
      (e: Error) => `rejected: ${e.message}`,
    );
    expect(await until(() => Atomics.load(control, 0) === 1), 'the pool thread attached').toBe(true);
    expect(heap.stats().threadsAttached).toBe(2);
    await pool.destroy();
    expect(await run).toBe('rejected: Terminating worker thread');
    await until(() => heap.stats().threadsAttached === 1);
    expect(heap.stats().threadsAttached, 'the destroyed thread still holds its slot').toBe(1);
    expect(heap.stats().reclaims).toBe(1);
    heap.check();
  });

  for (const atLoad of ['throw', 'exit'] as const) {
    it(`a thread that attached and then ${atLoad === 'throw' ? 'threw' : 'exited'} while loading: its slot comes back`, async () => {
      const { heap, pool, control, errors } = setup(atLoad);
      // piscina starts no other thread after one failed while loading, and this run waits for one:
      // it stays pending until destroy() below.
      const run = pool.run(64).then(
        () => 'resolved',
        (e: Error) => `rejected: ${e.message}`,
      );
      expect(await until(() => Atomics.load(control, 0) === 1), 'the pool thread attached').toBe(true);
      expect(await until(() => pool.threads.length === 0), 'the pool saw its thread end').toBe(true);
      await until(() => heap.stats().threadsAttached === 1);
      expect(heap.stats().threadsAttached, 'the thread that ended while loading still holds its slot').toBe(1);
      expect(heap.stats().reclaims).toBe(1);
      if (atLoad === 'throw') expect(errors.length).toBe(1);
      heap.check();
      await pool.destroy();
      expect(await run).toBe('rejected: Terminating worker thread');
    });
  }

  it('a pool watched for two heaps: a thread destroyed while loading is reclaimed in both', async () => {
    const a = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 4 });
    const b = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 4 });
    heaps.push(a, b);
    const control = new Int32Array(new SharedArrayBuffer(8));
    const pool = new Piscina({
      filename: workerEntry('pool-attach-task').filename,
      workerData: { buffer: a.buffer, control, atLoad: 'hold', also: b.buffer } satisfies PoolAttachData,
      minThreads: 0,
      maxThreads: 1,
    });
    watchPool(a, pool);
    watchPool(b, pool);
    const run = pool.run(64).catch(() => undefined);
    expect(await until(() => Atomics.load(control, 0) === 1)).toBe(true);
    expect([a.stats().threadsAttached, b.stats().threadsAttached]).toEqual([2, 2]);
    await pool.destroy();
    await run;
    await until(() => a.stats().threadsAttached === 1 && b.stats().threadsAttached === 1);
    expect(a.stats().threadsAttached).toBe(1);
    expect(b.stats().threadsAttached).toBe(1);
    a.check();
    b.check();
  });
});
