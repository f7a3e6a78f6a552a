/**
 * The Stage-1 counts of stats() (stages.stage1 pops, stages.stage1Pushes pushes): each thread
 * slot counts its own in its counters area (layout.ts TF_STAGE1, TF_STAGE1_PUSHES), which attach
 * does not zero, and stats() sums the slots. A count made by a thread that has gone stays in the
 * sum when the next thread takes its slot; until layout 21 the counts were two words of the
 * header bumped by Atomics.add (an Int32 pair, to get past 2^31 and 2^32).
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';

const MiB = 1 << 20;

/** Allocates and frees some 2 MiB of 1 KiB blocks twice: empty slabs pushed to Stage 1, and popped again. */
function pushAndPop(heap: SharedHeap): void {
  const blocks: number[] = [];
  for (let i = 0; i < 2000; i++) blocks.push(heap.malloc(1024));
  for (const p of blocks) heap.free(p);
  heap.flush(); // the empty slabs beyond the thread's keep budget go to Stage 1
  for (let i = 0; i < 2000; i++) blocks[i] = heap.malloc(1024);
  for (const p of blocks) heap.free(p);
  heap.flush();
}

describe('Stage-1 counts', () => {
  it('count every pop and push, and keep those of a thread whose slot the next thread takes', () => {
    const first = SharedHeap.create({ initialBytes: 64 * MiB, maxThreads: 2, stage1Keep: 1024 });
    const buffer = first.buffer;
    expect(first.stats().stages).toMatchObject({ stage1: 0, stage1Pushes: 0 });
    pushAndPop(first);
    const one = first.stats().stages;
    expect(one.stage1Pushes).toBeGreaterThan(0);
    expect(one.stage1).toBeGreaterThan(0);
    expect(one.stage1Pushes).toBeLessThan(1000);
    first.detach();

    // The same thread again: a new attachment, which takes the slot the first one left.
    const second = SharedHeap.attach(buffer);
    const kept = second.stats().stages;
    expect(kept.stage1).toBe(one.stage1);
    expect(kept.stage1Pushes).toBe(one.stage1Pushes);
    pushAndPop(second);
    const two = second.stats().stages;
    expect(two.stage1).toBeGreaterThan(one.stage1);
    expect(two.stage1Pushes).toBeGreaterThan(one.stage1Pushes);
    second.check();
    second.detach();
  });
});
