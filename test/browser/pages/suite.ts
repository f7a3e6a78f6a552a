/**
 * The browser suite's page: each scenario runs on the main thread against module Web Workers
 * and returns plain figures that test/browser/browser.test.ts asserts on.
 */
import { SharedHeap, type SharedMemory } from '../../../src/index.js';
import { heapIdOf } from '../../../src/layout.js';
import {
  CHUNK, CTL_WORDS, C_COUNT, C_HELD, C_READY, C_STOP, badBytes, fillBlock, reallocChain, type AttachReply, type ChainReply,
  type LoopReply, type Request, type ViewReply,
} from './protocol.js';
import { endWorkers, startWorker, type TestWorker } from './test-worker.js';

const MiB = 1 << 20;

/** Resolves when ctl[index] reaches at least `min` (Atomics.waitAsync: the main thread never blocks). */
async function waitAtLeast(ctl: Int32Array, index: number, min: number): Promise<void> {
  for (;;) {
    const v = Atomics.load(ctl, index);
    if (v >= min) return;
    const r = Atomics.waitAsync(ctl, index, v, 10_000);
    if (r.async) {
      if ((await r.value) === 'timed-out') throw new Error(`ctl[${index}] stayed at ${v}, expected >= ${min}`);
    }
  }
}

/** Sizes for the content checks: small, mid and large classes, and a large run. */
const SIZES = [1, 16, 17, 100, 1000, 4096, 20_000, 100_000, 200_000];

async function attachScenario() {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
  try {
    const workers = [startWorker(), startWorker(), startWorker()];
    const replies = await Promise.all(workers.map((w) => w.attach(heap.buffer)));
    const held = await navigator.locks.query();
    const heldNames = (held.held ?? []).map((l) => l.name);
    const stats = heap.stats();
    heap.check();
    return {
      crossOriginIsolated: globalThis.crossOriginIsolated,
      mainThreadId: heap.threadId,
      mainLockHeld: await heap.threadLockHeld(),
      replies,
      expectedNames: replies.map((r) => `sabmalloc:${heapIdOf(heap.buffer)}:${r.threadId}`),
      heldNames,
      threadsAttached: stats.threadsAttached,
      attachedIds: stats.threads.filter((t) => t.state === 'attached').map((t) => t.threadId),
    };
  } finally {
    endWorkers();
  }
}

async function memoryCopyScenario() {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 8 });
  try {
    const mainBad = reallocChain(heap, SIZES, 5);
    const [withMemory, withBuffer, reserved] = [startWorker(), startWorker(), startWorker()];
    await Promise.all([
      withMemory.attach(heap.memory!),
      withBuffer.attach(heap.buffer),
      reserved.call<AttachReply>({ cmd: 'attachAs', buffer: heap.memory!, threadId: heap.newThreadId() }),
    ]);
    const inMemoryWorker = await withMemory.call<ChainReply>({ cmd: 'reallocChain', sizes: SIZES, seed: 6 });
    const inBufferWorker = await withBuffer.call<ChainReply>({ cmd: 'reallocChain', sizes: SIZES, seed: 7 });
    const inReservedWorker = await reserved.call<ChainReply>({ cmd: 'reallocChain', sizes: SIZES, seed: 8 });
    heap.check();
    return {
      mainHasMemory: heap.memory !== undefined && heap.memory.buffer === heap.buffer,
      mainBad,
      inMemoryWorker,
      inBufferWorker,
      inReservedWorker,
    };
  } finally {
    endWorkers();
  }
}

