/**
 * attachAsync and reclaimWhenGone (the browsers' way to attach and reclaim) after a fault stopped
 * this thread's instance (src/fault.ts), run in Node against a Web Locks stand-in (web-locks.ts).
 * Every "thread" here is one JavaScript thread in turn: the creator reserves the ids, detaches,
 * and the same thread then attaches under them.
 */
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it } from 'vitest';
import { HeapStateError, SharedHeap } from '../src/index.js';
import { attachThread } from '../src/attach.js';
import { threadLockName } from '../src/liveness.js';
import { cutOffLargeMalloc, expectTakenOver, slotIds } from './fault-internals.js';
import { armCrash } from '../src/crash.js';
import { installWebLocks, type WebLocksStandIn } from './web-locks.js';

const MiB = 1 << 20;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
let locks: WebLocksStandIn | undefined;
afterEach(() => {
  locks?.uninstall();
  locks = undefined;
});

/** A heap whose creator reserved `n` ids, left a block live and detached. */
function reserved(n: number): { buffer: SharedArrayBuffer; ids: number[]; kept: number } {
  const creator = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const ids = Array.from({ length: n }, () => creator.newThreadId());
  const kept = creator.malloc(100);
  creator.u8.fill(7, kept, kept + 100);
  const buffer = creator.buffer;
  creator.detach();
  return { buffer, ids, kept };
}

/**
 * This thread attached under `a` (attachAsync), a thread under `x` attached with its slot and its
 * Web Lock held (by `stand`), and this thread's reclaimWhenGone(x) asked: `release()` makes x gone.
 */
async function reclaimerOf(
  stand: WebLocksStandIn,
  buffer: SharedArrayBuffer,
  a: number,
  x: number,
): Promise<{ first: SharedHeap; heapId: number; release: () => void; gone: Promise<boolean> }> {
  const first = await SharedHeap.attachAsync(buffer, { threadId: a });
  const heapId = Number(stand.held()[0]!.split(':')[1]);
  attachThread(buffer, x); // a thread under x, with its slot
  const release = await stand.hold(threadLockName(heapId, x));
  return { first, heapId, release, gone: first.reclaimWhenGone(x) };
}

/** cutOffLargeMalloc without expect(), which can keep the instance alive: `heap` stops. */
function cutOffQuietly(heap: SharedHeap): void {
  armCrash(3, () => {
    throw new RangeError('Maximum call stack size exceeded');
  });
  try {
    heap.malloc(3 * MiB);
  } catch {
    // cut off: the instance stops
  } finally {
    armCrash(0, () => {
      throw new Error('off');
    });
  }
}

