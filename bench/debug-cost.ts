/**
 * What debug mode costs: W1 (random mixed sizes) and W2 (mid-size and large blocks) at one
 * thread, on a fresh heap per run, default mode and debug mode side by side; the median of 5
 * runs after a warm-up, in millions of operations per second.
 * Run: npx tsx bench/debug-cost.ts
 */
import { SharedHeap } from '../src/index.js';
import { slotCleanup, w1, w2 } from './workloads.js';

type Workload = (heap: SharedHeap) => { result: { ops: number } };
const workloads: [string, Workload][] = [
  ['W1', (heap) => w1(heap, { cycles: 2_000_000 })],
  ['W2', (heap) => w2(heap, { cycles: 500_000 })],
];

function once(debug: boolean, run: Workload): number {
  const heap = SharedHeap.create({ initialBytes: 256 << 20, maxThreads: 4, debug });
  const t0 = performance.now();
  const r = run(heap);
  const ms = performance.now() - t0;
  slotCleanup(heap, r as never);
  heap.check();
  heap.detach();
  return r.result.ops / ms / 1000;
}

for (const [name, run] of workloads) {
  const figures: string[] = [];
  for (const debug of [false, true]) {
    once(debug, run); // warm-up
    const runs = [1, 2, 3, 4, 5].map(() => once(debug, run)).sort((a, b) => a - b);
    figures.push(`${debug ? 'debug' : 'default'} ${runs[2]!.toFixed(1)}M ops/s (${runs[0]!.toFixed(1)}-${runs[4]!.toFixed(1)})`);
  }
  console.log(`${name}: ${figures.join(', ')}`);
}
