/**
 * Misuse and worker churn beside concurrent work, kept from an audit of 2026-12-07 (which found no
 * defect): what it held must go on holding.
 *
 * 1. Two and four workers and the main thread churn tagged blocks (workers/concurrent-misuse-churn.ts),
 *    handing blocks to each other for remote frees, with ~15% misuse whose outcome no other thread
 *    can change (bad offsets, numbers, types, sizes and alignments; calls after detach()): each
 *    throws the documented class with a message naming the call, the argument and the value. At
 *    each quiet point every thread makes double frees of its own small and large blocks and of a
 *    block it received (refused), check() passes, every live block keeps its tags, and
 *    stats().liveBlocks is the number of blocks the threads hold; at the end a fill gets what a
 *    fresh heap gives. Under default options, and with one-block magazines, drainInterval 1,
 *    stage1Keep 0 and debug mode.
 * 2. Workers that hold every thread slot but the main thread's (maxThreads exactly), terminated
 *    mid-churn and replaced from the exit handler or after `await terminate()` (the README's two
 *    ways), watched: no replacement is refused a slot, what the dead left is intact and freed.
 * 3. A large block freed and reallocated by three workers at the same moment: one call at most
 *    ends it (frees or moves it), the others are refused with DoubleFreeError.
 * 4. A piscina pool whose threads an idleTimeout of 2 ms recycles, on a heap with a slot for each
 *    of its threads and the main thread's: no task meets a refused attach.
 *
 * What the README documents as beyond any check is kept out by construction: a double free of an
 * offset handed out again meanwhile (double frees are made only at quiet points), and two frees of
 * one small block at the same moment (the race case uses large blocks only).
 */
import type { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Piscina } from 'piscina';
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { watchPool } from '../src/node.js';
import { workerEntry } from '../bench/worker-entry.js';
import { Rand } from '../workers/misuse-model-core.js';
import { Churner, MAILBOX, verifyBlock, type ChurnInit, type ChurnReport, type ChurnRequest } from '../workers/concurrent-misuse-churn.js';
import { takeRecorded, type Handed, type SlotInit } from '../workers/concurrent-misuse-slot.js';
import { RACE_DOUBLE_FREE, RACE_FREE, RACE_OK, raceWords } from '../workers/concurrent-misuse-race.js';
import { KiB, MiB, checked, fillPattern, firstWrong, until } from './fixtures.js';
import { fill, malloc } from './capacity-kinds.js';
import { startWorker, terminateAll, waitFor, type TestThread } from './remote-heap.js';

/** Every heap a test attached (an object whose `heap` is the current instance: the churn's main thread attaches anew after detach()). */
const attached: Array<{ heap: SharedHeap }> = [];
const pools: Piscina[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()));
  await terminateAll();
  for (const a of attached.splice(0)) a.heap.detach();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function create(options: HeapOptions): SharedHeap {
  const heap = SharedHeap.create(options);
  attached.push({ heap });
  return heap;
}

/**
 * check()'s verdict at a quiet point: 'passes' or its message. An idle worker answers an ask to
 * flush (made by a malloc out of memory) from its event loop, at a moment of its own, and a walk
 * meanwhile can fail (README, check()): walked again while the message says so, up to 2 s.
 */
async function quietCheck(heap: SharedHeap): Promise<string> {
  for (let tries = 0; ; tries++) {
    const verdict = checked(heap);
    if (verdict === 'passes' || !verdict.includes('ask to flush unanswered') || tries === 200) return verdict;
    await sleep(10);
  }
}

/** How many `size`-byte blocks the main thread gets from `heap` (then freed and flushed). */
async function fillCount(heap: SharedHeap, size: number): Promise<number> {
  const got = fill(heap, malloc(size));
  // Idle workers give their caches back when asked, from their event loops: a later fill finds them.
  await sleep(100);
  got.push(...fill(heap, malloc(size)));
  for (const p of got) heap.free(p);
  heap.flush();
  return got.length;
}

/** fillCount of a fresh heap made with `options`. */
async function freshCount(options: HeapOptions, size: number): Promise<number> {
  const heap = SharedHeap.create(options);
  try {
    return await fillCount(heap, size);
  } finally {
    heap.detach();
  }
}

/**
 * Frees a block a slot thread (workers/concurrent-misuse-slot.ts) handed over or left, unless it
 * was freed already: true when it freed it; a block that lost its tags goes to `errors`.
 */