async function crossFreesScenario() {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 8 });
  try {
    const [a, b] = [startWorker(), startWorker()];
    await Promise.all([a.attach(heap.buffer), b.attach(heap.buffer)]);
    const sizes = Array.from({ length: 200 }, (_, i) => SIZES[i % SIZES.length]!);
    // Worker A allocates and fills; the main thread checks and frees.
    const fromA = await a.call<number[]>({ cmd: 'fill', sizes, seed: 11 });
    let badOnMain = 0;
    for (let i = 0; i < fromA.length; i++) {
      badOnMain += badBytes(heap.u8, fromA[i]!, sizes[i]!, 11);
      heap.free(fromA[i]!);
    }
    // The main thread allocates and fills; worker B checks and frees.
    const fromMain = sizes.map((size) => {
      const p = heap.malloc(size);
      fillBlock(heap.u8, p, size, 22);
      return p;
    });
    const badInB = await b.call<number>({ cmd: 'verifyFree', blocks: fromMain.map((p, i) => [p, sizes[i]!]), seed: 22 });
    // Worker B allocates; worker A checks and frees.
    const fromB = await b.call<number[]>({ cmd: 'fill', sizes, seed: 33 });
    const badInA = await a.call<number>({ cmd: 'verifyFree', blocks: fromB.map((p, i) => [p, sizes[i]!]), seed: 33 });
    const distinctA = new Set(fromA).size;
    const reusedByMain = fromMain.filter((p) => fromA.includes(p)).length; // A's blocks, freed here, reused here
    const liveAfter = heap.stats().liveBytes; // small and large blocks
    // check() wants a quiescent heap: one thread at a time.
    await b.call({ cmd: 'flush' });
    await a.call({ cmd: 'check' });
    heap.flush();
    heap.check();
    const s = heap.stats();
    return {
      blocks: fromA.length + fromMain.length + fromB.length,
      distinctA,
      reusedByMain,
      badOnMain,
      badInA,
      badInB,
      liveBytesAfterFrees: liveAfter,
      liveBytes: s.liveBytes,
      remoteFrees: s.threads.reduce((n, t) => n + t.remoteFrees, 0),
    };
  } finally {
    endWorkers();
  }
}

/** The global-lock acquisitions of the calling thread so far. */
function ownAcquisitions(heap: SharedHeap): number {
  const me = heap.stats().threads.find((th) => th.threadId === heap.threadId);
  if (me === undefined) throw new Error('the calling thread is missing from stats().threads');
  return me.lockAcquisitions;
}

