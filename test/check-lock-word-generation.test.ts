/**
 * check() and the generation bits of the lock word (layout.ts lockWord, TH_LOCK_GEN). Since layout
 * version 18 the word's upper 19 bits name the holder's attachment; check() looked only at the
 * state and the slot bits, so a word with the slot of a thread and a generation that slot never
 * had (no thread could have written it: a stray write over the header's word 13) passed, where
 * with the slot alone in the word nearly every such word named a slot out of range and failed.
 * Such a word deadlocks the heap: it names an ATTACHED slot, whose lock nobody breaks, and which
 * never lets it go. Every word a holder really writes still passes: a live holder's, and a dead
 * holder's (its slot keeps its generation until it is reclaimed, which breaks the lock first).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { markDead } from '../src/reclaim.js';
import { G_LOCK, LOCK_GEN_BITS, LOCK_GEN_SHIFT, LOCK_HELD, LOCK_STATE_MASK, TH_LOCK_GEN, lockWord } from '../src/layout.js';
import { lockHolder } from '../src/lock.js';
import { checked, MiB } from './fixtures.js';
import { startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

const next = <T>(w: Worker): Promise<T> => new Promise((resolve) => w.once('message', resolve));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('check() of the lock word\'s generation', () => {
  it('fails a word naming a slot in an attachment it is not in, and passes the words holders write', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const t = internals(heap);
    const i32 = t.i32;
    const ctl = new Int32Array(new SharedArrayBuffer(8));
    const g = startWorker('lock-gate-worker', { buffer: heap.buffer, ctl });
    const said = await next<{ slot: number; threadId: number }>(g);
    for (let i = 0; i < 5000 && Atomics.load(ctl, 0) !== 1; i++) await sleep(2);
    expect(Atomics.load(ctl, 0), 'the worker holds the lock').toBe(1);
    const held = Atomics.load(i32, G_LOCK);
    const gen = Atomics.load(i32, t.threadW(said.slot) + TH_LOCK_GEN);
    expect(held).toBe(lockWord(said.slot, LOCK_HELD, gen));
    expect(checked(heap), 'a live holder\'s word').toBe('passes');

    // Its slot and state, another generation: no attachment wrote it.
    for (const other of [held ^ (1 << LOCK_GEN_SHIFT), lockWord(said.slot, LOCK_HELD, gen + 12345), lockWord(t.slot, LOCK_HELD, 0)]) {
      expect(lockHolder(other) === said.slot || lockHolder(other) === t.slot).toBe(true);
      expect(other & LOCK_STATE_MASK).toBe(LOCK_HELD);
      Atomics.store(i32, G_LOCK, other);
      const verdict = checked(heap);
      Atomics.store(i32, G_LOCK, held);
      expect(verdict, `word ${other}`).toMatch(/^check\(\): lock word is -?\d+ .*attachment/);
    }
    expect(checked(heap), 'the holder\'s word again').toBe('passes');
    // A generation with its top bit set makes the word negative: its bits are shown as they are.
    const negative = lockWord(said.slot, LOCK_HELD, gen + (1 << (LOCK_GEN_BITS - 1)));
    expect(negative).toBeLessThan(0);
    Atomics.store(i32, G_LOCK, negative);
    const shown = checked(heap);
    Atomics.store(i32, G_LOCK, held);
    expect(shown).toContain(`lock word is ${negative} (0x${(negative >>> 0).toString(16)})`);

    // The holder dies with it: its slot DEAD, the word still its attachment's.
    await g.terminate();
    markDead(t, said.threadId);
    expect(Atomics.load(i32, G_LOCK)).toBe(held);
    expect(checked(heap), 'a dead holder\'s word').toBe('passes');
    const p = heap.malloc(2 * MiB); // breaks it
    expect(p).toBeGreaterThan(0);
    heap.free(p);
    expect(heap.reclaim(said.threadId)).toBe(true);
    expect(Atomics.load(i32, G_LOCK)).toBe(0);
    expect(checked(heap)).toBe('passes');
  }, 30_000);
});
