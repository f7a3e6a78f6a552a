/**
 * A remote freer whose chain lands on a slab with no owner adopts it
 * (remote.ts notifyOwner, its no-owner branch: adoptSlab's CAS), then collects it (slab.ts
 * notifyOrAdopt). No scenario of test/crash-points.test.ts reaches this branch (its crash points
 * remote.ts:146/149 and the CAS at remote.ts:169 are passed by none of them). Here the freer F
 * is stopped before its notice's flag CAS and before each Atomics call after it (the flag's clear,
 * adoptSlab's CAS, the collection), then reclaimed: the
 * heap must check, every live block keep its bytes, the slab stay reachable (owned or on its
 * abandoned list) and everything be freeable afterwards.
 */
import { afterEach, expect, it } from 'vitest';
import { abandonedSlab, stoppedAtCas } from './abandoned-slab.js';
import { checked, freedAndChecked } from './fixtures.js';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { ABANDONED_W, SM_ABANDON_NEXT, SM_NOTIFIED, SM_OWNER } from '../src/layout.js';
import { terminateAll } from './remote-heap.js';

afterEach(terminateAll);

const MiB = 1 << 20;

/** One run: F stopped `after` Atomics calls after its notice's flag CAS on S (remote.ts notifyOwner; 0: before it), through the no-owner branch, the adoption and the collection; failures, or null when F finished first. */
async function run(after: number): Promise<string[] | null> {
  const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4, stage1Keep: 0 });
  const t = internals(heap);
  const i32 = t.i32;
  const failures: string[] = [];
  const { S, mS, cls, ps } = await abandonedSlab(heap);
  const live = ps.filter((_, k) => k % 2 === 1);
  const victim = live.pop()!; // F frees this one
  const F = await stoppedAtCas(heap, [{ free: victim }, { flush: true }], { index: mS + SM_NOTIFIED, expected: 0, after });
  if (!F.exited) {
    await F.worker.terminate();
    heap.reclaim(F.threadId);
    heap.detach();
    return null;
  }
  if (!F.stopped) failures.push('F exited without the stop');
  let r: unknown;
  try {
    r = heap.reclaim(F.threadId);
  } catch (e) {
    r = (e as Error).message;
  }
  if (r !== true) failures.push(`reclaim: ${String(r)}`);
  const c = checked(heap);
  if (c !== 'passes') failures.push(`check(): ${c}`);
  for (const p of live) {
    const k = ps.indexOf(p);
    if (!heap.u8.subarray(p, p + 64).every((b) => b === 0x11 + k)) failures.push(`block ${p} lost its bytes`);
  }
  const owner = Atomics.load(i32, mS + SM_OWNER);
  const onList: number[] = [];
  for (let s = i32[ABANDONED_W + cls]!; s !== 0 && onList.length < 1000; s = i32[t.metaW(s) + SM_ABANDON_NEXT]!) onList.push(s);
  const ownerLive = owner >= 0 && heap.stats().threads.some((x) => x.tid === owner && x.state === 'attached');
  if (!ownerLive && !onList.includes(S)) failures.push(`S (owner ${owner}) is neither owned by an attached thread nor on its abandoned list`);
  failures.push(...freedAndChecked(heap, live));
  heap.detach();
  return failures;
}

it('a remote freer stopped around its adoption of an abandoned slab is reclaimed cleanly', async () => {
  const failed: string[] = [];
  let stops = 0;
  for (let after = 0; after < 200; after++) {
    const f = await run(after);
    if (f === null) break;
    stops++;
    failed.push(...f.map((x) => `stop ${after}: ${x}`));
  }
  console.log(`freer-adopts: ${stops} stops`);
  expect(stops).toBeGreaterThan(3);
  expect(failed).toEqual([]);
}, 120_000);
