/**
 * reallocAsync of a large block goes through several steps, each its own wait for the lock
 * (heap.ts reallocAsync: the resize in place, reallocTarget, the old run's free), with awaits
 * between them. Only the start of the call checked that the thread was attached, so a detach()
 * (or a fault that stopped the instance) while the call waited did not stop it: its next step ran
 * on the detached context, took the global lock in the name of the slot it had given back (which
 * another thread then broke as a dead holder's: two holders at once), moved the block and
 * resolved; after a fault it retried for good on the lock its own stopped slot kept, and the
 * process never ended (an audit of the async calls interleaved with the rest of one thread).
 * Each step now checks first: the call rejects naming reallocAsync, before it takes the lock, the
 * old block as it was. Between taking the new block and freeing the old one both are live and only
 * the call knows the new one, so detach() refuses in that window (the call then completes).
 */
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { HeapStateError, SharedHeap } from '../src/index.js';
import { internals, testHoldGlobalLock } from '../src/heap.js';
import { G_LOCK } from '../src/layout.js';
import { armCrash } from '../src/crash.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';
import { checked, fillPattern, firstWrong } from './fixtures.js';

const KiB = 1 << 10;
const MiB = 1 << 20;
const heaps: SharedHeap[] = [];
afterEach(async () => {
  armCrash(0, () => {
    throw new Error('off');
  });
  await terminateAll();
  for (const h of heaps.splice(0)) {
    try {
      h.detach();
    } catch {
      /* stopped */
    }
  }
});

const outcome = async (p: Promise<number>): Promise<string> => {
  try {
    return `resolved 0x${(await p).toString(16)}`;
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
};

/** A heap with a large block `big` (patterned) that cannot grow in place (a blocker right after it). */
function setUp(): { heap: SharedHeap; big: number; blocker: number } {
  const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxThreads: 4, stage1Keep: 0 });
  const big = heap.malloc(300 * KiB);
  fillPattern(heap, big, 300 * KiB, 7);
  const blocker = heap.malloc(200 * KiB);
  return { heap, big, blocker };
}

describe('reallocAsync of a large block pending across detach()', () => {
  it('waiting at its first step (the lock busy): rejects naming reallocAsync, does not run on the detached context', async () => {
    const { heap, big } = setUp();
    const i32 = internals(heap).i32;
    testHoldGlobalLock(heap); // another party holds the lock
    const pending = outcome(heap.reallocAsync(big, 900 * KiB));
    await new Promise((r) => setTimeout(r, 30));
    Atomics.store(i32, G_LOCK, 0); // that party lets go ...
    heap.detach(); // ... and the thread detaches before the call's next try
    const got = await pending;
    const again = SharedHeap.attach(heap.buffer);
    heaps.push(again);
    // Before: "resolved 0x200000": the block moved by the detached context, the old one freed.
    expect(got).toMatch(/^HeapStateError: reallocAsync\(ptr, size\): this thread has detached from the heap/);
    expect(firstWrong(again, big, 300 * KiB, 7), 'the old block as it was').toBe(-1);
    expect(again.stats().liveBlocks).toBe(2);
    expect(checked(again)).toBe('passes');
  }, 20_000);

  it('the detached context takes the lock in the name of a FREE slot: a worker breaks it as a dead holder\'s, two holders at once', async () => {
    const { heap, big } = setUp();
    const i32 = internals(heap).i32;
    const w = startHeapWorker();
    await w.remote.attach(heap.buffer);
    const recoveriesBefore = heap.stats().lock.recoveries;
    testHoldGlobalLock(heap);
    const pending = outcome(heap.reallocAsync(big, 900 * KiB));
    await new Promise((r) => setTimeout(r, 30));
    Atomics.store(i32, G_LOCK, 0);
    heap.detach();
    // At the first crash point the detached call passes (under the lock: taking the new run), this
    // thread asks the worker for a large block and stays 300 ms in that critical section.
    let inWorker: Promise<number> | undefined;
    let lockSeen = 0;
    armCrash(1, (() => {
      lockSeen = Atomics.load(i32, G_LOCK);
      inWorker = w.remote.malloc(2 * MiB) as Promise<number>;
      const end = Date.now() + 300;
      while (Date.now() < end) {
        /* in the critical section */
      }
    }) as unknown as (path: number) => never);
    const got = await pending;
    armCrash(0, () => {
      throw new Error('off');
    });
    const again = SharedHeap.attach(heap.buffer);
    heaps.push(again);
    const wp = inWorker === undefined ? -1 : await inWorker;
    const recoveries = again.stats().lock.recoveries - recoveriesBefore;
    // Before: the call resolved, the lock word it held named its own old (FREE) slot, and the
    // worker broke that lock (recoveries 1) while this thread was inside its critical section.
    expect({ got: got.replace(/0x[0-9a-f]+/, 'P'), lockSeen: lockSeen !== 0, recoveries, workerMalloc: wp > 0 || wp === -1 }).toEqual({
      got: 'HeapStateError: reallocAsync(ptr, size): this thread has detached from the heap',
      lockSeen: false,
      recoveries: 0,
      workerMalloc: true,
    });
  }, 20_000);

  it("pending between the move and the old run's free: detach() refuses until the call completes, and nothing leaks", async () => {
    const { heap, big } = setUp();
    const t = internals(heap);
    const before = heap.stats().liveBlocks;
    const origCopy = t.copy;
    // Right after the copy (no lock held then), another party takes the lock: the old run's free waits.
    t.copy = (to: number, from: number, n: number): void => {
      if (origCopy) origCopy(to, from, n);
      else t.bytes.copyWithin(to, from, from + n);
      testHoldGlobalLock(heap);
    };
    const pending = heap.reallocAsync(big, 900 * KiB);
    await new Promise((r) => setTimeout(r, 30));
    t.copy = origCopy;
    expect(() => heap.detach()).toThrow(/^detach\(\): a reallocAsync of this instance is moving a large block/);
    Atomics.store(t.i32, G_LOCK, 0);
    const q = await pending;
    expect(q).not.toBe(big);
    expect(firstWrong(heap, q, 300 * KiB, 7), 'the contents moved').toBe(-1);
    expect(heap.stats().liveBlocks, 'the new block and the blocker').toBe(before);
    expect(checked(heap)).toBe('passes');
    heap.detach(); // the call done, detach goes through
    const again = SharedHeap.attach(heap.buffer);
    heaps.push(again);
    expect(again.stats().liveBlocks).toBe(before);
    expect(checked(again)).toBe('passes');
  }, 20_000);
});