function recordedFreer(heap: SharedHeap, own: Int32Array, errors: string[]): (p: number) => boolean {
  return (p) => {
    try {
      if (takeRecorded(own, heap.u8, p) === 0) return false;
      heap.free(p);
      return true;
    } catch (e) {
      errors.push(`main: ${(e as Error).message}`);
      return false;
    }
  };
}

/** Starts workers/<name>.ts with `data`, watched by `heap`; resolves once it posted its first message (its threadId). */
function startWatched(heap: SharedHeap, name: string, data: unknown): Promise<TestThread> {
  const w = startWorker(name, data);
  heap.watch(w);
  const exit = new Promise<number>((r) => w.once('exit', r));
  return new Promise((resolve, reject) => {
    w.once('error', reject);
    w.once('message', (m: { threadId: number }) => {
      w.off('error', reject);
      resolve({ w, id: m.threadId, exit });
    });
  });
}

describe('misuse beside concurrent churn and remote frees', () => {
  it.each([
    ['2 workers and the main thread, default options', { workers: 2, options: { initialBytes: 32 * MiB }, rounds: 5, ops: 4000 }],
    [
      '4 workers and the main thread, one-block magazines, drainInterval 1, stage1Keep 0, debug',
      { workers: 4, options: { initialBytes: 16 * MiB, magazineCapacity: 1, refillCount: 1, drainInterval: 1, stage1Keep: 0, debug: true }, rounds: 5, ops: 2000 },
    ],
  ])('%s: misuse refused as documented, quiet points consistent, capacity back', async (_, { workers, options, rounds, ops }) => {
    const heapOptions: HeapOptions = { maxThreads: workers + 2, ...options };
    const heap = SharedHeap.create(heapOptions);
    const heapBytes = options.initialBytes;
    const threads = workers + 1;
    const base = {
      buffer: heap.memory ?? heap.buffer,
      own: new SharedArrayBuffer(heapBytes / 4),
      mail: new SharedArrayBuffer(threads * MAILBOX * 4),
      threads,
      heapBytes,
      // A quarter of the heap live at most, so that the probes' blocks always find room.
      maxLive: heapBytes / 4 / threads,
    };
    // The main thread is thread `threads`; after a detach() it attaches again, and mc.heap is the new instance.
    const mc = new Churner(heap, { ...base, me: threads, seed: 7 }, () => SharedHeap.attach(heap.buffer));
    attached.push(mc);
    const ws = await Promise.all(
      Array.from({ length: workers }, (_, k) => startWatched(heap, 'concurrent-misuse-churn', { kind: 'churn', ...base, me: k + 1, seed: 1000 + k } satisfies ChurnInit & { kind: string })),
    );
    /** A request's answer; a worker that answers an error, or dies, fails the test. */
    const request = (x: TestThread, m: ChurnRequest): Promise<ChurnReport> =>
      new Promise((resolve, reject) => {
        x.w.once('error', reject);
        x.w.once('message', (a: ChurnReport | { error: string }) => {
          x.w.off('error', reject);
          if ('error' in a) reject(new Error(`worker ${x.id}: ${a.error}`));
          else resolve(a);
        });
        x.w.postMessage(m);
      });

    const anomalies: string[] = [];
    const quiet: string[] = [];
    let reports: ChurnReport[] = [];
    for (let round = 0; round < rounds; round++) {
      let churning = true;
      const churned = Promise.all(ws.map((x) => request(x, { type: 'churn', ops }))).finally(() => (churning = false));
      while (churning) {
        for (let i = 0; i < 20; i++) mc.step();
        await new Promise((r) => setImmediate(r));
      }
      for (const r of await churned) anomalies.push(...r.anomalies);
      // A quiet point: one thread at a time makes its double frees, the others idle.
      reports = [];
      for (const x of ws) reports.push(await request(x, { type: 'probe' }));
      mc.probe();
      reports.push(mc.report());
      for (const r of reports) anomalies.push(...r.anomalies);
      const verdict = await quietCheck(mc.heap);
      if (verdict !== 'passes') quiet.push(`round ${round}: check() ${verdict}`);
      // Every block some thread holds, read from the main thread: its tags, no two overlapping.
      const held = reports.flatMap((r) => r.held).sort((a, b) => a[0] - b[0]);
      held.forEach(([p, size], i) => {
        const v = verifyBlock(mc.heap.u8, p, size);
        if (typeof v === 'string') quiet.push(`round ${round}: ${v}`);
        if (i + 1 < held.length && p + size > held[i + 1]![0]) quiet.push(`round ${round}: 0x${p.toString(16)} + ${size} overlaps the next block held`);
      });
      const live = mc.heap.stats().liveBlocks;
      if (live !== held.length) quiet.push(`round ${round}: stats().liveBlocks ${live}, ${held.length} blocks held`);
    }
    for (const x of ws) anomalies.push(...(await request(x, { type: 'freeAll' })).anomalies);
    mc.freeAll();
    anomalies.push(...mc.anomalies);
    const end = { check: await quietCheck(mc.heap), liveBlocks: mc.heap.stats().liveBlocks };
    expect({ anomalies, quiet, end }).toEqual({ anomalies: [], quiet: [], end: { check: 'passes', liveBlocks: 0 } });

    // Each kind of work was done (the counts are each thread's totals).
    const total = (k: keyof ChurnReport['counts']): number => reports.reduce((s, r) => s + r.counts[k], 0);
    expect(total('misuse')).toBeGreaterThan((rounds * ops * workers) / 10);
    expect(total('remoteFrees')).toBeGreaterThan(100);
    expect(total('detaches')).toBeGreaterThan(0);
    expect(total('doubleFrees')).toBeGreaterThanOrEqual(rounds * threads * 8);
    expect(total('receivedDoubleFrees')).toBeGreaterThanOrEqual(rounds);

    // The heap is whole again (the workers idle, answering asks to flush): a fill gets at least
    // 99% of what a fresh heap gives in 1000-byte blocks (the audit: all of them), and all but two
    // of its 200 KiB blocks (the audit: all but one at most).
    expect(await fillCount(mc.heap, 1000)).toBeGreaterThanOrEqual((await freshCount(heapOptions, 1000)) * 0.99);
    expect(await fillCount(mc.heap, 200 * KiB)).toBeGreaterThanOrEqual((await freshCount(heapOptions, 200 * KiB)) - 2);
    expect(await quietCheck(mc.heap)).toBe('passes');
  });
});

