/**
 * Fault tolerance (issue 8): dead and misbehaving workers, reclaim misuse, stray writes into freed
 * blocks. A scenario in which the main thread could block forever runs in a child process with a
 * deadline (test/hang-scenarios.ts), so a hang fails its test instead of hanging the run.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { HeapCorruptionError, HeapStateError, SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { armCrash } from '../src/crash.js';
import { guarded } from '../src/fault.js';
import { cutOffLargeMalloc, lockWord, skewInuse, skewMagazineTop, slotIds } from './fault-internals.js';
import { startHeapWorker, startWorker, terminateAll } from './remote-heap.js';
import { checked } from './fixtures.js';
import { runScenarioFile, type ScenarioRun } from './child-scenario.js';

const MiB = 1 << 20;

afterEach(terminateAll);


const scenarioFile = fileURLToPath(new URL('./hang-scenarios.ts', import.meta.url));

/** Runs a scenario of test/hang-scenarios.ts in a child process, killed after `deadlineMs`. */
function runScenario(name: string, deadlineMs = 12_000): Promise<ScenarioRun> {
  return runScenarioFile(scenarioFile, [name], deadlineMs);
}

function hangMessage(name: string, r: ScenarioRun): string {
  return `${name}: ${r.hung ? `hung (killed after ${Math.round(r.ms)} ms)` : 'finished'}; output: ${r.output.slice(0, 2000)}`;
}

