/**
 * Debug mode (create({ debug: true })): writes past a block's end are found by free, realloc and
 * check(); writes into a freed block are found when it is handed out again; every thread that
 * attaches is in debug mode; the default mode is the plain class.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CLASS_SIZES, DoubleFreeError, HeapCorruptionError, SharedHeap } from '../src/index.js';
import { HeapStateError } from '../src/index.js';
import { armCrash } from '../src/crash.js';
import { startHeapWorker, startWorker, terminateAll } from './remote-heap.js';

const MiB = 1 << 20;

afterEach(terminateAll);

function debugHeap(): SharedHeap {
  return SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4, debug: true });
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('debug mode', () => {
  it('the default mode is the plain class; debug mode is another', () => {
    const plain = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 2 });
    const debug = debugHeap();
    expect(Object.getPrototypeOf(plain)).toBe(SharedHeap.prototype);
    expect(Object.getPrototypeOf(debug)).not.toBe(SharedHeap.prototype);
    expect(debug).toBeInstanceOf(SharedHeap);
    plain.detach();
    debug.detach();
  });

  it.each([10, 16, 100, 1000, 5000, 100_000, 300_000])('a write one byte past %i bytes is reported by free, naming offset and size', (n) => {
    const heap = debugHeap();
    const p = heap.malloc(n);
    heap.u8.fill(1, p, p + n); // every byte the user asked for is fine
    heap.check();
    heap.u8[p + n] = 0x77;
    const e = thrown(() => heap.free(p));
    expect(e).toBeInstanceOf(HeapCorruptionError);
    expect((e as Error).message).toContain(`free(ptr): the block at 0x${p.toString(16)} (requested size ${n}) was written past its end`);
    heap.detach();
  });

  it('realloc and check() report it too', () => {
    const heap = debugHeap();
    const p = heap.malloc(40);
    heap.u8[p + 41] = 1;
    expect(() => heap.check()).toThrow(new RegExp(`check\\(\\): the block at 0x${p.toString(16)} \\(requested size 40\\)`));
    expect(() => heap.realloc(p, 80)).toThrow(HeapCorruptionError);
    heap.detach();
  });

  it('a write that reaches the size record is reported', () => {
    const heap = debugHeap();
    const p = heap.malloc(100);
    heap.u8.fill(9, p, p + heap.usableSize(p) + 28); // through the canary and the record
    expect(() => heap.free(p)).toThrow(/size record .* is overwritten/);
    heap.detach();
  });

  it('a write into a freed block is reported with its offset when the block is handed out again', () => {
    const heap = debugHeap();
    const p = heap.malloc(64);
    heap.free(p);
    heap.u8[p + 20] = 0x55; // use after free
    const e = thrown(() => {
      for (let k = 0; k < 100; k++) heap.malloc(64);
    });
    expect(e).toBeInstanceOf(HeapCorruptionError);
    expect((e as Error).message).toContain(`the 80-byte block at 0x${p.toString(16)} was written after it was freed: byte 0x${(p + 20).toString(16)} (offset 20)`);
    heap.detach();
  });

  it.each([
    ['calloc(n, size)', (h: SharedHeap) => h.calloc(1, 64)],
    ['realloc(ptr, size)', (h: SharedHeap) => h.realloc(0, 64)],
    ['realloc(ptr, size)', (h: SharedHeap) => h.realloc(h.malloc(16), 64)],
  ])('a write into a freed block found by %s names that call', (call, take) => {
    const heap = debugHeap();
    const p = heap.malloc(64);
    heap.free(p);
    heap.u8[p + 20] = 0x55; // use after free
    const e = thrown(() => {
      for (let k = 0; k < 100; k++) take(heap);
    });
    expect(e).toBeInstanceOf(HeapCorruptionError);
    expect((e as Error).message.startsWith(`${call}: the 80-byte block at 0x${p.toString(16)} was written after it was freed`)).toBe(true);
    heap.check();
    heap.detach();
  });

  it.each([
    ['its canary', 67, 'the canary 0xcb'],
    ['its size record', 72, 'its size record'],
  ])('a write into a freed block\'s %s is reported when it is handed out again', (_what, offset, said) => {
    const heap = debugHeap();
    const p = heap.malloc(64); // an 80-byte block: 64 bytes, the canary from 64, the record at 72
    heap.free(p);
    heap.u8[p + offset] ^= 0x5a; // use after free
    const e = thrown(() => {
      for (let k = 0; k < 100; k++) heap.malloc(64);
    });
    expect(e).toBeInstanceOf(HeapCorruptionError);
    expect((e as Error).message).toContain(`the 80-byte block at 0x${p.toString(16)} was written after it was freed`);
    expect((e as Error).message).toContain(`where free left ${said}`);
    heap.check();
    heap.detach();
  });

  it('a block found written after free stays allocated and out of use: check() passes, the other blocks keep their bytes, free gives it back', () => {
    const heap = debugHeap();
    const others = Array.from({ length: 20 }, (_, k) => {
      const q = heap.malloc(64);
      heap.u8.fill(k + 1, q, q + 64);
      return q;
    });
    const p = heap.malloc(64);
    heap.free(p);
    heap.u8[p + 40] = 0x55; // use after free
    const e = thrown(() => {
      for (let k = 0; k < 100; k++) others.push(heap.malloc(64));
    });
    expect(e).toBeInstanceOf(HeapCorruptionError);
    expect((e as Error).message).toContain(`kept out of use, allocated; free(0x${p.toString(16)}) gives it back`);
    const live = heap.stats().liveBytes;
    heap.check();
    for (let k = 0; k < 20; k++) expect(heap.u8.subarray(others[k]!, others[k]! + 64).every((b) => b === k + 1)).toBe(true);
    for (let k = 0; k < 200; k++) expect(heap.malloc(64)).not.toBe(p); // never handed out again while it is out of use
    expect(heap.usableSize(p)).toBe(64);
    heap.free(p);
    expect(heap.stats().liveBytes).toBeLessThan(live + 200 * 80);
    heap.check();
    heap.detach();
  });

  it('sizes the default mode answers with 0 are answered with 0, and errors name the call made', () => {
    const heap = debugHeap();
    const p = heap.malloc(32);
    for (const n of [Number.MAX_SAFE_INTEGER, 2 ** 40, 2 ** 31]) {
      expect(heap.malloc(n)).toBe(0);
      expect(heap.tryMalloc(n)).toBe(0);
      expect(heap.realloc(p, n)).toBe(0);
      expect(heap.alignedAlloc(64, n)).toBe(0);
    }
    expect(heap.usableSize(p)).toBe(32);
    heap.check();
    heap.detach();
    expect(() => heap.realloc(0, 10)).toThrow(/^realloc\(ptr, size\): this thread has detached/);
    expect(() => heap.calloc(1, 10)).toThrow(/^calloc\(n, size\): this thread has detached/);
    expect(() => heap.malloc(10)).toThrow(/^malloc\(size\): this thread has detached/);
  });

  it('usableSize is the requested size; calloc zeroes; realloc keeps the bytes; every class and large sizes pass check()', () => {
    const heap = debugHeap();
    const live: [number, number][] = [];
    for (const n of [0, 1, ...Array.from(CLASS_SIZES), 200_000, 3 * MiB]) {
      const p = heap.malloc(n);
      expect(heap.usableSize(p)).toBe(n);
      heap.u8.fill(n & 0xff, p, p + n);
      live.push([p, n]);
    }
    const c = heap.calloc(10, 10);
    expect(heap.u8.subarray(c, c + 100).every((b) => b === 0)).toBe(true);
    heap.check();
    const [p0, n0] = live[5]!;
    const q = heap.realloc(p0, n0 * 3);
    expect(heap.u8.subarray(q, q + n0).every((b) => b === (n0 & 0xff))).toBe(true);
    live[5] = [q, n0];
    for (const [p] of live) heap.free(p);
    heap.free(c);
    heap.flush();
    heap.check();
    expect(heap.stats().liveBytes).toBe(0);
    heap.detach();
  });

  it('a worker attaching to a debug heap is in debug mode', async () => {
    const heap = debugHeap();
    const r = startHeapWorker();
    await r.remote.attach(heap.buffer);
    const p = await r.remote.malloc(24);
    heap.u8[p + 24] = 1;
    await expect(r.remote.free(p)).rejects.toThrow(/requested size 24\) was written past its end/);
    heap.detach();
  });

  it.each([7, 100, 3000, 65532, 300_000])('a worker terminated anywhere in its malloc and free of %i bytes leaves a heap whose check() passes', async (size) => {
    for (let run = 0; run < 8; run++) {
      const heap = debugHeap();
      const ctl = new Int32Array(new SharedArrayBuffer(8));
      const worker = startWorker('debug-loop-worker', { buffer: heap.buffer, size, ctl });
      heap.watch(worker);
      const exited = new Promise((r) => worker.once('exit', r));
      while (Atomics.load(ctl, 0) === 0) await new Promise((r) => setTimeout(r, 1));
      await new Promise((r) => setTimeout(r, 2 + ((run * 7) % 23)));
      await worker.terminate();
      await exited;
      heap.check(); // watch() reclaimed it; a block it was handing out or freeing is a live block, or none
      expect(heap.stats().threadsAttached).toBe(1);
      const held = ctl[1]!;
      if (held !== 0) {
        try {
          heap.free(held); // a block it held: freed here (unless its free had got that far)
        } catch (e) {
          expect(e).toBeInstanceOf(DoubleFreeError);
        }
      }
      heap.check();
      heap.detach();
    }
  }, 30_000);

  it.each([
    ['malloc of 3 MiB (a run under the lock)', (h: SharedHeap) => h.malloc(3 * MiB), false],
    ['malloc of 200 KB, a run of its span freed before (the lock-free pool)', (h: SharedHeap) => h.malloc(200_000), true],
    ['alignedAlloc(4096, 200 KB)', (h: SharedHeap) => h.alignedAlloc(4096, 200_000), false],
    ['alignedAlloc(1 MiB, 100) (whole SuperSlabs)', (h: SharedHeap) => h.alignedAlloc(MiB, 100), false],
  ])('%s cut off by a fault at each of its crash points leaves a heap whose check() passes', (_what, take, pooled) => {
    let cut = 0;
    for (let n = 1; ; n++) {
      const heap = debugHeap();
      const kept = heap.malloc(500_000);
      heap.u8.fill(3, kept, kept + 500_000);
      if (pooled) heap.free(heap.malloc(200_000));
      armCrash(n, () => {
        throw new RangeError('Maximum call stack size exceeded');
      });
      let threw: unknown = null;
      let p = 0;
      try {
        p = take(heap);
      } catch (e) {
        threw = e;
      } finally {
        armCrash(0, () => {
          throw new Error('off');
        });
      }
      if (threw === null) {
        expect(p).toBeGreaterThan(0); // past the last crash point
        heap.check();
        heap.detach();
        break;
      }
      expect(threw).toBeInstanceOf(HeapStateError);
      cut++;
      const again = SharedHeap.attach(heap.buffer); // reclaims the stopped slot
      again.check(); // a run cut off after its live mark has its record (before: "written past its end")
      expect(again.u8.subarray(kept, kept + 500_000).every((v) => v === 3)).toBe(true);
      again.free(kept);
      again.check();
      again.detach();
    }
    expect(cut).toBeGreaterThan(0);
  });

  it('options.debug must be a boolean', () => {
    expect(() => SharedHeap.create({ debug: 1 as unknown as boolean })).toThrow(/options\.debug\): expected a boolean, got 1/);
  });
});
