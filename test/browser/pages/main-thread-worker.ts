/**
 * A module Web Worker of test/browser/main-thread.test.ts: attaches to the heap it is sent,
 * then loops on the public API (or on the raw global lock) until ctl[0] is set, counting in ctl[1 + index].
 */
import { SharedHeap } from '../../../src/index.js';
import { internals } from '../../../src/heap.js';
import { lockAcquire, lockRelease } from '../../../src/lock.js';

let held: SharedHeap | undefined;

/**
 * { hold: ms }: takes the global lock, sets ctl[2] to 1, waits for the page's ack in ctl[3] (the
 * page then makes its call at once), keeps the lock `ms` more milliseconds, sets ctl[2] to 0, releases.
 */
function hold(ctl: Int32Array, ms: number): void {
  const t = internals(held!);
  lockAcquire(t);
  Atomics.store(ctl, 3, 0);
  Atomics.store(ctl, 2, 1);
  Atomics.notify(ctl, 2);
  while (Atomics.load(ctl, 3) === 0);
  const until = performance.now() + ms;
  while (performance.now() < until);
  Atomics.store(ctl, 2, 0);
  lockRelease(t);
}

onmessage = (e: MessageEvent<{ buffer: SharedArrayBuffer; ctl: Int32Array; index: number; mode: 'large' | 'lock' | 'attach' | 'hold'; size: number; holdUs: number; ms: number }>) => {
  const { buffer, ctl, index, mode, size, holdUs } = e.data;
  if (mode === 'attach') {
    held = SharedHeap.attach(buffer);
    void held.threadLockHeld().then(() => postMessage({ ok: true, threadId: held!.threadId }));
    return;
  }
  if (mode === 'hold') {
    hold(ctl, e.data.ms);
    postMessage({ ok: true });
    return;
  }
  const heap = SharedHeap.attach(buffer);
  Atomics.add(ctl, 1 + index, 1);
  let n = 0;
  try {
    if (mode === 'large') {
      while (Atomics.load(ctl, 0) === 0) {
        const p = heap.malloc(size);
        if (p === 0) throw new Error('malloc returned 0');
        heap.u8[p] = 1;
        heap.free(p);
        n++;
      }
    } else {
      const t = internals(heap);
      while (Atomics.load(ctl, 0) === 0) {
        lockAcquire(t);
        const until = performance.now() + holdUs / 1000;
        while (performance.now() < until);
        lockRelease(t);
        n++;
      }
    }
    heap.detach();
    postMessage({ ok: true, n });
  } catch (err) {
    postMessage({ ok: false, n, error: String((err as Error)?.stack ?? err) });
  }
};