describe('finding 1: reclaim(threadId) of a thread that died holding the lock', () => {
  it('completes promptly without watch(), and the heap works after it', async () => {
    const r = await runScenario('reclaimLockHolder');
    expect(r.hung, hangMessage('reclaimLockHolder', r)).toBe(false);
    expect(r.result, hangMessage('reclaimLockHolder', r)).toMatchObject({ reclaimed: true, check: 'passes', lock: 0, attached: 1 });
    expect(r.result!.reclaimMs as number).toBeLessThan(1000);
    expect(r.result!.p as number).toBeGreaterThan(0);
  }, 30_000);

  it('with neither watch() nor reclaim(), the main thread gets a HeapError naming the holder instead of hanging', async () => {
    const r = await runScenario('mallocAfterUnwatchedHolderDied');
    expect(r.hung, hangMessage('mallocAfterUnwatchedHolderDied', r)).toBe(false);
    const res = r.result as { id: number; error?: { code?: string; message: string }; ms: number };
    expect(res.error?.code, hangMessage('mallocAfterUnwatchedHolderDied', r)).toBe('ERR_LOCK_TIMEOUT');
    expect(res.error!.message).toContain(`threadId ${res.id}`);
    expect(res.error!.message).toMatch(/reclaim\(/);
    expect(res.error!.message).toMatch(/mallocAsync/);
    expect(res.ms).toBeLessThan(10_000);
    expect(r.result).toMatchObject({ reclaimed: true, check: 'passes', lock: 0 });
    expect(r.result!.q as number).toBeGreaterThan(0);
  }, 30_000);
});

/**
 * Runs hang scenario `name`, in which a watched worker dies holding the lock: it must not hang, and
 * its synchronous call must have ended within seconds in a LockTimeoutError naming the holder and
 * the asynchronous call to use (`names`). Returns the scenario's outcome.
 */
async function syncCallTimedOut(name: string, names: RegExp): Promise<Awaited<ReturnType<typeof runScenario>>> {
  const r = await runScenario(name);
  expect(r.hung, hangMessage(name, r)).toBe(false);
  const res = r.result as { id: number; syncError?: { code?: string; message: string }; syncMs: number };
  expect(res.syncError?.code, hangMessage(name, r)).toBe('ERR_LOCK_TIMEOUT');
  expect(res.syncError!.message).toContain(`threadId ${res.id}`);
  expect(res.syncError!.message).toMatch(names);
  expect(res.syncMs).toBeLessThan(10_000);
  return r;
}

describe('finding 2: a watched worker dies holding the lock while the main thread allocates', () => {
  it('the synchronous calls end in a HeapError within seconds, mallocAsync then succeeds', async () => {
    const r = await syncCallTimedOut('watchedHolderDiesWhileMainAllocates', /mallocAsync/);
    expect(r.result).toMatchObject({ check: 'passes', lock: 0 });
    expect(r.result!.p as number).toBeGreaterThan(0);
    expect(r.result!.recoveries as number).toBeGreaterThanOrEqual(1);
  }, 30_000);
});

describe('a watched worker dies holding the lock while the main thread frees a large block', () => {
  it('free ends in a HeapError naming freeAsync and frees nothing; freeAsync then frees it', async () => {
    const r = await syncCallTimedOut('watchedHolderDiesWhileMainFrees', /freeAsync/);
    expect(r.result).toMatchObject({ liveAfterSync: 1, keptAfterSync: true, liveAfterAsync: 0, check: 'passes', lock: 0 });
    expect(r.result!.recoveries as number).toBeGreaterThanOrEqual(1);
  }, 30_000);
});

describe('finding 3: worker.threadId is -1 after the exit', () => {
  it('reclaim(worker) in an exit handler registered before watch() reclaims the slot', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const r = startHeapWorker();
    const outcome = new Promise<unknown>((resolve) =>
      r.worker.once('exit', () => {
        try {
          resolve({ reclaimed: heap.reclaim(r.worker as never), threadId: r.worker.threadId });
        } catch (e) {
          resolve({ error: (e as Error).message });
        }
      }),
    );
    heap.watch(r.worker);
    await r.remote.attach(heap.buffer);
    await r.remote.malloc(100);
    await r.worker.terminate();
    expect(await outcome).toEqual({ reclaimed: true, threadId: -1 });
    expect(heap.stats().threadsAttached).toBe(1);
    heap.check();
    heap.detach();
  }, 20_000);

  it('reclaim(worker) in an exit handler registered after watch(), and later, returns false: watch() reclaimed the slot', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const r = startHeapWorker();
    heap.watch(r.worker);
    const outcome = new Promise<unknown>((resolve) =>
      r.worker.once('exit', () => {
        try {
          resolve({ reclaimed: heap.reclaim(r.worker as never), attached: heap.stats().threadsAttached });
        } catch (e) {
          resolve({ error: (e as Error).message });
        }
      }),
    );
    await r.remote.attach(heap.buffer);
    await r.remote.malloc(100);
    await r.worker.terminate();
    expect(await outcome).toEqual({ reclaimed: false, attached: 1 });
    expect(heap.reclaim(r.worker as never)).toBe(false);
    heap.check();
    heap.detach();
  }, 20_000);

  it('reclaim(worker.threadId) after the exit (-1) and reclaim(worker) of an unwatched worker say what to do', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const r = startHeapWorker();
    await r.remote.attach(heap.buffer);
    await r.worker.terminate();
    expect(r.worker.threadId).toBe(-1);
    expect(() => heap.reclaim(r.worker.threadId)).toThrow(/reclaim\(threadId\): -1.*watch\(worker\)/s);
    expect(() => heap.reclaim(r.worker as never)).toThrow(/reclaim\(worker\):.*watch\(worker\)/s);
    heap.check();
    heap.detach();
  }, 20_000);

  it('attach() with every slot taken names watch() and reclaim() in its hint', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 });
    const a = startHeapWorker();
    await a.remote.attach(heap.buffer);
    const b = startHeapWorker();
    const err = await b.remote.attach(heap.buffer).then(() => undefined, (e: Error) => e.message);
    expect(err).toMatch(/all 2 thread slots are taken/);
    expect(err).toMatch(/watch\(worker\)/);
    expect(err).toMatch(/reclaim\(/);
    heap.detach();
  }, 20_000);
});

describe('finding 4: reclaiming a thread that is still running', () => {
  it('reclaim(worker) of a running worker is refused with a clear error; the heap stays intact', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const r = startHeapWorker((w) => heap.watch(w));
    await r.remote.attach(heap.buffer);
    const blocks = await Promise.all(Array.from({ length: 40 }, () => r.remote.malloc(48)));
    expect(() => heap.reclaim(r.worker as never)).toThrow(/reclaim\(worker\): .*still running/);
    for (const p of blocks) await r.remote.free(p);
    await r.remote.flush();
    expect(heap.stats().threadsAttached).toBe(2);
    expect(checked(heap)).toBe('passes');
    heap.detach();
  }, 20_000);

  it('reclaim(threadId) of a watched worker that is still running is refused; no corruption follows', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const r = startHeapWorker((w) => heap.watch(w));
    await r.remote.attach(heap.buffer);
    const blocks = await Promise.all(Array.from({ length: 40 }, () => r.remote.malloc(48)));
    let outcome: unknown;
    try {
      outcome = heap.reclaim(r.worker.threadId);
    } catch (e) {
      outcome = (e as Error).message;
    }
    // What followed a wrong reclaim: the worker's frees go to a slot marked free, another claims it.
    for (const p of blocks) await r.remote.free(p);
    const other = startHeapWorker((w) => heap.watch(w));
    await other.remote.attach(heap.buffer);
    await other.remote.free(await other.remote.malloc(48));
    expect({ outcome, check: checked(heap) }).toEqual({
      outcome: expect.stringMatching(/reclaim\(threadId\): .*still running/),
      check: 'passes',
    });
    heap.detach();
  }, 20_000);
});

