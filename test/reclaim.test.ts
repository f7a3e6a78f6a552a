/**
 * Reclaim of a worker terminated at a chosen point (worker.terminate() gives it no chance to
 * clean up): whatever it was doing, once it is reclaimed and every block is freed, nothing is
 * lost. The chosen point is made deterministic with the Stage-1 test hooks' delay: a
 * stage1Push spins there, and the main thread terminates the worker while it spins.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { G_LOCK, OWNER_POOL, S1_HEAD_W, S1_SLOT_MASK, SM_OWNER, SM_POOL_DEPTH, TH_STATE, TH_THREAD_ID, TS_DEAD, TS_FREE } from '../src/layout.js';
import { COUNT, classOf } from '../src/size-classes.js';
import { internals } from '../src/heap.js';
import { slabsWithBlocksOut } from './inspect.js';
import { armCrash } from '../src/crash.js';
import { startHeapWorker, terminateAll, waitFor } from './remote-heap.js';
import { ThreadContext, readGeometry } from '../src/context.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Word index of thread slot `s`'s area in a heap's buffer (read with no thread attached). */
function threadWordOf(buffer: SharedArrayBuffer, s: number): number {
  return new ThreadContext(buffer, readGeometry(buffer, 'test'), { slot: -1, lockMe: 0, lockDepth: 0, faulted: false }).threadW(s);
}

const MiB = 1 << 20;
const SIZE = 1024; // 63 blocks per one-slot slab; magazine of 128 with magazineCapacity 256

afterEach(terminateAll);

