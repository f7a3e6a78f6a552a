/**
 * An audit: a fault (a stack overflow's RangeError) inside the locked section that debug mode's
 * realloc of a large run takes on a main thread (6bc1575): the copy there runs outside any guarded
 * call, so the fault set runner.faulted (lockRelease keeps the lock) but the slot stayed ATTACHED
 * and the instance was not stopped: the lock was held for good by a live slot (no other thread can
 * break it), and the call threw the raw RangeError instead of HeapStateError.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapStateError, SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, TH_STATE, TS_DEAD, lockHolder } from '../src/layout.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

const MiB = 1 << 20;
afterEach(terminateAll);

describe('a fault inside realloc of a large run on a main thread', () => {
  for (const debug of [false, true]) {
    it(`stops the instance and leaves the lock breakable (debug ${debug})`, async () => {
      const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4, debug });
      const t = internals(heap);
      const p = heap.malloc(200 << 10); // a large run
      const after = heap.malloc(200 << 10); // so that p cannot grow in place
      expect(p).toBeGreaterThan(0);
      expect(after).toBeGreaterThan(0);
      (t as unknown as { copy: unknown }).copy = () => {
        throw new RangeError('Maximum call stack size exceeded');
      };
      let err: unknown;
      try {
        heap.realloc(p, 3 * MiB);
      } catch (e) {
        err = e;
      }
      // The lock, if kept, names a slot no longer ATTACHED: another thread breaks it.
      const word = Atomics.load(t.i32, G_LOCK);
      if (word !== 0) expect(Atomics.load(t.i32, t.threadW(lockHolder(word)) + TH_STATE)).toBe(TS_DEAD);
      expect(err).toBeInstanceOf(HeapStateError);
      const w = startHeapWorker();
      await w.remote.attach(heap.buffer);
      const got = w.remote.malloc(3 * MiB).then((q) => (q > 0 ? 'got' : 'zero'));
      const timeout = new Promise<string>((r) => setTimeout(() => r('still waiting after 5 s'), 5000));
      expect(await Promise.race([got, timeout])).toBe('got');
    });
  }
});
