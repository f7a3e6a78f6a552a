/**
 * The heap's buffer as a shared WebAssembly.Memory, for two things: realloc's copy and calloc's
 * zeroing. V8 copies within a SharedArrayBuffer (`copyWithin`) with relaxed atomic word moves and
 * a call into the runtime, while WebAssembly's `memory.copy` on a shared memory is a plain
 * `memmove`: 2.2-4x faster from 64 bytes to 16 KiB on an AMD EPYC, 2.3-2.8x up to 256 bytes and
 * 1.08x at 16 KiB on an Intel Xeon (bench/copy-cost.ts). Likewise `memory.fill`
 * is a `memset`, where `Uint8Array.fill` on a shared buffer stores byte by byte and a loop of
 * Float64Array stores does about 10 bytes/ns (calloc; bench/copy-cost.ts on Node 20, memory.fill
 * against the loop: 16 bytes 6.9 against 8.2 ns, 256 7.8 against 26.4, 4 KiB 48.5 against 370).
 * A thread that has the memory object (the one that created the heap, or one attached with
 * `SharedHeap.attach(heap.memory)`) copies and zeroes through a two-function module over it; a
 * thread that has only the buffer does as before.
 * Only heaps of a fixed size are made this way: a growable heap grows its SharedArrayBuffer,
 * which every thread holding the buffer sees (a WebAssembly.Memory grows into a new buffer
 * object, which a thread holding only the old one would not see).
 */

/** The few WebAssembly calls used here (the project compiles without the DOM's type library). */
export interface SharedMemory {
  readonly buffer: SharedArrayBuffer;
}

/**
 * What attach(), attachAsync() and readHeapMap() take besides a SharedArrayBuffer: a
 * WebAssembly.Memory, typed by its buffer alone, and that buffer as either kind, so that the DOM
 * library's WebAssembly.Memory (whose `buffer` it types as ArrayBuffer, shared or not) is taken
 * without a cast. At run time it must be a heap's memory (heap.memory): a shared one, whose
 * buffer is a SharedArrayBuffer; anything else is refused with the call's TypeError.
 */
export interface SharedMemoryLike {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
interface WasmApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => SharedMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: unknown };
}

/** copy(to, from, n): n bytes from offset `from` to offset `to` of the memory (overlap allowed). */
export type MemoryCopy = (to: number, from: number, n: number) => void;

/** zero(p, n): n zero bytes from offset `p` of the memory. */
export type MemoryZero = (p: number, n: number) => void;

const WASM_PAGE = 65536;

function wasmApi(): WasmApi | undefined {
  const w = (globalThis as unknown as { WebAssembly?: Partial<WasmApi> }).WebAssembly;
  return w !== undefined && typeof w.Memory === 'function' && typeof w.Module === 'function' && typeof w.Instance === 'function'
    ? (w as WasmApi)
    : undefined;
}

/** Unsigned LEB128, as the module format writes numbers. */
function leb128(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const low = n & 0x7f;
    n >>>= 7;
    if (n === 0) {
      out.push(low);
      return out;
    }
    out.push(low | 0x80);
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...leb128(body.length), ...body];
}

function name(s: string): number[] {
  return [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
}

/**
 * A module that imports a shared memory of `pages` pages (m.mem) and exports copy = memory.copy
 * and zero = memory.fill with 0.
 */
function memoryModuleBytes(pages: number): Uint8Array {
  const I32 = 0x7f;
  const copyBody = [0 /* no locals */, 0x20, 0, 0x20, 1, 0x20, 2 /* local.get 0 1 2 */, 0xfc, 0x0a, 0, 0 /* memory.copy */, 0x0b /* end */];
  const zeroBody = [0 /* no locals */, 0x20, 0, 0x41, 0, 0x20, 1 /* local.get 0, i32.const 0, local.get 1 */, 0xfc, 0x0b, 0 /* memory.fill */, 0x0b /* end */];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
    ...section(1, [2, 0x60, 3, I32, I32, I32, 0, 0x60, 2, I32, I32, 0]), // type 0: (i32, i32, i32) -> (); type 1: (i32, i32) -> ()
    ...section(2, [1, ...name('m'), ...name('mem'), 0x02, 0x03, ...leb128(pages), ...leb128(pages)]), // shared, min = max
    ...section(3, [2, 0, 1]), // function 0: type 0, function 1: type 1
    ...section(7, [2, ...name('copy'), 0x00, 0, ...name('zero'), 0x00, 1]), // export functions 0 and 1
    ...section(10, [2, copyBody.length, ...copyBody, zeroBody.length, ...zeroBody]),
  ]);
}

/** A fixed-size shared WebAssembly.Memory of `bytes` (a multiple of 64 KiB), or undefined where there is none. */
export function createSharedMemory(bytes: number): SharedMemory | undefined {
  const api = wasmApi();
  if (api === undefined) return undefined;
  try {
    const memory = new api.Memory({ initial: bytes / WASM_PAGE, maximum: bytes / WASM_PAGE, shared: true });
    return memory.buffer instanceof SharedArrayBuffer && memory.buffer.byteLength === bytes ? memory : undefined;
  } catch {
    return undefined; // no shared memories here (a page that is not cross-origin isolated), or no room
  }
}

/** Whether `value` is a WebAssembly.Memory (of any kind). */
export function isWasmMemory(value: unknown): value is SharedMemoryLike {
  const api = wasmApi();
  if (api === undefined) return false;
  // By its buffer getter, as isSharedArrayBuffer does: an object made from Memory.prototype passes
  // instanceof, and reading its buffer then threw V8's own TypeError out of attach() and
  // readHeapMap(); a revoked Proxy throws in instanceof itself (an audit).
  try {
    return value instanceof api.Memory && Object.getOwnPropertyDescriptor(api.Memory.prototype, 'buffer')!.get!.call(value) !== undefined;
  } catch {
    return false;
  }
}

/** The module's functions over `memory`, or undefined when the module cannot be made here. */
export function memoryFunctions(memory: SharedMemory): { copy: MemoryCopy; zero: MemoryZero } | undefined {
  const api = wasmApi();
  if (api === undefined) return undefined;
  try {
    const pages = memory.buffer.byteLength / WASM_PAGE;
    const instance = new api.Instance(new api.Module(memoryModuleBytes(pages)), { m: { mem: memory } });
    const { copy, zero } = instance.exports as { copy: MemoryCopy; zero: MemoryZero };
    return { copy, zero };
  } catch {
    return undefined;
  }
}

/**
 * Whether `value` is a real SharedArrayBuffer: `instanceof` also passes a Proxy of one and an
 * object whose prototype is one, whose byteLength then throws V8's own TypeError (an audit), so
 * this asks SharedArrayBuffer's byteLength getter, which only a real one answers.
 */
export function isSharedArrayBuffer(value: unknown): value is SharedArrayBuffer {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  try {
    if (!(value instanceof SharedArrayBuffer)) return false; // (inside the try: a revoked Proxy throws here)
    Object.getOwnPropertyDescriptor(SharedArrayBuffer.prototype, 'byteLength')!.get!.call(value);
    return true;
  } catch {
    return false;
  }
}