describe('reclaim after terminate at a chosen point', () => {
  it('a worker terminated in the middle of draining its magazine loses no block', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4, magazineCapacity: 256 });
    const hdr = new Int32Array(heap.buffer);
    const hooks = new Int32Array(new SharedArrayBuffer(8)); // Stage-1 test hooks: [delay, guards off]
    const r = startHeapWorker((w) => heap.watch(w));
    await r.remote.attach(heap.buffer);
    await r.remote.installStage1Hooks(hooks);
    // Slab A: all 63 blocks; slab B: 10 blocks (its refill batch left 22 more in the magazine).
    const blocks = await Promise.all(Array.from({ length: 73 }, () => r.remote.malloc(SIZE)));
    const slabA = blocks[0]! >>> 16;
    const slabB = blocks[72]! >>> 16;
    expect(blocks.slice(0, 63).every((p) => p >>> 16 === slabA)).toBe(true);
    expect(blocks.slice(63).every((p) => p >>> 16 === slabB)).toBe(true);
    // All freed into the worker's magazine: [22 of B from the refill][63 of A][10 of B].
    await Promise.all(blocks.map((p) => r.remote.free(p)));
    heap.check();

    // flush(): the drain empties slab A, which goes to Stage 1, where stage1Push spins in the test
    // delay while B's last 10 blocks are still on their way out of the magazine.
    Atomics.store(hooks, 0, 2_000_000_000);
    const flushing = r.remote.flush().catch(() => 'terminated');
    // Its depth on the list is written just before the delay (slab A was never given back: 0 till then).
    await waitFor(hdr, internals(heap).metaW(slabA) + SM_POOL_DEPTH, (v) => v > 0, 5);
    Atomics.store(hooks, 0, 0); // the worker already read it; the reclaim below must not spin
    await r.worker.terminate();
    await r.exited; // watch() reclaimed the slot
    void flushing;

    expect(heap.stats().liveBytes).toBe(0);
    expect(heap.stats().threadsAttached).toBe(1);
    // Both at once, so that a failure shows all of it: check() passes (slab A, half pushed, is
    // on its Stage-1 list or back in use), and slab B's blocks, all freed, are not counted out
    // (CACHED in no magazine).
    let checked = 'passes';
    try {
      heap.check();
    } catch (e) {
      checked = (e as Error).message;
    }
    expect({ check: checked, slabsWithBlocksOut: slabsWithBlocksOut(heap) }).toEqual({ check: 'passes', slabsWithBlocksOut: [] });
  }, 20_000);

  it('a remote free that arrives while a reclaim is under way is collected, and later ones too', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4, magazineCapacity: 256 });
    const hdr = new Int32Array(heap.buffer);
    const dead = startHeapWorker(); // not watched: the reclaim is started by hand, in another worker
    await dead.remote.attach(heap.buffer);
    const reclaimer = startHeapWorker((w) => heap.watch(w));
    await reclaimer.remote.attach(heap.buffer);
    const hooks = new Int32Array(new SharedArrayBuffer(8)); // Stage-1 test hooks: [delay, guards off]
    await reclaimer.remote.installStage1Hooks(hooks);
    // Slab A: all 63 blocks; slab B: 10 blocks, both owned by the worker that will die.
    const blocks = await Promise.all(Array.from({ length: 73 }, () => dead.remote.malloc(SIZE)));
    const slabA = blocks[0]! >>> 16;
    const inB = blocks.slice(63);
    expect(inB.every((p) => p >>> 16 === slabA + 1)).toBe(true);
    // The main thread frees all of A: the reclaim will find A empty and push it to Stage 1.
    for (const p of blocks.slice(0, 63)) heap.free(p);
    heap.flush();
    const threadId = dead.worker.threadId;
    const deadTid = heap.stats().threads.find((t) => t.threadId === threadId)!.tid;
    await dead.worker.terminate();

    // The reclaimer spins in stage1Push(A) (the test delay) before it abandons B ...
    Atomics.store(hooks, 0, 2_000_000_000);
    const reclaimed = reclaimer.remote.reclaim(threadId);
    await waitFor(hdr, internals(heap).metaW(slabA) + SM_POOL_DEPTH, (v) => v > 0, 5);
    Atomics.store(hooks, 0, 0);
    // ... while the main thread frees a block of B: B still names the dead thread as its owner.
    heap.free(inB[0]!);
    heap.flush();
    const ownerOfB = Atomics.load(hdr, internals(heap).metaW(slabA + 1) + SM_OWNER);
    expect(ownerOfB, 'the free reached B while the reclaim was still under way').toBe(deadTid);
    expect(await reclaimed).toBe(true);
    // Later remote frees of B, now abandoned, must reach a thread that collects them.
    for (const p of inB.slice(1)) heap.free(p);
    heap.flush();
    await reclaimer.remote.flush();

    expect(heap.stats().liveBytes).toBe(0);
    let checked = 'passes';
    try {
      heap.check();
    } catch (e) {
      checked = (e as Error).message;
    }
    expect({ check: checked, slabsWithBlocksOut: slabsWithBlocksOut(heap) }).toEqual({ check: 'passes', slabsWithBlocksOut: [] });
  }, 20_000);

  it('a worker terminated holding its claim on a Stage-1 slab, with slabs pushed above it meanwhile: the slab goes back to the list, every count right', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const hdr = new Int32Array(heap.buffer);
    const t = internals(heap);
    const cls = classOf(4096);
    /** Fills `slabs` fresh slabs of the class on the main thread and empties them into Stage 1. */
    const pushSlabs = (slabs: number): void => {
      const blocks = Array.from({ length: slabs * COUNT[cls]! }, () => heap.malloc(4096));
      for (const b of blocks) heap.free(b);
      heap.flush();
    };
    pushSlabs(3);
    const before = heap.stats().classes[cls]!.stage1Slabs;
    expect(before).toBeGreaterThanOrEqual(3);
    const claimed = Atomics.load(hdr, S1_HEAD_W + cls) & S1_SLOT_MASK;

    const r = startHeapWorker((w) => heap.watch(w));
    await r.remote.attach(heap.buffer);
    const hooks = new Int32Array(new SharedArrayBuffer(8)); // Stage-1 test hooks: [delay, guards off]
    await r.remote.installStage1Hooks(hooks);
    const tid = heap.stats().threads.find((x) => x.threadId === r.worker.threadId)!.tid;
    // The worker's malloc pops the head slab: it claims it, then spins before the unlinking CAS.
    Atomics.store(hooks, 0, 2_000_000_000);
    const pending = r.remote.malloc(4096).catch(() => 'terminated');
    await waitFor(hdr, t.metaW(claimed) + SM_OWNER, (v) => v === tid, 5);
    Atomics.store(hooks, 0, 0);
    // Meanwhile the main thread's pops find the head claimed (Stage 2 instead), and it pushes two more slabs above it.
    pushSlabs(2);
    expect(Atomics.load(hdr, t.metaW(claimed) + SM_OWNER)).toBe(tid);
    await r.worker.terminate();
    await r.exited; // watch() reclaimed the slot
    void pending;

    expect(Atomics.load(hdr, t.metaW(claimed) + SM_OWNER)).toBe(OWNER_POOL);
    let checked = 'passes';
    try {
      heap.check();
    } catch (e) {
      checked = (e as Error).message;
    }
    expect({ check: checked, stage1Slabs: heap.stats().classes[cls]!.stage1Slabs }).toEqual({ check: 'passes', stage1Slabs: before + 2 });
    // Every one of them can be popped again.
    const again = Array.from({ length: (before + 2) * COUNT[cls]! }, () => heap.malloc(4096));
    expect(heap.stats().classes[cls]!.stage1Slabs).toBe(0);
    expect(heap.stats().stages.stage1).toBeGreaterThanOrEqual(before + 2);
    for (const b of again) heap.free(b);
    heap.check();
  }, 20_000);
});

