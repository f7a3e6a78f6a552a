/**
 * An audit of 23da6d8 (TH_RECLAIMER stays set when a reclaimed slot goes FREE, so that a reclaimer
 * stopped right before that store is still named by the slot it left RECLAIMING). One level up, the
 * same window stayed open: a reclaimer R1 stopped inside its reclaim of a dead thread V leaves V
 * RECLAIMING, naming R1; a second reclaimer R2, reclaiming R1, stored R1's slot FREE first
 * (reclaimSlot) and only then took over the slots naming R1 (reclaimFound's scan). Stopped in
 * between, R2 left V naming a FREE slot, which no reclaim looks for: V stayed RECLAIMING for good
 * (one thread slot fewer, its magazines, slabs and journal never finished), reclaim(V) finding
 * nothing under its id. The slots naming R1 are now taken over before R1's slot goes FREE.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, TH_STATE, TH_THREAD_ID, TS_FREE, TS_RECLAIMING } from '../src/layout.js';
import { checked, MiB } from './fixtures.js';
import { startHeapWorker, startWorker, terminateAll } from './remote-heap.js';

afterAll(terminateAll);
const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));
const MAX_THREADS = 5;

describe('a reclaimer of a reclaimer, stopped once the first reclaimer\'s slot is FREE', () => {
  it('leaves what the first was reclaiming to its own reclaim: every thread slot comes back', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: MAX_THREADS, magazineCapacity: 4, refillCount: 2 });
    const t = internals(heap);
    const slotOf = (threadId: number): number => {
      for (let s = 0; s < MAX_THREADS; s++) if (Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === threadId + 1) return s;
      return -1;
    };
    const state = (s: number): number => Atomics.load(t.i32, t.threadW(s) + TH_STATE);
    const v = startHeapWorker();
    const victim = await v.remote.attach(heap.buffer);
    const blocks: number[] = [];
    for (let k = 0; k < 10; k++) blocks.push(await v.remote.malloc(k % 2 === 0 ? 64 : 3000));
    for (let k = 0; k < 5; k++) await v.remote.free(blocks[k]!);
    const vSlot = slotOf(victim);
    await v.worker.terminate();

    // R1 reclaims V and ends right after its CAS made V's slot RECLAIMING.
    const r1 = startWorker('reclaim-stop-when-worker', { buffer: heap.buffer });
    const { threadId: id1 } = await next<{ threadId: number }>(r1);
    const slot1 = slotOf(id1);
    let exited = new Promise<void>((resolve) => r1.once('exit', () => resolve()));
    r1.postMessage({ victim, slot: vSlot, state: TS_RECLAIMING });
    await exited;
    expect(state(vSlot), 'V, left RECLAIMING by R1').toBe(TS_RECLAIMING);

    // R2 reclaims R1 and ends at its first Atomics call once R1's slot is FREE.
    const r2 = startWorker('reclaim-stop-when-worker', { buffer: heap.buffer });
    const { threadId: id2 } = await next<{ threadId: number }>(r2);
    exited = new Promise<void>((resolve) => r2.once('exit', () => resolve()));
    r2.postMessage({ victim: id1, slot: slot1, state: TS_FREE });
    await exited;
    expect(state(slot1), 'R1\'s slot, FREE').toBe(TS_FREE);

    // Both reclaimers have ended: reclaim R2 (which finishes what it was reclaiming), then V if left.
    heap.reclaim(id2);
    heap.reclaim(victim);
    const left: string[] = [];
    for (let s = 0; s < MAX_THREADS; s++) {
      if (s !== t.slot && state(s) !== TS_FREE) left.push(`slot ${s}: state ${state(s)}`);
    }
    expect(left).toEqual([]);
    expect(Atomics.load(t.i32, G_LOCK)).toBe(0);
    expect(checked(heap)).toBe('passes');
    for (const p of blocks.slice(5)) heap.free(p);
    expect(checked(heap)).toBe('passes');
  }, 60_000);
});
