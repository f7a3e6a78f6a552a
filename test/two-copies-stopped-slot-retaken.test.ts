/**
 * An audit of 7bfcd5e (a thread that loads two copies of the package attaches through each, two
 * slots under its one Node threadId). A fault stops the instance of copy A (fault.ts: its slot
 * DEAD); copy B, attaching in the same thread, reclaims that slot (reclaimOwnDead: every DEAD slot
 * under its own id), and a later attach of copy B takes the very slot, ATTACHED under the same id.
 * Copy A's next attach stops its stale instance first (SharedHeap #stopStale, fault.ts stopOnFault),
 * which took the slot as still its own because it carries the thread's id: it marked copy B's live
 * slot DEAD, and copy A's new attachment reclaimed it while copy B ran on with it (its blocks
 * cached there, its slot FREE and taken by the next attach). The slot's attachment count
 * (TH_LOCK_GEN) tells the stale instance's attachment from the new one.
 *
 * Both copies run in this thread: the source the test imports, and a copy of the build's dist/src
 * in a folder of its own (a module graph of its own, as a second install is).
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { TH_STATE, TH_THREAD_ID, TS_ATTACHED } from '../src/layout.js';
import { faultUnderLock } from '../workers/fault-under-lock.js';
import { checked, MiB } from './fixtures.js';
import { useBuiltCopy } from './package-copy.js';

const builtCopy = useBuiltCopy();

interface CopyHeap {
  threadId: number;
  malloc(n: number): number;
  free(p: number): void;
  detach(): void;
}

describe('a slot a fault stopped through one copy, reclaimed and taken again by the other copy', () => {
  it("is left alone by the first copy's next attach", async () => {
    const two = (await import(`${builtCopy()}/index.js`)) as { SharedHeap: { attach(b: SharedArrayBuffer): CopyHeap } };
    const twoHeap = (await import(`${builtCopy()}/heap.js`)) as { internals(h: unknown): { slot: number } };
    const a = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const buffer = a.buffer;
    const slotA = internals(a).slot;
    const id = a.threadId;
    expect(faultUnderLock(a)).toBe('HeapStateError'); // copy A's instance stopped, its slot DEAD

    // Copy B attaches (and reclaims copy A's stopped slot), then detaches and attaches again: the lowest free slot, A's.
    const b1 = two.SharedHeap.attach(buffer);
    expect(b1.threadId).toBe(id);
    b1.detach();
    const b = two.SharedHeap.attach(buffer);
    const slotB = twoHeap.internals(b).slot;
    expect(slotB).toBe(slotA);
    const kept: number[] = [];
    for (let i = 0; i < 100; i++) {
      const p = b.malloc(16 + (i % 9) * 24);
      new Uint8Array(buffer, p, 8).fill(0x5b);
      if (i % 2 === 0) kept.push(p);
      else b.free(p); // cached in copy B's magazines
    }

    // Copy A attaches again: its stale instance is stopped, and what it reclaims is its own.
    const a2 = SharedHeap.attach(buffer);
    expect(a2).not.toBe(a);
    const t = internals(a2);
    const w = t.threadW(slotB);
    expect(Atomics.load(t.i32, w + TH_STATE), "copy B's slot stays ATTACHED").toBe(TS_ATTACHED);
    expect(Atomics.load(t.i32, w + TH_THREAD_ID)).toBe(id + 1);
    expect(a2.stats().threadsAttached).toBe(2);

    // Copy B runs on in its slot: blocks freed and allocated through both copies, the heap checks.
    for (const p of kept) expect(Array.from(new Uint8Array(buffer, p, 8))).toEqual(new Array(8).fill(0x5b));
    for (const p of kept) b.free(p);
    for (let i = 0; i < 300; i++) b.free(a2.malloc(16 + (i % 9) * 24));
    for (let i = 0; i < 300; i++) a2.free(b.malloc(16 + (i % 9) * 24));
    const big = a2.malloc(3 * MiB);
    a2.free(big);
    expect(checked(a2)).toBe('passes');
    b.detach();
    expect(a2.stats().threadsAttached).toBe(1);
    expect(checked(a2)).toBe('passes');
    a2.detach();
  }, 30_000);
});
