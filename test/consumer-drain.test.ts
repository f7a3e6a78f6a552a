/**
 * A thread that only frees what others allocated (a consumer of messages) gives the blocks back
 * to their owner at its periodic looks, every class at each look: an audit of cross-thread
 * exchanges (2026-12-07) found a consumer's magazines holding up to 2 MiB of a producer's blocks
 * of many sizes, which the producer could not reuse and carved more for (one producer, three
 * consumers, 16-4108-byte messages: 9.0-9.3 MiB against glibc's 2.4; 4.1-4.5 after). A look went
 * to the class of the free that ended the countdown and one other class in turn, so with forty
 * classes a magazine waited some twenty looks. Classes the consumer refilled itself keep the
 * rule for those (magazine.ts drainPeriodic).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { startCapacityWorker, terminateWorkers } from './capacity-harness.js';

const MiB = 1 << 20;

afterEach(terminateWorkers);

describe('a consumer that only frees others\' blocks', () => {
  it('leaves them to their owner at its looks, so the owner allocates the same sizes again on the same memory', async () => {
    const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxThreads: 4, drainInterval: 256 });
    const sizes: number[] = [];
    for (let i = 0; i < 40 * 64; i++) sizes.push(16 + ((i * 97) % 40) * 100); // forty classes in turn, 16-3916 bytes
    const blocks = sizes.map((n) => heap.malloc(n));
    const consumer = startCapacityWorker();
    await consumer.remote.attach(heap.memory ?? heap.buffer);
    await consumer.remote.freeMany(blocks, false); // no flush: the consumer stays attached, idle
    const before = heap.stats();
    const again = sizes.map((n) => heap.malloc(n)); // the producer's next batch of the same sizes
    const after = heap.stats();
    // What the consumer cached since its last look (at most drainInterval blocks) may be out of
    // reach: 0.25 MiB more now, 1.27 MiB before.
    expect(after.footprintBytes - before.footprintBytes).toBeLessThanOrEqual(512 * 1024);
    for (const p of again) heap.free(p);
    await consumer.remote.flush();
    heap.check();
  });
});
