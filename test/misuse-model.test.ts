/**
 * A seeded, model-based differential run of the public API under misuse (workers/misuse-model-core.ts):
 * valid calls (malloc, calloc, realloc, free, usableSize, alignedAlloc, tryMalloc, their async
 * forms, stats, check) interleaved with invalid ones (every kind of bad argument; pointers
 * interior to live small and large blocks, one past the end, freed, never allocated, in
 * metadata, beyond the heap, misaligned; bad alignments; sizes around MAX_SMALL and the large
 * runs' edges), on heaps made with option values drawn from what create() accepts. After each
 * invalid call: an error naming the call, the argument and the value, check() passing, every
 * live block keeping its pattern; after each valid call: aligned, large enough, no overlap.
 * First on the main thread alone, then with two workers that get blocks handed over as numbers
 * and free or reallocate them (cross-thread), misusing them too.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { MisuseModel, Rand, type Counts, type Owned } from '../workers/misuse-model-core.js';
import { workerEntry } from '../bench/worker-entry.js';

const MiB = 1 << 20;

/** Option values create() accepts, drawn from the seed; tiny heaps, growable ones, debug mode. */
function options(r: Rand): HeapOptions {
  const o: HeapOptions = { initialBytes: r.pick([2, 3, 5, 16, 24, 32]) * MiB, maxThreads: 4, debug: r.chance(0.4) };
  if (r.chance(0.3)) o.maxBytes = o.initialBytes! + 24 * MiB;
  if (r.chance(0.5)) o.magazineCapacity = r.pick([1, 2, 3, 64, 1000]);
  if (r.chance(0.5)) o.refillCount = r.pick([1, 2, 7, 32, 4096]);
  if (r.chance(0.5)) o.drainInterval = r.pick([1, 2, 5, 1024, 2 ** 30]);
  if (r.chance(0.5)) o.stage1Keep = r.pick([0, 1, 3, 1 << 20]);
  if (r.chance(0.5)) o.trimInterval = r.pick([0, 1, 2, 7, 1 << 20]);
  return o;
}

function create(o: HeapOptions): SharedHeap {
  try {
    return SharedHeap.create(o);
  } catch (e) {
    // magazineCapacity 1000 with a heap of 2-5 MiB: the metadata leaves no room (the error says so).
    expect((e as Error).message).toMatch(/leaves no room for blocks/);
    o.initialBytes = 16 * MiB;
    if (o.maxBytes !== undefined) o.maxBytes = 40 * MiB;
    return SharedHeap.create(o);
  }
}

const heapBytes = (o: HeapOptions): number => o.maxBytes ?? o.initialBytes!;

describe('the public API under misuse, against a model', () => {
  it('main thread alone: fixed seeds, valid and invalid calls interleaved', async () => {
    const total: Counts[] = [];
    for (const seed of [1, 2, 3, 5, 8, 13, 21, 34, 55, 89]) {
      const r = new Rand(seed * 7919);
      const o = options(r);
      const heap = create(o);
      const m = new MisuseModel(heap, r, `seed ${seed} ${JSON.stringify(o)}`, o.debug === true, heapBytes(o), 2 * MiB);
      m.countLive = () => m.owned.size; // all the live blocks are the model's: stats().liveBlocks must match
      for (let i = 0; i < 250; i++) {
        if (r.chance(0.1)) await m.stepAsync();
        else m.step();
      }
      m.quietChecks();
      m.freeAll();
      heap.flush();
      heap.check();
      expect(heap.stats().liveBlocks).toBe(0);
      heap.detach();
      total.push(m.counts);
    }
    const sum = (k: keyof Counts): number => total.reduce((a, c) => a + c[k], 0);
    expect(sum('invalid')).toBeGreaterThan(500);
    expect(sum('valid')).toBeGreaterThan(1000);
    expect(sum('async')).toBeGreaterThan(100);
  });

  const workers: Worker[] = [];
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.terminate()));
  });

  it('two workers: blocks handed over as numbers, freed and reallocated there, misused on every thread', async () => {
    const entry = workerEntry('misuse-model-worker');
    let cross = 0;
    for (const seed of [1, 2, 3]) {
      const r = new Rand(seed * 104729);
      const o = options(r);
      const heap = create(o);
      const who = `seed ${seed} ${JSON.stringify(o)}`;
      const m = new MisuseModel(heap, r, `main ${who}`, o.debug === true, heapBytes(o), 2 * MiB);
      const inbox: Array<Array<{ type: string; blocks?: Owned[]; freed?: number[]; counts?: Counts; message?: string }>> = [[], []];
      const wake: Array<(() => void) | undefined> = [undefined, undefined];
      const started = [0, 1].map((k) => {
        const w = new Worker(entry.filename, {
          execArgv: entry.execArgv,
          workerData: { buffer: heap.memory ?? heap.buffer, seed: seed * 31 + k, who: `worker ${k} ${who}`, debug: o.debug === true, heapBytes: heapBytes(o), maxLive: MiB },
        });
        heap.watch(w);
        workers.push(w);
        w.on('message', (x) => {
          inbox[k]!.push(x);
          wake[k]?.();
        });
        w.on('error', (x) => {
          inbox[k]!.push({ type: 'fail', message: String(x) });
          wake[k]?.();
        });
        return w;
      });
      const next = async (k: number) => {
        while (inbox[k]!.length === 0) await new Promise<void>((res) => (wake[k] = res));
        const x = inbox[k]!.shift()!;
        if (x.type === 'fail') throw new Error(x.message);
        return x;
      };
      for (const k of [0, 1]) expect((await next(k)).type).toBe('ready');
      for (let round = 0; round < 16; round++) {
        for (let i = 0; i < 15; i++) m.step();
        // Odd rounds: both workers and this thread at once (no check(), no misuse of offsets
        // another thread may own); even rounds: one worker alone, which also misuses what it freed.
        const concurrent = round % 2 === 1;
        const active = concurrent ? [0, 1] : [(round >> 1) % 2];
        m.concurrent = concurrent;
        m.countLive = undefined;
        for (const k of active) {
          const blocks = m.handOut(1 + r.below(8));
          started[k]!.postMessage({ blocks, ops: 25, concurrent, mainOwns: [...m.owned.keys()] });
        }
        if (concurrent) {
          for (let i = 0; i < 30; i++) {
            if (r.chance(0.1)) await m.stepAsync();
            else m.step();
          }
        }
        m.concurrent = false;
        for (const k of active) {
          const x = await next(k);
          m.receive(x.blocks!);
          m.learnFreed(x.freed!);
          cross += x.counts!.crossFrees + x.counts!.crossReallocs;
        }
        // Every block is this thread's again: check(), the patterns, and stats() against the model.
        m.quietChecks();
        m.countLive = () => m.owned.size;
        m.validOther();
      }
      m.freeAll();
      heap.flush();
      heap.check();
      await Promise.all(workers.splice(0).map((w) => w.terminate()));
    }
    expect(cross).toBeGreaterThan(50);
  });
});
