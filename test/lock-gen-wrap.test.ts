/**
 * The lock word's attachment generation (layout.ts TH_LOCK_GEN, lockWord) near its wrap, set by
 * hand in a slot's thread area before a thread attaches there (2^18 or 2^31 attachments are not
 * made for real):
 * - a generation with its top bit set makes the lock word negative: it is taken, waited on (the
 *   waiters bit), let go, checked, and broken when its holder died, as any other;
 * - the count itself wrapping (2^31 - 1 + 1) gives generation bits 0;
 * - 2^LOCK_GEN_BITS attachments after a dead holder's, a new thread in its reclaimed slot writes
 *   the dead holder's very word: a breaker that read that word meanwhile takes the lock by its CAS,
 *   sees the slot ATTACHED and hands the lock back (lock.ts breakLockIfHolderDead), never going on
 *   as a second holder.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { markDead } from '../src/reclaim.js';
import {
  G_LOCK, LOCK_GEN_BITS, LOCK_HELD, LOCK_STATE_MASK, LOCK_WAITERS, TH_LOCK_GEN, TH_STATE, TH_THREAD_ID, TS_ATTACHED, TS_DEAD, lockWord,
} from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { checked, MiB, until } from './fixtures.js';
import { startHeapWorker, startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));

/**
 * A heap whose slot 1 has had `gens` attachments (TH_LOCK_GEN), and a worker attached there that
 * holds the global lock (workers/lock-gate-worker.ts) until ctl[1] is set.
 */
async function gateHolderAfter(gens: number) {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const t = internals(heap);
  Atomics.store(t.i32, t.threadW(1) + TH_LOCK_GEN, gens);
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const g = startWorker('lock-gate-worker', { buffer: heap.buffer, ctl });
  const said = await next<{ slot: number; threadId: number }>(g);
  expect(said.slot).toBe(1);
  await until('the worker holds the lock', () => Atomics.load(ctl, 0) === 1);
  return { heap, t, ctl, g, said };
}

