/**
 * An audit of the thread slot kept for reclaims (layout.ts RECLAIM_SLOTS) in the browsers' way to
 * attach: after a fault stopped this thread's instance, attachAsync under a new id (which its
 * HeapStateError names, beside attach()) reclaims the stopped slot, as attach() does. With
 * maxThreads 1 the stopped slot was the only one, and attachAsync (unlike attach(), 96f2b88) was
 * not let take the kept slot: it was refused with ThreadSlotsExhaustedError. Run in Node against a
 * Web Locks stand-in (web-locks.ts), every "thread" one JavaScript thread in turn.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { cutOffLargeMalloc, expectTakenOver, slotIds } from './fault-internals.js';
import { installWebLocks, type WebLocksStandIn } from './web-locks.js';

const MiB = 1 << 20;
let locks: WebLocksStandIn | undefined;
afterEach(() => {
  locks?.uninstall();
  locks = undefined;
});

describe('attachAsync after a fault, the stopped slot the only one', () => {
  it('maxThreads 1: under a new id it attaches and reclaims the stopped slot; blocks keep their bytes', async () => {
    const creator = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 1 });
    const [a, b] = [creator.newThreadId(), creator.newThreadId()];
    const kept = creator.malloc(100);
    creator.u8.fill(7, kept, kept + 100);
    const buffer = creator.buffer;
    creator.detach();
    locks = installWebLocks();
    const first = await SharedHeap.attachAsync(buffer, { threadId: a });
    cutOffLargeMalloc(first); // the instance stops, its slot DEAD
    expect(slotIds(first).find((s) => s.id === a)?.state).toBe(2); // DEAD
    const second = await SharedHeap.attachAsync(buffer, { threadId: b });
    expectTakenOver(second, a, kept);
  });
});