describe('worker replacement at exactly maxThreads, watched', () => {
  it.each([
    ['from the exit handler', 'exit'],
    ['after await terminate()', 'await'],
  ] as const)('two workers holding every slot but the main thread`s, 10 terminated mid-churn and replaced %s: no attach refused, what they left intact', async (_, how) => {
    const K = 2;
    const KILLS = 10;
    const options = { initialBytes: 16 * MiB, maxThreads: K + 1 };
    const heap = create(options);
    const own = new Int32Array(new SharedArrayBuffer(heap.buffer.byteLength / 4));
    const refused: string[] = [];
    const errors: string[] = [];
    let handed = 0;
    const freeRecorded = recordedFreer(heap, own, errors);
    let seed = 0;
    const exited = new Set<Worker>();
    /** Starts a slot worker, watched; resolves once it attached, was refused, or died (its error in `errors`). */
    const start = (): Promise<Worker> => {
      const w = startWorker('concurrent-misuse-slot', { kind: 'slot', buffer: heap.memory ?? heap.buffer, own: own.buffer as SharedArrayBuffer, seed: ++seed } satisfies SlotInit);
      heap.watch(w);
      w.on('error', (e) => errors.push(`worker: ${String(e)}`));
      return new Promise((resolve) => {
        w.once('exit', () => {
          exited.add(w);
          resolve(w);
        });
        w.on('message', (m: { type: string; out: number[]; name: string; message: string }) => {
          if (m.type === 'blocks') for (const p of m.out) handed += freeRecorded(p) ? 1 : 0;
          else {
            if (m.type === 'attach-error') refused.push(`${m.name}: ${m.message}`);
            resolve(w);
          }
        });
      });
    };
    const ws = [await start(), await start()];
    const r = new Rand(how === 'exit' ? 11 : 12);
    for (let kill = 0; kill < KILLS; kill++) {
      await sleep(5 + r.below(30));
      const k = kill % K;
      const victim = ws[k]!;
      if (how === 'exit') {
        // This listener runs after watch()'s, which has reclaimed the slot (README, Limits).
        ws[k] = await new Promise<Worker>((resolve) => {
          if (exited.has(victim)) resolve(start()); // it died of an error (in `errors`)
          else victim.once('exit', () => resolve(start()));
          void victim.terminate();
        });
      } else {
        await victim.terminate();
        ws[k] = await start();
      }
    }
    await Promise.all(ws.map((w) => w.terminate()));
    await until('every worker reclaimed', () => heap.stats().threadsAttached === 1);
    let left = 0;
    for (let i = 0; i < own.length; i++) if (own[i] !== 0 && freeRecorded(i << 4)) left++;
    heap.flush();
    const s = heap.stats();
    expect({ refused, errors, reclaims: s.reclaims, check: await quietCheck(heap) }).toEqual({ refused: [], errors: [], reclaims: KILLS + K, check: 'passes' });
    expect(handed).toBeGreaterThan(100);
    expect(left).toBeGreaterThan(0);
    // A kill leaks at most what was in flight: a block being allocated or freed, or both blocks of
    // a realloc; each holds its slab (64 KiB) or its run.
    const kills = KILLS + K;
    expect(s.liveBlocks).toBeLessThanOrEqual(2 * kills);
    const lost = Math.ceil((s.liveBytes + s.liveBlocks * 64 * KiB) / 1000);
    expect(await fillCount(heap, 1000)).toBeGreaterThanOrEqual((await freshCount(options, 1000)) * 0.99 - lost);
  });
});