describe('the lock word near the wrap of its generation', () => {
  it('a generation with its top bit set: a negative word is held, waited on and let go', async () => {
    const top = 1 << (LOCK_GEN_BITS - 1);
    const { heap, t, ctl } = await gateHolderAfter(top - 1);
    const word = Atomics.load(t.i32, G_LOCK);
    expect(word).toBe(lockWord(1, LOCK_HELD, top));
    expect(word).toBeLessThan(0);
    expect(lockHolder(word)).toBe(1);
    expect(checked(heap), 'check() while the negative word is held').toBe('passes');

    // Another worker needs the lock: it sets the waiters bit on the negative word and waits.
    const w = startHeapWorker();
    await w.remote.attach(heap.buffer);
    const p = w.remote.malloc(3 * MiB);
    await until('the waiter set the waiters bit', () => (Atomics.load(t.i32, G_LOCK) & LOCK_STATE_MASK) === LOCK_WAITERS);
    expect(Atomics.load(t.i32, G_LOCK)).toBe(lockWord(1, LOCK_WAITERS, top));
    Atomics.store(ctl, 1, 1);
    Atomics.notify(ctl, 1);
    expect(await p).toBeGreaterThan(0);
    await until('the lock is free', () => Atomics.load(t.i32, G_LOCK) === 0);
    expect(heap.stats().lock.recoveries).toBe(0);
    expect(checked(heap)).toBe('passes');
  }, 30_000);

  for (const [name, gens, gen] of [
    ['its top bit set', (1 << (LOCK_GEN_BITS - 1)) - 1, 1 << (LOCK_GEN_BITS - 1)],
    ['the count wrapping past 2^31 - 1', 0x7fffffff, 0],
  ] as const) {
    it(`a dead holder's lock with the generation ${name} is broken`, async () => {
      const { heap, t, g, said } = await gateHolderAfter(gens);
      expect(Atomics.load(t.i32, G_LOCK)).toBe(lockWord(1, LOCK_HELD, gen));
      await g.terminate();
      markDead(t, said.threadId); // as watch() does at its exit
      expect(Atomics.load(t.i32, t.threadW(1) + TH_STATE)).toBe(TS_DEAD);
      const p = heap.malloc(2 * MiB); // needs the lock: breaks it
      expect(p).toBeGreaterThan(0);
      expect(heap.stats().lock.recoveries).toBe(1);
      heap.free(p);
      expect(heap.reclaim(said.threadId)).toBe(true);
      expect(Atomics.load(t.i32, G_LOCK)).toBe(0);
      expect(checked(heap)).toBe('passes');
    }, 30_000);
  }

  it('a new holder with the dead holder\'s very word (2^LOCK_GEN_BITS attachments later) gets the lock back from a breaker', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const t = internals(heap);
    // A worker whose 3 MiB malloc is cut off under the lock: its slot h DEAD, the lock kept in its name.
    const x = startWorker('lock-fault-worker', { buffer: heap.buffer });
    const said = await next<{ thrown: string; threadId: number }>(x);
    expect(said.thrown).toBe('HeapStateError');
    const c = Atomics.load(t.i32, G_LOCK);
    const h = lockHolder(c);
    expect(h).not.toBe(t.slot);
    expect(c & LOCK_STATE_MASK).toBe(LOCK_HELD);
    const stateW = t.threadW(h) + TH_STATE;
    expect(Atomics.load(t.i32, stateW)).toBe(TS_DEAD);
    const y = startHeapWorker();
    const yId = await y.remote.threadId;

    // tryMalloc reads the word (h's) and h's state (DEAD); between that load and its CAS, other
    // threads reclaim h (breaking its lock and letting it go), and a new thread attaches in h, its
    // generation 2^LOCK_GEN_BITS past the dead holder's, and takes the lock: the same word.
    const load = Atomics.load as (a: Int32Array, i: number) => number;
    let armed = true;
    let same = false;
    const hook = (a: Int32Array, i: number): number => {
      const v = load(a, i);
      if (armed && a.buffer === t.i32.buffer && i === stateW) {
        armed = false;
        heap.reclaim(said.threadId);
        const genW = t.threadW(h) + TH_LOCK_GEN;
        Atomics.store(t.i32, genW, load(t.i32, genW) + (1 << LOCK_GEN_BITS) - 1);
        void y.remote.attach(heap.buffer);
        void y.remote.holdLock();
        const end = Date.now() + 5000;
        const idle = new Int32Array(new SharedArrayBuffer(4));
        const held = (): boolean => load(t.i32, G_LOCK) === c && load(t.i32, t.threadW(h) + TH_THREAD_ID) === yId + 1;
        while (!held() && Date.now() < end) Atomics.wait(idle, 0, 0, 1);
        same = held();
      }
      return v;
    };
    const original = Atomics.load;
    (Atomics as { load: typeof Atomics.load }).load = hook as unknown as typeof Atomics.load;
    let p: number;
    try {
      p = heap.tryMalloc(3 * MiB);
    } finally {
      (Atomics as { load: typeof Atomics.load }).load = original;
    }
    expect(armed).toBe(false);
    expect(same, 'the new thread in slot h holds the lock under the dead holder\'s word').toBe(true);
    expect(Atomics.load(t.i32, stateW)).toBe(TS_ATTACHED);
    // The breaker's CAS took that word; it saw h ATTACHED and gave the lock back: tryMalloc
    // answers 0 (busy), and the word is the new holder's again (with the waiters bit).
    expect({ p, word: Atomics.load(t.i32, G_LOCK) }).toEqual({ p: 0, word: c | LOCK_WAITERS });
    expect(heap.stats().lock.recoveries, 'the reclaim\'s break only').toBe(1);

    // The new holder ends holding it; its lock is broken as a dead holder's.
    await y.worker.terminate();
    markDead(t, yId);
    const q = heap.malloc(2 * MiB);
    expect(q).toBeGreaterThan(0);
    heap.free(q);
    expect(heap.reclaim(yId)).toBe(true);
    expect(Atomics.load(t.i32, G_LOCK)).toBe(0);
    expect(checked(heap)).toBe('passes');
  }, 30_000);
});
