/**
 * A reclaim finishes a dead owner's collection of a remote list from its
 * journal (reclaim.ts finishJournals: TH_COLLECT_MW, TH_COLLECT_NEXT; remote.ts finishCollect with
 * `resumed`), and clears TH_COLLECT_MW after. test/crash-points.test.ts stops owners inside
 * collections (its 'remote' scenario), but the thread that then reclaims them is never stopped
 * there: its 'reclaim' scenario's victim (makeVictim) has no collection under way, and
 * test/orphan-chain.test.ts's reclaimer reclaims an owner stopped before its exchange (NEXT -1,
 * nothing to finish). Here owner B is stopped at the k-th crash point of its collection (after
 * the exchange, in the walk), and reclaimer R at each crash point of its reclaim of B in turn;
 * then R and B are reclaimed by the main thread, which checks the heap, B's live blocks and that
 * everything frees.
 */
import { afterEach, expect, it } from 'vitest';
import { checked, freedAndChecked } from './fixtures.js';
import { SharedHeap } from '../src/index.js';
import { CP_COLLECT } from '../src/crash.js';
import { internals } from '../src/heap.js';
import { G_LOCK, TH_COLLECT_MW, TH_COLLECT_NEXT, TH_THREAD_ID } from '../src/layout.js';
import { ask, startThread, terminateAll } from './remote-heap.js';
import type { TestThread as Thread } from './remote-heap.js';

afterEach(terminateAll);

const MiB = 1 << 20;
const SIZE = 48;

async function stops(x: Thread, m: unknown): Promise<boolean> {
  return (await Promise.race([ask(x, m), x.exit.then(() => 'exited')])) === 'exited';
}

function slotOf(heap: SharedHeap, id: number): number {
  const t = internals(heap);
  for (let s = 0; s < 8; s++) if (Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) === id + 1) return s;
  return -1;
}

/** One run: B stopped at its kB-th CP_COLLECT; R stopped at its kR-th crash point reclaiming B. Failures, or null when R finished. */
async function run(kB: number, kR: number): Promise<string[] | null> {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxBytes: 16 * MiB, maxThreads: 8 });
  const t = internals(heap);
  const i32 = t.i32;
  const failures: string[] = [];
  const B = await startThread('chain-worker', heap.buffer);
  const { ps } = await ask<{ ps: number[] }>(B, { op: 'malloc', n: 32, size: SIZE });
  for (const p of ps.slice(0, 20)) heap.free(p); // on S's remote list, B notified
  heap.flush();
  const slotB = slotOf(heap, B.id);
  if (!(await stops(B, { op: 'flush-stop', path: CP_COLLECT, k: kB }))) throw new Error(`B passed fewer than ${kB} collect points`);
  if (Atomics.load(i32, t.threadW(slotB) + TH_COLLECT_MW) === 0 || i32[t.threadW(slotB) + TH_COLLECT_NEXT] <= 0) {
    failures.push(`B not stopped inside its walk (COLLECT_MW ${i32[t.threadW(slotB) + TH_COLLECT_MW]}, NEXT ${i32[t.threadW(slotB) + TH_COLLECT_NEXT]})`);
  }
  const R = await startThread('chain-worker', heap.buffer);
  const cut = await stops(R, { op: 'reclaim-stop', ids: [B.id], k: kR });
  if (!cut) {
    await R.w.terminate();
    heap.reclaim(R.id);
    heap.detach();
    return null;
  }
  try {
    if (heap.reclaim(R.id) !== true) failures.push('reclaim(R) not true');
    heap.reclaim(B.id); // finished by R's reclaim, or still to do
  } catch (e) {
    failures.push(`reclaim: ${(e as Error).message}`);
  }
  if (Atomics.load(i32, G_LOCK) !== 0) failures.push('lock held after the reclaims');
  if (slotOf(heap, B.id) >= 0 || slotOf(heap, R.id) >= 0) failures.push('a slot still under B or R');
  const c = checked(heap);
  if (c !== 'passes') failures.push(`check(): ${c}`);
  const u32 = new Uint32Array(heap.buffer);
  ps.slice(20).forEach((p, j) => {
    const i = 20 + j;
    if (!u32.subarray(p >>> 2, (p + SIZE) >>> 2).every((x) => x === ((0xc0ffee00 + i) >>> 0))) failures.push(`B's live block ${p} lost its bytes`);
  });
  failures.push(...freedAndChecked(heap, ps.slice(20)));
  heap.detach();
  return failures;
}

it('a reclaimer stopped at each crash point of its reclaim of an owner stopped inside its collection: both reclaimed cleanly', async () => {
  const failed: string[] = [];
  let stopsTried = 0;
  for (const kB of [3, 6]) {
    for (let kR = 1; kR < 400; kR++) {
      const f = await run(kB, kR);
      if (f === null) break;
      stopsTried++;
      failed.push(...f.map((x) => `B at collect point ${kB}, R at crash point ${kR}: ${x}`));
    }
  }
  console.log(`reclaimer-resumed-collect: ${stopsTried} stops`);
  expect(stopsTried).toBeGreaterThan(10);
  expect(failed.slice(0, 20)).toEqual([]);
}, 300_000);