async function nonBlockingScenario() {
  // Magazines of one or two blocks and a slab that holds two blocks: nearly every operation
  // goes to the pool, and emptied slabs give their slots back under the global lock.
  const heap = SharedHeap.create({
    initialBytes: 16 * MiB,
    maxThreads: 8,
    magazineCapacity: 2,
    refillCount: 1,
    drainInterval: 1,
    stage1Keep: 0,
  });
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  try {
    const workers = [startWorker(), startWorker()];
    await Promise.all(workers.map((w) => w.attach(heap.buffer)));
    // 1. Forced: worker 0 holds the global lock for HOLD_MS once it says so; a large malloc on
    // the main thread needs the lock, so it must spin until the worker lets go.
    const HOLD_MS = 50;
    const lock0 = heap.stats().lock;
    const holding = workers[0]!.call({ cmd: 'holdLock', ctl, ms: HOLD_MS });
    await waitAtLeast(ctl, C_HELD, 1);
    const tForced = performance.now();
    const forcedBlock = heap.malloc(300_000);
    const forcedMs = performance.now() - tForced;
    const heldAfterMalloc = Atomics.load(ctl, C_HELD); // 0: the worker had released it
    await holding;
    const lock1 = heap.stats().lock;
    heap.free(forcedBlock);
    const forced = {
      holdMs: HOLD_MS,
      mallocMs: forcedMs,
      gotBlock: forcedBlock !== 0,
      heldAfterMalloc,
      contended: lock1.contended - lock0.contended,
      spins: lock1.spins - lock0.spins,
      waits: lock1.waits - lock0.waits,
    };
    // 2. Free-running: both workers and the main thread on the same mix.
    const sizes = [24_000, 30_000, 40];
    const loops = workers.map((w, i) => w.call<LoopReply>({ cmd: 'loop', ctl, index: i, sizes, seed: 5 + i }));
    await waitAtLeast(ctl, C_READY, workers.length);
    await Promise.all(workers.map((_, i) => waitAtLeast(ctl, C_COUNT + i, CHUNK)));
    const before = heap.stats().lock;
    const mainBefore = ownAcquisitions(heap);
    // The main thread runs the same mix and times every call.
    let callMs = 0;
    let maxCallMs = 0;
    let calls = 0;
    let bad = 0;
    const t0 = performance.now();
    const live: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const size = sizes[i % sizes.length]!;
      let t = performance.now();
      const p = heap.malloc(size);
      let dt = performance.now() - t;
      callMs += dt;
      maxCallMs = Math.max(maxCallMs, dt);
      calls++;
      if (p === 0) throw new Error(`malloc(${size}) returned 0 on the main thread`);
      fillBlock(heap.u8, p, Math.min(size, 64), 9);
      live.push(p, Math.min(size, 64));
      if (live.length > 8) {
        const q = live.shift()!;
        bad += badBytes(heap.u8, q, live.shift()!, 9);
        t = performance.now();
        heap.free(q);
        dt = performance.now() - t;
        callMs += dt;
        maxCallMs = Math.max(maxCallMs, dt);
        calls++;
      }
    }
    for (let i = 0; i < live.length; i += 2) heap.free(live[i]!);
    const wallMs = performance.now() - t0;
    const mainAcquisitions = ownAcquisitions(heap) - mainBefore;
    Atomics.store(ctl, C_STOP, 1);
    const results = await Promise.all(loops);
    const after = heap.stats().lock;
    let checkPassed = true;
    let checkError = '';
    try {
      heap.check();
    } catch (e) {
      checkPassed = false;
      checkError = String(e);
    }
    return {
      forced,
      canWaitOnMain: canAtomicsWait(),
      calls,
      callMs,
      maxCallMs,
      wallMs,
      bad: bad + results.reduce((n, r) => n + r.bad, 0),
      workerOps: results.map((r) => r.ops),
      acquisitions: after.acquisitions - before.acquisitions,
      mainAcquisitions,
      contended: after.contended - before.contended,
      spins: after.spins - before.spins,
      checkPassed,
      checkError,
    };
  } finally {
    Atomics.store(ctl, C_STOP, 1);
    endWorkers();
  }
}

