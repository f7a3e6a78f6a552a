/**
 * A realloc that moves a large run (the slots after it taken) and, while it takes its new block and
 * copies, another thread's realloc of the same run resizing it in place (a program passing one
 * block to realloc in two threads at once). The README promises that one of two such calls
 * resizes or moves the block and the other is refused with a DoubleFreeError. The moving realloc
 * claims the run only when it frees it, after the copy; the resize in place claims and lets go of
 * it before that. Before (an audit), both succeeded: the resize returned the block as live, the
 * move copied its old size from a run shrunk meanwhile (slots given back, which another block may
 * hold) and then freed it, so the first caller held a freed block. The move now finds the run's
 * span changed at its claim: it leaves the run as the resize made it, gives its new block back and
 * throws a DoubleFreeError. The moving call is paused inside its new block's pop from a
 * large-run list (no lock: CP_STAGE1_POP) while the other shrinks the run in place: a worker's
 * realloc while this thread shrinks, and this thread's reallocAsync while a worker shrinks. The
 * other cases leave the span as the move copied it, which only the run's generation tells (layout.ts
 * SM_RUN_GEN): a shrink and a grow back, and a free and a malloc that takes the run back (by realloc,
 * by debug mode's realloc, whose free of the moved run is its own, and by reallocAsync in both modes).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { CP_STAGE1_POP, armCrash } from '../src/crash.js';
import { SLOT_BYTES } from '../src/layout.js';
import { pausedAtCrashPoint, resumeFromCrashPoint, startHeapWorker, startWorker, terminateAll } from './remote-heap.js';
import { MiB, checked, until } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

/** p's usable size (-1 where it was freed) and whether its first 3 slots less 1000 bytes still all read `byte`. */
function shrunkRun(heap: SharedHeap, p: number, byte: number): { usable: number; kept: boolean } {
  let usable = -1;
  try {
    usable = heap.usableSize(p);
  } catch {
    // p freed by the move: usable stays -1
  }
  const u8 = heap.u8;
  let kept = true;
  for (let i = 0; i < 3 * SLOT_BYTES - 1000 && usable > 0; i++) if (u8[p + i] !== byte) kept = false;
  return { usable, kept };
}

/** Frees p and the run after it: no large block left, and the heap checks. */
function freeBoth(heap: SharedHeap, p: number, after: number): void {
  heap.free(p);
  heap.free(after);
  expect({ largeLive: heap.stats().largeLiveBlocks, bytes: heap.stats().largeLiveBytes, check: checked(heap) }).toEqual({ largeLive: 0, bytes: 0, check: 'passes' });
}

/** The REFUSED error of a move whose run another thread changed meanwhile (large.ts largeFree). */
const REFUSED = /^DoubleFreeError: realloc\(ptr, size\): 0x[0-9a-f]+ was resized in place, or freed and allocated again, by another thread/;

/**
 * A heap, a worker, and p (6 slots less 1000 bytes, filled with `byte`) with the slots after it
 * taken (`after`, 3 slots): the worker's realloc(p, 10 slots), which has no room in place and
 * takes a run of 10 from the large-run list, paused inside that pop (no lock held).
 */
async function pausedMove(byte: number, debug = false): Promise<{ heap: SharedHeap; p: number; after: number; gate: Int32Array; call: Promise<{ result: number; error: string }> }> {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4, debug });
  const v = startHeapWorker();
  await v.remote.attach(heap.buffer);
  const ten = heap.malloc(10 * SLOT_BYTES - 1000); // freed into the list of span 10: the move's new block
  const p = heap.malloc(6 * SLOT_BYTES - 1000);
  const after = heap.malloc(3 * SLOT_BYTES - 1000); // the slots after p taken: a growth moves it
  heap.free(ten);
  heap.u8.fill(byte, p, p + 6 * SLOT_BYTES - 1000);
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const call = v.remote.callPausingAt('realloc', p, 10 * SLOT_BYTES - 1000, CP_STAGE1_POP, 1, gate);
  await pausedAtCrashPoint(gate, call);
  return { heap, p, after, gate, call };
}

