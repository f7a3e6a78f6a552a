/**
 * A reclaim redoes a dead thread's drain journal (reclaim.ts finishJournals): it copies the
 * entries still to drain into a journal area and drains them. When that journal was itself a
 * reclaim's copy (a reclaimer R1 stopped in its drain of a dead thread V's magazine), there was one
 * area: a second reclaimer R2 stopped inside the copy (V8 may stop a thread at the loop's back
 * edge) left it half rewritten under the old journal's length and progress words, and the next
 * reclaim lost blocks (CACHED in no magazine) or put blocks on a remote list twice (a FREE block
 * on the list, a slab's count off): 51 of this test's 337 runs failed so, once the copy loop had
 * crash points. A copy now goes to the other of two areas (layout.ts TH_JOURNAL_W).
 *
 * R1 is stopped at each step of its reclaim of V that leaves a journal in the area whose redo
 * moves entries (one step per state of that journal), R2 at each step of its reclaim of R1 (which
 * takes V over), and the main thread then reclaims what is left: every thread slot comes back,
 * the lock is free, check() passes and every live block keeps its bytes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_LOCK, MAG_ENTRY_WORDS, MAG_STATE, ST_CACHED, ST_PENDING, TH_INFLIGHT, TH_JOURNAL_DONE, TH_JOURNAL_N, TH_JOURNAL_SRC, TH_JOURNAL_W, TH_STATE, TS_FREE } from '../src/layout.js';
import { checked, MiB } from './fixtures.js';
import { startHeapWorker, startWorker, terminateAll } from './remote-heap.js';

afterAll(terminateAll);
const MAX_THREADS = 6;

interface Setup {
  heap: SharedHeap;
  /** The main thread's live blocks: [offset, size, fill byte]. */
  mine: [number, number, number][];
  /** The dead thread's blocks still allocated when it died (the main thread frees them at the end). */
  left: number[];
  victim: number;
  victimSlot: number;
}

/**
 * A heap whose thread V died with a magazine of 64-byte blocks (its own slab's and the main
 * thread's, in runs of two), none drained yet.
 */
async function makeVictim(): Promise<Setup> {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: MAX_THREADS, magazineCapacity: 16, refillCount: 8 });
  const mine: [number, number, number][] = [];
  for (let k = 0; k < 6; k++) {
    const size = [24, 64, 3000][k % 3]!;
    const p = heap.malloc(size);
    heap.u8.fill(0x40 + k, p, p + size);
    mine.push([p, size, 0x40 + k]);
  }
  const v = startHeapWorker();
  const victim = await v.remote.attach(heap.buffer);
  // One refill's worth (none left cached under the frees), then frees in runs of one slab:
  // the main thread's one, V's three, the main thread's two, V's two, then one and one.
  const own: number[] = [];
  for (let k = 0; k < 8; k++) own.push(await v.remote.malloc(64));
  const theirs = Array.from({ length: 4 }, () => heap.malloc(64));
  for (const p of [theirs[0]!, own[0]!, own[1]!, own[2]!, theirs[1]!, theirs[2]!, own[3]!, own[4]!, theirs[3]!, own[5]!]) await v.remote.free(p);
  const victimSlot = heap.stats().threads.find((x) => x.threadId === victim)!.tid;
  await v.worker.terminate();
  const left = own.slice(6);
  for (const [i, p] of left.entries()) heap.u8.fill(0x80 + i, p, p + 64);
  return { heap, mine, left, victim, victimSlot };
}

/** Starts a reclaim-crash-worker reclaiming `victim`, stopped at its n-th crash point (0: none, counted); its threadId and counts. */
async function reclaimer(heap: SharedHeap, victim: number, n: number): Promise<{ id: number; counts: number[] | undefined }> {
  const w: Worker = startWorker('reclaim-crash-worker', { buffer: heap.buffer });
  const { threadId } = await new Promise<{ threadId: number }>((resolve) => w.once('message', resolve));
  const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
  const result = new Promise<number[] | undefined>((resolve) => {
    w.once('message', (m: { counts: number[] }) => resolve(m.counts));
    w.once('exit', () => resolve(undefined));
  });
  w.postMessage({ victim, n });
  const counts = await result;
  if (counts !== undefined) await w.terminate();
  await exited;
  return { id: threadId, counts };
}

const total = (counts: number[] | undefined): number => (counts ?? []).reduce((a, b) => a + b, 0);

/**
 * V's journal as R1 left it, when it sits in V's journal area, is not drained to its end, and its
 * redo rewrites the area past the journal's progress: entries to move (the progress past 0, a
 * chain in flight, or an entry the redo leaves out, neither CACHED nor PENDING), more words of
 * them than the progress covers (a copy into the one area wrote over entries the journal still
 * named only then). Its
 * length and progress words, and what the redo reads (the progress, the chain in flight, each
 * entry's state); else undefined.
 */
