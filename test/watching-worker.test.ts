/**
 * A worker that watches a worker of its own: the child's 'exit', which marks it dead, runs on the
 * watcher's event loop, so a watcher blocked on a lock the child died holding waited forever (an
 * audit, 2026-12-04). Its waits are now bounded as a main thread's are while it watches a running
 * worker: LockTimeoutError after 3 s, and once the exit ran, the next call goes through.
 */
import { afterEach, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { workerEntry } from '../bench/worker-entry.js';
import { checked, MiB } from './fixtures.js';
import { startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

it('a watcher blocked behind its own child that died holding the lock gets LockTimeoutError, then allocates once the exit ran', async () => {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const w = startWorker('watching-worker', { role: 'watcher', buffer: heap.buffer, ctl, filename: workerEntry('watching-worker').filename });
  heap.watch(w);
  const got: { first?: string | number; second?: string | number } = {};
  const done = new Promise<void>((resolve) => w.on('message', (m: typeof got) => {
    Object.assign(got, m);
    if ('second' in got) resolve();
  }));
  const limit = new Promise<void>((resolve) => setTimeout(resolve, 12_000));
  await Promise.race([done, limit]);
  expect(got.first).toMatch(/^LockTimeoutError: this worker, which watches workers of its own, waited \d+ ms for the heap's global lock/);
  expect(typeof got.second).toBe('number');
  expect(got.second).toBeGreaterThan(0);
  await w.terminate();
  expect(checked(heap)).toBe('passes');
  heap.detach();
}, 20_000);
