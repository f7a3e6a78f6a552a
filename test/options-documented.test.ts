/**
 * create()'s options do what the README says, each at its smallest and largest accepted value and
 * one between (an audit, 2026-12-07, wrote these; its discrepancies: drainInterval, fixed with
 * test/drain-interval-counts.test.ts; refillCount's half-capacity bound, trimInterval's slabs kept
 * by stage1Keep and stage1Keep's bound on the large-run lists, documented since).
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { HeapCorruptionError, SharedHeap, ThreadSlotsExhaustedError, type HeapOptions } from '../src/index.js';
import { attachThread } from '../src/attach.js';
import { workerEntry } from '../bench/worker-entry.js';
import { COUNT, classOf } from '../src/size-classes.js';
import { debugProbe, firstLook, mostCached, oneRefill, type Probe } from '../workers/options-probe.js';

const MiB = 1 << 20;
const heaps: SharedHeap[] = [];
const workers: Worker[] = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.terminate()));
  for (const h of heaps.splice(0)) h.detach();
});
function create(options: HeapOptions): SharedHeap {
  const heap = SharedHeap.create({ maxThreads: 4, ...options });
  heaps.push(heap);
  return heap;
}

interface Probed {
  attached: { threadId?: number; error?: string };
  ask(probe: Probe, arg?: number): Promise<unknown>;
}
async function probeWorker(buffer: SharedArrayBuffer): Promise<Probed> {
  const e = workerEntry('options-probe');
  const w = new Worker(e.filename, { execArgv: e.execArgv, workerData: { probe: true, buffer } });
  workers.push(w);
  const next = (): Promise<{ threadId?: number; error?: string; result?: unknown }> => new Promise((r) => w.once('message', r));
  const attached = await next();
  return {
    attached,
    async ask(probe, arg) {
      const reply = next();
      w.postMessage({ probe, arg });
      const m = await reply;
      if (m.error !== undefined) throw new Error(m.error);
      return m.result;
    },
  };
}

describe('initialBytes and maxBytes', () => {
  it('rounded up to 1 MiB; below 2 MiB refused; maxBytes above initialBytes makes a growable buffer that grows to maxBytes and no further', () => {
    expect(() => SharedHeap.create({ initialBytes: 2 * MiB - 1, maxThreads: 2 })).toThrow(RangeError);
    expect(() => SharedHeap.create({ initialBytes: 4 * MiB, maxBytes: 2 * MiB - 1, maxThreads: 2 })).toThrow(RangeError);
    const cases: [number, number, number, number, boolean][] = [
      // initialBytes, maxBytes, buffer bytes at creation, largest, growable
      [2 * MiB, 3 * MiB, 2 * MiB, 3 * MiB, true],
      [8 * MiB + 5, 8 * MiB + 7, 9 * MiB, 9 * MiB, false],
      [8 * MiB, 20 * MiB + 1, 8 * MiB, 21 * MiB, true],
      [6 * MiB, 2047 * MiB, 6 * MiB, 2047 * MiB, true],
    ];
    for (const [initialBytes, maxBytes, first, most, growable] of cases) {
      const heap = create({ initialBytes, maxBytes, maxThreads: 2 });
      const b = heap.buffer as SharedArrayBuffer & { growable: boolean; maxByteLength: number };
      expect([b.byteLength, b.growable, b.maxByteLength, heap.memory === undefined, heap.stats().maxBytes]).toEqual([first, growable, most, growable, most]);
      let got = 0;
      for (let p = heap.malloc(4 * MiB - 4096); p !== 0; p = heap.malloc(4 * MiB - 4096)) got += 4 * MiB;
      for (let p = heap.malloc(60000); p !== 0; p = heap.malloc(60000)) got += 60000;
      expect(b.byteLength, `${initialBytes}/${maxBytes}`).toBe(most);
      expect(got).toBeGreaterThan(most - 7 * MiB);
    }
  });

  it('a worker attached to a growable heap sees it grow', async () => {
    const heap = create({ initialBytes: 8 * MiB, maxBytes: 64 * MiB });
    const w = await probeWorker(heap.buffer);
    for (let k = 0; k < 8; k++) heap.malloc(4 * MiB);
    expect(heap.buffer.byteLength).toBeGreaterThan(8 * MiB);
    expect(await w.ask('stats')).toBe(heap.buffer.byteLength);
  });
});

describe('maxThreads', () => {
  it('maxThreads 1: the main thread holds the one slot, a worker is refused with ThreadSlotsExhaustedError naming watch() and reclaim()', async () => {
    const heap = create({ initialBytes: 16 * MiB, maxThreads: 1 });
    const w = await probeWorker(heap.buffer);
    expect(w.attached.error).toMatch(/^ThreadSlotsExhaustedError: .*all 1 thread slots are taken.*watch\(worker\) or reclaim\(threadId\)/);
  });

  it('maxThreads 3: two workers attach beside the main thread, a third is refused', async () => {
    const heap = create({ initialBytes: 16 * MiB, maxThreads: 3 });
    const ws = [await probeWorker(heap.buffer), await probeWorker(heap.buffer), await probeWorker(heap.buffer)];
    expect(ws.map((w) => (w.attached.error === undefined ? 'attached' : w.attached.error.split(':')[0]))).toEqual(['attached', 'attached', 'ThreadSlotsExhaustedError']);
    expect(heap.stats().threadsAttached).toBe(3);
  });

  it('maxThreads 1024: 1024 attachments, the 1025th refused', () => {
    const heap = create({ initialBytes: 64 * MiB, maxThreads: 1024 });
    for (let i = 1; i < 1024; i++) attachThread(heap.buffer, 5000 + i);
    expect(heap.stats().threadsAttached).toBe(1024);
    expect(() => attachThread(heap.buffer, 9999)).toThrow(ThreadSlotsExhaustedError);
    heaps.splice(heaps.indexOf(heap), 1); // its 1023 extra slots stay taken: not detached
  });
});

describe('magazineCapacity', () => {
  it('a magazine holds at most magazineCapacity blocks, 256 KiB of blocks (512 KiB for 5-16 KiB); at the bound its newer half drains', () => {
    const most = (m: number, size: number, n: number): number => mostCached(create({ initialBytes: 64 * MiB, magazineCapacity: m, drainInterval: 2 ** 30 }), size, n);
    expect([most(1, 16, 50), most(1, 1024, 50), most(64, 16, 200), most(64, 4096, 200), most(4096, 16, 6000), most(4096, 1024, 600), most(4096, 8192, 100), most(4096, 65536, 20)])
      .toEqual([1, 1, 64, 64, 4096, 256, 64, 4]);
  });
});

describe('stage1Keep', () => {
  it('at most stage1Keep EMPTY slabs of a class in Stage 1, the others to Stage 2 (0, 5, 2^20)', () => {
    const kept = (k: number): number[] => {
      const heap = create({ initialBytes: 64 * MiB, stage1Keep: k });
      const cls = classOf(1024);
      const ps: number[] = [];
      for (let i = 0; i < 40 * COUNT[cls]!; i++) ps.push(heap.malloc(1024));
      for (const p of ps) heap.free(p);
      heap.flush();
      const s = heap.stats();
      return [s.classes[cls]!.stage1Slabs, s.stages.slotsReturned];
    };
    expect([kept(0), kept(5), kept(1 << 20)]).toEqual([[0, 40], [5, 35], [40, 0]]);
  });
});

describe('debug', () => {
  it('every thread that attaches is in debug mode: usableSize answers the requested size, a write past it is caught by free', async () => {
    const heap = create({ initialBytes: 16 * MiB, debug: true });
    const w = await probeWorker(heap.buffer);
    expect([debugProbe(heap), await w.ask('debug')]).toEqual([{ usable: 10, overrun: 'HeapCorruptionError' }, { usable: 10, overrun: 'HeapCorruptionError' }]);
    const plain = create({ initialBytes: 16 * MiB });
    expect(debugProbe(plain).usable).toBe(16);
    expect(HeapCorruptionError.name).toBe('HeapCorruptionError');
  });
});

describe('a worker gets the heap options, not the defaults', () => {
  it('magazineCapacity 300, refillCount 10, drainInterval 100: the same in the creating thread and in a worker', async () => {
    const cases: [HeapOptions, Probe, number, (h: SharedHeap) => unknown, unknown][] = [
      [{ magazineCapacity: 300, drainInterval: 2 ** 30 }, 'mostCached16', 1000, (h) => mostCached(h, 16, 1000), 300],
      [{ refillCount: 10, drainInterval: 2 ** 30 }, 'oneRefill', 0, (h) => oneRefill(h), [1, 10]],
      [{ drainInterval: 100, magazineCapacity: 4096 }, 'firstLook', 1000, (h) => firstLook(h, 1000), 100],
    ];
    for (const [options, probe, arg, here, expected] of cases) {
      const heap = create({ initialBytes: 64 * MiB, ...options });
      const w = await probeWorker(heap.buffer);
      expect([here(heap), await w.ask(probe, arg)], probe).toEqual([expected, expected]);
    }
  });
});