/** A heap with 16 live blocks of 64 bytes, block i filled with 0x40 + i (for expectLiveIntact). */
function heapWithLiveBlocks(): { heap: SharedHeap; u8: Uint8Array; live: number[] } {
  const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 2 });
  const u8 = heap.u8;
  const live: number[] = [];
  for (let i = 0; i < 16; i++) {
    const p = heap.malloc(64);
    u8.fill(0x40 + i, p, p + 64);
    live.push(p);
  }
  return { heap, u8, live };
}

function expectLiveIntact(u8: Uint8Array, live: number[]): void {
  live.forEach((p, i) => expect(u8.subarray(p, p + 64).every((b) => b === 0x40 + i), `live block ${i}`).toBe(true));
}

describe('finding 7: a write into a freed block', () => {
  it.each([
    ['the offset of a live block', 'live'],
    ['a byte pattern (a negative offset)', 'pattern'],
    ['the offset of another freed block', 'freed'],
  ])('written as %s, cannot make malloc hand out a live block, fail or lose a block: nothing of the allocator lives in a freed block', (_what, kind) => {
    const { heap, u8, live } = heapWithLiveBlocks();
    const freed: number[] = [];
    for (let i = 0; i < 16; i++) freed.push(heap.malloc(64));
    for (const p of freed) heap.free(p);
    heap.flush(); // the freed blocks are back in their slab (FREE), where a refill finds them by their states
    const dv = new DataView(heap.buffer);
    for (const p of freed) {
      if (kind === 'live') dv.setInt32(p, live[3]!, true);
      else if (kind === 'freed') dv.setInt32(p, freed[0]!, true);
      else heap.u8.fill(0xab, p, p + 64);
    }
    const liveSet = new Set(live);
    const handed = Array.from({ length: 64 }, () => heap.malloc(64));
    const bad = handed.filter((p) => liveSet.has(p) || p <= 0 || p % 16 !== 0 || p >= heap.buffer.byteLength);
    expect(bad, 'malloc handed out live blocks or offsets that are not blocks').toEqual([]);
    expect(new Set(handed).size, 'a block handed out twice').toBe(64);
    // The refill after the flush found all 16 freed blocks by their states, and malloc hands them
    // out first, in address order.
    expect(handed.slice(0, 16)).toEqual([...freed].sort((x, y) => x - y));
    expectLiveIntact(u8, live);
    expect(checked(heap)).toBe('passes');
    heap.detach();
  });
});