describe('reclaim in exit handlers and after a half-done attach', () => {
  it("reclaim(worker) in the program's own 'exit' handler does not wait on a lock another worker holds: false at once, both reclaimed once the lock is free", async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const a = startHeapWorker();
    const b = startHeapWorker((w) => heap.watch(w));
    let answer: string | undefined;
    let tookMs = -1;
    // Registered before watch()'s own: it runs first.
    a.worker.once('exit', () => {
      const t0 = performance.now();
      try {
        answer = String(heap.reclaim(a.worker));
      } catch (e) {
        answer = `${(e as Error).name}: ${(e as Error).message}`;
      }
      tookMs = performance.now() - t0;
    });
    heap.watch(a.worker);
    await a.remote.attach(heap.buffer);
    await b.remote.attach(heap.buffer);
    const kept = await a.remote.malloc(5000);
    await b.remote.holdLock(); // b keeps the global lock
    // a exits while b holds the lock. (Were b dead too, not yet known dead, the wait could not end
    // before the lock's timeout: b's exit event cannot run while a's handler waits. Which of two
    // workers' exits this thread sees first is not fixed, so b stays alive until a's was seen.)
    await a.worker.terminate();
    await a.exited;
    expect(answer).toBe('false');
    void b.worker.terminate();
    await b.exited;
    expect(tookMs).toBeLessThan(2500); // before: the lock's 3 s timeout, then a throw
    for (let i = 0; i < 100 && heap.stats().threadsAttached > 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(heap.stats().threadsAttached).toBe(1);
    heap.free(kept);
    const big = heap.malloc(3 * MiB); // the lock b held was broken
    expect(big).toBeGreaterThan(0);
    heap.free(big);
    heap.check();
    heap.detach();
  });

  it("reclaim(threadId) takes both slots of a thread whose instance a fault stopped and whose attach again was killed half way", async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const w = startHeapWorker();
    const id = await w.remote.attach(heap.buffer);
    await w.remote.malloc(200);
    await w.worker.terminate();
    const other = startHeapWorker(); // its slot, reclaimed, is a free one among the slots in use
    const otherId = await other.remote.attach(heap.buffer);
    await other.worker.terminate();
    expect(heap.reclaim(otherId)).toBe(true);
    // The slot as a fault leaves it (fault.ts: DEAD), and a free slot reserved under the same id
    // (attach.ts: the id written, the state not yet ATTACHED).
    const t = internals(heap);
    const i32 = new Int32Array(heap.buffer);
    const slot = (s: number): number => t.geo.threadsW + s * t.geo.threadWords;
    const dead = [...Array(t.geo.maxThreads).keys()].find((s) => Atomics.load(i32, slot(s) + TH_THREAD_ID) === id + 1)!;
    Atomics.store(i32, slot(dead) + TH_STATE, TS_DEAD);
    const spare = [...Array(t.geo.maxThreads).keys()].find((s) => Atomics.load(i32, slot(s) + TH_THREAD_ID) === 0 && Atomics.load(i32, slot(s) + TH_STATE) === TS_FREE)!;
    Atomics.store(i32, slot(spare) + TH_THREAD_ID, id + 1);
    expect(heap.reclaim(id)).toBe(true);
    const left = [...Array(t.geo.maxThreads).keys()].filter((s) => Atomics.load(i32, slot(s) + TH_THREAD_ID) === id + 1);
    expect(left).toEqual([]);
    expect(heap.stats().threadsAttached).toBe(1);
    heap.check();
    heap.detach();
  });
});

