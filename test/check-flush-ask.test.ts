/**
 * check() on a quiet heap while an idle thread answers an ask to flush (flush-ask.ts: a thread
 * that ran out of memory asks the others; an idle one flushes from its event loop, at a moment of
 * its own). A walk made while that thread drains its magazines reads them half drained: check()
 * still throws (a walk made again after the flush could miss a real fault it wrote over), but its
 * message names the thread whose ask was unanswered and says to call again once it answered, and
 * then check() passes. Before (a fuzzer, 26 of about 4,000 calls): the same error with nothing to
 * tell it from corruption.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_DRAIN } from '../src/crash.js';
import { internals } from '../src/heap.js';
import { FA_ASKED, FA_LISTENING, TH_FLUSH_ASK } from '../src/layout.js';
import { startHeapWorker, terminateAll, waitFor } from './remote-heap.js';
import { MiB, checked } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

describe('check() while an idle thread answers an ask to flush', () => {
  it('names the thread whose ask was unanswered, and passes once it answered', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const t = internals(heap);
    const v = startHeapWorker();
    const id = await v.remote.attach(heap.buffer);
    const tid = heap.stats().threads.find((x) => x.threadId === id)!.tid;
    // The worker's magazines hold freed blocks of a few classes.
    for (const size of [24, 100, 500, 3000]) {
      const ps = await Promise.all(Array.from({ length: 100 }, () => v.remote.malloc(size)));
      await Promise.all(ps.map((p) => v.remote.free(p)));
    }
    const gate = new Int32Array(new SharedArrayBuffer(4));
    // Its next drain pauses for 2 s at its first crash point; then it goes on by itself.
    await v.remote.pauseNextAt(CP_DRAIN, 1, gate, 2000);
    const askW = t.threadW(tid) + TH_FLUSH_ASK;
    expect(Atomics.compareExchange(t.i32, askW, FA_LISTENING, FA_ASKED)).toBe(FA_LISTENING);
    Atomics.notify(t.i32, askW);
    const where = await Promise.race([waitFor(gate, 0, (x) => x === 1).then(() => 'paused'), new Promise((r) => setTimeout(() => r('no drain'), 5000))]);
    expect(where).toBe('paused'); // paused inside the flush, its ask unanswered
    const verdict = checked(heap);
    expect(Atomics.load(gate, 0)).toBe(1); // walked during the pause
    expect(verdict).toMatch(new RegExp(`^check\\(\\): .* \\(while thread ${id} had an ask to flush unanswered or a flush under way: .*check\\(\\) passes once it has answered\\)$`));
    await waitFor(t.i32, askW, (x) => x === FA_LISTENING);
    expect(checked(heap)).toBe('passes');
  });
});
