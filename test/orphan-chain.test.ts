/**
 * A thread A that dies between marking a chain of remote frees PENDING and the CAS that publishes
 * it (magazine.ts drainJournal, TH_INFLIGHT) leaves its reclaim to decide whether the chain reached
 * the slab's remote list (reclaim.ts resolveInflight). While the slab's owner B has announced a
 * collection of the slab (TH_COLLECT_MW), nothing tells: the collection may have taken the chain.
 * When B is itself dead but not yet reclaimed (two workers terminated together, A's exit seen
 * first), or paused for longer than the reclaim waits, the chain used to be given up (G_ORPHANS):
 * its blocks stayed PENDING on no list, its slab never emptied and its slot was lost to the heap.
 * Now the reclaim hands the chain to the table of undecided chains (layout.ts UD_W), settled once
 * no collection of the slab is announced any more: by B's reclaim, or by B at the end of its
 * collection (or, when the lock was busy then, at its next look at its notices). Here every block
 * of B's slab is freed at the end, and the heap must give as many whole SuperSlabs as a fresh one;
 * the last test stops the thread that reclaims A and B at each of its crash points in turn.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_COLLECT } from '../src/crash.js';
import { G_LOCK, G_ORPHANS, G_UNDECIDED } from '../src/layout.js';
import { checked, MiB } from './fixtures.js';
import { ask, startHeapWorker, startThread, terminateAll } from './remote-heap.js';
import type { TestThread as Thread } from './remote-heap.js';

afterEach(terminateAll);

const start = (heap: SharedHeap): Promise<Thread> => startThread('chain-worker', heap.buffer);

/** Whether `x` stopped (exited) on message `m` rather than answering it. */
async function stops(x: Thread, m: unknown): Promise<boolean> {
  return (await Promise.race([ask(x, m), x.exit.then(() => 'exited')])) === 'exited';
}

/** 1 MiB blocks (each a whole SuperSlab) the heap gives until it runs out; all freed again. */
function wholeSupers(heap: SharedHeap): number {
  const got: number[] = [];
  for (let p = heap.malloc(MiB); p !== 0; p = heap.malloc(MiB)) got.push(p);
  for (const p of got) heap.free(p);
  heap.flush();
  return got.length;
}

const SIZE = 48;
const OPTIONS = { initialBytes: 16 * MiB, maxBytes: 16 * MiB, maxThreads: 8 };

/**
 * B allocates one refill batch of its slab S; the main thread frees 8 of them (on S's remote list,
 * B notified); A frees 8 others and stops after TH_INFLIGHT, before its CAS (the 9th publish
 * crash point: one per state set, then the one after TH_INFLIGHT).
 */
async function chainCutOff(heap: SharedHeap): Promise<{ A: Thread; B: Thread; ps: number[] }> {
  const [B, A] = [await start(heap), await start(heap)];
  const { ps } = await ask<{ ps: number[] }>(B, { op: 'malloc', n: 32, size: SIZE });
  for (const p of ps.slice(0, 8)) heap.free(p);
  heap.flush();
  expect(await stops(A, { op: 'free-flush-stop', ps: ps.slice(8, 16), k: 9 })).toBe(true);
  return { A, B, ps };
}

