/**
 * Child process of test/inlining.test.ts (run with --allow-natives-syntax and
 * --trace-turbo-inlining): a loop of a user's code that calls malloc and free, and one that calls
 * calloc and free, each warmed up and then optimized by TurboFan, whose inlining decisions V8
 * prints on stdout (its own report goes to stderr). The test reads them: the fast paths are meant
 * to be inlined into the caller's loop (src/heap.ts), which V8 does only for a function of at most
 * 460 bytes of bytecode (--max-inlined-bytecode-size; free's is 458 at 9eda8aa).
 */
import { SharedHeap } from '../src/index.js';

const prepare = new Function('f', '%PrepareFunctionForOptimization(f)') as (f: unknown) => void;
const optimizeNext = new Function('f', '%OptimizeFunctionOnNextCall(f)') as (f: unknown) => void;

const heap = SharedHeap.create({ initialBytes: 64 << 20 });
const blocks = new Int32Array(64);

function userMallocLoop(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const k = i & 63;
    if (blocks[k] !== 0) heap.free(blocks[k]!);
    blocks[k] = heap.malloc(16 + ((i * 37) & 511));
    sum += blocks[k]!;
  }
  return sum;
}

function userCallocLoop(n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const k = i & 63;
    if (blocks[k] !== 0) heap.free(blocks[k]!);
    blocks[k] = heap.calloc(1, 16 + ((i * 37) & 511));
    sum += blocks[k]!;
  }
  return sum;
}

for (const loop of [userMallocLoop, userCallocLoop]) {
  prepare(loop);
  loop(2_000);
  optimizeNext(loop);
  loop(2_000);
}
for (let k = 0; k < 64; k++) if (blocks[k] !== 0) heap.free(blocks[k]!);
// On stderr, apart from V8's decisions on stdout (see test/inlining.test.ts).
process.stderr.write(JSON.stringify({ done: true, liveBytes: heap.stats().liveBytes }) + '\n');
