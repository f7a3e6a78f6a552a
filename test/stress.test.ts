/**
 * Stress, shaped like mimalloc's test-stress (the loop is in test/stress-harness.ts): STRESS_THREADS
 * workers (more than the cores) share one heap, exchange blocks through a transfer table so that
 * most frees are cross-thread, and verify every block's pattern before freeing it. Every iteration
 * terminates all workers at a random moment (some inside malloc or free) and starts new ones; the
 * main thread watches each worker so that its slot is reclaimed. At the end every block left is
 * freed from the main thread: check() passes, nothing is live, no slab still counts a block out,
 * and no pattern ever mismatched. All of it runs twice: on a heap of a fixed size and on a
 * growable one (HEAPS below).
 *
 * The same loop also runs against a reference allocator (it passes) and against one that hands out
 * overlapping blocks (the pattern check catches it), which shows that the harness can fail.
 *
 * Sizes: STRESS_THREADS (default 8), STRESS_ITER (4), STRESS_OPS (20000 per worker and iteration),
 * STRESS_SEED (random; printed in every failure message).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Worker } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { ReferenceAllocator } from '../bench/reference-alloc.js';
import {
  C_BAD_BLOCK, C_CROSS, C_FREES, C_MISMATCH, C_OOM, C_OPS, C_PHASE, C_READY, OWNED, PH_FREE, PH_MALLOC, freeAllRecorded, makeShared,
  resolveAfterDeath, stressLoop, type StressAllocator, type StressWorkerData,
} from './stress-harness.js';
import { isLiveBlock, slabsWithBlocksOut } from './inspect.js';
import { startWorker, terminateAll, waitFor } from './remote-heap.js';
import { startWatchdog } from './watchdog.js';

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name}: expected a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

const THREADS = Math.min(256, Math.max(1, envInt('STRESS_THREADS', 8)));
const ITER = Math.min(Math.floor(65535 / THREADS), Math.max(1, envInt('STRESS_ITER', 4))); // allocator ids fit 16 bits
const OPS = Math.max(1024, envInt('STRESS_OPS', 20_000));
const SEED = envInt('STRESS_SEED', (Math.random() * 2 ** 31) >>> 0);
const MiB = 1 << 20;
const STALL_MS = 10_000; // handling the exits of terminated workers takes milliseconds; this long is a deadlock

afterEach(terminateAll);

/** A small seeded generator for the main thread's choices (termination moments). */
function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function heapAllocator(heap: SharedHeap): StressAllocator & { isLive(p: number): boolean } {
  return {
    malloc: (n) => heap.malloc(n),
    free: (p) => heap.free(p),
    isLive: (p) => isLiveBlock(heap, p),
  };
}

/**
 * The heaps the stress runs on: one of a fixed size, and a growable one that starts at 8 MiB. The
 * first iteration's workers grow it (to 33 MiB with the defaults) while they allocate, free each
 * other's blocks and are terminated; the later ones run on the grown buffer, whose views (the
 * workers' and the heap's) track its length. Death inside a growth at each of its steps is
 * test/crash-points.test.ts's (CP_GROWTH).
 */
const HEAPS: [string, { initialBytes: number; maxBytes: number }][] = [
  ['a heap of a fixed size', { initialBytes: 256 * MiB, maxBytes: 256 * MiB }],
  ['a growable heap (8 MiB up to 256 MiB)', { initialBytes: 8 * MiB, maxBytes: 256 * MiB }],
];

