/**
 * Asks to flush (src/flush-ask.ts): a thread out of memory asks the others, each of which answers
 * from its event loop. The out-of-memory tests (test/out-of-memory.test.ts) show what it brings
 * back; these hold the listener's own protocol: it keeps answering under concurrent asks, it lets
 * a stopped instance go, and a dropped instance's detach never blocks the event loop.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { attachedThreads, cutOffLargeMallocQuietly } from './fault-internals.js';
import { armCrash } from '../src/crash.js';
import { internals } from '../src/heap.js';
import { FA_LISTENING, TH_FLUSH_ASK } from '../src/layout.js';
import { checked, MiB } from './fixtures.js';
import { release, startHeapWorker, terminateAll } from './remote-heap.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
afterEach(terminateAll);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('the listener', () => {
  it('keeps answering when two threads out of memory ask at once, and still answers the ask that brings memory back', async () => {
    // An ask landing between the listener's answer and its re-arming used to leave the word ASKED
    // for good (it returned on anything but LISTENING): every later asker skipped the thread, and
    // the out-of-memory case of test/out-of-memory.test.ts came back (an audit: 3 of 3 runs, at
    // the first round; the worker got 0 of 64,848 blocks).
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4 });
    const t = internals(heap);
    const blocks: number[] = [];
    for (let p = heap.malloc(100); p !== 0; p = heap.malloc(100)) blocks.push(p);
    const [a, b] = [startHeapWorker(), startHeapWorker()];
    await Promise.all([a.remote.attach(heap.buffer), b.remote.attach(heap.buffer)]);
    for (let round = 0; round < 4; round++) {
      await Promise.all([a.remote.mallocTimes(100, 1000), b.remote.mallocTimes(100, 1000)]);
      await sleep(50); // the main thread idle: an ask made meanwhile is answered
      expect(Atomics.load(t.i32, t.thW + TH_FLUSH_ASK), `round ${round}`).toBe(FA_LISTENING);
    }
    await a.remote.freeMany(blocks);
    const got = await b.remote.fillAndFree(100);
    expect(got).toBeGreaterThan(blocks.length / 2);
    for (const w of [a, b]) {
      await w.remote.detach();
      release(w);
    }
    expect(checked(heap)).toBe('passes');
    heap.detach();
  });

  it('lets an instance that a fault stopped go: its buffer is not held once the program dropped it', async () => {
    // A fault marks the slot DEAD and the instance detached; its pending waitAsync used to hold the
    // context and its buffer for the life of the thread (an audit: 8 of 8 dropped 64 MiB buffers).
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 20; i++) {
        gc();
        await sleep(5);
      }
    };
    const faultThenDetach = (): WeakRef<SharedArrayBuffer> => {
      const heap = SharedHeap.create({ initialBytes: 64 * MiB });
      const cut = cutOffLargeMallocQuietly(heap);
      expect(cut).toBe('HeapStateError');
      SharedHeap.attach(heap.buffer).detach();
      return new WeakRef(heap.buffer);
    };
    await settle();
    const refs = Array.from({ length: 8 }, faultThenDetach);
    await settle();
    expect(refs.filter((r) => r.deref() !== undefined).length).toBeLessThanOrEqual(1);
  });
});

describe('a dropped instance', () => {
  it('is detached without blocking the event loop while another thread holds the global lock, once the lock is free', async () => {
    // detach() holds the lock throughout (attach.ts detachThread). The registry's detach of a
    // dropped instance on a main thread used to wait for it: 3 s of a blocked event loop, then the
    // slot stayed attached (an audit). Now it tries again later.
    const buffer = ((): SharedArrayBuffer => {
      const h = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4 });
      h.free(h.malloc(100));
      return h.buffer;
    })();
    const w = startHeapWorker();
    await w.remote.attach(buffer);
    const held = w.remote.holdLockFor(1500);
    await sleep(100);
    let longest = 0;
    let turns = 0;
    const t0 = performance.now();
    expect(attachedThreads(buffer)).toBe(2); // the dropped instance and the worker: the loop below runs
    while (attachedThreads(buffer) === 2 && performance.now() - t0 < 10_000) {
      gc();
      const t1 = performance.now();
      await sleep(5);
      longest = Math.max(longest, performance.now() - t1);
      turns++;
    }
    await held;
    expect(turns).toBeGreaterThan(0);
    expect(longest).toBeLessThan(1000);
    expect(attachedThreads(buffer)).toBe(1); // the worker's
    await w.remote.detach();
    release(w);
  });

  it('that a fault cuts off in its detach leaves the global lock breakable: the next malloc that needs it succeeds', async () => {
    // detach() holds the lock throughout, and a fault keeps it (fault.ts). The registry's detach
    // called detachThread outside guarded(): the slot stayed ATTACHED while holding the lock, which
    // nobody may break, and every later malloc on the heap timed out (an audit). Now the fault marks
    // the slot DEAD, as in detach().
    const buffer = ((): SharedArrayBuffer => {
      const h = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4 });
      const a = h.malloc(100);
      h.malloc(100); // live: its slab is abandoned at the detach
      h.free(a); // cached: the detach's flush drains it
      return h.buffer;
    })();
    let hit = -1;
    armCrash(1, (path) => {
      hit = path;
      throw new Error('a fault at a crash point of the registry\'s detach');
    });
    try {
      for (let i = 0; i < 100 && hit < 0; i++) {
        gc();
        await sleep(5);
      }
    } finally {
      armCrash(0, () => {
        throw new Error('crash points are off');
      });
    }
    expect(hit).toBeGreaterThanOrEqual(0);
    const again = SharedHeap.attach(buffer);
    const t0 = performance.now();
    const p = again.malloc(3 * MiB); // a large run: takes the global lock
    expect(p).not.toBe(0);
    expect(performance.now() - t0).toBeLessThan(2000); // no LockTimeoutError (3 s), no wait for it
    again.free(p);
    again.detach();
  });
});
