/**
 * Shows that a per-allocator copy of a timed loop (bench/copies.ts) stays
 * monomorphic: W1 on sabmalloc in this thread, alone or after the same loop
 * ran W1 on two other allocator classes (@thi.ng/malloc, the reference
 * allocator), with one shared loop or with a copy per allocator. With one
 * shared loop the sabmalloc figure drops after the other allocators ran;
 * with copies it does not.
 *
 *   npx tsx bench/copies-check.ts shared alone
 *   npx tsx bench/copies-check.ts shared after-others
 *   npx tsx bench/copies-check.ts copies alone
 *   npx tsx bench/copies-check.ts copies after-others
 *
 * Run each in its own process (as above); prints the cold first run and the
 * median of 10 warm runs of 10M cycles, each on a fresh heap.
 */
import { SharedHeap } from '../src/index.js';
import { createThingAllocator } from './bench-task.js';
import { copyFor } from './copies.js';
import { ReferenceAllocator } from './reference-alloc.js';
import { slotCleanup, slotLoop, w1 } from './workloads.js';

const mode = process.argv[2];
const order = process.argv[3];
if ((mode !== 'shared' && mode !== 'copies') || (order !== 'alone' && order !== 'after-others')) {
  console.error('usage: npx tsx bench/copies-check.ts shared|copies alone|after-others');
  process.exit(2);
}
const loopFor = (name: string): typeof slotLoop => (mode === 'shared' ? slotLoop : copyFor(slotLoop, name));
if (order === 'after-others') {
  const thing = await createThingAllocator(128 << 20);
  for (let r = 0; r < 3; r++) slotCleanup(thing, w1(thing, { cycles: 30_000 }, loopFor('thi.ng')));
  const ref = new ReferenceAllocator(256 << 20);
  for (let r = 0; r < 3; r++) slotCleanup(ref, w1(ref, { cycles: 2_000_000 }, loopFor('reference')));
}
const mops: number[] = [];
for (let r = 0; r < 11; r++) {
  const heap = SharedHeap.create({ initialBytes: 128 << 20 });
  const run = w1(heap, {}, loopFor('sabmalloc'));
  mops.push((run.result.ops / run.result.elapsedNs) * 1e3);
  slotCleanup(heap, run);
  heap.detach();
}
const warm = mops.slice(1).sort((a, b) => a - b);
const f = (x: number): string => x.toFixed(1);
console.log(
  `${mode} loop, sabmalloc ${order}: cold ${f(mops[0]!)}, warm median ${f((warm[4]! + warm[5]!) / 2)} (min ${f(warm[0]!)}, max ${f(warm[9]!)}) M ops/s`,
);