describe('a large block freed and reallocated by several workers at the same moment', () => {
  it('3 workers, 200 rounds of free, grow and shrink on one block: one call at most ends it, the others get DoubleFreeError', async () => {
    const W = 3;
    const ROUNDS = 200;
    const options = { initialBytes: 32 * MiB, maxThreads: W + 1 };
    const heap = create(options);
    const ctrl = new Int32Array(new SharedArrayBuffer(4 * raceWords(W)));
    ctrl[4] = W;
    const others: string[] = [];
    const ws = await Promise.all(Array.from({ length: W }, (_, k) => startWatched(heap, 'concurrent-misuse-race', { buffer: heap.memory ?? heap.buffer, ctrl: ctrl.buffer, k })));
    for (const x of ws) x.w.on('message', (m: unknown) => others.push(String(m)));
    const r = new Rand(21);
    const bad: string[] = [];
    let refusedCalls = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      // Above 128 KiB: a large block, whose free and realloc claim it first (README, misuse).
      const size = 160 * KiB + r.below(1400 * KiB);
      const p = heap.malloc(size);
      fillPattern(heap, p, 256, round);
      for (let k = 0; k < W; k++) {
        ctrl[8 + 4 * k] = r.below(3); // RACE_FREE, RACE_GROW or RACE_SHRINK
        ctrl[9 + 4 * k] = 0;
      }
      ctrl[1] = p;
      ctrl[5] = size;
      ctrl[2] = 0;
      ctrl[3] = 0;
      Atomics.store(ctrl, 0, round);
      Atomics.notify(ctrl, 0);
      await waitFor(ctrl, 3, (v) => v === W);
      const ended: string[] = [];
      let ok = 0;
      let live = p;
      for (let k = 0; k < W; k++) {
        const outcome = ctrl[9 + 4 * k]!;
        const q = ctrl[10 + 4 * k]!;
        if (outcome === RACE_DOUBLE_FREE) refusedCalls++;
        if (outcome !== RACE_OK) continue;
        ok++;
        if (ctrl[8 + 4 * k] === RACE_FREE) {
          ended.push(`freed by worker ${k}`);
          live = 0;
        } else if (q === 0) bad.push(`round ${round}: realloc answered 0`);
        else if (q !== p) {
          ended.push(`moved to 0x${q.toString(16)} by worker ${k}`);
          live = q;
        }
      }
      if (ended.length > 1) bad.push(`round ${round}: 0x${p.toString(16)} (${size} bytes) ended twice: ${ended.join(', ')}`);
      if (ok === 0) bad.push(`round ${round}: every call refused`);
      if (ended.length <= 1 && live !== 0) {
        // The block where it is now (moved or resized), its first 256 bytes kept.
        const at = firstWrong(heap, live, 256, round);
        if (at >= 0) bad.push(`round ${round}: byte ${at} not kept`);
        heap.free(live);
      }
      if (round % 50 === 0) {
        const verdict = checked(heap);
        if (verdict !== 'passes') bad.push(`round ${round}: check() ${verdict}`);
      }
    }
    Atomics.store(ctrl, 0, -1);
    Atomics.notify(ctrl, 0);
    await Promise.all(ws.map((x) => x.exit));
    await until('every worker reclaimed', () => heap.stats().threadsAttached === 1);
    expect({ bad, others, check: checked(heap), liveBlocks: heap.stats().liveBlocks }).toEqual({ bad: [], others: [], check: 'passes', liveBlocks: 0 });
    // Rounds where two or three calls met: many refused (the audit: about half of all calls).
    expect(refusedCalls).toBeGreaterThan(ROUNDS / 4);
    // Every slot is back: a fill of 1000-byte blocks gets at least 99% of a fresh heap's (all of
    // them in 8 runs). Not measured in 200 KiB blocks: the runs of 160 KiB - 3 MiB and the slabs
    // of the shrunk blocks leave the free slots in gaps of fewer than the 4 such a block takes
    // (which stays inside one SuperSlab), and that fill got 1-3 fewer of 124 in 11 runs of 12.
    expect(await fillCount(heap, 1000)).toBeGreaterThanOrEqual((await freshCount(options, 1000)) * 0.99);
  });
});

