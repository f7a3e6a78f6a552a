/**
 * stats().stages.adopted, documented as "Abandoned slabs (of detached or dead threads) adopted"
 * (src/stats.ts StageStats.adopted; README.md "Remote frees": "A slab without an owner is
 * adopted"). A worker fills three slabs of 1 KiB blocks and detaches, leaving them abandoned; the
 * main thread frees some of the blocks of each and flushes: its drain finds each slab without an
 * owner and adopts it (remote.ts notifyOwner -> adoptSlab), so the three slabs are now the main
 * thread's (SM_OWNER its slot). The count says 3: it counted adoptions from the abandoned lists
 * only (0 here) until an audit, 2026-12-07; every adoption now adds to G_ADOPTED (layout.ts).
 */
import { afterAll, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { OWNER_NONE, SLOT_SHIFT, SM_HEAD, SM_OWNER } from '../src/layout.js';
import { COUNT, classOf } from '../src/size-classes.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

const MiB = 1 << 20;
const PER_SLAB = COUNT[classOf(1024)]!; // 1 KiB blocks a slab
afterAll(terminateAll);

it('counts the abandoned slabs a remote free adopts', async () => {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const t = internals(heap);
  const w = startHeapWorker((x) => heap.watch(x));
  await w.remote.attach(heap.buffer);
  const blocks: number[] = [];
  for (let i = 0; i < 3 * PER_SLAB; i++) blocks.push(await w.remote.malloc(1024));
  const slabs = [...new Set(blocks.map((p) => t.i32[t.metaW(p >>> SLOT_SHIFT) + SM_HEAD]!))];
  expect(slabs.length).toBe(3);
  await w.remote.detach();
  const owner = (s: number): number => Atomics.load(t.i32, t.metaW(s) + SM_OWNER);
  expect(slabs.map(owner)).toEqual([OWNER_NONE, OWNER_NONE, OWNER_NONE]); // abandoned
  const before = heap.stats().stages.adopted;
  // Half the blocks of each slab freed here: each slab keeps blocks in use.
  for (let i = 0; i < blocks.length; i += 2) heap.free(blocks[i]!);
  heap.flush();
  // The truth: the three abandoned slabs are now the main thread's own.
  expect(slabs.map(owner)).toEqual([t.slot, t.slot, t.slot]);
  const adopted = heap.stats().stages.adopted - before;
  expect(adopted, 'stats().stages.adopted after three abandoned slabs were adopted').toBe(3);
  for (let i = 1; i < blocks.length; i += 2) heap.free(blocks[i]!);
  heap.flush();
  expect(heap.stats().liveBlocks).toBe(0);
}, 30_000);
