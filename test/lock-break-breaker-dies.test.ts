/**
 * A waiter breaking the lock of a dead holder whose slot is reclaimed and attached again before
 * its CAS (an audit's window, layout.ts TH_LOCK_GEN). D takes the global lock and is terminated;
 * its slot is marked DEAD (as watch() marks an exited worker's). B, needing the lock, reads D's
 * word, sees D not ATTACHED, and is held just before its breaking CAS. Meanwhile this thread
 * reclaims D (breaking the lock itself, then letting it go), and a new worker N attaches, in D's
 * slot, and takes the lock. With the slot alone in the lock word, N's word was D's, so B's CAS
 * succeeded and took the lock from under the live N; B gave it back by a second CAS when it saw
 * the slot ATTACHED again, and a B that died between the two left the lock in its own name while
 * N went on in its critical section: the next thread to break B's lock would hold it with N.
 * Now the word carries the slot's generation, and B's CAS fails.
 *
 * B is stopped where it could die: right before the CAS, and right after a CAS that took the lock.
 * In both cases N keeps the lock, B's reclaim (where it died) and N's release leave a heap that
 * checks, and the waiters go on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { markDead } from '../src/reclaim.js';
import { G_LOCK, LOCK_HELD, TH_LOCK_GEN, TH_STATE, TS_DEAD, TS_FREE, lockWord } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { checked, MiB, until } from './fixtures.js';
import { startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);
const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));

describe('breaking a dead holder\'s lock while its slot is reclaimed and attached again', () => {
  for (const stop of ['before', 'after'] as const) {
    it(`leaves the lock with the new holder (the breaker stopped ${stop} its CAS)`, async () => {
      const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 3 });
      const t = internals(heap);
      const i32 = t.i32;
      const word = (): number => Atomics.load(i32, G_LOCK);

      // B first (slot 1), so that D and then N take slot 2.
      const ctlB = new Int32Array(new SharedArrayBuffer(16));
      const dCtl = new Int32Array(new SharedArrayBuffer(8));
      const B = startWorker('lock-break-worker', { buffer: heap.buffer, ctl: ctlB, deadSlot: 2, stop });
      const b = await next<{ slot: number; threadId: number }>(B);
      expect(b.slot).toBe(1);

      const D = startWorker('lock-gate-worker', { buffer: heap.buffer, ctl: dCtl });
      const d = await next<{ slot: number; threadId: number }>(D);
      expect(d.slot).toBe(2);
      await until('D holds the lock', () => Atomics.load(dCtl, 0) === 1);
      const dWord = word();
      expect(lockHolder(dWord)).toBe(2);
      await D.terminate();
      markDead(t, d.threadId); // as watch() does at D's exit
      expect(Atomics.load(i32, t.threadW(2) + TH_STATE)).toBe(TS_DEAD);

      // B wants the lock, sees D dead, and is held right before its CAS from D's word.
      Atomics.store(ctlB, 2, 1);
      Atomics.notify(ctlB, 2);
      await until('B is at its breaking CAS', () => Atomics.load(ctlB, 0) === 1);
      expect(word()).toBe(dWord);

      // This thread reclaims D (breaks its lock, lets it go); N attaches in D's slot and takes the lock.
      expect(heap.reclaim(d.threadId)).toBe(true);
      expect(Atomics.load(i32, t.threadW(2) + TH_STATE)).toBe(TS_FREE);
      const nCtl = new Int32Array(new SharedArrayBuffer(8));
      const N = startWorker('lock-gate-worker', { buffer: heap.buffer, ctl: nCtl });
      const n = await next<{ slot: number; threadId: number }>(N);
      expect(n.slot).toBe(2);
      await until('N holds the lock', () => Atomics.load(nCtl, 0) === 1);
      const nWord = word();
      const gen = Atomics.load(i32, t.threadW(2) + TH_LOCK_GEN);
      expect(nWord).toBe(lockWord(2, LOCK_HELD, gen));
      expect(nWord, 'two attachments of one slot write different lock words').not.toBe(dWord);

      // B goes on: its CAS from D's word fails (it would have taken N's lock).
      const bExit = new Promise((resolve) => B.once('exit', resolve));
      Atomics.store(ctlB, 1, 1);
      Atomics.notify(ctlB, 1);
      if (stop === 'before') await bExit;
      else await until('B made its CAS', () => Atomics.load(ctlB, 0) >= 2);
      expect(Atomics.load(ctlB, 0), 'B\'s CAS from D\'s word did not take the lock').not.toBe(2);
      expect(lockHolder(word()), 'the lock is still N\'s').toBe(2);
      expect(word() & ~3).toBe(nWord & ~3);

      // N lets the lock go; B (where it runs on) takes it and mallocs.
      Atomics.store(nCtl, 1, 1);
      Atomics.notify(nCtl, 1);
      await until('N let the lock go', () => Atomics.load(nCtl, 0) === 2);
      if (stop === 'before') expect(heap.reclaim(b.threadId)).toBe(true); // B ended there
      if (stop === 'after') {
        await until('B\'s malloc returned', () => Atomics.load(ctlB, 0) === 4);
        expect(Atomics.load(ctlB, 3)).toBeGreaterThan(0);
        Atomics.store(ctlB, 2, 2);
        Atomics.notify(ctlB, 2);
        await until('B freed its block', () => Atomics.load(ctlB, 0) === 5);
      }
      await until('the lock is free', () => word() === 0);
      expect(heap.stats().lock.recoveries).toBe(1); // this thread's break of D's lock, and no other
      const p = heap.malloc(2 * MiB);
      expect(p).toBeGreaterThan(0);
      heap.free(p);
      expect(checked(heap)).toBe('passes');
    }, 30_000);
  }
});