function journalToRedo(s: Setup): { n: number; done: number; signature: string } | undefined {
  const t = internals(s.heap);
  const thW = t.threadW(s.victimSlot);
  const n = t.i32[thW + TH_JOURNAL_N]!;
  const done = t.i32[thW + TH_JOURNAL_DONE]!;
  if (n === 0 || done >= n || t.i32[thW + TH_JOURNAL_SRC] !== thW + TH_JOURNAL_W) return undefined;
  const states: number[] = [];
  for (let w = 0; w < n; w += MAG_ENTRY_WORDS) states.push(t.bytes[t.i32[thW + TH_JOURNAL_W + w + MAG_STATE]!]!);
  const after = states.slice(done / MAG_ENTRY_WORDS);
  const kept = after.filter((st) => st === ST_CACHED || st === ST_PENDING).length;
  const inflight = t.i32[thW + TH_INFLIGHT]!;
  if ((done === 0 && inflight === 0 && kept === after.length) || (done > 0 && kept * MAG_ENTRY_WORDS <= done)) return undefined;
  return { n, done, signature: `${done} ${inflight} ${states.join('')}` };
}

/** What is wrong after the main thread reclaimed every stopped thread (empty: nothing). */
function reclaimAndCheck(s: Setup, ids: number[]): string[] {
  const { heap } = s;
  const t = internals(heap);
  const wrong: string[] = [];
  for (const id of ids) heap.reclaim(id);
  for (let slot = 0; slot < MAX_THREADS; slot++) {
    const state = Atomics.load(t.i32, t.threadW(slot) + TH_STATE);
    if (slot !== t.slot && state !== TS_FREE) wrong.push(`slot ${slot} in state ${state}`);
  }
  if (Atomics.load(t.i32, G_LOCK) !== 0) wrong.push('the lock is held');
  const c1 = checked(heap);
  if (c1 !== 'passes') wrong.push(`check(): ${c1}`);
  for (const [p, size, fill] of s.mine) {
    if (heap.u8.subarray(p, p + size).some((b) => b !== fill)) wrong.push(`the main thread's block ${p} lost its bytes`);
  }
  for (const [i, p] of s.left.entries()) {
    if (heap.u8.subarray(p, p + 64).some((b) => b !== 0x80 + i)) wrong.push(`V's live block ${p} lost its bytes`);
  }
  try {
    for (const p of s.left) heap.free(p);
    for (const [p] of s.mine) heap.free(p);
  } catch (e) {
    wrong.push(`free: ${(e as Error).message}`);
  }
  heap.flush();
  const c2 = checked(heap);
  if (c2 !== 'passes') wrong.push(`check() after the frees: ${c2}`);
  const live = heap.stats().liveBlocks;
  if (live !== 0) wrong.push(`${live} blocks still allocated`);
  return wrong;
}

describe('a reclaim redoing a journal that a stopped reclaimer left in the journal area', () => {
  it('is stopped at every step of its own redo, and the next reclaim still finishes it cleanly', async () => {
    // R1's steps that leave V's journal in the journal area for a redo that moves its entries.
    const counted = await makeVictim();
    const steps1 = total((await reclaimer(counted.heap, counted.victim, 0)).counts);
    expect(steps1).toBeGreaterThan(0);
    // One R1 step per journal state the redo can meet (steps that leave the same one are alike).
    const candidates: [number, number, number][] = [];
    const seen = new Set<string>();
    for (let n1 = 1; n1 <= steps1; n1++) {
      const s = await makeVictim();
      await reclaimer(s.heap, s.victim, n1);
      const j = journalToRedo(s);
      if (j !== undefined && !seen.has(j.signature)) {
        seen.add(j.signature);
        candidates.push([n1, j.n, j.done]);
      }
    }
    const failures: string[] = [];
    let redoSteps = 0;
    for (const [n1, length, done] of candidates) {
      const c = await makeVictim();
      const r1 = await reclaimer(c.heap, c.victim, n1);
      const steps2 = total((await reclaimer(c.heap, r1.id, 0)).counts);
      for (let n2 = 1; n2 <= steps2; n2++) {
        const s = await makeVictim();
        const a = await reclaimer(s.heap, s.victim, n1);
        const b = await reclaimer(s.heap, a.id, n2);
        const wrong = reclaimAndCheck(s, [b.id, a.id, s.victim]);
        if (wrong.length > 0) failures.push(`R1 stopped at step ${n1} (journal ${done}/${length} words), R2 at step ${n2}: ${wrong.join('; ')}`);
        redoSteps++;
      }
    }
    expect(redoSteps).toBeGreaterThan(candidates.length);
    expect(failures, `${failures.length} of ${redoSteps} runs went wrong`).toEqual([]);
  }, 600_000);
});