describe('a write into a block freed by another thread, before its owner collects it', () => {
  it.each([
    ['the offset of a live block', 'live'],
    ['a byte pattern (a negative offset)', 'pattern'],
    ['the offset of the chain\'s first block (a cycle)', 'cycle'],
  ])('written as %s over its remote-list link: no live block handed out, no byte written outside the chain; a word alone is told from the link, a whole block over it loses the blocks after it and check() names them', async (_what, kind) => {
    const { heap, u8, live } = heapWithLiveBlocks();
    const sent = Array.from({ length: 8 }, () => heap.malloc(64));
    const w = startHeapWorker();
    await w.remote.attach(heap.buffer);
    for (const p of sent) await w.remote.free(p);
    await w.remote.flush(); // one chain of the 8 blocks on the slab's remote list, linked through their first words
    const dv = new DataView(heap.buffer);
    const hit = sent[3]!; // its link (to the next block of the chain) overwritten
    if (kind === 'live') dv.setInt32(hit, live[5]!, true);
    else if (kind === 'cycle') dv.setInt32(hit, sent[0]!, true);
    else u8.fill(0xab, hit, hit + 64);
    const before = u8.slice();
    const handed = Array.from({ length: 200 }, () => heap.malloc(64)); // refills collect the remote list
    const liveSet = new Set(live);
    expect(handed.filter((p) => liveSet.has(p)), 'live blocks handed out').toEqual([]);
    expect(new Set(handed).size, 'a block handed out twice').toBe(200);
    expectLiveIntact(u8, live);
    // One word written over the link: the check word after it (layout.ts FREE_CHECK_W) still
    // names the next block, and the whole chain came back. The whole block written over: the
    // chain's blocks up to the overwritten link came back; the ones after it did not.
    const back = sent.filter((p) => handed.includes(p));
    if (kind === 'pattern') expect(back.length).toBeLessThan(sent.length);
    else expect(back.length).toBe(sent.length);
    // Outside the handed-out blocks and the slab headers (states, counts), no byte changed.
    const slab = sent[0]! >>> 16;
    const inHanded = new Uint8Array(u8.length);
    for (const p of handed) inHanded.fill(1, p, p + 64);
    const changed: number[] = [];
    for (let i = 0; i < u8.length; i++) {
      if (u8[i] !== before[i] && inHanded[i] === 0 && i >>> 16 !== slab && i >= 1 << 20) changed.push(i);
    }
    expect(changed.slice(0, 5), 'bytes changed outside the blocks handed out').toEqual([]);
    expect(checked(heap)).toMatch(kind === 'pattern' ? /PENDING/ : /^passes$/);
    await w.remote.detach();
    heap.detach();
  }, 20_000);
});

describe('finding 8: from reading', () => {
  it('detach() and reclaim() clear the thread id of the slot they free', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const a = startHeapWorker((w) => heap.watch(w));
    const aId = await a.remote.attach(heap.buffer);
    await a.remote.detach();
    const b = startHeapWorker();
    const bId = await b.remote.attach(heap.buffer);
    await b.worker.terminate();
    expect(heap.reclaim(bId)).toBe(true);
    const naming = slotIds(heap).filter((s) => s.id === aId || s.id === bId);
    expect(naming, 'free slots that still name an exited thread').toEqual([]);
    heap.detach();
  }, 20_000);

  // A reclaimer stopped in the middle of a reclaim, at every step of it: test/crash-points.test.ts, scenario "reclaim".
});

describe('the main thread never waits forever on the lock', () => {
  it('mallocAsync, callocAsync, reallocAsync and alignedAllocAsync work like their synchronous calls', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 }) as SharedHeap & {
      mallocAsync(size: number): Promise<number>;
      callocAsync(n: number, size: number): Promise<number>;
      reallocAsync(ptr: number, size: number): Promise<number>;
      alignedAllocAsync(align: number, size: number): Promise<number>;
    };
    const a = await heap.mallocAsync(100);
    heap.u8.fill(7, a, a + 100);
    const b = await heap.callocAsync(10, 1000);
    expect(heap.u8.subarray(b, b + 10_000).every((x) => x === 0)).toBe(true);
    const c = await heap.reallocAsync(a, 3 * MiB);
    expect(heap.u8.subarray(c, c + 100).every((x) => x === 7)).toBe(true);
    const d = await heap.alignedAllocAsync(4096, 5000);
    expect(d % 4096).toBe(0);
    await expect(heap.mallocAsync(-1)).rejects.toThrow(RangeError);
    await expect(heap.mallocAsync(-1)).rejects.toThrow(/^mallocAsync\(size\): .*-1/);
    await expect(heap.callocAsync(2, -1)).rejects.toThrow(/^callocAsync\(size\): .*-1/);
    await expect(heap.alignedAllocAsync(3, 16)).rejects.toThrow(/^alignedAllocAsync\(align\): .*3/);
    // Their errors are the synchronous call's, naming the asynchronous call, whichever path the block takes.
    const freed = heap.malloc(40);
    heap.free(freed);
    for (const [ptr, size] of [[freed, 10], [b + 16, 10], [-16, 10], ['x', 10], [d, -1], [c, -1], [c, 2 ** 60]] as [number, number][]) {
      let sync: unknown;
      try {
        heap.realloc(ptr, size);
      } catch (e) {
        sync = e;
      }
      expect(sync, `realloc(${ptr}, ${size})`).toBeInstanceOf(Error);
      await expect(heap.reallocAsync(ptr, size), `reallocAsync(${ptr}, ${size})`).rejects.toThrow((sync as Error).message.replace(/^realloc\(/, 'reallocAsync('));
      expect((sync as Error).message).toMatch(/^realloc\((ptr|size)\)/);
    }
    for (const p of [b, c, d]) heap.free(p);
    heap.check();
    expect(heap.stats().liveBytes).toBe(0);
    heap.detach();
  });

  it('freeAsync frees small and large blocks as free does, and rejects with free\'s errors, naming freeAsync', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 });
    const small = heap.malloc(100);
    const large = heap.malloc(3 * MiB);
    await heap.freeAsync(small);
    await heap.freeAsync(large);
    await heap.freeAsync(0);
    expect(heap.stats().liveBytes).toBe(0);
    for (const ptr of [small, large, large + 16, -16, 'x'] as number[]) {
      let sync: unknown;
      try {
        heap.free(ptr);
      } catch (e) {
        sync = e;
      }
      expect(sync, `free(${ptr})`).toBeInstanceOf(Error);
      expect((sync as Error).message).toMatch(/^free\(ptr\)/);
      await expect(heap.freeAsync(ptr), `freeAsync(${ptr})`).rejects.toThrow((sync as Error).message.replace(/^free\(/, 'freeAsync('));
    }
    heap.check();
    heap.detach();
  });
});