describe('a chain of remote frees cut off at its publish while its slab is being collected', () => {
  it('is published by the reclaim of the collector, dead too and reclaimed second: no orphan, no slot lost', async () => {
    const heap = SharedHeap.create(OPTIONS);
    const i32 = new Int32Array(heap.buffer);
    const fresh = wholeSupers(heap);
    const { A, B, ps } = await chainCutOff(heap);
    // B collects its notices and stops after announcing the collection of S, before its exchange.
    expect(await stops(B, { op: 'flush-stop', path: CP_COLLECT, k: 1 })).toBe(true);
    expect(heap.reclaim(A.id)).toBe(true); // B announced: undecided
    expect(Atomics.load(i32, G_UNDECIDED)).toBe(1);
    expect(heap.reclaim(B.id)).toBe(true); // B's collection finished or undone: decided, published
    expect(Atomics.load(i32, G_UNDECIDED)).toBe(0);
    for (const p of ps.slice(16)) heap.free(p);
    heap.flush();
    expect(wholeSupers(heap)).toBe(fresh);
    expect(Atomics.load(i32, G_ORPHANS)).toBe(0);
    expect(checked(heap)).toBe('passes');
    heap.detach();
  });

  it('is published by the collector itself, alive and paused past the reclaim: no orphan, no slot lost', async () => {
    const heap = SharedHeap.create(OPTIONS);
    const i32 = new Int32Array(heap.buffer);
    const fresh = wholeSupers(heap);
    const { A, B, ps } = await chainCutOff(heap);
    // B collects its notices and pauses after announcing the collection of S, until told to go on.
    const ctl = new Int32Array(new SharedArrayBuffer(4));
    const collected = ask(B, { op: 'flush-pause', path: CP_COLLECT, k: 1, ctl });
    while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 1));
    expect(heap.reclaim(A.id)).toBe(true); // waits 50 ms for B, then hands the chain over
    expect(Atomics.load(i32, G_UNDECIDED)).toBe(1);
    Atomics.store(ctl, 0, 2);
    Atomics.notify(ctl, 0);
    await collected; // B's collection ends, and B settles the chain (no other thread holds the lock)
    expect(Atomics.load(i32, G_UNDECIDED)).toBe(0);
    for (const p of ps.slice(16)) heap.free(p);
    heap.flush();
    await ask(B, { op: 'flush' }); // B collects what came back, S empty: given back
    await B.w.terminate();
    heap.reclaim(B.id);
    expect(wholeSupers(heap)).toBe(fresh);
    expect(Atomics.load(i32, G_ORPHANS)).toBe(0);
    expect(checked(heap)).toBe('passes');
    heap.detach();
  });

  it('is published by the collector at its next look at its notices when the lock was busy at the end of its collection', async () => {
    const heap = SharedHeap.create(OPTIONS);
    const i32 = new Int32Array(heap.buffer);
    const fresh = wholeSupers(heap);
    const { A, B, ps } = await chainCutOff(heap);
    const H = startHeapWorker();
    await H.remote.attach(heap.buffer);
    const ctl = new Int32Array(new SharedArrayBuffer(4));
    const collected = ask(B, { op: 'flush-pause', path: CP_COLLECT, k: 1, ctl });
    while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 1));
    expect(heap.reclaim(A.id)).toBe(true);
    expect(Atomics.load(i32, G_UNDECIDED)).toBe(1);
    const held = H.remote.holdLockFor(1000); // busy when B's collection ends: B notifies itself
    while (Atomics.load(i32, G_LOCK) === 0) await new Promise((r) => setTimeout(r, 1));
    Atomics.store(ctl, 0, 2);
    Atomics.notify(ctl, 0);
    await collected;
    await held;
    expect(Atomics.load(i32, G_UNDECIDED)).toBe(1);
    await ask(B, { op: 'flush' }); // its notices: S, whose chain is decided and collected
    expect(Atomics.load(i32, G_UNDECIDED)).toBe(0);
    for (const p of ps.slice(16)) heap.free(p);
    heap.flush();
    await ask(B, { op: 'flush' });
    await B.w.terminate();
    heap.reclaim(B.id);
    await H.remote.detach();
    expect(wholeSupers(heap)).toBe(fresh);
    expect(Atomics.load(i32, G_ORPHANS)).toBe(0);
    expect(checked(heap)).toBe('passes');
    heap.detach();
  });

  it('is decided once whichever crash point stops the thread reclaiming A and then B', async () => {
    /** One run: R reclaims A (the chain handed over) and B (decided), stopped at its k-th crash point; whether it stopped. */
    const run = async (k: number): Promise<boolean> => {
      const heap = SharedHeap.create(OPTIONS);
      const i32 = new Int32Array(heap.buffer);
      const fresh = wholeSupers(heap);
      const { A, B, ps } = await chainCutOff(heap);
      expect(await stops(B, { op: 'flush-stop', path: CP_COLLECT, k: 1 })).toBe(true);
      const R = await start(heap);
      const cut = await stops(R, { op: 'reclaim-stop', ids: [A.id, B.id], k });
      if (cut) {
        heap.reclaim(R.id); // finishes the reclaims R was running
        heap.reclaim(A.id);
        heap.reclaim(B.id);
      }
      expect(Atomics.load(i32, G_UNDECIDED), `k ${k}`).toBe(0);
      for (const p of ps.slice(16)) heap.free(p);
      heap.flush();
      if (!cut) await ask(R, { op: 'flush' });
      expect(wholeSupers(heap), `k ${k}`).toBe(fresh);
      expect(Atomics.load(i32, G_ORPHANS), `k ${k}`).toBe(0);
      expect(checked(heap), `k ${k}`).toBe('passes');
      heap.detach();
      if (!cut) await R.w.terminate();
      return cut;
    };
    // LANES runs at a time, each on its own heap, k = lane + 1, lane + 1 + LANES, ...: each lane
    // ends at the first k past the reclaims' last crash point (the same for all), so every crash
    // point before it is tried once.
    const LANES = 2;
    const stopsPerLane = await Promise.all(
      Array.from({ length: LANES }, async (_, lane) => {
        let n = 0;
        for (let k = lane + 1; await run(k); k += LANES) n++;
        return n;
      }),
    );
    const stopped = stopsPerLane.reduce((a, b) => a + b, 0);
    expect(stopped).toBeGreaterThan(20); // 38 on 2026-12-03: the hand-over, the settle, and both reclaims around them
  });
});