describe("a fault inside the reclaim watch() runs at a worker's exit", () => {
  it('stops this thread as in any call: its slot DEAD, so that another thread breaks the lock it kept', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const victim = startHeapWorker((w) => heap.watch(w));
    const other = startHeapWorker();
    await victim.remote.attach(heap.buffer);
    await other.remote.attach(heap.buffer);
    await victim.remote.malloc(5000);
    // The exit listener's error is the process's uncaught exception (as any listener's): caught here.
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const seen: Error[] = [];
    process.on('uncaughtException', (e) => seen.push(e));
    armCrash(1, () => {
      throw new RangeError('Maximum call stack size exceeded'); // at the reclaim's first step under the lock
    });
    try {
      // Not awaited: a listener that throws keeps the exit's later listeners (terminate()'s own) from running.
      void victim.worker.terminate();
      for (let i = 0; i < 300 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    } finally {
      armCrash(0, () => {
        throw new Error('off');
      });
      process.removeAllListeners('uncaughtException');
      for (const l of listeners) process.on('uncaughtException', l);
    }
    expect(seen.map((e) => e.message)).toEqual([expect.stringMatching(/^watch\(worker\): cut off by RangeError: Maximum call stack size exceeded/)]);
    expect(() => heap.malloc(16)).toThrow(/detached/);
    const t0 = performance.now();
    const big = await other.remote.malloc(3 * MiB); // takes the lock this thread kept: broken, no wait
    expect(big).toBeGreaterThan(0);
    expect(performance.now() - t0).toBeLessThan(2500); // before: the 3 s of a lock timeout
    await other.remote.free(big);
    await other.remote.check();
  });
});

describe('a reclaim that waited for a busy lock, when a fault then stopped the instance that waited', () => {
  it('is made by the thread\'s next attachment', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const holder = startHeapWorker((w) => heap.watch(w));
    const victim = startHeapWorker((w) => heap.watch(w));
    await holder.remote.attach(heap.buffer);
    const vid = await victim.remote.attach(heap.buffer);
    await victim.remote.churn(200, 500);
    const i32 = new Int32Array(heap.buffer);
    const held = holder.remote.holdLockFor(400);
    while (Atomics.load(i32, G_LOCK) === 0) await new Promise((r) => setTimeout(r, 1));
    await victim.worker.terminate(); // watch() finds the lock busy: the reclaim waits in its list
    const state = (h: SharedHeap): string => h.stats().threads.find((x) => x.threadId === vid)?.state ?? 'reclaimed';
    expect(state(heap)).toBe('dead');
    const cached = [heap.malloc(64), heap.malloc(64)];
    for (const p of cached) heap.free(p);
    armCrash(1, () => {
      throw new RangeError('Maximum call stack size exceeded');
    });
    try {
      expect(() => heap.flush()).toThrow(/cut off by RangeError/);
    } finally {
      armCrash(0, () => {
        throw new Error('off');
      });
    }
    const again = SharedHeap.attach(heap.buffer); // waits for the holder's lock, then reclaims the stopped slot
    expect(again).not.toBe(heap);
    await held;
    for (let i = 0; i < 300 && state(again) !== 'reclaimed'; i++) await new Promise((r) => setTimeout(r, 10));
    expect(state(again)).toBe('reclaimed');
    again.check();
    again.detach();
  });
});

