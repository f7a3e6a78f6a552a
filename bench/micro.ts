/**
 * MICRO: tinybench micro-benchmarks of single operations, in the main thread:
 * a malloc+free pair for each size class, calloc, realloc, a large
 * allocation, and a cross-thread free (blocks allocated by a worker, freed
 * here). Operations are timed in batches (one tinybench sample = the mean of
 * a batch, returned as `overriddenDuration`), since one pair takes far less
 * than the timer's resolution.
 *
 * Peers: @thi.ng/malloc runs the same single-thread tasks (not the
 * cross-thread free), after all of sabmalloc's tasks.
 */
import { Bench } from 'tinybench';
import type { Piscina } from 'piscina';
import { CLASS_SIZES, SharedHeap, type HeapOptions } from '../src/index.js';
import { createThingAllocator, type MicroAllocTask } from './bench-task.js';
import type { Allocator } from './workloads.js';

export interface MicroRow {
  allocator: string;
  task: string;
  /** Operations per second: 1000 / (median latency in ms). One operation = what the task name says (e.g. one malloc+free pair). */
  opsPerSec: number;
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  /** Relative margin of error of the mean latency, in percent. */
  rme: number;
  samples: number;
  error?: string;
}

export interface MicroOptions {
  allocators: Set<string>;
  /** --heap's create() options for sabmalloc's heap (they were left out of MICRO's). */
  heapOptions?: Partial<HeapOptions>;
  thingAvailable: boolean;
  /** Time budget per task, ms. */
  timeMs: number;
  /** A one-worker pool for the cross-thread free. */
  pool: () => Piscina;
  onTask?: (row: MicroRow, index: number, total: number) => void;
}

interface MicroAllocator extends Allocator {
  calloc(n: number, size: number): number;
  realloc(ptr: number, size: number): number;
}

const BATCH = 256;
const LARGE_BATCH = 16;
const LARGE_SIZE = 1 << 20;
const REMOTE_BATCH = 4096;
const REMOTE_SIZE = 64;
/** Blocks the batch task allocates before it frees them: more than a magazine holds, so refills and drains are in it. */
const MANY_BATCH = 10_000;
const MANY_SIZE = 128;

interface TaskDef {
  name: string;
  fn: () => unknown;
}

function pairTask(name: string, a: MicroAllocator, size: number, batch: number): TaskDef {
  return {
    name,
    fn: () => {
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) {
        const p = a.malloc(size);
        if (p === 0) throw new Error(`MICRO ${name}: malloc(${size}) returned 0`);
        a.u8[p] = i;
        a.free(p);
      }
      const dt = performance.now() - t0;
      return { overriddenDuration: dt / batch, overriddenIterationCost: dt };
    },
  };
}

/**
 * MANY_BATCH mallocs, then their frees in the same order, timed per block (a malloc and its
 * free): the pattern of a program that builds a structure and then frees it whole (xmllint's
 * tree), where each block makes the magazine's whole round trip (refill, pop, push, drain) and
 * most of the slabs go back to the pool and come out again (for sabmalloc, 15-17 of the 20 a round).
 */
function manyTask(a: MicroAllocator): TaskDef {
  const name = `${MANY_BATCH.toLocaleString('en-US')} x malloc ${MANY_SIZE} B, then their frees (per block)`;
  const blocks = new Int32Array(MANY_BATCH);
  return {
    name,
    fn: () => {
      const t0 = performance.now();
      const u8 = a.u8;
      for (let i = 0; i < MANY_BATCH; i++) {
        const p = a.malloc(MANY_SIZE);
        if (p === 0) throw new Error(`MICRO ${name}: malloc(${MANY_SIZE}) returned 0`);
        u8[p] = i;
        blocks[i] = p;
      }
      for (let i = 0; i < MANY_BATCH; i++) {
        const p = blocks[i]!;
        if (u8[p] !== (i & 0xff)) throw new Error(`MICRO ${name}: block ${p} overwritten`);
        a.free(p);
      }
      const dt = performance.now() - t0;
      return { overriddenDuration: dt / MANY_BATCH, overriddenIterationCost: dt };
    },
  };
}

