/**
 * realloc of a large block in a worker that another thread frees while the realloc moves it (a
 * free and a realloc of one large block at the same moment: a double free, which one of the two
 * must refuse, README). Out of memory in the middle of the move, the realloc asks the other
 * threads to flush and waits for their answers, holding no lock (flush-ask.ts); a thread that
 * freed the block (and the one after it) meanwhile put their runs in the large-run lists, and the
 * move's next try took them back, from the very offset of the old block: the free of the "old"
 * block then freed the new one, and realloc returned a block that was free (the next malloc
 * handed it out again; an audit, test/misuse-model.test.ts's topic).
 */
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { startWorker, terminateAll } from './remote-heap.js';

afterEach(terminateAll);

const MiB = 1 << 20;
const SLOT = 64 * 1024;

/** The messages of `w` in order, from its start (one it posts while nobody listens is not lost). */
function inbox(w: Worker): () => Promise<any> {
  const got: unknown[] = [];
  let wake: (() => void) | undefined;
  w.on('message', (m) => {
    got.push(m);
    wake?.();
  });
  w.on('error', (e) => {
    got.push({ error: String(e) });
    wake?.();
  });
  return async () => {
    while (got.length === 0) await new Promise<void>((res) => (wake = res));
    return got.shift();
  };
}

describe('realloc of a large block that another thread frees while the realloc waits for answers to its asks to flush', () => {
  it('is refused with DoubleFreeError, not returned as a block that is free', async () => {
    // The freer has FLUSH_ASK_WAIT_MS (50 ms) to free the blocks once asked; a machine too busy for
    // that makes the realloc answer 0 (no room), and the scene is played again.
    let refused = false;
    for (let attempt = 0; attempt < 5 && !refused; attempt++) refused = await scene(attempt);
    expect(refused, 'the realloc never ran into the free (answered 0 each time)').toBe(true);
  });
});

/** One play of the scene: true when the realloc was refused, false when it answered 0. */
async function scene(attempt: number): Promise<boolean> {
  // A heap of one SuperSlab of blocks (2 MiB, the metadata 1 MiB): filled, so that the move finds no room.
  const heap = SharedHeap.create({ initialBytes: 2 * MiB, maxThreads: 4 });
  const p = heap.malloc(3 * SLOT);
  const r = heap.malloc(3 * SLOT);
  expect(r).toBe(p + 3 * SLOT); // right after p: p cannot grow in place
  heap.u8.fill(7, p, p + 3 * SLOT);
  const fill: number[] = [];
  for (const size of [3 * SLOT, 2 * SLOT, SLOT + 1, 60_000, 30_000, 16_000, 4000]) {
    for (let q = heap.malloc(size); q !== 0; q = heap.malloc(size)) fill.push(q);
  }
  const reallocer = startWorker('realloc-freed-meanwhile-worker', { buffer: heap.buffer, role: 'realloc' });
  const freer = startWorker('realloc-freed-meanwhile-worker', { buffer: heap.buffer, role: 'free' });
  heap.watch(reallocer); // their slots come back at their exits
  heap.watch(freer);
  const fromReallocer = inbox(reallocer);
  const fromFreer = inbox(freer);
  expect(await fromReallocer()).toBe('ready');
  expect(await fromFreer()).toBe('ready');
  // The freer blocks until it is asked to flush; then it frees p and r (their runs go to the
  // large-run lists), and answers. The realloc asks it once out of memory in its move.
  freer.postMessage({ ps: [p, r] });
  expect(await fromFreer()).toBe('waiting');
  reallocer.postMessage({ p, size: 5 * SLOT });
  const said = await fromReallocer();
  const f = await fromFreer();
  expect(f.asked, 'the freer was never asked to flush').toBe(true);
  const exits = [reallocer, freer].map((w) => new Promise((res) => w.once('exit', res)));
  await Promise.all([reallocer.terminate(), freer.terminate(), ...exits]);
  if (said.q !== undefined && said.q !== 0) {
    const other = heap.malloc(5 * SLOT);
    expect.fail(`realloc returned 0x${said.q.toString(16)} after p (0x${p.toString(16)}) was freed; the next malloc returned 0x${other.toString(16)}`);
  }
  if (said.q === undefined) {
    expect(said.name).toBe('DoubleFreeError');
    expect(said.message).toMatch(new RegExp(`^realloc\\(ptr, size\\): 0x${p.toString(16)} `));
  }
  // Nothing left behind: the new block went back too.
  for (const q of fill) heap.free(q);
  heap.flush();
  heap.check();
  expect(heap.stats().liveBlocks, `attempt ${attempt}`).toBe(0);
  heap.detach();
  return said.q === undefined;
}
