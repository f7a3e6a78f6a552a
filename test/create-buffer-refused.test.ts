/**
 * create() where the platform cannot give the buffer the options ask for (an audit of growable
 * heaps, 2026-12-05). Each must be refused with an error naming create, the option and its value,
 * never accepted as a heap that does not do what the options said, nor left to the engine's own
 * message:
 *
 * - A runtime with SharedArrayBuffer but without growable ones (its constructor ignores
 *   `maxByteLength`, as engines from before growable SharedArrayBuffers, ES2024): a heap with
 *   maxBytes above initialBytes was created over a buffer of a fixed size and never grew (slots.ts
 *   growBuffer found it not growable): malloc answered 0 at initialBytes, as if maxBytes had been
 *   initialBytes. Likewise where the platform caps maxByteLength: the heap stopped at the cap.
 * - A buffer the engine cannot allocate or reserve: V8's bare `RangeError: Array buffer allocation
 *   failed` came out of create(). (Seen for real in a process limited to 8 GB of address space,
 *   `ulimit -v 8000000`: the fourth heap of maxBytes 2047 MiB, or the seventh of a fixed 1 GiB.)
 *
 * The platforms are stood in for by replacing globalThis.SharedArrayBuffer (and WebAssembly.Memory)
 * during the call.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { checked } from './fixtures.js';

const MiB = 1 << 20;
const Real = globalThis.SharedArrayBuffer;
/** globalThis.WebAssembly (this project's TypeScript library has no DOM, whose typings declare it as a value). */
const wasm = (globalThis as unknown as { WebAssembly: { Memory: unknown } }).WebAssembly;
const RealMemory = wasm.Memory;

afterEach(() => {
  globalThis.SharedArrayBuffer = Real;
  wasm.Memory = RealMemory;
});

/**
 * A SharedArrayBuffer constructor that ignores its options (buffers of a fixed size only); its
 * prototype is the real one, as the platform's own constructor's would be.
 */
function NotGrowable(n: number): SharedArrayBuffer {
  return new Real(n);
}
NotGrowable.prototype = Real.prototype;

/**
 * A SharedArrayBuffer constructor whose every allocation fails as V8's does when it finds no
 * memory; WebAssembly.Memory fails too (create() then falls back to a plain buffer for a heap of
 * a fixed size, wasm-copy.ts createSharedMemory), as both did under `ulimit -v`.
 */
function Refusing(): SharedArrayBuffer {
  throw new RangeError('Array buffer allocation failed');
}
Refusing.prototype = Real.prototype;
function refuseAll(): void {
  globalThis.SharedArrayBuffer = Refusing as unknown as SharedArrayBufferConstructor;
  wasm.Memory = function Memory(): never {
    throw new RangeError('WebAssembly.Memory(): could not allocate memory');
  };
}

describe('create() on a platform whose SharedArrayBuffer cannot grow', () => {
  it('refuses maxBytes above initialBytes, naming the option and its value', () => {
    globalThis.SharedArrayBuffer = NotGrowable as unknown as SharedArrayBufferConstructor;
    let heap: SharedHeap | undefined;
    let error: unknown;
    try {
      heap = SharedHeap.create({ initialBytes: 4 * MiB, maxBytes: 16 * MiB, maxThreads: 2 });
    } catch (e) {
      error = e;
    }
    globalThis.SharedArrayBuffer = Real;
    // What was accepted before: a heap that never grows past initialBytes.
    const grew = heap === undefined ? undefined : heap.malloc(8 * MiB) !== 0;
    heap?.detach();
    expect(grew, 'create() accepted maxBytes and made a heap that cannot grow to it').toBeUndefined();
    expect(error).toBeInstanceOf(RangeError);
    expect((error as Error).message).toMatch(/^SharedHeap\.create\(options\.maxBytes\): 16777216 needs a growable SharedArrayBuffer, which this platform does not make/);
  });

  it('refuses a maxBytes above the most its growable buffers reach there', () => {
    // A platform that caps maxByteLength (slots.ts growBuffer stopped at the cap: the heap never
    // reached maxBytes).
    function Capped(n: number, o?: { maxByteLength?: number }): SharedArrayBuffer {
      return new (Real as unknown as new (n: number, o: { maxByteLength: number }) => SharedArrayBuffer)(n, { maxByteLength: Math.min(o?.maxByteLength ?? n, 8 * MiB) });
    }
    Capped.prototype = Real.prototype;
    globalThis.SharedArrayBuffer = Capped as unknown as SharedArrayBufferConstructor;
    expect(() => SharedHeap.create({ initialBytes: 4 * MiB, maxBytes: 16 * MiB, maxThreads: 2 })).toThrow(
      /^SharedHeap\.create\(options\.maxBytes\): 16777216 needs a growable SharedArrayBuffer, which this platform does not make to 16777216 bytes \(its buffer grows to 8388608 at most\)/,
    );
    const heap = SharedHeap.create({ initialBytes: 4 * MiB, maxBytes: 8 * MiB, maxThreads: 2 });
    globalThis.SharedArrayBuffer = Real;
    const p = heap.malloc(3 * MiB); // grows to the cap
    expect(p).toBeGreaterThan(0);
    heap.free(p);
    expect(checked(heap)).toBe('passes');
    heap.detach();
  });

  it('still makes a heap of a fixed size there', () => {
    globalThis.SharedArrayBuffer = NotGrowable as unknown as SharedArrayBufferConstructor;
    const heap = SharedHeap.create({ initialBytes: 4 * MiB, maxThreads: 2 });
    globalThis.SharedArrayBuffer = Real;
    const p = heap.malloc(MiB);
    expect(p).toBeGreaterThan(0);
    heap.free(p);
    expect(checked(heap)).toBe('passes');
    heap.detach();
  });
});

describe('create() when the engine cannot allocate the buffer', () => {
  it('a growable heap: a RangeError naming create, maxBytes and its value', () => {
    refuseAll();
    expect(() => SharedHeap.create({ initialBytes: 8 * MiB, maxBytes: 2047 * MiB, maxThreads: 2 })).toThrow(
      /^SharedHeap\.create\(options\.maxBytes\): 2146435072: this platform could not allocate a SharedArrayBuffer of 8388608 bytes growable to 2146435072 \(RangeError: Array buffer allocation failed/,
    );
  });

  it('a heap of a fixed size: a RangeError naming create, initialBytes and its value (or the default)', () => {
    refuseAll();
    expect(() => SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 2 })).toThrow(
      /^SharedHeap\.create\(options\.initialBytes\): 33554432: this platform could not allocate a SharedArrayBuffer of 33554432 bytes \(RangeError: Array buffer allocation failed/,
    );
    expect(() => SharedHeap.create({ maxThreads: 2 })).toThrow(
      /^SharedHeap\.create\(options\): the default initialBytes 67108864: this platform could not allocate a SharedArrayBuffer of 67108864 bytes/,
    );
  });

  it('leaves nothing behind: the next create() works', () => {
    refuseAll();
    expect(() => SharedHeap.create({ initialBytes: 8 * MiB, maxBytes: 64 * MiB, maxThreads: 2 })).toThrow(RangeError);
    globalThis.SharedArrayBuffer = Real;
    wasm.Memory = RealMemory;
    const heap = SharedHeap.create({ initialBytes: 4 * MiB, maxBytes: 16 * MiB, maxThreads: 2 });
    const p = heap.malloc(8 * MiB); // grows
    expect(p).toBeGreaterThan(0);
    heap.free(p);
    expect(checked(heap)).toBe('passes');
    heap.detach();
  });
});
