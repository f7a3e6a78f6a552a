/**
 * A large block freed by this thread at the same moment as another thread's realloc moves it (or
 * frees it under the lock): the other thread gives the run's slots back (slots.ts giveBack: the
 * head's kind K_FREE, then its mark LARGE_FREED) between this free's read of the kind (still
 * K_LARGE) and of the mark (LARGE_FREED already). It must be a DoubleFreeError, as the README
 * promises for two threads passing one large block to free or realloc at once; before (an audit:
 * 1 of 300 such races of two workers), it was an InvalidPointerError saying the offset was
 * "never-allocated space". The interleaving is made exact: this thread's view of the slot metas
 * lets the worker's call run, to its end, at this thread's first read of the head's mark.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { DoubleFreeError, SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { SLOT_BYTES, SLOT_SHIFT, SM_LARGE } from '../src/layout.js';
import { startWorker, terminateAll } from './remote-heap.js';
import { MiB, checked, until } from './fixtures.js';

afterAll(async () => {
  await terminateAll();
});

const RUN = 5 * SLOT_BYTES - 1000;

/**
 * This thread's free(p) (or `call`) while the worker's realloc(p, size) (free when size is -1)
 * runs between its reads of the head's kind and mark: the error this thread's call throws, the
 * worker's result and check()'s verdict.
 */
async function race(options: { stage1Keep?: number }, size: number, call: (heap: SharedHeap, p: number) => unknown) {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4, ...options });
  const ctl = new Int32Array(new SharedArrayBuffer(16));
  startWorker('large-call-on-signal', { buffer: heap.buffer, ctl });
  await until('the worker attached', () => Atomics.load(ctl, 0) === 1);
  const p = heap.malloc(RUN);
  heap.u8.fill(0x61, p, p + RUN);
  ctl[1] = p;
  ctl[2] = size;
  const t = internals(heap);
  const real = t.i32;
  const markW = t.metaW(p >>> SLOT_SHIFT) + SM_LARGE;
  let ran = false;
  // Plain reads only reach this view (the calls below make no Atomics call before they throw).
  t.i32 = new Proxy(real, {
    get(target, key) {
      if (!ran && key === String(markW)) {
        ran = true;
        Atomics.store(ctl, 0, 2);
        Atomics.notify(ctl, 0);
        while (Atomics.load(ctl, 0) !== 3) Atomics.wait(ctl, 0, 2, 1000);
      }
      return Reflect.get(target, key, target) as unknown;
    },
  });
  let error: unknown = null;
  try {
    call(heap, p);
  } catch (e) {
    error = e;
  } finally {
    t.i32 = real;
  }
  const result = ctl[3]!;
  const verdict = checked(heap);
  if (result > 0 && result !== p) heap.free(result);
  return { ran, error, result, verdict, heap };
}

describe("a large block's free or realloc at the same moment as another thread's give-back of it", () => {
  it("free while the worker's realloc moves the block to a small one: DoubleFreeError", async () => {
    const { ran, error, result, verdict, heap } = await race({}, 1000, (h, p) => h.free(p));
    expect({ ran, moved: result > 0, error: error instanceof DoubleFreeError ? 'DoubleFreeError' : String(error), verdict })
      .toEqual({ ran: true, moved: true, error: 'DoubleFreeError', verdict: 'passes' });
    expect((error as Error).message).toMatch(/^free\(ptr\): 0x[0-9a-f]+ is not allocated: the large block there was already freed \(double free\)$/);
    expect(heap.stats().largeLiveBlocks).toBe(0);
  });

  it("realloc while the worker frees the block under the lock (stage1Keep 0): DoubleFreeError", async () => {
    const { ran, error, result, verdict, heap } = await race({ stage1Keep: 0 }, -1, (h, p) => h.realloc(p, 9 * SLOT_BYTES));
    expect({ ran, freed: result === 0, error: error instanceof DoubleFreeError ? 'DoubleFreeError' : String(error), verdict })
      .toEqual({ ran: true, freed: true, error: 'DoubleFreeError', verdict: 'passes' });
    expect(heap.stats().largeLiveBlocks).toBe(0);
  });

  it('usableSize of a block freed meanwhile: DoubleFreeError, naming usableSize', async () => {
    const { ran, error, verdict } = await race({ stage1Keep: 0 }, -1, (h, p) => h.usableSize(p));
    expect({ ran, error: error instanceof DoubleFreeError ? (error as Error).message.slice(0, 18) : String(error), verdict })
      .toEqual({ ran: true, error: 'usableSize(ptr): 0', verdict: 'passes' });
  });
});
