/**
 * check() while a thread with a corrupt magazine has an ask to flush unanswered: it reports the
 * corruption its walk found (naming the thread whose ask was out), and does not walk again after
 * that thread's flush. A block both live (state ALLOCATED: handed out) and in a thread's magazine
 * is real corruption (the next malloc there hands it out a second time); the flush drains the
 * magazine and writes the block FREE (magazine.ts drainJournal writes ST_FREE whatever the state
 * byte said), so a walk made again after it passed. Before (an audit of 7d03a90, which walked
 * again once the asks were answered): check() returned as if the heap were healthy.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { FA_ASKED, FA_LISTENING, G_LOCK, MAG_ENTRY_WORDS, MAG_STATE, ST_ALLOCATED, ST_CACHED, ST_CLEAN, TH_FLUSH_ASK, TH_TOP, magazineWords } from '../src/layout.js';
import { NUM_CLASSES } from '../src/size-classes.js';
import { startHeapWorker, terminateAll, waitFor } from './remote-heap.js';
import { MiB, checked } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

describe('check() while a thread with a corrupt magazine has an ask to flush unanswered', () => {
  it('still reports the corruption the first walk found', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const t = internals(heap);
    const v = startHeapWorker();
    const id = await v.remote.attach(heap.buffer);
    const tid = heap.stats().threads.find((x) => x.threadId === id)!.tid;
    const ps = await Promise.all(Array.from({ length: 20 }, () => v.remote.malloc(100)));
    await Promise.all(ps.map((p) => v.remote.free(p)));
    expect(checked(heap)).toBe('passes');
    // The corruption: the first block of a magazine of the worker says ALLOCATED (live).
    const thW = t.threadW(tid);
    let st = -1;
    for (let c = 0; c < NUM_CLASSES && st < 0; c++) {
      const base = thW + t.geo.magW + c * magazineWords(t.geo.magCap) + MAG_ENTRY_WORDS;
      if (t.i32[thW + TH_TOP + c] > base) st = t.i32[base + MAG_STATE];
    }
    expect(st).toBeGreaterThan(0);
    expect([ST_CACHED, ST_CLEAN]).toContain(t.bytes[st]); // CLEAN: carved, never handed out
    t.bytes[st] = ST_ALLOCATED;
    expect(checked(heap)).toMatch(/expected CACHED/); // reported while no ask is out
    // The worker busy in synchronous code for 300 ms (a critical section), then asked to flush.
    const busy = v.remote.holdLockFor(300);
    await waitFor(t.i32, G_LOCK, (x) => x !== 0);
    const askW = thW + TH_FLUSH_ASK;
    expect(Atomics.compareExchange(t.i32, askW, FA_LISTENING, FA_ASKED)).toBe(FA_LISTENING);
    Atomics.notify(t.i32, askW);
    const verdict = checked(heap);
    await busy;
    expect(verdict).toMatch(/expected CACHED/); // was 'passes': the worker's flush mended it meanwhile
  });
});