describe.each(HEAPS)('stress on %s', (_name, size) => {
  it(`${THREADS} workers, ${ITER} iterations of ~${OPS} ops each, terminated at random moments`, async () => {
    const t0 = performance.now();
    const heap = SharedHeap.create({ ...size, maxThreads: Math.max(64, THREADS + 8) });
    const mem = new Int32Array(heap.buffer);
    const shared = makeShared(THREADS, size.maxBytes);
    const { ctl } = shared;
    const alloc = heapAllocator(heap);
    const rand = mulberry32(SEED);
    const dog = startWatchdog(heap, STALL_MS);
    const tag = `(STRESS_SEED=${SEED} STRESS_THREADS=${THREADS} STRESS_ITER=${ITER} STRESS_OPS=${OPS})`;
    const errors: string[] = [];
    let totalOps = 0;
    let killedInMalloc = 0;
    let killedInFree = 0;
    const settled = { refilled: 0, freedForDead: 0, alreadyFreed: 0 };

    for (let iter = 0; iter < ITER; iter++) {
      const where = `iteration ${iter} ${tag}`;
      Atomics.store(ctl, C_OPS, 0);
      Atomics.store(ctl, C_READY, 0);
      const workers: Worker[] = [];
      const exits: Promise<unknown>[] = [];
      for (let w = 0; w < THREADS; w++) {
        const data: StressWorkerData = { kind: 'stress', buffer: heap.buffer, shared, w, id: iter * THREADS + w + 1, seed: (SEED ^ Math.imul(iter * 64 + w + 1, 0x9e3779b1)) | 1 };
        const worker = startWorker('stress-worker', data);
        heap.watch(worker); // first 'exit' listener: the slot is reclaimed before `exits` resolves
        worker.on('error', (e) => errors.push(`worker ${w}, ${where}: ${(e as Error).stack ?? String(e)}`));
        exits.push(new Promise((resolve) => worker.once('exit', resolve)));
        workers.push(worker);
      }
      const failed = Promise.race(exits).then(() => {
        throw new Error(`a worker exited before it was terminated, ${where}: ${errors.join('\n')}`);
      });
      failed.catch(() => {});
      await Promise.race([waitFor(ctl, C_READY, (n) => n === THREADS), failed]);
      // Terminate at a random moment: after 50-100% of the iteration's operations.
      const target = Math.floor(OPS * THREADS * (0.5 + 0.5 * rand()));
      await Promise.race([waitFor(ctl, C_OPS, (n) => n >= target), failed]);
      totalOps += Atomics.load(ctl, C_OPS);
      dog.arm(workers.map((w) => w.threadId));
      await Promise.all(workers.map((w) => w.terminate()));
      await Promise.all(exits);
      dog.disarm();
      expect(
        dog.stalls(),
        `the main thread was stuck for over ${STALL_MS} ms handling the exits of terminated workers (watch() ` +
          `reclaims in the exit handler and waits there for a lock whose holder, another terminated worker, is ` +
          `marked dead only by its own exit handler), ${where}`,
      ).toBe(0);
      for (let w = 0; w < THREADS; w++) {
        const ph = ctl[C_PHASE + w];
        if (ph === PH_MALLOC) killedInMalloc++;
        else if (ph === PH_FREE) killedInFree++;
        ctl[C_PHASE + w] = 0;
      }
      expect(errors, where).toEqual([]);
      expect(heap.stats().threadsAttached, `every dead worker was reclaimed, ${where}`).toBe(1);
      const r = resolveAfterDeath(alloc, mem, shared);
      settled.refilled += r.refilled;
      settled.freedForDead += r.freedForDead;
      settled.alreadyFreed += r.alreadyFreed;
      expect(r.duplicates, `blocks recorded twice, ${where}`).toBe(0);
      expect(Atomics.load(ctl, C_MISMATCH), `pattern mismatches (first at ${Atomics.load(ctl, C_BAD_BLOCK)}), ${where}`).toBe(0);
      expect(Atomics.load(ctl, C_OOM), `mallocs that returned 0, ${where}`).toBe(0);
      heap.check();
    }

    const left = freeAllRecorded(alloc, mem, shared);
    expect(Atomics.load(ctl, C_MISMATCH), `pattern mismatches (first at ${Atomics.load(ctl, C_BAD_BLOCK)}) ${tag}`).toBe(0);
    heap.flush();
    heap.check();
    const s = heap.stats();
    expect(s.liveBytes, `live bytes after freeing everything ${tag}`).toBe(0);
    expect(s.liveBlocks).toBe(0);
    expect(slabsWithBlocksOut(heap), `slabs that still count blocks out after everything was freed ${tag}`).toEqual([]);
    const frees = Atomics.load(ctl, C_FREES);
    const cross = Atomics.load(ctl, C_CROSS);
    expect(cross / frees, `cross-thread frees: ${cross} of ${frees} ${tag}`).toBeGreaterThan(0.5);
    if (size.maxBytes > size.initialBytes) {
      expect(s.bufferBytes, `the growable heap grew while the workers ran ${tag}`).toBeGreaterThan(size.initialBytes);
    }
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `stress: ${THREADS} workers x ${ITER} iterations, ${totalOps} ops in ${seconds.toFixed(1)} s; ${frees} frees in ` +
        `workers, ${((100 * cross) / frees).toFixed(0)}% of blocks another thread allocated; ` +
        `terminated inside malloc ${killedInMalloc}, inside free ${killedInFree}; records of dead workers: ` +
        `refilled ${settled.refilled}, freed for them ${settled.freedForDead}, already freed ${settled.alreadyFreed}; ` +
        `${left} blocks freed at the end; peak footprint ${s.peakFootprintBytes / MiB} MiB, lock recoveries ` +
        `${s.lock.recoveries}, reclaims ${s.reclaims} ${tag}`,
    );
  }, 120_000);
});

/** Hands out blocks 16 bytes apart whatever the size: they overlap. free does nothing. */
class OverlappingAllocator implements StressAllocator {
  readonly i32 = new Int32Array(1 << 20);
  private top = 16;
  malloc(): number {
    const p = this.top;
    this.top += 16;
    if (this.top >= this.i32.byteLength - 65536) this.top = 16;
    return p;
  }
  free(): void {}
}

describe('the stress harness can fail', () => {
  const OPS_1 = 50_000;

  it('passes against a correct reference allocator (single-threaded)', () => {
    const ref = new ReferenceAllocator(64 * MiB);
    const shared = makeShared(1, ref.buffer.byteLength);
    stressLoop(ref, new Int32Array(ref.buffer), shared, 0, 1, OPS_1, SEED | 1);
    expect(Atomics.load(shared.ctl, C_MISMATCH), `seed ${SEED}`).toBe(0);
    expect(Atomics.load(shared.ctl, C_OOM)).toBe(0);
    const left = freeAllRecorded(ref, new Int32Array(ref.buffer), shared);
    expect(left).toBeGreaterThan(OWNED / 2);
    expect(Atomics.load(shared.ctl, C_MISMATCH)).toBe(0);
    expect(ref.liveBlocks).toBe(0);
  }, 20_000);

  it('catches an allocator that hands out overlapping blocks', () => {
    const bad = new OverlappingAllocator();
    const shared = makeShared(1, bad.i32.byteLength);
    stressLoop(bad, bad.i32, shared, 0, 1, OPS_1, SEED | 1);
    expect(Atomics.load(shared.ctl, C_MISMATCH), `seed ${SEED}`).toBeGreaterThan(0);
  }, 20_000);
});