describe('a piscina pool recycling its threads on a heap with exactly enough slots', () => {
  it('maxThreads 2 + the main thread, idleTimeout 2 ms, 12 rounds of tasks: no attach refused, what the threads left intact', async () => {
    const P = 2;
    const options = { initialBytes: 16 * MiB, maxThreads: P + 1 };
    const heap = create(options);
    const own = new Int32Array(new SharedArrayBuffer(heap.buffer.byteLength / 4));
    const pool = new Piscina({
      filename: workerEntry('concurrent-misuse-slot').filename,
      workerData: { kind: 'pool', buffer: heap.memory ?? heap.buffer, own: own.buffer as SharedArrayBuffer, seed: 31 } satisfies SlotInit,
      minThreads: 0,
      maxThreads: P,
      idleTimeout: 2,
      // Idle threads wait in their event loops, where they answer asks to flush (README, piscina).
      atomics: 'async',
    });
    pools.push(pool);
    watchPool(heap, pool);
    const errors: string[] = [];
    const freeRecorded = recordedFreer(heap, own, errors);
    pool.on('error', (e: unknown) => errors.push(`pool: ${String(e)}`));
    const threadIds = new Set<number>();
    const r = new Rand(41);
    for (let round = 0; round < 12; round++) {
      const runs = Array.from({ length: 1 + r.below(2 * P) }, () => pool.run({ ops: 100 + r.below(2000) }) as Promise<Handed>);
      // A thread that failed to load leaves piscina's queued tasks pending: give up after 10 s.
      const settled = await Promise.race([Promise.allSettled(runs), sleep(10_000).then(() => [])]);
      if (settled.length !== runs.length) errors.push(`round ${round}: tasks still pending after 10 s`);
      for (const s of settled) {
        if (s.status === 'rejected') errors.push(`round ${round}: ${String(s.reason)}`);
        else {
          threadIds.add(s.value.threadId);
          for (const p of s.value.out) freeRecorded(p);
        }
      }
      await sleep(r.below(10));
    }
    // Every thread idles out (never one still loading its task file when destroyed: Node 20 can
    // abort then, docs/robustness.md), its slot reclaimed.
    await until('the pool idle', () => pool.threads.length === 0);
    await pool.destroy();
    await until('every pool thread reclaimed', () => heap.stats().threadsAttached === 1);
    for (let i = 0; i < own.length; i++) if (own[i] !== 0) freeRecorded(i << 4);
    heap.flush();
    const s = heap.stats();
    expect({ errors, check: await quietCheck(heap), liveBlocks: s.liveBlocks }).toEqual({ errors: [], check: 'passes', liveBlocks: 0 });
    // Recycled: more threads than the pool holds at once, each reclaimed.
    expect(threadIds.size).toBeGreaterThan(P);
    expect(s.reclaims).toBeGreaterThanOrEqual(threadIds.size);
    expect(await fillCount(heap, 1000)).toBeGreaterThanOrEqual((await freshCount(options, 1000)) * 0.99);
  });
});