function canAtomicsWait(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

async function growthScenario() {
  const heap = SharedHeap.create({ initialBytes: 4 * MiB, maxBytes: 64 * MiB, maxThreads: 4 });
  try {
    const initial = heap.buffer.byteLength;
    const [a, b] = [startWorker(), startWorker()];
    await Promise.all([a.attach(heap.buffer), b.attach(heap.buffer)]);
    const viewsBefore = await Promise.all([a.call<ViewReply>({ cmd: 'view' }), b.call<ViewReply>({ cmd: 'view' })]);
    // Worker A allocates 512 KiB blocks until the heap has grown past 3x its initial size.
    const sizes = Array.from({ length: 24 }, () => 512 << 10);
    const blocks = await a.call<number[]>({ cmd: 'fill', sizes, seed: 44 });
    const viewsAfter = await Promise.all([a.call<ViewReply>({ cmd: 'view' }), b.call<ViewReply>({ cmd: 'view' })]);
    const beyond = blocks.filter((p) => p >= initial);
    // The main thread reads a block beyond the initial length, then worker B checks and frees all.
    const mainU8Length = heap.u8.length;
    const badOnMain = beyond.reduce((n, p) => n + badBytes(heap.u8, p, 512 << 10, 44), 0);
    const badInB = await b.call<number>({ cmd: 'verifyFree', blocks: blocks.map((p) => [p, 512 << 10]), seed: 44 });
    // And worker B's own blocks may land there too: it writes, the main thread checks.
    const fromB = await b.call<number[]>({ cmd: 'fill', sizes: [100, 5000, 300_000], seed: 55 });
    const badFromB = fromB.reduce((n, p, i) => n + badBytes(heap.u8, p, [100, 5000, 300_000][i]!, 55), 0);
    for (const p of fromB) heap.free(p);
    heap.check();
    return {
      initial,
      growable: heap.buffer.growable,
      finalBytes: heap.buffer.byteLength,
      viewsBefore,
      viewsAfter,
      mainU8Length,
      blocksBeyondInitial: beyond.length,
      badOnMain,
      badInB,
      badFromB,
      liveBytes: heap.stats().liveBytes,
    };
  } finally {
    endWorkers();
  }
}

async function reclaimScenario() {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  try {
    const w = startWorker();
    const { threadId, lockHeld } = await w.attach(heap.buffer);
    const loop = w.call<LoopReply>({ cmd: 'holdAndLoop', ctl, index: 0, hold: 10, size: 3000, seed: 66 });
    void loop.catch(() => undefined); // never answered: the worker is terminated in its loop
    const held = await w.nextEarly<number[]>();
    await waitAtLeast(ctl, C_COUNT, CHUNK);
    let settled = false;
    const t0 = performance.now();
    const reclaimed = heap.reclaimWhenGone(threadId).then((r) => {
      settled = true;
      return r;
    });
    // While the worker runs, the request waits: let it make 20 more chunks of progress.
    const progress = Atomics.load(ctl, C_COUNT);
    await waitAtLeast(ctl, C_COUNT, progress + 20 * CHUNK);
    const settledWhileAlive = settled;
    const attachedWhileAlive = heap.stats().threadsAttached;
    const tTerminate = performance.now();
    const countAtTerminate = Atomics.load(ctl, C_COUNT);
    w.worker.terminate();
    const result = await reclaimed;
    const tGone = performance.now();
    const countAtGone = Atomics.load(ctl, C_COUNT);
    const s = heap.stats();
    heap.check();
    // The blocks it held are still allocated (the application decides what they mean); the main
    // thread can check and free them.
    const badHeld = held.reduce((n, p) => n + badBytes(heap.u8, p, 3000, 66), 0);
    const liveBeforeFree = s.liveBlocks;
    for (const p of held) heap.free(p);
    heap.check();
    // A second call for the same id finds nothing left to reclaim.
    const again = await heap.reclaimWhenGone(threadId);
    return {
      lockHeld,
      settledWhileAlive,
      attachedWhileAlive,
      result,
      again,
      waitedMs: tGone - t0,
      terminateToReclaimMs: tGone - tTerminate,
      opsAfterTerminate: countAtGone - countAtTerminate,
      threadsAttached: s.threadsAttached,
      reclaims: s.reclaims,
      liveBeforeFree,
      held: held.length,
      badHeld,
      liveAfterFree: heap.stats().liveBlocks,
    };
  } finally {
    Atomics.store(ctl, C_STOP, 1);
    endWorkers();
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Ids reserved by the parent (newThreadId, attachAsync): a worker is reclaimed wherever it was
 * terminated, attach included, and one whose id was reclaimed before it attached never attaches.
 */
/**
 * A worker attached under a reserved id is stopped by a fault (a stack overflow inside a large
 * malloc, under the lock): attachAsync under the same id is refused at once, under a new id it
 * attaches and reclaims the stopped slot; the parent's reclaimWhenGone of the old id resolves.
 */
async function faultThenAttachAsyncScenario() {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
  const states = (id: number) => heap.stats().threads.filter((t) => t.threadId === id).map((t) => t.state);
  try {
    const idA = heap.newThreadId();
    const idB = heap.newThreadId();
    const w = startWorker();
    await w.call<AttachReply>({ cmd: 'attachAs', buffer: heap.buffer, threadId: idA });
    const sizes = [100, 5000, 100_000];
    const filled = await w.call<number[]>({ cmd: 'fill', sizes, seed: 5 });
    const fault = await w.call<string>({ cmd: 'faultLarge' });
    const stateA = states(idA);
    let sameId = 'attached';
    await Promise.race([
      w.call({ cmd: 'attachAs', buffer: heap.buffer, threadId: idA }),
      sleep(3000).then(() => {
        throw new Error('still waiting after 3 s');
      }),
    ]).catch((e: Error) => (sameId = e.message.slice(0, 400)));
    const replyB = await w.call<AttachReply>({ cmd: 'attachAs', buffer: heap.buffer, threadId: idB });
    await heap.reclaimWhenGone(idA); // resolves: the stopped instance gave its lock up
    const afterA = states(idA);
    heap.check();
    const bad = filled.reduce((n, p, i) => n + badBytes(heap.u8, p, sizes[i]!, 5), 0);
    for (const p of filled) heap.free(p);
    const big = heap.malloc(3 * MiB); // the global lock the fault kept was broken
    if (big !== 0) heap.free(big);
    heap.check();
    w.worker.terminate();
    const reclaimedB = await heap.reclaimWhenGone(idB);
    heap.check();
    return { idB, fault, stateA, sameId, replyB, afterA, bad, big, reclaimedB, threadsAttached: heap.stats().threadsAttached, liveBlocks: heap.stats().liveBlocks };
  } finally {
    endWorkers();
    heap.detach();
  }
}

async function reservedIdsScenario() {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
  const named = (id: number) => heap.stats().threads.filter((t) => t.threadId === id).length;
  try {
    // The usual course: attached under the id it was given, it fills blocks, is terminated and reclaimed.
    const idA = heap.newThreadId();
    const a = startWorker();
    const replyA = await a.call<AttachReply>({ cmd: 'attachAs', buffer: heap.buffer, threadId: idA });
    const sizes = [100, 5000, 100_000];
    const filled = await a.call<number[]>({ cmd: 'fill', sizes, seed: 3 });
    const attachedA = heap.stats().threads.filter((t) => t.state === 'attached').map((t) => t.threadId);
    a.worker.terminate();
    const reclaimedA = await heap.reclaimWhenGone(idA);
    const againA = await heap.reclaimWhenGone(idA); // the lock is this thread's now: answered at once
    heap.check();
    const badA = filled.reduce((n, p, i) => n + badBytes(heap.u8, p, sizes[i]!, 3), 0);
    for (const p of filled) heap.free(p);
    heap.check();

    // Reclaimed before it attached (nobody held its lock: granted at once): it never attaches.
    const idB = heap.newThreadId();
    const b = startWorker();
    const earlyB = await heap.reclaimWhenGone(idB);
    let answeredB = false;
    void b.call({ cmd: 'attachAs', buffer: heap.buffer, threadId: idB }).then(
      () => (answeredB = true),
      () => (answeredB = true),
    );
    await sleep(500);
    const namedB = named(idB);
    b.worker.terminate();

    // Loaded, told to attach, and terminated 0 to 8 ms later: reclaimed wherever it got to
    // (waiting for its lock, inside attach, attached).
    const rounds: { delay: number; reclaimed: boolean; named: number; attached: number }[] = [];
    for (const delay of [0, 0, 1, 2, 4, 8]) {
      const id = heap.newThreadId();
      const w = startWorker();
      await w.call({ cmd: 'ping' });
      void w.call({ cmd: 'attachAs', buffer: heap.buffer, threadId: id }).catch(() => undefined);
      if (delay > 0) await sleep(delay);
      w.worker.terminate();
      const reclaimed = await heap.reclaimWhenGone(id);
      heap.check();
      rounds.push({ delay, reclaimed, named: named(id), attached: heap.stats().threadsAttached });
    }
    const s = heap.stats();
    return {
      idA,
      replyA,
      attachedA,
      reclaimedA,
      againA,
      badA,
      earlyB,
      answeredB,
      namedB,
      rounds,
      threadsAttached: s.threadsAttached,
      liveBlocks: s.liveBlocks,
    };
  } finally {
    endWorkers();
  }
}

declare global {
  interface Window {
    suite: Record<string, () => Promise<unknown>>;
  }
}

window.suite = {
  attach: attachScenario,
  crossFrees: crossFreesScenario,
  memoryCopy: memoryCopyScenario,
  nonBlocking: nonBlockingScenario,
  growth: growthScenario,
  reclaim: reclaimScenario,
  reservedIds: reservedIdsScenario,
  faultThenAttachAsync: faultThenAttachAsyncScenario,
};
document.title = 'ready';
