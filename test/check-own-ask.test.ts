/**
 * check() made while this thread's own ask to flush is unanswered (its own event loop answers it,
 * which cannot run while check() runs): a real corruption is reported at once, and the message
 * does not name this thread as one to wait for. Before (an audit of 7d03a90, which waited for
 * unanswered asks before walking again): it waited for itself, 3 x 250 ms, for nothing.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SharedHeap, HeapCorruptionError } from '../src/index.js';
import { internals } from '../src/heap.js';
import { FA_ASKED, FA_LISTENING, G_LOCK, TH_FLUSH_ASK } from '../src/layout.js';
import { terminateAll } from './remote-heap.js';
import { MiB } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

describe('check() with this thread\'s own ask to flush unanswered', () => {
  it('reports a real corruption without waiting for its own answer', () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4 });
    const t = internals(heap);
    const askW = t.thW + TH_FLUSH_ASK;
    expect(Atomics.load(t.i32, askW)).toBe(FA_LISTENING); // this thread listens
    // Another thread out of memory asked this one; its event loop has not run since.
    Atomics.store(t.i32, askW, FA_ASKED);
    // A real corruption: a lock word no thread could have written.
    const lock = Atomics.load(t.i32, G_LOCK);
    Atomics.store(t.i32, G_LOCK, 0x7fff0000);
    const t0 = performance.now();
    let err: unknown;
    try {
      heap.check();
    } catch (e) {
      err = e;
    }
    const ms = performance.now() - t0;
    Atomics.store(t.i32, G_LOCK, lock);
    Atomics.store(t.i32, askW, FA_LISTENING);
    expect(err).toBeInstanceOf(HeapCorruptionError);
    expect((err as Error).message).not.toMatch(/ask to flush unanswered/);
    // Nothing can change while it waits for itself: it should report at once (was ~750 ms).
    expect(ms).toBeLessThan(100);
  });
});
