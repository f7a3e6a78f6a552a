/**
 * The driver of test/many-threads-*.test.ts: many more workers than cores on one heap, each
 * running workers/many-threads-worker.ts (mixed malloc/calloc/realloc/free of 8 B..maxSize,
 * blocks handed on through a shared queue), while the main thread also allocates, frees and frees
 * blocks taken from the queue in a loop (batches between event-loop turns). Optionally terminates
 * workers at random moments (watched) and starts new ones.
 */
import type { Worker } from 'node:worker_threads';
import { LockTimeoutError, SharedHeap, type HeapOptions } from '../src/index.js';
import { startWorker } from './remote-heap.js';
import { rng } from './fixtures.js';
import {
  C_BAD, C_CROSS, C_DONE, C_ERRORS, C_GO, C_MAXCALL, C_OPS, C_READY, C_STOP, C_ZERO, CTL_WORDS, type AuditWorkerData,
} from '../workers/many-threads-worker.js';

export interface ManyPlan {
  workers: number;
  options: HeapOptions;
  durationMs: number;
  maxSize: number;
  hold: number;
  largePermille?: number;
  /** The main thread's per mille of blocks up to maxSize (default: largePermille). */
  mainLargePermille?: number;
  /** The main thread uses mallocAsync and the other asynchronous calls. */
  mainAsync?: boolean;
  /** Entries of the shared queue (default 1024). */
  queue?: number;
  /** Workers expected to attach (default: all). */
  expectAttached?: number;
  /** Terminate a random worker every this many ms (watched) and start a new, mortal one. */
  killEveryMs?: number;
  seed: number;
  /** Main-thread operations per batch (0: the main thread does nothing but wait). */
  mainBatch?: number;
}

export interface ManyResult {
  workerOps: number;
  workerErrors: number;
  workerZeros: number;
  bad: number;
  cross: number;
  workerMaxCallMs: number;
  mainOps: number;
  mainZeros: number;
  mainErrors: string[];
  /** The main thread's LockTimeoutErrors naming a worker terminated and not yet seen to exit (documented, not counted in mainErrors). */
  mainTimeoutsOnKilled: number;
  mainMaxCallMs: number;
  firstWorkerErrors: string[];
  killed: number;
  hung: string | undefined;
  check: string;
  liveAfterWorkers: number;
  mainHeldUsable: number;
  liveAtEnd: number;
  threadsAttachedAtEnd: number;
  slotsNotFree: string[];
  exitLagMaxMs: number;
  threadLockAcqSum: number;
  threadRows: number;
  peakLiveSampledMiB: number;
  reclaimLagMaxMs: number;
  unreclaimed: string[];
  footprintMiB: number;
  bufferMiB: number;
  lock: ReturnType<SharedHeap['stats']>['lock'];
  stages: ReturnType<SharedHeap['stats']>['stages'];
  seconds: number;
  refillBlocks: number;
  freshBlocks: number;
}

