/**
 * Child process of test/jit.test.ts (run with --allow-natives-syntax): for each rare way off a fast
 * path (malloc, calloc and realloc of a large size, free of a large block, free into a full
 * magazine), a loop that calls the method is warmed up on small blocks only and optimized, then
 * run once more with the rare case among its calls. Prints, per case, whether the loop was
 * optimized (TurboFan, the method inlined into it) after the warm-up and whether it still is after
 * the rare call: a call site V8 has never seen made is compiled as a deoptimization, which would
 * throw the loop's optimized code away at the first large block or full magazine. One case a
 * process: node --allow-natives-syntax --no-concurrent-recompilation --import tsx test/jit-probe.ts NAME.
 */
import { SharedHeap } from '../src/index.js';

const status = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number;
const prepare = new Function('f', '%PrepareFunctionForOptimization(f)') as (f: unknown) => void;
const optimizeNext = new Function('f', '%OptimizeFunctionOnNextCall(f)') as (f: unknown) => void;
const TURBOFANNED = 1 << 6; // V8's OptimizationStatus::kTurboFanned

const heap = SharedHeap.create({ initialBytes: 64 << 20 });
const LARGE = 200_000;
const BATCH = 256;

/** Small sizes, a few blocks of each class a batch: no magazine fills during the warm-up. */
function smallSizes(seed: number): Int32Array {
  const sizes = new Int32Array(BATCH);
  let x = seed | 1;
  for (let i = 0; i < BATCH; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    sizes[i] = 16 + ((x >>> 0) % 1024);
  }
  return sizes;
}

function mallocAll(sizes: Int32Array, out: Int32Array): void {
  for (let i = 0; i < sizes.length; i++) out[i] = heap.malloc(sizes[i]!);
}
function callocAll(sizes: Int32Array, out: Int32Array): void {
  for (let i = 0; i < sizes.length; i++) out[i] = heap.calloc(1, sizes[i]!);
}
function freeAll(blocks: Int32Array): void {
  for (let i = 0; i < blocks.length; i++) heap.free(blocks[i]!);
}
function reallocAll(blocks: Int32Array, sizes: Int32Array): void {
  for (let i = 0; i < blocks.length; i++) blocks[i] = heap.realloc(blocks[i]!, sizes[i]!);
}
/** Small sizes, with one large size among them in the rare round. */
function sizesFor(rare: boolean, seed: number): Int32Array {
  const sizes = smallSizes(seed);
  if (rare) sizes[BATCH >>> 1] = LARGE;
  return sizes;
}
/** A block of each size, by a malloc outside the loops under test. */
function blocksOf(sizes: Int32Array): Int32Array {
  const blocks = new Int32Array(sizes.length);
  for (let i = 0; i < sizes.length; i++) blocks[i] = heap.malloc(sizes[i]!);
  return blocks;
}
function release(blocks: Int32Array): void {
  for (let i = 0; i < blocks.length; i++) heap.free(blocks[i]!);
}

/**
 * A heap whose periodic drain never comes (drainInterval 2^20), for the case whose warm-up must
 * not leave free's fast path once: its loop is optimized before free made any call out in this
 * process, as a program's first long loop is (on-stack replacement early in it) when its first
 * periodic drain or full magazine comes later.
 */
const quiet = SharedHeap.create({ initialBytes: 16 << 20, drainInterval: 1 << 20 });

function freeQuiet(blocks: Int32Array): void {
  for (let i = 0; i < blocks.length; i++) quiet.free(blocks[i]!);
}
function quietBlocks(count: number): Int32Array {
  const blocks = new Int32Array(count);
  for (let i = 0; i < count; i++) blocks[i] = quiet.malloc(48);
  return blocks;
}

interface Case {
  name: string;
  /** The heap the loop calls (the module's `heap` where not given). */
  on?: SharedHeap;
  loop: unknown;
  /** One round of the loop on small blocks (`rare` false) or with the rare case in it. */
  round(rare: boolean, seed: number): void;
}

const cases: Case[] = [
  {
    name: 'free of a large block',
    loop: freeAll,
    round: (rare, seed) => freeAll(blocksOf(sizesFor(rare, seed))),
  },
  {
    name: 'free into a full magazine',
    loop: freeAll,
    // The rare round frees 256 blocks of one class: more than a magazine holds (64).
    round: (rare, seed) => freeAll(blocksOf(rare ? new Int32Array(BATCH).fill(48) : smallSizes(seed))),
  },
  {
    name: 'malloc of a large size',
    loop: mallocAll,
    round(rare, seed) {
      const out = new Int32Array(BATCH);
      mallocAll(sizesFor(rare, seed), out);
      release(out);
    },
  },
  {
    name: 'calloc of a large size',
    loop: callocAll,
    round(rare, seed) {
      const out = new Int32Array(BATCH);
      callocAll(sizesFor(rare, seed), out);
      release(out);
    },
  },
  {
    name: 'realloc to a large size',
    loop: reallocAll,
    round(rare, seed) {
      const blocks = blocksOf(smallSizes(seed));
      reallocAll(blocks, sizesFor(rare, seed * 7 + 1));
      release(blocks);
    },
  },
  {
    name: 'free leaving its fast path for the first time',
    on: quiet,
    loop: freeQuiet,
    // 16 blocks out and back: the magazine never fills; the rare round's 256 fill it (a call out,
    // the first this process makes from free, whose compare and call V8 had no feedback for).
    round: (rare) => freeQuiet(quietBlocks(rare ? 256 : 16)),
  },
];

// One case a process (its name the argument), so that no other case's calls have fed the call
// sites under test: V8 keeps one record of call targets a function, whoever calls it.
const only = process.argv[2];
const c = cases.find((k) => k.name === only);
if (c === undefined) throw new Error(`jit-probe: no case named ${JSON.stringify(only)}; the cases: ${cases.map((k) => k.name).join(', ')}`);
prepare(c.loop);
// Enough rounds for the periodic drains and refills to have happened (drainInterval 1024).
let seed = 12345;
for (let r = 0; r < 40; r++) c.round(false, seed++);
optimizeNext(c.loop);
c.round(false, seed++);
const warm = (status(c.loop) & TURBOFANNED) !== 0;
c.round(true, seed++);
const after = (status(c.loop) & TURBOFANNED) !== 0;
const on = c.on ?? heap;
on.flush();
on.check();
process.stdout.write(JSON.stringify({ name: c.name, warm, after, liveBytes: on.stats().liveBytes }) + '\n');