function singleThreadTasks(a: MicroAllocator): TaskDef[] {
  const tasks: TaskDef[] = [];
  for (const size of CLASS_SIZES) tasks.push(pairTask(`malloc+free ${size} B`, a, size, BATCH));
  tasks.push({
    name: 'calloc+free 1 KiB',
    fn: () => {
      const t0 = performance.now();
      for (let i = 0; i < BATCH; i++) {
        const p = a.calloc(1, 1024);
        if (p === 0 || a.u8[p + 1023] !== 0) throw new Error('MICRO calloc: 0 or not zeroed');
        a.u8[p + 1023] = 1;
        a.free(p);
      }
      const dt = performance.now() - t0;
      return { overriddenDuration: dt / BATCH, overriddenIterationCost: dt };
    },
  });
  tasks.push({
    name: 'malloc 64 B+realloc 4 KiB+free',
    fn: () => {
      const t0 = performance.now();
      for (let i = 0; i < BATCH; i++) {
        const p = a.malloc(64);
        if (p === 0) throw new Error('MICRO realloc: malloc returned 0');
        a.u8[p] = i;
        const q = a.realloc(p, 4096);
        if (q === 0 || a.u8[q] !== (i & 0xff)) throw new Error('MICRO realloc: 0 or contents lost');
        a.free(q);
      }
      const dt = performance.now() - t0;
      return { overriddenDuration: dt / BATCH, overriddenIterationCost: dt };
    },
  });
  tasks.push(pairTask('malloc+free 1 MiB (large)', a, LARGE_SIZE, LARGE_BATCH));
  tasks.push(manyTask(a));
  return tasks;
}

function crossThreadTask(heap: SharedHeap, pool: () => Piscina): TaskDef {
  const out = new SharedArrayBuffer(REMOTE_BATCH * 4);
  const blocks = new Int32Array(out);
  return {
    name: `cross-thread free ${REMOTE_SIZE} B`,
    fn: async () => {
      const w0 = performance.now();
      const task: MicroAllocTask = { kind: 'micro-alloc', heap: heap.buffer, out, count: REMOTE_BATCH, size: REMOTE_SIZE };
      await pool().run(task);
      const u8 = heap.u8;
      const t0 = performance.now();
      for (let i = 0; i < REMOTE_BATCH; i++) {
        const p = blocks[i]!;
        if (u8[p] !== (i & 0xff)) throw new Error('MICRO cross-thread free: block overwritten');
        heap.free(p);
      }
      const t1 = performance.now();
      return { overriddenDuration: (t1 - t0) / REMOTE_BATCH, overriddenIterationCost: t1 - w0 };
    },
  };
}

async function runTasks(
  allocator: string,
  tasks: TaskDef[],
  opts: MicroOptions,
  rows: MicroRow[],
  total: number,
): Promise<void> {
  for (const def of tasks) {
    const bench = new Bench({
      time: opts.timeMs,
      iterations: 8,
      warmupTime: Math.max(10, opts.timeMs / 4),
      warmupIterations: 4,
      throws: false,
    });
    bench.add(def.name, def.fn);
    await bench.run();
    const task = bench.tasks[0]!;
    const res = task.result;
    let row: MicroRow;
    if (res.state === 'completed' || res.state === 'aborted-with-statistics') {
      const lat = res.latency;
      row = {
        allocator,
        task: def.name,
        opsPerSec: lat.p50 > 0 ? 1000 / lat.p50 : 0,
        meanNs: lat.mean * 1e6,
        p50Ns: lat.p50 * 1e6,
        p99Ns: lat.p99 * 1e6,
        rme: lat.rme,
        samples: lat.samplesCount,
      };
    } else {
      const error = res.state === 'errored' ? res.error.message : `tinybench task ${res.state}`;
      row = { allocator, task: def.name, opsPerSec: 0, meanNs: 0, p50Ns: 0, p99Ns: 0, rme: 0, samples: 0, error };
    }
    rows.push(row);
    opts.onTask?.(row, rows.length, total);
  }
}

/** Runs the micro-benchmarks; returns one row per allocator and task. */
export async function runMicro(opts: MicroOptions): Promise<MicroRow[]> {
  const rows: MicroRow[] = [];
  const perAlloc = CLASS_SIZES.length + 4;
  const wantSab = opts.allocators.has('sabmalloc');
  const wantThing = opts.allocators.has('thi.ng') && opts.thingAvailable;
  const total = (wantSab ? perAlloc + 1 : 0) + (wantThing ? perAlloc : 0);
  if (wantSab) {
    const heap = SharedHeap.create({ initialBytes: 256 << 20, maxBytes: 256 << 20, maxThreads: 4, ...opts.heapOptions });
    try {
      await runTasks('sabmalloc', [...singleThreadTasks(heap), crossThreadTask(heap, opts.pool)], opts, rows, total);
      await opts.pool().run({ kind: 'micro-detach', heap: heap.buffer });
      heap.check();
    } finally {
      heap.detach();
    }
  }
  if (wantThing) {
    const thing = await createThingAllocator(256 << 20);
    await runTasks('thi.ng', singleThreadTasks(thing), opts, rows, total);
  }
  return rows;
}
