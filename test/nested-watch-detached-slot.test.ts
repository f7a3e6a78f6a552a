/**
 * Audit: a watcher that detached keeps its watches (reclaimed at their exits by an attachment made
 * for them). Its detached context still names its old slot (runner.slot), which a worker it
 * watches may have taken since. markDead skipped a slot equal to the caller's runner.slot, so the
 * exit of that worker did not mark it dead: a global lock it died holding was never broken (the
 * reclaim, which never waits in an exit handler, found the lock busy for good).
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { MiB } from './fixtures.js';
import { endStarted, startNamed } from './nested-watch-helpers.js';

afterEach(endStarted);

function next(w: Worker, key: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const on = (m: Record<string, unknown>): void => {
      if (key in m) {
        w.off('message', on);
        resolve(m);
      }
    };
    w.on('message', on);
  });
}

describe("a detached watcher's worker in the watcher's old slot", () => {
  it('dies holding the global lock: marked dead at its exit, the lock broken', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const ctl = new Int32Array(new SharedArrayBuffer(8));
    const w = startNamed('watcher-probe-worker', { buffer: heap.buffer, ctl });
    const exited = next(w, 'childExited');
    w.postMessage({ op: 'startLockChild' });
    await next(w, 'done');
    w.postMessage({ op: 'detach' }); // w's slot free; its watch of the child kept
    await next(w, 'done');
    Atomics.store(ctl, 0, 1); // the child attaches (w's old slot, the lowest free), locks, ends
    Atomics.notify(ctl, 0);
    await exited;
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    let got: number | string;
    try {
      got = heap.malloc(3 * MiB); // needs the global lock
    } catch (err) {
      got = (err as Error).name;
    }
    expect(got).toBeTypeOf('number');
    expect(Date.now() - t0).toBeLessThan(1000);
    heap.free(got as number);
    heap.check();
  });
});
