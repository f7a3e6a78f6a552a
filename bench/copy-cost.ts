/**
 * What a copy inside a shared buffer costs, the way realloc moves a block: `copyWithin` on a
 * Uint8Array over a SharedArrayBuffer (what a thread without the heap's memory does) against
 * WebAssembly's `memory.copy` on a shared WebAssembly.Memory, called from JavaScript through the
 * one-instruction module of src/wasm-copy.ts (what realloc uses where it can). The buffers are
 * 64 MiB, each copy goes from one 64 KiB stride to another (so the blocks are not all in the
 * cache), n bytes a copy; the figure is ns a copy, the median of 5
 * rounds after a warm-up round. Both ways are checked to copy the same bytes.
 * Then the same for calloc's zeroing: `Uint8Array.fill` on a shared buffer, the Float64Array
 * stores of alloc.ts zeroBytes (what a thread without the heap's memory does, and every thread
 * up to ZERO_LOOP_MAX bytes), and WebAssembly's `memory.fill` (what calloc uses above that).
 * Run: npm run build && node dist/bench/copy-cost.js
 */
import { availableParallelism, cpus } from 'node:os';
import { ZERO_LOOP_MAX, zeroBytes } from '../src/alloc.js';
import { createSharedMemory, memoryFunctions } from '../src/wasm-copy.js';

const PAGES = 1024; // 64 MiB of 64 KiB wasm pages
const STRIDE = 65536;
const SIZES = [64, 256, 1024, 4096, 16384];
const ZERO_SIZES = [16, ZERO_LOOP_MAX, 64, 256, 1024, 4096];

type Copy = (to: number, from: number, n: number) => void;

// A timed loop for copyWithin and one for the wasm call, so that each call site sees one target.
function destination(i: number, n: number): number {
  return (((i + 128) & 255) * STRIDE + 4096) % (PAGES * 65536 - n);
}

/** copyWithin within one Uint8Array (both buffers' views: one receiver type at the call). */
function timeCopyWithin(a: Uint8Array, n: number, reps: number): number {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const from = (i & 255) * STRIDE;
    a.copyWithin(destination(i, n), from, from + n);
  }
  return ((performance.now() - t0) * 1e6) / reps;
}

function timeWasm(copy: Copy, n: number, reps: number): number {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) copy(destination(i, n), (i & 255) * STRIDE, n);
  return ((performance.now() - t0) * 1e6) / reps;
}

type Zero = (p: number, n: number) => void;

/** Uint8Array.fill(0) over a shared buffer. */
function timeFill(a: Uint8Array, n: number, reps: number): number {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const p = (i & 255) * STRIDE;
    a.fill(0, p, p + n);
  }
  return ((performance.now() - t0) * 1e6) / reps;
}

function timeZeroBytes(f64: Float64Array, n: number, reps: number): number {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) zeroBytes(f64, (i & 255) * STRIDE, n);
  return ((performance.now() - t0) * 1e6) / reps;
}

function timeWasmZero(zero: Zero, n: number, reps: number): number {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) zero((i & 255) * STRIDE, n);
  return ((performance.now() - t0) * 1e6) / reps;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const memory = createSharedMemory(PAGES * 65536);
if (memory === undefined) throw new Error('copy-cost: no shared WebAssembly.Memory here');
const { copy: wasmCopy, zero: wasmZero } = memoryFunctions(memory)!; // src/wasm-copy.ts: the ones realloc and calloc use
const onMemory = new Uint8Array(memory.buffer);
const plain = new Uint8Array(new SharedArrayBuffer(PAGES * 65536));
for (let i = 0; i < onMemory.length; i += 4096) {
  onMemory[i] = plain[i] = (i >>> 12) & 0xff;
}

// Both ways copy the same bytes (one overlapping copy included).
const check = new Uint8Array(PAGES * 65536);
for (const [to, from, n] of [[100_000, 3, 70_000], [5, 40, 1_000], [200_000, 200_100, 5_000]] as const) {
  for (let i = 0; i < 300_000; i++) onMemory[i] = check[i] = (i * 7 + 3) & 0xff;
  wasmCopy(to, from, n);
  check.copyWithin(to, from, from + n);
  for (let i = 0; i < 300_000; i++) {
    if (onMemory[i] !== check[i]) throw new Error(`copy-cost: memory.copy(${to}, ${from}, ${n}) differs from copyWithin at byte ${i}`);
  }
}

const f64 = new Float64Array(memory.buffer);
// The three ways zero exactly what they are asked (zeroBytes: up to the next multiple of 8).
for (const [p, n] of [[8, 48], [4096, 1000], [65536, 4096]] as const) {
  for (const zero of [(q: number, m: number) => onMemory.fill(0, q, q + m), (q: number, m: number) => zeroBytes(f64, q, m), wasmZero]) {
    onMemory.fill(0xa5, 0, 200_000);
    zero(p, n);
    for (let i = 0; i < 200_000; i++) {
      const want = i >= p && i < p + n ? 0 : 0xa5;
      if (onMemory[i] !== want) throw new Error(`copy-cost: zeroing ${n} bytes at ${p}: byte ${i} is ${onMemory[i]}, not ${want}`);
    }
  }
}

type Way = [string, (n: number, reps: number) => number];

/** Times every way at every size, alternated over 5 rounds after a warm-up round, and prints the medians. */
function printTable(what: string, sizes: number[], ways: Way[]): void {
  console.log(`ns a ${what} (median of 5 rounds):`);
  console.log(['bytes'.padStart(7), ...ways.map(([w]) => w.padStart(32))].join(''));
  for (const n of sizes) {
    const reps = Math.max(20_000, Math.min(2_000_000, (1 << 30) / n / 4));
    const rounds = ways.map(() => [] as number[]);
    for (let r = 0; r <= 5; r++) {
      ways.forEach(([, time], k) => {
        const ns = time(n, reps);
        if (r > 0) rounds[k]!.push(ns); // round 0 warms up
      });
    }
    console.log([String(n).padStart(7), ...rounds.map((xs) => median(xs).toFixed(1).padStart(32))].join(''));
  }
}

console.log(`${cpus()[0]?.model ?? 'unknown CPU'}, os.availableParallelism() = ${availableParallelism()}, Node ${process.version}`);
printTable('copy', SIZES, [
  ['copyWithin, SharedArrayBuffer', (n, reps) => timeCopyWithin(plain, n, reps)],
  ['copyWithin, WebAssembly.Memory', (n, reps) => timeCopyWithin(onMemory, n, reps)],
  ['memory.copy, WebAssembly.Memory', (n, reps) => timeWasm(wasmCopy, n, reps)],
]);
printTable('zeroing', ZERO_SIZES, [
  ['Uint8Array.fill, shared', (n, reps) => timeFill(onMemory, n, reps)],
  ['zeroBytes (Float64Array)', (n, reps) => timeZeroBytes(f64, n, reps)],
  ['memory.fill', (n, reps) => timeWasmZero(wasmZero, n, reps)],
]);