const tick = () => new Promise<void>((r) => setImmediate(r));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runMany(plan: ManyPlan): Promise<ManyResult> {
  const t0 = performance.now();
  const heap = SharedHeap.create(plan.options);
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  const queue = new Int32Array(new SharedArrayBuffer((plan.queue ?? 1024) * 4));
  const firstWorkerErrors: string[] = [];
  const all: Worker[] = [];
  const running = new Set<Worker>();
  const killedAt = new Map<Worker, number>();
  /** The threadIds of the workers terminated whose exit has not been seen yet. */
  const dying = new Set<number>();
  let mainTimeoutsOnKilled = 0;
  let exitLagMax = 0;
  let reclaimLagMax = 0;
  const unreclaimed: string[] = [];
  let done = false;
  let nextSeed = plan.seed;
  const start = (mortal: boolean): Worker => {
    const data: AuditWorkerData = { buffer: heap.memory ?? heap.buffer, ctl, queue, seed: (nextSeed = (nextSeed * 1103515245 + 12345) >>> 0) || 1, maxSize: plan.maxSize, hold: plan.hold, mortal, largePermille: plan.largePermille };
    const w = startWorker('many-threads-worker', data);
    heap.watch(w);
    all.push(w);
    running.add(w);
    const tid = w.threadId;
    w.once('exit', () => {
      running.delete(w);
      const exitAt = performance.now();
      if (killedAt.has(w)) exitLagMax = Math.max(exitLagMax, exitAt - killedAt.get(w)!);
      // How long until its slot is reclaimed (free again, or taken by another thread id).
      const poll = (): void => {
        if (done) return;
        const st = heap.stats().threads.find((t) => t.threadId === tid && t.state !== 'free');
        if (st === undefined) {
          reclaimLagMax = Math.max(reclaimLagMax, performance.now() - exitAt);
          return;
        }
        if (performance.now() - exitAt > 20_000) {
          unreclaimed.push(`${tid}:${st.state}`);
          return;
        }
        setTimeout(poll, 5);
      };
      setTimeout(poll, 0);
    });
    w.on('message', (m: { kind: string; name?: string; message?: string }) => {
      if (m.kind === 'error' && firstWorkerErrors.length < 5) firstWorkerErrors.push(`${m.name}: ${m.message}`);
    });
    w.on('error', (e) => firstWorkerErrors.push(`worker error event: ${String(e)}`));
    return w;
  };
  const r = rng(plan.seed ^ 0x5151);
  for (let i = 0; i < plan.workers; i++) start(plan.killEveryMs !== undefined);
  const readyBy = Date.now() + 60_000;
  const attachTarget = plan.expectAttached ?? plan.workers;
  while (Atomics.load(ctl, C_READY) < attachTarget) {
    if (Date.now() > readyBy) throw new Error(`only ${Atomics.load(ctl, C_READY)} of ${plan.workers} workers attached`);
    await sleep(5);
  }
  Atomics.store(ctl, C_GO, 1);
  Atomics.notify(ctl, C_GO);

  // The main thread's loop.
  const held: number[] = [];
  const mainErrors: string[] = [];
  let mainOps = 0;
  let mainZeros = 0;
  let mainMaxCallMs = 0;
  let killed = 0;
  let nextKill = plan.killEveryMs === undefined ? Infinity : performance.now() + plan.killEveryMs;
  const batch = plan.mainBatch ?? 200;
  const end = performance.now() + plan.durationMs;
  let batches = 0;
  let peakLive = 0;
  const size = (): number => {
    const x = r() % 1000;
    if (x >= 1000 - (plan.mainLargePermille ?? plan.largePermille ?? 15)) return 8 + (r() % plan.maxSize);
    if (x < 850) return 8 + (r() % 1017);
    return 1024 + (r() % (16 << 10));
  };
  /** A main-thread call's error: the first five in full, the rest counted. */
  const noteError = (e: unknown): void => {
    // A worker terminated while holding the lock holds it until its exit is seen, which a main
    // thread blocked in a call cannot see: its LockTimeoutError naming that worker is the
    // documented course (README, "The main thread never waits forever"), not a spurious error
    // (the main thread's next call came 2 ms after such a kill in a failed run).
    const named = /\(threadId (\d+)\)/.exec((e as Error).message);
    if (e instanceof LockTimeoutError && named !== null && dying.has(Number(named[1]))) {
      mainTimeoutsOnKilled++;
      return;
    }
    if (mainErrors.length < 5) mainErrors.push(`${(e as Error).name}: ${(e as Error).message.slice(0, 300)}`);
    else mainErrors.push('');
  };
  /** A main-thread call that started at `c0` ended: counted, its time kept if the longest. */
  const timed = (c0: number): void => {
    const dt = performance.now() - c0;
    if (dt > mainMaxCallMs) mainMaxCallMs = dt;
    mainOps++;
  };
  const mainCall = (f: () => void): void => {
    const c0 = performance.now();
    try {
      f();
    } catch (e) {
      noteError(e);
    }
    timed(c0);
  };
  while (performance.now() < end) {
    if (plan.mainAsync === true) {
      // The asynchronous calls: one at a time, each awaited.
      for (let k = 0; k < batch; k++) {
        const x = r() % 100;
        const c0 = performance.now();
        try {
          if (held.length < 64 && x < 45) {
            const p = x < 8 ? await heap.callocAsync(1, size()) : await heap.mallocAsync(size());
            if (p === 0) mainZeros++;
            else held.push(p);
          } else if (held.length > 0 && x < 55) {
            const i = r() % held.length;
            const q = await heap.reallocAsync(held[i]!, size());
            if (q === 0) mainZeros++;
            else held[i] = q;
          } else if (x < 70) {
            const back = Atomics.exchange(queue, r() % queue.length, 0);
            if (back !== 0) await heap.freeAsync(back);
          } else if (held.length > 0) {
            const i = r() % held.length;
            const p = held[i]!;
            held[i] = held[held.length - 1]!;
            held.pop();
            await heap.freeAsync(p);
          }
        } catch (e) {
          noteError(e);
        }
        timed(c0);
      }
    } else
    for (let k = 0; k < batch; k++) {
      const x = r() % 100;
      if (held.length < 64 && x < 45) {
        mainCall(() => {
          const p = x < 8 ? heap.calloc(1, size()) : heap.malloc(size());
          if (p === 0) mainZeros++;
          else held.push(p);
        });
      } else if (held.length > 0 && x < 55) {
        const i = r() % held.length;
        mainCall(() => {
          const q = heap.realloc(held[i]!, size());
          if (q === 0) mainZeros++;
          else held[i] = q;
        });
      } else if (x < 70) {
        const back = Atomics.exchange(queue, r() % queue.length, 0);
        if (back !== 0) mainCall(() => heap.free(back));
      } else if (held.length > 0) {
        const i = r() % held.length;
        const p = held[i]!;
        held[i] = held[held.length - 1]!;
        held.pop();
        mainCall(() => heap.free(p));
      }
    }
    if (performance.now() >= nextKill && running.size > 0) {
      const victims = [...running];
      const v = victims[r() % victims.length]!;
      killedAt.set(v, performance.now());
      dying.add(v.threadId);
      const id = v.threadId;
      void v.terminate().then(() => dying.delete(id));
      killed++;
      start(true);
      nextKill = performance.now() + plan.killEveryMs!;
    }
    if (++batches % 20 === 0) {
      const st = heap.stats();
      if (st.liveBytes > peakLive) peakLive = st.liveBytes;
    }
    await tick();
  }
  Atomics.store(ctl, C_STOP, 1);
  // Every worker frees what it holds and detaches (mortal ones just stop): wait for them, and terminate them.
  let hung: string | undefined;
  const stopBy = Date.now() + 30_000;
  while (running.size > 0) {
    const expectDone = plan.killEveryMs === undefined ? attachTarget : 0;
    if (Atomics.load(ctl, C_DONE) >= expectDone) break;
    if (Date.now() > stopBy) {
      hung = `only ${Atomics.load(ctl, C_DONE)} of ${expectDone} workers stopped within 30 s of the stop`;
      break;
    }
    await sleep(10);
  }
  await Promise.all(all.map((w) => w.terminate()));
  // The watches reclaim every slot of a worker that did not detach: let them run.
  const reclaimBy = Date.now() + 15_000;
  while (heap.stats().threadsAttached > 1 && Date.now() < reclaimBy) await sleep(10);
  for (let j = 0; j < queue.length; j++) {
    const p = Atomics.exchange(queue, j, 0);
    if (p !== 0) mainCall(() => heap.free(p));
  }
  heap.flush();
  const s1 = heap.stats();
  let mainHeldUsable = 0;
  for (const p of held) mainHeldUsable += heap.usableSize(p);
  const liveAfterWorkers = s1.liveBytes;
  let check = 'passes';
  try {
    heap.check();
  } catch (e) {
    check = (e as Error).message;
  }
  for (const p of held) heap.free(p);
  heap.flush();
  const s2 = heap.stats();
  // Memory returns: how many 16 KiB blocks the main thread gets now, against a fresh heap of the same options.
  const fill = (h: SharedHeap): number => {
    const got: number[] = [];
    for (;;) {
      const p = h.malloc(16 << 10);
      if (p === 0) break;
      got.push(p);
    }
    for (const p of got) h.free(p);
    return got.length;
  };
  const refillBlocks = fill(heap);
  const freshHeap = SharedHeap.create(plan.options);
  const freshBlocks = fill(freshHeap);
  freshHeap.detach();
  const result: ManyResult = {
    workerOps: Atomics.load(ctl, C_OPS),
    workerErrors: Atomics.load(ctl, C_ERRORS),
    workerZeros: Atomics.load(ctl, C_ZERO),
    bad: Atomics.load(ctl, C_BAD),
    cross: Atomics.load(ctl, C_CROSS),
    workerMaxCallMs: Atomics.load(ctl, C_MAXCALL) / 1000,
    mainOps,
    mainZeros,
    mainErrors,
    mainTimeoutsOnKilled,
    mainMaxCallMs,
    firstWorkerErrors,
    killed,
    hung,
    check,
    liveAfterWorkers,
    mainHeldUsable,
    liveAtEnd: s2.liveBytes,
    threadsAttachedAtEnd: s2.threadsAttached,
    peakLiveSampledMiB: peakLive / (1 << 20),
    threadLockAcqSum: s2.threads.reduce((a, t) => a + t.lockAcquisitions, 0),
    threadRows: s2.threads.length,
    exitLagMaxMs: exitLagMax,
    reclaimLagMaxMs: reclaimLagMax,
    unreclaimed,
    slotsNotFree: s2.threads.filter((t) => t.state !== 'free').map((t) => `${t.tid}:${t.state}`),
    footprintMiB: s2.footprintBytes / (1 << 20),
    bufferMiB: s2.bufferBytes / (1 << 20),
    lock: s2.lock,
    stages: s2.stages,
    seconds: (performance.now() - t0) / 1000,
    refillBlocks,
    freshBlocks,
  };
  done = true;
  heap.detach();
  return result;
}