describe('check() asserts the magazine bounds and the INUSE equation', () => {
  it('INUSE = ALLOCATED + CACHED + PENDING per slab', () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 2 });
    const p = heap.malloc(64);
    skewInuse(heap, p, 1);
    expect(() => heap.check()).toThrow(/INUSE \d+ != ALLOCATED 1 \+ CACHED \d+ \+ PENDING 0/);
    skewInuse(heap, p, -1);
    heap.check();
    heap.detach();
  });

  it('each magazine top within its bounds', () => {
    const heap = SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 2, magazineCapacity: 8 });
    heap.free(heap.malloc(16)); // class 0
    skewMagazineTop(heap, 0, 2 * 16);
    expect(() => heap.check()).toThrow(/magazine of class 0 has top \d+ outside/);
    skewMagazineTop(heap, 0, -2 * 16);
    heap.check();
    heap.detach();
  });
});

/** A malloc of 3 MiB in this thread, cut off under the lock by the RangeError of a stack overflow (thrown at its 3rd crash point). */
describe('a call cut off by a stack overflow (fault.ts)', () => {
  it.each([
    ['under Node\'s threadId', false],
    ['under an id the heap handed out (as in a browser: a new one at each attach)', true],
  ])('in this thread, %s: the instance stops, the lock it held is kept, attach() again reclaims the slot', (_name, otherId) => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const kept = heap.malloc(1000);
    heap.u8.fill(9, kept, kept + 1000);
    // The RangeError a deep recursion gets, thrown at the 3rd step of a large allocation, under the lock.
    armCrash(3, () => {
      throw new RangeError('Maximum call stack size exceeded');
    });
    let err: unknown;
    try {
      heap.malloc(3 * MiB);
    } catch (e) {
      err = e;
    } finally {
      armCrash(0, () => {
        throw new Error('off');
      });
    }
    expect(err).toBeInstanceOf(HeapStateError);
    expect((err as Error).message).toMatch(/^malloc\(size\): cut off by RangeError: Maximum call stack size exceeded/);
    expect((err as Error & { cause?: unknown }).cause).toBeInstanceOf(RangeError);
    expect(() => heap.malloc(16)).toThrow(/detached from the heap/); // the instance refuses every call, fast path included
    expect(() => heap.free(kept)).toThrow(/detached from the heap/);
    const i32 = new Int32Array(heap.buffer);
    expect(Atomics.load(i32, 13)).not.toBe(0); // G_LOCK: kept, by a slot marked DEAD
    const mine = slotIds(heap).filter((x) => x.state === 2);
    expect(mine.length).toBe(1);
    if (otherId) {
      // As if the heap had handed this thread the id 1,000,000 (a browser's): the slot and the instance say so, Node's threadId does not.
      Atomics.store(i32, internals(heap).thW + 1, 1_000_000 + 1); // TH_THREAD_ID
      internals(heap).threadId = 1_000_000;
    }
    // Deep in a recursion, attach refuses (its reclaim would be cut off too), or overflows before it
    // claims anything, or attaches and reclaims: it never leaves one more slot taken.
    const taken = (): number => slotIds(heap).filter((x) => x.state !== 0).length;
    const before = taken();
    let max = 0;
    const outcomes: string[] = [];
    const offsets = new Set([50, 100, 200, 400, 800, 1600, 3200, 6400]);
    const deep = (n: number): void => {
      if (n > max) max = n;
      try {
        deep(n + 1);
      } catch {
        // the limit
      }
      if (offsets.has(max - n) && !outcomes.includes('attached')) {
        try {
          SharedHeap.attach(heap.buffer);
          outcomes.push('attached');
        } catch (e) {
          outcomes.push((e as Error).message.includes("too close to its stack's limit") ? 'refused' : (e as Error).message);
        }
      }
    };
    deep(0);
    expect(outcomes).toContain('refused');
    for (const o of outcomes) expect(['refused', 'attached', 'Maximum call stack size exceeded']).toContain(o);
    expect(taken()).toBe(before);
    const again = SharedHeap.attach(heap.buffer);
    expect(again).not.toBe(heap);
    expect(Atomics.load(i32, 13)).toBe(0);
    expect(again.stats().threadsAttached).toBe(1);
    again.check();
    expect(again.u8.subarray(kept, kept + 1000).every((b) => b === 9)).toBe(true);
    again.free(kept);
    const big = again.malloc(3 * MiB);
    expect(big).toBeGreaterThan(0);
    again.free(big);
    again.check();
    expect(again.stats().liveBytes).toBe(0);
    again.detach();
  });

  it('workers watched before a fault stopped this thread are reclaimed at their exit by its next attachment', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const a = startHeapWorker((w) => heap.watch(w));
    await a.remote.attach(heap.buffer);
    await a.remote.malloc(5000);
    const aId = a.worker.threadId;
    cutOffLargeMalloc(heap);
    const again = SharedHeap.attach(heap.buffer);
    expect(again.stats().threadsAttached).toBe(2);
    expect(() => again.reclaim(aId)).toThrow(/watched worker that is still running/); // the watch came along
    await a.worker.terminate();
    await a.exited;
    expect(again.stats().threadsAttached).toBe(1); // watch()'s exit handler reclaimed it, through the new attachment
    again.check();
    again.detach();
  });

  it('calls on the stopped instance, once this thread attached again and a worker took the old slot, are refused and leave the worker\'s slot alone', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const kept = heap.malloc(100);
    cutOffLargeMalloc(heap);
    const mine = internals(heap).runner.slot;
    const again = SharedHeap.attach(heap.buffer); // reclaims the old slot
    expect(internals(again).runner.slot).not.toBe(mine);
    const a = startHeapWorker();
    await a.remote.attach(heap.buffer); // takes the slot the reclaim freed
    expect(slotIds(heap)[mine]).toMatchObject({ state: 1, id: a.worker.threadId });
    const p = await a.remote.malloc(100);
    await a.remote.write(p, [4, 5, 6]);
    const calls: Array<() => unknown> = [
      () => heap.malloc(16), () => heap.malloc(3 * MiB), () => heap.free(kept), () => heap.realloc(kept, 5000),
      () => heap.calloc(4, 4), () => heap.alignedAlloc(4096, 100), () => heap.usableSize(kept), () => heap.flush(),
    ];
    for (const call of calls) {
      expect(call).toThrow(HeapStateError);
      expect(slotIds(heap)[mine]).toMatchObject({ state: 1, id: a.worker.threadId }); // still ATTACHED: the worker's
    }
    // The lock is free: no thread breaks it over a live holder.
    expect(lockWord(heap.buffer)).toBe(0);
    const q = again.malloc(3 * MiB);
    expect(q).toBeGreaterThan(0);
    again.free(q);
    again.free(kept);
    expect(Array.from(await a.remote.read(p, 3))).toEqual([4, 5, 6]);
    await a.remote.free(p);
    await a.remote.check();
    again.check();
    again.detach();
  });

  it('a stopped instance cut off again, once a later attachment of the same thread (same id) took its old slot, leaves that slot alone', () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    const kept = heap.malloc(100);
    cutOffLargeMalloc(heap); // X: stopped, its slot DEAD
    const x = internals(heap);
    const mine = x.runner.slot;
    const y = SharedHeap.attach(heap.buffer); // reclaims X's slot
    y.detach();
    const z = SharedHeap.attach(heap.buffer); // the same thread, the same id, in X's old slot
    expect(internals(z).runner.slot).toBe(mine);
    expect(slotIds(heap)[mine]).toMatchObject({ state: 1, id: z.threadId });
    // A call on X cut off by a real overflow (the refusal itself can meet the stack's limit): no mark.
    expect(() =>
      guarded(x, 'malloc(size)', () => {
        throw new RangeError('Maximum call stack size exceeded');
      }),
    ).toThrow(RangeError);
    expect(() => heap.malloc(16)).toThrow(HeapStateError);
    expect(slotIds(heap)[mine]).toMatchObject({ state: 1, id: z.threadId }); // Z's, still ATTACHED
    z.free(kept);
    z.check();
    z.detach();
  });

  it('a stopped slot that another thread reclaimed and a third took is left alone when the stopped thread attaches again', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
    cutOffLargeMalloc(heap);
    const mine = internals(heap).runner.slot;
    const a = startHeapWorker();
    await a.remote.attach(heap.buffer);
    expect(await a.remote.reclaim(heap.threadId)).toBe(true); // another thread reclaims the stopped one, as it may
    const b = startHeapWorker();
    await b.remote.attach(heap.buffer); // and a third takes the slot it freed
    expect(slotIds(heap)[mine]!.state).toBe(1); // ATTACHED: b's now
    const p = await b.remote.malloc(100);
    await b.remote.write(p, [1, 2, 3]);
    const again = SharedHeap.attach(heap.buffer); // must not touch b's slot
    expect(slotIds(heap)[mine]!.state).toBe(1);
    expect(again.stats().threadsAttached).toBe(3);
    again.check();
    expect(Array.from(await b.remote.read(p, 3))).toEqual([1, 2, 3]);
    await b.remote.free(p);
    await b.remote.check();
    again.check();
    again.detach();
  });

  it.each([
    ['default options', {}],
    ['magazines of one block, drained at every free, no Stage-1 slabs kept, a trim at every take', { magazineCapacity: 1, refillCount: 1, drainInterval: 1, stage1Keep: 0, trimInterval: 1 }],
    ['debug mode, on a heap that grows', { debug: true, initialBytes: 8 * MiB, maxBytes: 256 * MiB }],
  ])('%s: the thread stops using the heap, attaching again reclaims its slot, and the heap and every block are intact', async (_name, options) => {
    const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxThreads: 4, ...options });
    const kept = new Map<number, number>(); // block -> its fill byte
    const sizes = [16, 100, 1000, 5000, 20000, 70000, 200_000, 1_500_000];
    for (let k = 0; k < 64; k++) {
      const p = heap.malloc(sizes[k % sizes.length]!);
      heap.u8.fill(k + 1, p, p + 16);
      kept.set(p, k + 1);
    }
    const worker = startWorker('overflow-worker', { buffer: heap.buffer, rounds: 12 });
    heap.watch(worker);
    const result = await new Promise<{ faults: number; messages: string[]; ops: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the worker did not finish in 30 s (a hang, or a loop in a corrupt list)')), 30_000);
      worker.once('message', (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      worker.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    expect(result.faults, 'calls cut off inside the allocator').toBeGreaterThan(0);
    for (const m of result.messages) expect(m).toMatch(/cut off by RangeError: Maximum call stack size exceeded|detached from the heap/);
    // (The HeapStateError of a cut-off call needs stack to be made; at the limit the call throws the RangeError instead.)
    // The worker's slots that faults stopped were reclaimed by its attaches: it holds one, and the lock is free.
    expect(heap.stats().threadsAttached).toBe(2);
    expect(Atomics.load(new Int32Array(heap.buffer), 13)).toBe(0); // G_LOCK
    heap.check();
    await worker.terminate();
    await new Promise((r) => setTimeout(r, 20)); // watch() reclaims it at its exit
    expect(heap.stats().threadsAttached).toBe(1);
    heap.check();
    for (const [p, v] of kept) {
      expect(heap.u8.subarray(p, p + 16).every((b) => b === v), `block ${p}`).toBe(true);
      heap.free(p);
    }
    heap.check();
    // What a cut-off call leaves is what a thread killed there leaves: at most its one block live
    // (a malloc that took it, a free that had not given it back), 1.5 MiB at most here.
    expect(heap.stats().liveBytes).toBeLessThanOrEqual(result.faults * 24 * 65536);
    heap.detach();
  }, 60_000);
});
