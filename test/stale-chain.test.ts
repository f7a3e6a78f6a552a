/**
 * A thread that dies in the middle of publishing a chain of remote frees (magazine.ts drainJournal,
 * TH_INFLIGHT) is resolved by its reclaim (reclaim.ts resolveInflight), which publishes the chain
 * again when it finds it unpublished. A chain already published may have been collected, its
 * blocks handed out again and one of them freed by a third thread that died in its own publish:
 * that looks the same, and publishing the old chain again writes links into live blocks. So no
 * thread may stop between the CAS that publishes and the stores that clear TH_INFLIGHT. Here a
 * thread D is stopped at each crash point of its publish in turn; the owner then collects, takes
 * the blocks again and keeps them live with a pattern; a thread X frees one of them and stops
 * inside its own publish; then D and X are reclaimed, and every live block must keep its bytes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { checked, MiB } from './fixtures.js';
import { ask, startThread, terminateAll } from './remote-heap.js';
import type { TestThread as Thread } from './remote-heap.js';

afterEach(terminateAll);

const start = (heap: SharedHeap): Promise<Thread> => startThread('chain-worker', heap.buffer);

const SIZE = 48;

describe('a chain of remote frees cut off around its publish', () => {
  it('is never published twice: the blocks its owner took again keep their bytes', async () => {
    let stoppedAfterPublish = 0;
    for (let k = 1; ; k++) {
      const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
      const u32 = new Uint32Array(heap.buffer);
      const [O, D, X] = [await start(heap), await start(heap), await start(heap)];
      const { ps } = await ask<{ ps: number[] }>(O, { op: 'malloc', n: 32, size: SIZE });
      const chain = ps.slice(0, 3);
      const d = await Promise.race([ask<{ survived: boolean }>(D, { op: 'free-flush-stop', ps: chain, k }), D.exit.then(() => undefined)]);
      if (d !== undefined) {
        // k is past the publish's last crash point: every one was tried.
        await D.w.terminate();
        heap.detach();
        break;
      }
      await ask(O, { op: 'flush' }); // collects D's chain if it was published
      const { ps: again } = await ask<{ ps: number[] }>(O, { op: 'malloc', n: 3, size: SIZE });
      if (again.join() === chain.join()) stoppedAfterPublish++;
      // X frees the first block and stops inside its own publish: states PENDING, no CAS yet.
      void ask(X, { op: 'free-flush-stop', ps: [again[0]], k: 2 });
      await X.exit;
      heap.reclaim(D.id);
      heap.reclaim(X.id);
      for (const [i, p] of again.entries()) {
        if (i === 0) continue; // freed by X
        const words = [...u32.subarray(p >>> 2, (p + SIZE) >>> 2)];
        expect(words.every((v) => v === 0xc0ffee00 + i), `k ${k}: block ${p}: ${words.map((v) => v.toString(16)).join(' ')}`).toBe(true);
      }
      await ask(O, { op: 'flush' });
      expect(checked(heap)).toBe('passes');
      heap.detach();
      await O.w.terminate();
    }
    // The scenario was set up: D stopped after its chain was published at least once.
    expect(stoppedAfterPublish).toBeGreaterThan(0);
  });
});