describe('a realloc moving a large run while another thread resizes it in place', () => {
  it('the move is refused with a DoubleFreeError; the run stays live as resized, its bytes kept', async () => {
    const { heap, p, after, gate, call } = await pausedMove(0x2e);
    // Meanwhile this thread shrinks p in place to 3 slots (its tail's 3 slots given back).
    const shrunk = heap.realloc(p, 3 * SLOT_BYTES - 1000);
    resumeFromCrashPoint(gate);
    const r = await call;
    const { usable, kept } = shrunkRun(heap, p, 0x2e);
    expect({ afterP: after === p + 6 * SLOT_BYTES, shrunkInPlace: shrunk === p, moved: r.result, error: r.error, usable, kept, check: checked(heap) }).toEqual({
      afterP: true,
      shrunkInPlace: true,
      moved: 0,
      error: expect.stringMatching(/^DoubleFreeError: realloc\(ptr, size\): 0x[0-9a-f]+ /),
      usable: 3 * SLOT_BYTES,
      kept: true,
      check: 'passes',
    });
    freeBoth(heap, p, after);
  });

  it('a shrink and a grow back to the same span meanwhile: the move is refused, the run live as the grow left it', async () => {
    // The span the move copied is the run's span again at its free: only the run's generation
    // (layout.ts SM_RUN_GEN) tells. Before it, the move freed the run this thread then held.
    const { heap, p, after, gate, call } = await pausedMove(0x2d);
    const shrunk = heap.realloc(p, 3 * SLOT_BYTES - 1000);
    const grown = heap.realloc(p, 6 * SLOT_BYTES - 1000); // back over the slots the shrink gave back
    resumeFromCrashPoint(gate);
    const r = await call;
    const { usable, kept } = shrunkRun(heap, p, 0x2d);
    expect({ shrunkInPlace: shrunk === p, grownInPlace: grown === p, moved: r.result, error: r.error, usable, kept, check: checked(heap) }).toEqual({
      shrunkInPlace: true,
      grownInPlace: true,
      moved: 0,
      error: expect.stringMatching(REFUSED),
      usable: 6 * SLOT_BYTES,
      kept: true,
      check: 'passes',
    });
    freeBoth(heap, p, after);
  });

  it('the run freed and allocated again at the same place meanwhile: the move is refused, the new block left live', async () => {
    // A double free (this thread frees the block the worker passed to realloc), then a malloc of
    // the same span that takes the freed run back from its large-run list: the same head, span and
    // LIVE mark. Before the generation, the move freed this thread's new block.
    const { heap, p, after, gate, call } = await pausedMove(0x2a);
    heap.free(p);
    const again = heap.malloc(6 * SLOT_BYTES - 1000);
    heap.u8.fill(0x2c, again, again + 6 * SLOT_BYTES - 1000);
    resumeFromCrashPoint(gate);
    const r = await call;
    const { usable, kept } = shrunkRun(heap, again, 0x2c);
    expect({ samePlace: again === p, moved: r.result, error: r.error, usable, kept, check: checked(heap) }).toEqual({
      samePlace: true,
      moved: 0,
      error: expect.stringMatching(REFUSED),
      usable: 6 * SLOT_BYTES,
      kept: true,
      check: 'passes',
    });
    freeBoth(heap, again, after);
  });

  it('debug mode: the run freed and allocated again at the same place meanwhile: the move is refused before its fill, the new block left live', async () => {
    // Debug mode's realloc moves every run (no resize in place) and frees the old one by a free of
    // its own (heap.ts debugFreeMovedRun), which compares the generation under the lock before it
    // writes anything. Before, it freed this thread's new block.
    const { heap, p, after, gate, call } = await pausedMove(0x29, true);
    heap.free(p);
    const again = heap.malloc(6 * SLOT_BYTES - 1000);
    heap.u8.fill(0x28, again, again + 3 * SLOT_BYTES - 1000);
    resumeFromCrashPoint(gate);
    const r = await call;
    const { usable, kept } = shrunkRun(heap, again, 0x28);
    expect({ samePlace: again === p, moved: r.result, error: r.error, usable, kept, check: checked(heap) }).toEqual({
      samePlace: true,
      moved: 0,
      error: expect.stringMatching(REFUSED),
      usable: 6 * SLOT_BYTES - 1000,
      kept: true,
      check: 'passes',
    });
    freeBoth(heap, again, after);
  });

  /**
   * This thread's reallocAsync(p, 10 slots) of p (6 slots less 1000 bytes, filled with 0x2f; the
   * slots after it taken), and at its first pop from a large-run list (its move's new block) the
   * worker's call: realloc(p, `arg`) (a resize in place), or with `arg` -2 a free of p and a malloc
   * that takes its memory back.
   */
  async function asyncMoveAgainstWorker(arg: number, debug: boolean) {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4, debug });
    const ctl = new Int32Array(new SharedArrayBuffer(16));
    startWorker('large-call-on-signal', { buffer: heap.buffer, ctl });
    await until('the worker attached', () => Atomics.load(ctl, 0) === 1);
    const ten = heap.malloc(10 * SLOT_BYTES - 1000);
    const p = heap.malloc(6 * SLOT_BYTES - 1000);
    const after = heap.malloc(3 * SLOT_BYTES - 1000);
    heap.free(ten);
    heap.u8.fill(0x2f, p, p + 6 * SLOT_BYTES - 1000);
    ctl[1] = p;
    ctl[2] = arg;
    let ran = false;
    const stop = (): never => {
      armCrash(0, stop);
      ran = true;
      Atomics.store(ctl, 0, 2);
      Atomics.notify(ctl, 0);
      while (Atomics.load(ctl, 0) !== 3) Atomics.wait(ctl, 0, 2, 1000);
      return undefined as never;
    };
    const on = (at: number): never => (at === CP_STAGE1_POP ? stop() : (armCrash(1, on), undefined as never));
    armCrash(1, on);
    let error = '';
    let result = -1;
    try {
      result = await heap.reallocAsync(p, 10 * SLOT_BYTES - 1000);
    } catch (e) {
      error = `${(e as Error).name}: ${(e as Error).message}`;
    } finally {
      armCrash(0, stop);
    }
    return { heap, p, after, ran, workerResult: ctl[3]!, result, error };
  }

  it('reallocAsync: the same, its move refused with a DoubleFreeError, the run live as resized', async () => {
    const { heap, p, after, ran, workerResult, result, error } = await asyncMoveAgainstWorker(3 * SLOT_BYTES - 1000, false);
    const { usable, kept } = shrunkRun(heap, p, 0x2f);
    expect({ afterP: after === p + 6 * SLOT_BYTES, ran, shrunkInPlace: workerResult === p, result, error, usable, kept, check: checked(heap) }).toEqual({
      afterP: true,
      ran: true,
      shrunkInPlace: true,
      result: -1,
      error: expect.stringMatching(/^DoubleFreeError: reallocAsync\(ptr, size\): 0x[0-9a-f]+ /),
      usable: 3 * SLOT_BYTES,
      kept: true,
      check: 'passes',
    });
    freeBoth(heap, p, after);
  });

  it.each([false, true])('reallocAsync (debug %s): the run freed and allocated again at the same place meanwhile: refused, the new block left live', async (debug) => {
    const { heap, p, after, ran, workerResult, result, error } = await asyncMoveAgainstWorker(-2, debug);
    let usable = -1;
    try {
      usable = heap.usableSize(p);
    } catch {
      // freed by the move: usable stays -1
    }
    expect({ ran, samePlace: workerResult === p, result, error, live: usable > 0, check: checked(heap) }).toEqual({
      ran: true,
      samePlace: true,
      result: -1,
      error: expect.stringMatching(/^DoubleFreeError: reallocAsync\(ptr, size\): 0x[0-9a-f]+ was resized in place, or freed and allocated again, by another thread/),
      live: true,
      check: 'passes',
    });
    freeBoth(heap, p, after);
  });
});