/** Collects garbage until `collected()` says so (at most 100 times), then lets the heap's own finalizer run. */
async function collect(collected: () => boolean): Promise<boolean> {
  for (let i = 0; i < 100 && !collected(); i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  return collected();
}

describe('attachAsync after a fault stopped this thread', () => {
  it('under the stopped id: refused at once (not left waiting for its own Web Lock), the lock given up; under a new id: attaches and reclaims the stopped slot', async () => {
    const { buffer, ids: [a, b], kept } = reserved(2);
    locks = installWebLocks();
    const first = await SharedHeap.attachAsync(buffer, { threadId: a! });
    const heapId = Number(locks.held().find((n) => n.endsWith(`:${a}`))!.split(':')[1]);
    expect(locks.held()).toEqual([threadLockName(heapId, a!)]);
    cutOffLargeMalloc(first);
    expect(slotIds(first).find((s) => s.id === a)?.state).toBe(2); // DEAD
    const same = SharedHeap.attachAsync(buffer, { threadId: a! });
    await expect(Promise.race([same, new Promise((r) => setTimeout(() => r('still waiting'), 2000))])).rejects.toThrow(
      /a fault stopped this thread's instance under threadId .*newThreadId\(\).*SharedHeap\.attach\(buffer\)/,
    );
    expect(locks.held()).toEqual([]); // the stopped instance's lock: reclaimWhenGone(a) elsewhere may take it now
    const second = await SharedHeap.attachAsync(buffer, { threadId: b! });
    expectTakenOver(second, a, kept, () => expect(locks!.held()).toEqual([threadLockName(heapId, b!)]));
  });

  it('a reclaimWhenGone() the stopped instance was waiting on reclaims through its next attachment', async () => {
    const { buffer, ids: [a, b, x] } = reserved(3);
    locks = installWebLocks();
    const first = await SharedHeap.attachAsync(buffer, { threadId: a! });
    const heapId = Number(locks.held()[0]!.split(':')[1]);
    // A thread under id x, alive while its Web Lock is held: a slot claimed under x with a block out.
    const child = attachThread(buffer, x!);
    expect(child.threadId).toBe(x);
    const release = await locks.hold(threadLockName(heapId, x!));
    const gone = first.reclaimWhenGone(x!);
    cutOffLargeMalloc(first);
    const second = await SharedHeap.attachAsync(buffer, { threadId: b! });
    expect(slotIds(second).some((s) => s.id === x && s.state === 1)).toBe(true);
    release(); // the child is gone
    expect(await gone).toBe(true);
    expect(slotIds(second).filter((s) => s.id === x)).toEqual([]);
    expect(second.stats().threadsAttached).toBe(1);
    second.check();
    second.detach();
  });

  it('a fault inside the reclaim reclaimWhenGone() runs stops this instance as any call does: its slot DEAD, the lock it kept broken by the next thread', async () => {
    const { buffer, ids: [a, b, x] } = reserved(3);
    locks = installWebLocks();
    const { first, heapId, release, gone } = await reclaimerOf(locks, buffer, a!, x!);
    release(); // x is gone: the reclaim runs, and is cut off at its first step under the lock
    armCrash(1, () => {
      throw new RangeError('Maximum call stack size exceeded');
    });
    try {
      await expect(gone).rejects.toThrow(/^reclaimWhenGone\(threadId\): cut off by RangeError: Maximum call stack size exceeded/);
    } finally {
      armCrash(0, () => {
        throw new Error('off');
      });
    }
    expect(() => first.malloc(16)).toThrow(/detached/);
    expect(slotIds(first).find((s) => s.id === a)?.state).toBe(2); // DEAD
    const second = await SharedHeap.attachAsync(buffer, { threadId: b! }); // reclaims a's slot, and the reclaim of x it was in
    const q = second.malloc(3 * MiB); // under the lock the fault kept: broken, without a wait
    expect(q).toBeGreaterThan(0);
    second.free(q);
    expect(slotIds(second).filter((s) => s.id === a || s.id === x)).toEqual([]);
    expect(second.stats().threadsAttached).toBe(1);
    second.check();
    second.detach();
  });

  it('stopped, then collected before the thread attached again: its Web Lock is given up, and attachAsync under a new id reclaims its slot', async () => {
    const { buffer, ids: [a, b] } = reserved(2);
    locks = installWebLocks();
    const stand = locks;
    let collected = false;
    const seen = new FinalizationRegistry(() => (collected = true));
    const stop = async (): Promise<string> => {
      const first = await SharedHeap.attachAsync(buffer, { threadId: a! });
      const name = stand.held()[0]!;
      cutOffQuietly(first);
      seen.register(first, 0);
      return name;
    };
    const nameA = await stop();
    expect(await collect(() => collected)).toBe(true);
    expect(locks.held()).not.toContain(nameA); // given up: reclaimWhenGone(a) elsewhere may take it
    const second = await SharedHeap.attachAsync(buffer, { threadId: b! });
    expect(slotIds(second).filter((s) => s.id === a)).toEqual([]); // reclaimed
    expect(second.stats().threadsAttached).toBe(1);
    second.check();
    second.detach();
  });
});

describe('the gone marks reclaimWhenGone() keeps (held until the thread detaches)', () => {
  it('taken by an instance a fault then stopped: given up when the thread, attached again, detaches', async () => {
    const { buffer, ids: [a, b, x] } = reserved(3);
    locks = installWebLocks();
    const { first, heapId, release, gone } = await reclaimerOf(locks, buffer, a!, x!);
    release(); // x is gone
    expect(await gone).toBe(true);
    expect(locks.held()).toContain(`${threadLockName(heapId, x!)}:gone`);
    cutOffLargeMalloc(first);
    const second = await SharedHeap.attachAsync(buffer, { threadId: b! });
    expect(locks.held()).toContain(`${threadLockName(heapId, x!)}:gone`); // still this thread's: it attached again
    second.detach();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(locks.held()).toEqual([]); // a mark outlived the thread's detach
  });

  it('taken by an instance a fault stopped and the collector took: given up when the thread, attached again, detaches', async () => {
    const { buffer, ids: [a, b, x] } = reserved(3);
    locks = installWebLocks();
    const stand = locks;
    let collected = false;
    const seen = new FinalizationRegistry(() => (collected = true));
    const stop = async (): Promise<string> => {
      const { first, heapId, release, gone } = await reclaimerOf(stand, buffer, a!, x!);
      release();
      if ((await gone) !== true) throw new Error('not reclaimed');
      cutOffQuietly(first);
      seen.register(first, 0);
      return `${threadLockName(heapId, x!)}:gone`;
    };
    const mark = await stop();
    expect(await collect(() => collected)).toBe(true);
    expect(locks.held()).toEqual([mark]);
    const second = await SharedHeap.attachAsync(buffer, { threadId: b! });
    second.detach();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(locks.held()).toEqual([]);
  });

  it('a thread without Web Locks that detaches before its reclaimWhenGone() rejected: no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const seen = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', seen);
    try {
      const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
      const id = heap.newThreadId();
      const gone = heap.reclaimWhenGone(id);
      heap.detach();
      await expect(gone).rejects.toThrow(/no Web Locks API/);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled.map(String)).toEqual([]);
    } finally {
      process.off('unhandledRejection', seen);
    }
  });
});
