/**
 * A stray link into a LIVE freer's chain not yet published (left open by the audit of 2026-12-05,
 * docs/robustness.md). Worker 2's drain has set its chain's states PENDING and written its links,
 * and is paused (callPausingAt) at the crash point right before publishChain. The program writes,
 * into the last block of worker 1's published chain (waiting on the slab's remote list), the
 * offset of worker 2's chain's second block: a freed node's `next` set to another freed node.
 * Before the check word (layout.ts FREE_CHECK_W), the owner's collection followed it and handed
 * chain[1..3] out; worker 2 then went on: publishChain wrote the list's old head into chain[3],
 * live, and published chain[0] -> chain[1], live, where the collection stopped: with a chain that
 * worker 1 published meanwhile (the old head), those 5 blocks were lost, PENDING on no list, and
 * check() failed (the third case pauses the freer while it sets the states, as callPausingAt's
 * second crash point). Now the collection takes the link for a stray one (its check word says the
 * list ends there) and never reaches the chain. Then: a write over a check word alone changes
 * nothing, and debug mode, whose freed mark shares the check's word, still reports a write into a
 * block freed by another thread.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapCorruptionError, SharedHeap } from '../src/index.js';
import { CP_PUBLISH } from '../src/crash.js';
import { checked } from './fixtures.js';
import { FREE_CHECK_W, G_ORPHANS } from '../src/layout.js';
import { pausedAtCrashPoint, resumeFromCrashPoint, startHeapWorker, terminateAll } from './remote-heap.js';

const MiB = 1 << 20;

const CAP = 8; // the worker's magazine: its ninth free drains the newer four, one chain of four blocks

afterEach(terminateAll);

describe('a stray link into a live freer\'s unpublished chain', () => {
  it.each([
    ['before its publish, the list empty then', false, CAP / 2 + 1],
    ['before its publish, another chain published meanwhile', true, CAP / 2 + 1],
    ['while it set the states (two of four PENDING), another chain published meanwhile', true, 2],
  ])('paused %s: the freer writes into no live block, loses no block, and the heap stays sound', async (_what, meanwhile, nth) => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4, magazineCapacity: CAP });
    const u8 = heap.u8;
    const i32 = new Int32Array(heap.buffer);
    const a = Array.from({ length: 6 }, () => heap.malloc(64));
    const b = Array.from({ length: CAP + 1 }, () => heap.malloc(64));
    const c = Array.from({ length: 5 }, () => heap.malloc(64));
    for (const p of [...a, ...b, ...c]) u8.fill(0x5a, p, p + 64);
    expect(new Set([...a, ...b, ...c].map((p) => p >>> 16)).size, 'one slab').toBe(1);

    const w1 = startHeapWorker();
    await w1.remote.attach(heap.buffer);
    await w1.remote.freeMany(a);
    expect(i32[a[5]! >>> 2]).toBe(0);

    const w2 = startHeapWorker();
    await w2.remote.attach(heap.buffer);
    for (const p of b.slice(0, CAP)) await w2.remote.free(p);
    const gate = new Int32Array(new SharedArrayBuffer(4));
    const call = w2.remote.callPausingAt('free', b[CAP]!, 0, CP_PUBLISH, nth, gate);
    await pausedAtCrashPoint(gate, call);
    const chain = b.slice(CAP / 2, CAP);
    expect(i32[chain[0]! >>> 2], 'the freer linked its chain').toBe(chain[1]);

    i32[a[5]! >>> 2] = chain[1]!; // the stray write: the list's last block now links to the chain's second block

    const live: number[] = [];
    for (let i = 0; i < 300; i++) {
      const p = heap.malloc(64);
      expect(p).toBeGreaterThan(0);
      live.push(p);
    }
    expect(new Set(live).size).toBe(live.length);
    live.forEach((p, i) => u8.fill(i & 0xff, p, p + 64));
    expect(chain.filter((p) => live.includes(p)), 'blocks of the chain handed out before it was published').toEqual([]);
    const tagOf = new Map(live.map((p, i) => [p, i & 0xff]));

    if (meanwhile) await w1.remote.freeMany(c);
    resumeFromCrashPoint(gate);
    expect((await call).error).toBe('');

    const changed = [...tagOf].filter(([p, tag]) => !u8.subarray(p, p + 64).every((x) => x === tag)).map(([p]) => p);
    expect(changed, 'live blocks the freer wrote into').toEqual([]);
    const more = Array.from({ length: 300 }, () => heap.malloc(64));
    const liveSet = new Set(tagOf.keys());
    expect(more.filter((p) => liveSet.has(p) || p <= 0), 'live blocks handed out again').toEqual([]);
    expect(new Set(more).size).toBe(more.length);
    expect(checked(heap)).toBe('passes');
    expect(Atomics.load(i32, G_ORPHANS)).toBe(0);
    for (const p of [...tagOf.keys(), ...more, ...(meanwhile ? [] : c)]) heap.free(p);
    heap.flush();
    await w2.remote.flush();
    heap.flush();
    expect(checked(heap)).toBe('passes');
    const again = new Set(Array.from({ length: 400 }, () => heap.malloc(64)));
    expect([...a, ...b, ...c].filter((p) => !again.has(p)), 'blocks never handed out again').toEqual([]);
    await w1.remote.detach();
    await w2.remote.detach();
    heap.detach();
  }, 30_000);

  it('a stray write over the check word alone: every block on the list comes back, check() passes', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const i32 = new Int32Array(heap.buffer);
    const sent = Array.from({ length: 8 }, () => heap.malloc(64));
    const w = startHeapWorker();
    await w.remote.attach(heap.buffer);
    await w.remote.freeMany(sent); // one chain on the slab's remote list
    // Words, and single bytes, written over the check words of the chain's blocks in turn (one at a time).
    const u8 = heap.u8;
    for (const [k, p] of sent.entries()) {
      const at = p + 4 * FREE_CHECK_W;
      const was = i32[at >>> 2]!;
      for (const v of [0, -1, sent[(k + 3) % 8]!, sent[(k + 1) % 8]! ^ was, 0x5a5a5a5a]) {
        i32[at >>> 2] = v;
        expect(checked(heap), `word ${v} over the check of block ${k}`).toBe('passes');
      }
      for (let byte = 0; byte < 4; byte++) {
        for (const x of [0x10, 0x40, 0xff]) {
          i32[at >>> 2] = was;
          u8[at + byte] ^= x;
          expect(checked(heap), `byte ${byte} of the check of block ${k} ^ ${x}`).toBe('passes');
        }
      }
      i32[at >>> 2] = was;
    }
    i32[(sent[2]! >>> 2) + FREE_CHECK_W] = -1; // left written over
    const handed = Array.from({ length: 200 }, () => heap.malloc(64)); // refills collect the list
    expect(new Set(handed).size).toBe(200);
    expect(sent.filter((p) => !handed.includes(p)), 'blocks of the list not collected').toEqual([]);
    expect(checked(heap)).toBe('passes');
    await w.remote.detach();
    heap.detach();
  }, 30_000);
});

describe('debug mode, where the check word is the freed mark\'s word (layout.ts DEBUG_MARK_W)', () => {
  it('a write into a block freed by another thread is still reported when its owner hands it out again', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4, debug: true });
    const ps = Array.from({ length: 8 }, () => heap.malloc(64));
    const w = startHeapWorker();
    await w.remote.attach(heap.buffer);
    await w.remote.freeMany(ps); // one chain on the slab's remote list: links and check words written
    const p = ps[3]!;
    heap.u8[p + 20] = 0x55; // use after free
    let e: unknown = null;
    try {
      for (let k = 0; k < 200; k++) heap.malloc(64);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(HeapCorruptionError);
    expect((e as Error).message).toContain(`the 80-byte block at 0x${p.toString(16)} was written after it was freed: byte 0x${(p + 20).toString(16)} (offset 20)`);
    expect(checked(heap)).toBe('passes');
    await w.remote.detach();
    heap.detach();
  }, 30_000);
});
