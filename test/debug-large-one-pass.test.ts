/**
 * Debug mode prepares a large block once: its record, canary and the clearing of marks over the
 * bytes its run held before are written by the take (debug.ts debugRecordLarge, before the run is
 * marked live), and the hand-out after it does not go over the same bytes again. The clearing
 * beats the lock's heartbeat every LOCK_BEAT_BYTES of a run written before (context.ts beatLock),
 * so the beats counted over a malloc of a run whose 40 MiB were all written tell how many passes
 * went over it: two, one a pass (before this, four: the hand-out made a second pass).
 */
import { expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { LOCK_BEAT_BYTES } from '../src/layout.js';
import { MiB } from './fixtures.js';

it('a debug-mode malloc of a large run written before goes over its bytes once', () => {
  const heap = SharedHeap.create({ initialBytes: 128 * MiB, maxBytes: 128 * MiB, debug: true });
  const size = 40 * MiB;
  const p = heap.malloc(size);
  expect(p).toBeGreaterThan(0);
  heap.u8.fill(0x5a, p, p + size); // every byte written: the run's dirty bytes are all of it
  heap.free(p);
  const t = internals(heap);
  let beats = 0;
  const beat = t.beatLock.bind(t);
  t.beatLock = () => {
    beats++;
    beat();
  };
  const q = heap.malloc(size);
  expect(q).toBe(p); // the same run again, its bytes as the first life left them
  expect(beats).toBe(Math.floor(size / LOCK_BEAT_BYTES));
  // Prepared as before: the record and canary in place, the user's bytes free of marks.
  expect(heap.usableSize(q)).toBeGreaterThanOrEqual(size);
  heap.u8.fill(1, q, q + size);
  heap.free(q);
  heap.check();
  heap.detach();
});