describe('watch() and detach()', () => {
  /** Thread slot states read from the buffer (through the context of `heap`, attached or not). */
  const states = (heap: SharedHeap): number[] => {
    const t = internals(heap);
    return Array.from({ length: t.geo.maxThreads }, (_, s) => Atomics.load(t.i32, t.threadW(s) + TH_STATE));
  };
  const until = async (done: () => boolean, ms = 5000): Promise<boolean> => {
    for (const end = Date.now() + ms; !done() && Date.now() < end; ) await new Promise((res) => setTimeout(res, 5));
    return done();
  };
  /** The longest gap between ticks of a 1 ms interval until stop() is called. */
  const loopGaps = (): { stop: () => number } => {
    let last = Date.now();
    let worst = 0;
    const timer = setInterval(() => {
      const now = Date.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 1);
    return { stop: () => (clearInterval(timer), worst) };
  };

  it("a worker watched by a thread that then detached is reclaimed at its exit: its slot is free again", async () => {
    // The exit handler found the watching instance detached and did nothing: the worker's slot
    // stayed taken for good, and with maxThreads 2 the next attach threw ThreadSlotsExhaustedError
    // (an audit, 2026-12-04). Now the thread attaches again for the reclaim, and detaches.
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 });
    const buffer = heap.buffer;
    const r = startHeapWorker((w) => heap.watch(w));
    await r.remote.attach(buffer);
    await r.remote.churn(100, 200);
    heap.detach();
    await r.worker.terminate();
    expect(await until(() => states(heap).every((s) => s === TS_FREE))).toBe(true); // attached, reclaimed, detached again
    const again = SharedHeap.attach(buffer);
    again.check();
    const r2 = startHeapWorker((w) => again.watch(w)); // a slot for a new worker
    await r2.remote.attach(buffer);
    await r2.worker.terminate();
    again.detach();
  });

  it('watch() on a detached instance watches for the thread (a pool that starts a worker after the thread detached): reclaimed at its exit', async () => {
    // It was accepted and did nothing (an audit); then it threw, which crashed a program whose
    // piscina pool started a thread after the detach (watchPool's listener; a second audit).
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 });
    heap.detach();
    const r = startHeapWorker((w) => heap.watch(w));
    await r.remote.attach(heap.buffer);
    expect(states(heap).filter((s) => s !== TS_FREE)).toHaveLength(1);
    await r.worker.terminate();
    expect(await until(() => states(heap).every((s) => s === TS_FREE))).toBe(true);
  });

  it("exits while another exited worker holds the lock: nothing waits in the exit handlers, and both are reclaimed", async () => {
    // The attach for the reclaim detached with a wait for the lock: in a worker watching others,
    // a wait for good (the holder's own exit event, which marks it dead, could not run); on a main
    // thread, a 3 s stall, after which the thread stayed attached (an audit's repro).
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const a = startHeapWorker((w) => heap.watch(w));
    const b = startHeapWorker((w) => heap.watch(w));
    await a.remote.attach(heap.buffer);
    await b.remote.attach(heap.buffer);
    heap.detach();
    const i32 = new Int32Array(heap.buffer);
    void a.remote.holdLockFor(60_000);
    expect(await until(() => Atomics.load(i32, G_LOCK) !== 0)).toBe(true);
    const gaps = loopGaps();
    await Promise.all([b.worker.terminate(), a.worker.terminate()]);
    expect(await until(() => states(heap).every((s) => s === TS_FREE))).toBe(true);
    expect(gaps.stop()).toBeLessThan(1000);
    const again = SharedHeap.attach(heap.buffer);
    again.check();
    again.detach();
  });

  it("a thread that detached and attached again: the new instance knows the workers the first watched", async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 3 });
    const buffer = heap.buffer;
    const r = startHeapWorker((w) => heap.watch(w));
    const id = await r.remote.attach(buffer);
    heap.detach();
    const again = SharedHeap.attach(buffer);
    expect(again).not.toBe(heap);
    // Still running: refused (reclaiming a running thread corrupts the heap); the new instance
    // said before that it was never watched, and let a reclaim(threadId) of it through.
    expect(() => again.reclaim(id)).toThrow(/is a watched worker that is still running/);
    await r.worker.terminate();
    expect(await until(() => !again.stats().threads.some((x) => x.threadId === id))).toBe(true);
    expect(again.reclaim(r.worker)).toBe(false); // known (watched), reclaimed already
    again.check();
    again.detach();
  });

  it('a worker watched through an old detached instance after the thread attached again is reclaimed by the new one', async () => {
    // The watch stayed on the old instance, which nothing linked to the new one: at the exit the
    // reclaim ran on the new instance's empty list and the slot stayed DEAD, one per worker a pool
    // started (an audit, watchPool with a detach and an attach in between).
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 3 });
    heap.detach();
    const again = SharedHeap.attach(heap.buffer);
    const r = startHeapWorker((w) => heap.watch(w));
    const id = await r.remote.attach(heap.buffer);
    expect(() => again.reclaim(id)).toThrow(/is a watched worker that is still running/);
    await r.worker.terminate();
    expect(await until(() => !again.stats().threads.some((x) => x.threadId === id))).toBe(true);
    again.check();
    again.detach();
  });

  it('watches made through detached instances that were merged, and a stopped instance\'s: the next attachment refuses a reclaim of each running worker and knows each after its exit', async () => {
    // A watch through an instance merged into another detached one stayed on its own map, and the
    // stopped instance's watches, adopted after the waiting ones, replaced them: the next attachment
    // then let reclaim(threadId) of a running watched worker through (an audit).
    const h0 = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
    const buffer = h0.buffer;
    h0.detach();
    const h1 = SharedHeap.attach(buffer);
    h1.detach();
    const rs = [startHeapWorker((w) => h0.watch(w)), startHeapWorker((w) => h1.watch(w)), startHeapWorker((w) => h0.watch(w))];
    const ids: number[] = [];
    for (const r of rs) ids.push(await r.remote.attach(buffer));
    const h2 = SharedHeap.attach(buffer);
    for (const id of ids) expect(() => h2.reclaim(id)).toThrow(/is a watched worker that is still running/);
    await Promise.all(rs.map((r) => r.worker.terminate()));
    expect(await until(() => !h2.stats().threads.some((x) => ids.includes(x.threadId)))).toBe(true);
    for (const r of rs) expect(h2.reclaim(r.worker)).toBe(false); // known, reclaimed already
    h2.check();
    h2.detach();
  });

  it("watches waiting from a detach and a stopped instance's: the next attachment takes both", async () => {
    const h0 = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 6 });
    const buffer = h0.buffer;
    h0.detach();
    const h1 = SharedHeap.attach(buffer);
    const rf = startHeapWorker((w) => h1.watch(w));
    const idf = await rf.remote.attach(buffer);
    const p = h1.malloc(3 * MiB);
    armCrash(1, () => {
      throw new RangeError('Maximum call stack size exceeded');
    });
    try {
      expect(() => {
        h1.free(p);
        h1.flush();
      }).toThrow(/cut off by RangeError/); // h1 stopped by the fault
    } finally {
      armCrash(0, () => {
        throw new Error('off');
      });
    }
    const r = startHeapWorker((w) => h0.watch(w)); // through h0, detached: waits for the next attachment
    const id = await r.remote.attach(buffer);
    const h2 = SharedHeap.attach(buffer);
    expect(() => h2.reclaim(id)).toThrow(/is a watched worker that is still running/);
    expect(() => h2.reclaim(idf)).toThrow(/is a watched worker that is still running/);
    await Promise.all([r.worker.terminate(), rf.worker.terminate()]);
    expect(await until(() => !h2.stats().threads.some((x) => x.threadId === id || x.threadId === idf))).toBe(true);
    h2.check();
    h2.detach();
  });

  it('an instance dropped without detach() hands its watches on too', async () => {
    // The collector's detach of a dropped instance did not, and a watched worker's exit found
    // nothing to reclaim: its slot stayed DEAD (an audit's repro).
    const make = (): { buffer: SharedArrayBuffer; r: ReturnType<typeof startHeapWorker> } => {
      const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 });
      return { buffer: heap.buffer, r: startHeapWorker((w) => heap.watch(w)) };
    };
    const { buffer, r } = make();
    await r.remote.attach(buffer);
    const view = new Int32Array(buffer);
    const attachedNow = (): number => {
      let n = 0;
      for (let s = 0; s < 2; s++) if (Atomics.load(view, threadWordOf(buffer, s) + TH_STATE) !== TS_FREE) n++;
      return n;
    };
    expect(await until(() => (gc(), attachedNow() === 1), 5000)).toBe(true); // the main thread's instance collected and detached
    await r.worker.terminate();
    expect(await until(() => attachedNow() === 0)).toBe(true);
  });
});
