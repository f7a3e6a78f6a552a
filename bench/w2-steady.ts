/**
 * W2 at one thread in a warmed-up heap: the global-lock acquisitions and pool stages of the
 * second million operations, after a first million filled the heap. The bench table runs each
 * repetition on a fresh heap, so its lock figures for W2 are dominated by that first fill.
 * Run: npx tsx bench/w2-steady.ts
 */
import { SharedHeap } from '../src/index.js';
import { slotCleanup, w2 } from './workloads.js';

for (const stage1Keep of [8, 32]) {
  const heap = SharedHeap.create({ initialBytes: 512 << 20, maxThreads: 4, stage1Keep });
  slotCleanup(heap, w2(heap, { cycles: 1_000_000 }));
  const s0 = heap.stats();
  const run = w2(heap, { cycles: 1_000_000 });
  const s1 = heap.stats();
  slotCleanup(heap, run);
  heap.check();
  const perM = (x: number): string => ((x * 1e6) / run.result.ops).toFixed(1);
  console.log(
    `stage1Keep ${stage1Keep}: lock acquisitions ${perM(s1.lock.acquisitions - s0.lock.acquisitions)} per M ops, ` +
      `waits ${perM(s1.lock.waits - s0.lock.waits)}, S1/S2/S3 ${s1.stages.stage1 - s0.stages.stage1}/` +
      `${s1.stages.stage2 - s0.stages.stage2}/${s1.stages.stage3 - s0.stages.stage3}, ` +
      `peak footprint ${(s1.peakFootprintBytes / 2 ** 20).toFixed(1)} MiB, peak live ${(run.result.peakLiveBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  heap.detach();
}