describe('reallocAsync of a large block pending when a fault stops the instance', () => {
  it('rejects with a HeapStateError naming reallocAsync within 2 s (the lock the fault kept is its own dead slot\'s)', async () => {
    const { heap, big } = setUp();
    const i32 = internals(heap).i32;
    testHoldGlobalLock(heap);
    const pending = outcome(heap.reallocAsync(big, 900 * KiB));
    const small = outcome(heap.mallocAsync(200 * KiB));
    await new Promise((r) => setTimeout(r, 30));
    Atomics.store(i32, G_LOCK, 0);
    // A large malloc cut off under the lock by a stack overflow: the instance stops, the lock kept.
    armCrash(3, () => {
      throw new RangeError('Maximum call stack size exceeded');
    });
    expect(() => heap.malloc(3 * MiB)).toThrow(HeapStateError);
    armCrash(0, () => {
      throw new Error('off');
    });
    const timeout = new Promise<string>((r) => setTimeout(() => r('still pending after 2 s'), 2000));
    const [gotRealloc, gotMalloc] = [await Promise.race([pending, timeout]), await Promise.race([small, timeout])];
    expect(gotMalloc).toMatch(/^HeapStateError: mallocAsync\(size\): /);
    // Before: still pending: its retry waited for the lock that its own stopped slot keeps.
    expect.soft(gotRealloc).toMatch(/^HeapStateError: reallocAsync\(ptr, size\): /);
    const again = SharedHeap.attach(heap.buffer); // reclaims the stopped slot, breaks its lock
    heaps.push(again);
    // Once this thread attached again, the stale call must not act either (nor keep the lock).
    const late = await Promise.race([pending, new Promise<string>((r) => setTimeout(() => r('still pending'), 500))]);
    expect.soft(late).toMatch(/^HeapStateError: reallocAsync\(ptr, size\): /);
    expect.soft(Atomics.load(i32, G_LOCK), 'the lock free once the calls settled').toBe(0);
    let m = '';
    try {
      const q = again.malloc(3 * MiB);
      again.free(q);
      m = 'ok';
    } catch (e) {
      m = `${(e as Error).name}: ${(e as Error).message.slice(0, 80)}`;
    }
    expect.soft(m, 'a large malloc on the new attachment').toBe('ok');
    expect.soft(firstWrong(again, big, 300 * KiB, 7)).toBe(-1);
    expect.soft(checked(again)).toBe('passes');
    expect.soft(again.stats().liveBlocks).toBe(2);
  }, 20_000);
});

describe('a process whose reallocAsync was pending at a fault', () => {
  // The call settles (a HeapStateError naming reallocAsync) and, nothing else pending, the process
  // ends. Before, it never ended: the call retried every 20 ms on a timer (lock.ts waitLockAsync)
  // for a lock that its own stopped slot kept (lock.ts never breaks the caller's own slot's).
  // Run in a child process on the build (dist/).
  const dist = (path: string): string => pathToFileURL(new URL(`../dist/src/${path}`, import.meta.url).pathname).href;
  const code = `
import { SharedHeap } from ${JSON.stringify(dist('index.js'))};
import { internals, testHoldGlobalLock } from ${JSON.stringify(dist('heap.js'))};
import { armCrash } from ${JSON.stringify(dist('crash.js'))};
import { G_LOCK } from ${JSON.stringify(dist('layout.js'))};
const heap = SharedHeap.create({ initialBytes: 64 << 20, maxThreads: 4, stage1Keep: 0 });
const big = heap.malloc(300 << 10); heap.malloc(200 << 10);
const i32 = internals(heap).i32;
testHoldGlobalLock(heap);
heap.reallocAsync(big, 900 << 10).then((v) => console.log('resolved', v), (e) => console.log('rejected', e.message.slice(0, 24)));
setTimeout(() => {
  Atomics.store(i32, G_LOCK, 0);
  armCrash(3, () => { throw new RangeError('Maximum call stack size exceeded'); });
  try { heap.malloc(3 << 20); } catch (e) { console.log('cut off', e.name); }
  armCrash(0, () => { throw new Error('off'); });
}, 30);
`;
  it('ends within 5 s, the call rejected', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 5000 });
    expect({ signal: r.signal, status: r.status, out: `${r.stdout}${r.stderr}`.trim() }).toEqual({
      signal: null,
      status: 0,
      out: 'cut off HeapStateError\nrejected reallocAsync(ptr, size):',
    });
  }, 20_000);
});
