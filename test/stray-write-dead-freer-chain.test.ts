/**
 * A stray write into a block on a slab's remote list that links it to a block of a chain a dead
 * freer never published (an audit of 2026-12-05). The chain's blocks are PENDING, linked, its
 * freer stopped before the CAS that would have published it (TH_INFLIGHT); the program writes,
 * into a block freed earlier by another thread and waiting on that list, the offset of the
 * chain's second block (a freed node's `next` field set to another freed node, say). The owner's
 * collection follows the written link into the chain: those blocks are PENDING blocks of the
 * slab, so they come back FREE and malloc hands them out. The dead freer's reclaim then found the
 * chain's first block still PENDING and on no list, took the chain for one never published, and
 * wrote its links again into every block of it, and its last block's link (the list's old head)
 * too: over the first word of blocks live in the owner's hands, and published a chain of live
 * blocks onto the remote list. Now the reclaim links and publishes the chain's blocks that are
 * still PENDING only. Likewise for a freer stopped while it set the chain's states (TH_INFLIGHT
 * -k): its reclaim drained again every block of those that was CACHED, one the owner had
 * collected, handed out and freed into its own magazine among them (put on the remote list while
 * cached, and the blocks after it lost: check() failed).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_PUBLISH } from '../src/crash.js';
import { checked } from './fixtures.js';
import { FREE_CHECK_W, G_ORPHANS, linkCheck } from '../src/layout.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

const MiB = 1 << 20;

afterEach(terminateAll);

describe('a stray link into a dead freer\'s unpublished chain', () => {
  it.each([
    ['after it set every state (TH_INFLIGHT n), the collected blocks kept live', 'inflight'],
    ['after it set every state (TH_INFLIGHT n), the collected blocks freed again by the owner', 'inflight-freed'],
    ['while it set the states (TH_INFLIGHT -2), the collected block freed again by the owner', 'states'],
  ])('stopped %s: the reclaim writes into no live block, loses no block, and the heap stays sound', async (_what, kind) => {
    const CAP = 8; // the worker's magazine: its ninth free drains the newer four, one chain of four blocks
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4, magazineCapacity: CAP });
    const u8 = heap.u8;
    const i32 = new Int32Array(heap.buffer);
    // One slab of the main thread's: blocks A (freed by worker 1: a published chain) and B
    // (freed by worker 2, which dies before it publishes its chain).
    const a = Array.from({ length: 6 }, () => heap.malloc(64));
    const b = Array.from({ length: CAP + 1 }, () => heap.malloc(64));
    for (const p of [...a, ...b]) u8.fill(0x5a, p, p + 64);
    expect(new Set([...a, ...b].map((p) => p >>> 16)).size, 'one slab').toBe(1);

    const w1 = startHeapWorker();
    await w1.remote.attach(heap.buffer);
    await w1.remote.freeMany(a); // published: a[0] .. a[5] on the slab's remote list, a[5]'s link 0
    expect(i32[a[5]! >>> 2], 'the last block of the published chain ends the list').toBe(0);

    const w2 = startHeapWorker();
    const w2Id = await w2.remote.attach(heap.buffer);
    for (const p of b.slice(0, CAP)) await w2.remote.free(p);
    // The ninth free drains b[4] .. b[7] (the newer half) as one chain: states PENDING, links
    // written, TH_INFLIGHT set; stopped at the crash point before publishChain (or at the one
    // after the second block's state).
    void w2.remote.freeStoppingAt(b[CAP]!, CP_PUBLISH, kind === 'states' ? 2 : CAP / 2 + 1).catch(() => undefined);
    await w2.exited;
    const chain = b.slice(CAP / 2, CAP);
    expect(i32[chain[0]! >>> 2], 'the dead freer linked its chain').toBe(chain[1]);

    // The stray write: the list's last block now links to the chain's second block. One word
    // written over the link no longer leads there (its check word, layout.ts FREE_CHECK_W, still
    // says the list ends: test/stray-write-live-freer-chain.test.ts); a write of both words as
    // the heap writes a link does, and the reclaim must still cope.
    i32[a[5]! >>> 2] = chain[1]!;
    i32[(a[5]! >>> 2) + FREE_CHECK_W] = linkCheck(chain[1]!);

    // The owner mallocs (its refills collect the list, and the chain's blocks after the link),
    // and fills what it gets.
    const live: number[] = [];
    for (let i = 0; i < 300; i++) {
      const p = heap.malloc(64);
      expect(p).toBeGreaterThan(0);
      live.push(p);
    }
    expect(new Set(live).size, 'a block handed out twice').toBe(live.length);
    live.forEach((p, i) => u8.fill(i & 0xff, p, p + 64));
    const handedFromChain = chain.filter((p) => live.includes(p));
    expect(handedFromChain.length, 'the stray link led the collection into the dead freer\'s chain').toBeGreaterThan(0);

    const tagOf = new Map(live.map((p, i) => [p, i & 0xff]));
    if (kind !== 'inflight') {
      // The owner frees them again: CACHED in its magazine.
      for (const p of handedFromChain) {
        heap.free(p);
        tagOf.delete(p);
      }
    }

    expect(heap.reclaim(w2Id)).toBe(true);

    const changed = [...tagOf].filter(([p, tag]) => !u8.subarray(p, p + 64).every((x) => x === tag)).map(([p]) => p);
    expect(changed, 'live blocks the reclaim wrote into').toEqual([]);
    // The heap goes on handing out blocks that are not live, and check() passes.
    const more = Array.from({ length: 300 }, () => heap.malloc(64));
    const liveSet = new Set(tagOf.keys());
    expect(more.filter((p) => liveSet.has(p) || p <= 0), 'live blocks handed out again').toEqual([]);
    expect(new Set(more).size, 'a block handed out twice').toBe(more.length);
    expect(checked(heap)).toBe('passes');
    // No block lost: none given up as an orphan, and every block of the chain came back (its
    // blocks still PENDING through the chain published by the reclaim).
    expect(Atomics.load(i32, G_ORPHANS)).toBe(0);
    for (const p of [...tagOf.keys(), ...more]) heap.free(p);
    heap.flush();
    expect(checked(heap)).toBe('passes');
    const again = new Set(Array.from({ length: 400 }, () => heap.malloc(64)));
    expect(chain.filter((p) => !again.has(p)), 'blocks of the chain never handed out again').toEqual([]);
    await w1.remote.detach();
    heap.detach();
  }, 30_000);
});
