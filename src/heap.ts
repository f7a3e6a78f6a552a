/**
 * SharedHeap, the public facade: create a heap in a SharedArrayBuffer, attach to it from any
 * thread, and the two fast paths (malloc and free). Every other call is a named slow function
 * in a lower file, working on the thread context (context.ts) this instance holds privately.
 */
import * as layout from './layout.js';
import * as classes from './size-classes.js';
import { HeapCorruptionError, HeapError, HeapStateError, checkInteger, describe, isObjectArgument, renamedCall } from './errors.js';
import { readGeometry, type ThreadContext } from './context.js';
import { WOULD_BLOCK, runNoWait, testHoldLock, waitLockAsync, waitSlice, waitsMayGiveUp } from './lock.js';
import { flushThread } from './magazine.js';
import { largeFree, refuseChangedRun, runGeneration, runSpan } from './large.js';
import { listenForFlushAsks } from './flush-ask.js';
import {
  REALLOC_SHRINK as SHRINK_IMPORTED, REALLOC_SHRINK_LARGE as SHRINK_LARGE_IMPORTED, freeMovedRun, freedWhileWaited, zeroInHeap, alignedAllocImpl, checkAlign, classifyBlock, callocImpl, copyInHeap, freeMiss, lockedFirst, mallocSlow, moveUnderLock, reallocFreedMeanwhile, reallocImpl, reallocRequest, reallocTarget, reallocToRun, resizeLargeInPlace, tryMallocImpl, usableSizeImpl,
} from './alloc.js';
import { FIRST_HEAP_THREAD_ID, createBuffer, takeHeapThreadId, type HeapOptions } from './create.js';
import { isSharedArrayBuffer, isWasmMemory, memoryFunctions, type SharedMemory, type SharedMemoryLike } from './wasm-copy.js';
import { attachThread, detachThread, nodeThreadId } from './attach.js';
import { guarded, stopOnFault } from './fault.js';
import { adoptWatches, hasPending, hasWatches, mergeWatches, onDetachedReclaim, reclaimRetry, reclaimPending, latestAttachment, reclaimExited, reclaimCall, reclaimId, reclaimIdNoWait, reclaimOwnDead, reclaimTarget, lockHolderId, markLockHolderGone, watchWorker, type NoWaitTries, type WatchableWorker } from './reclaim.js';
import { goneMarkName, hasWebLocks, holdThreadLock, markedGone, threadLockName, NO_THREAD_LOCK, type ThreadLock } from './liveness.js';
import { collectStats, type HeapStats } from './stats.js';
import { checkHeap } from './check.js';
import { DEBUG_EXTRA, debugCheckAll, debugCheckLive, debugFillFreed, debugFillsFreed, debugHandOut, debugRecordLarge, debugTakeSmall } from './debug.js';

export type { HeapOptions };

// The fast paths read the layout through module-local constants. V8 reads an imported binding
// through its module cell at every use (a load and a check that it is initialised) inside
// optimized code too, while a module-local const is folded into it: 16 mallocs then 16 frees
// of 120-248 bytes ran at 37.7 M pairs/s with the imports and 52.5 M with these copies (best of
// 37 runs each, alternated in one process; the node script is in the commit message).
const { G_DEBUG, G_LOCK, G_NEXT_THREAD_ID, TH_NOTICE_REST, K_LARGE, LARGE_LIVE, MAG_ENTRY_WORDS, MAG_FULL_SENTINEL, MAG_STATE, SLOT_BYTES, SLOT_SHIFT, SM_CLS1, SM_DATA, SM_HEAD, SM_KIND, SM_LARGE, SM_SHIFT, SM_SPAN, SM_STATE, ST_ALLOCATED, ST_CACHED, ST_CLEAN, heapIdOf } = layout;
const { CLASS_OF_GRANULE, alignedClassOf, FD_COUNT, FD_INV, FD_LOG2_WORDS, FD_SHIFT, FREE_DIV, MAX_SMALL, SIZE } = classes;
// free's and realloc's class test masks with -64 (see free).
if (layout.CLASS_SLOTS !== 64 || classes.NUM_CLASSES > 64) throw new Error('heap.ts: the class test in free and realloc assumes 64 class slots');
// realloc's fast path reads alloc.ts's constant and calls its two rules through module-local
// copies too (a call of an imported function checks the binding's cell, then the function's
// identity, before the inlined body: about 30 instructions a realloc, counted under callgrind).
const REALLOC_SHRINK = SHRINK_IMPORTED;
const REALLOC_SHRINK_LARGE = SHRINK_LARGE_IMPORTED;
const toRun = reallocToRun;
const requestFor = reallocRequest;

/**
 * This thread's last instance per heap id, by the record its finalizer gets (`dropped`): attaching
 * twice returns the same instance while it is referenced. The instance is held weakly (`ref`), so
 * that a heap its program dropped without detach() can be collected; the record strongly, so that
 * between the collector taking the instance and its finalizer running, the context, still
 * attached (its slot, its watches), is found by what the thread does next (#revive).
 */
const records = new Map<number, Dropped>();
let reviveCollected: (id: number) => SharedHeap | undefined;
/** By heap id: the context of this thread's instance that a fault stopped, collected before the thread attached again (see `dropped`). */
const stopped = new Map<number, ThreadContext>();
/** This thread's attachAsync calls under way, by heap id and thread id (`${heapId}:${threadId}`). */
const attachingAsync = new Map<string, Promise<SharedHeap>>();

/**
 * Threads' Web Locks that reclaimWhenGone kept, its gone mark refused (no other attachment under the
 * id holds them), each behind a wrapper whose lock is the one asked for again where an attachment
 * under the id stood in the way (the first let go for it to go before).
 */
const keptThreadLocks = new WeakMap<ThreadLock, { inner: ThreadLock }>();

/** By heap id: the gone marks that instance kept (reclaimWhenGone), which the thread's next attachment keeps until it detaches. */
const stoppedGone = new Map<number, Map<number, Promise<ThreadLock>>>();
/**
 * This thread's detached attachment per heap id, while workers it watched run or their exits wait
 * to be reclaimed: the next attachment takes its watches over (reclaim.ts adoptWatches), so that
 * their exits are still reclaimed and reclaim(threadId) still refuses a watched worker that runs.
 */
const detachedWatching = new Map<number, ThreadContext>();

/** This thread's instance for the heap `id` while it is attached (a registered instance may have detached, or a fault stopped it). */
function attachedNow(id: number): SharedHeap | undefined {
  const heap = records.get(id)?.ref.deref() ?? reviveCollected(id);
  return heap !== undefined && !internals(heap).detached ? heap : undefined;
}

/**
 * After `t` detached: its watches, if any, go to the thread's attachment now if there is one (the
 * collector detached an old instance after the thread attached again), else wait in
 * detachedWatching for its next attachment, with any already waiting there.
 */
function keepWatching(t: ThreadContext): void {
  if (!t.detached || !hasWatches(t)) return;
  const id = heapIdOf(t.buffer);
  const now = attachedNow(id);
  if (now !== undefined) {
    mergeWatches(t, internals(now));
    return;
  }
  const waiting = detachedWatching.get(id);
  if (waiting !== undefined && waiting !== t) mergeWatches(waiting, t);
  detachedWatching.set(id, t);
}

/** What the finalizer of a dropped, still attached instance needs; nothing in it refers to the instance. */
interface Dropped {
  id: number;
  ref: WeakRef<SharedHeap>;
  t: ThreadContext;
  lock: ThreadLock;
  /** The gone marks (Web Locks) that reclaimWhenGone() took and keeps until detach (see there). */
  gone: Map<number, Promise<ThreadLock>>;
  /** Settled before the finalizer ran (reviveCollected): the finalizer does nothing. */
  settled: boolean;
}

/** Lets go every Web Lock of `gone` (held ones, and pending ones once granted). */
function releaseGone(gone: Map<number, Promise<ThreadLock>>): void {
  // A request that failed (no Web Locks API) holds nothing; its rejection is its caller's.
  for (const lock of gone.values()) void lock.then((l) => l.release(), () => undefined);
  gone.clear();
}

/**
 * An instance dropped while still attached is detached once the collector has taken it: its
 * magazines go back to their slabs and its slot is freed, as detach() would, and then nothing of
 * this thread holds the buffer (before this, each dropped heap kept its whole SharedArrayBuffer
 * for the life of the thread: 40 heaps of 64 MiB created and dropped in a loop held 2.5 GiB).
 * While the global lock is busy it is tried again later (detachDropped). Any other failure here has
 * no caller to go to: the slot then stays attached, and its Web Lock is let go
 * all the same (nothing in this thread can use the slot again), so that reclaimWhenGone() in
 * another thread can return it; in Node, a reclaim after this thread ends does.
 */
const dropped = new FinalizationRegistry<Dropped>((d) => {
  if (d.settled) return;
  settleDropped(d);
});

/** What the finalizer does with a dropped instance's record (or reviveCollected before it, for a stopped one). */
function settleDropped(d: Dropped): void {
  d.settled = true;
  if (records.get(d.id) === d) records.delete(d.id);
  if (d.t.detached) {
    // Stopped by a fault and collected before this thread attached again: its Web Lock goes (so
    // that reclaimWhenGone() elsewhere may return its DEAD slot), and the next attach takes over
    // its slot and its watches from `stopped` (SharedHeap #stopStale).
    if (d.t.runner.faulted && latestAttachment(d.t) === d.t) {
      stopped.set(d.id, d.t);
      stoppedGone.set(d.id, d.gone);
      d.lock.release();
    }
    return;
  }
  detachDropped(d);
}

/**
 * Whether `buffer` is the memory of t's heap (another SharedArrayBuffer object for it, as each
 * postMessage gives) rather than a copy: a value written through t's view into one of t's own
 * words, which no other thread writes while t runs (TH_NOTICE_REST: t's notice walk, not under way
 * now), must read back through `buffer`; the word's value is put back after. Written through t's
 * own view, never through `buffer`: where `buffer` is another heap (a copy, attached by no one or
 * by another thread), the word at that offset may be another thread's there.
 */
function sharesMemory(t: ThreadContext, buffer: SharedArrayBuffer): boolean {
  if (buffer === t.buffer) return true;
  const w = t.thW + TH_NOTICE_REST;
  if (buffer.byteLength < (w + 1) * 4) return false;
  const view = new Int32Array(buffer, 0, w + 1);
  const before = Atomics.load(t.i32, w);
  if (before !== Atomics.load(view, w)) return false;
  const probe = before === -1 ? -2 : -1; // never a slot (the word's values are 0 or a slot)
  Atomics.store(t.i32, w, probe);
  const same = Atomics.load(view, w) === probe;
  Atomics.store(t.i32, w, before);
  return same;
}

/** How soon the detach of a dropped instance is tried again while the global lock is busy. */
const DROPPED_RETRY_MS = 50;

/**
 * The registry's detach of a dropped instance: never waits for the global lock, which detach
 * holds throughout (attach.ts detachThread). Busy, it gives up before changing anything and is
 * tried again on a timer that keeps no thread alive: a wait here blocked this thread's event loop
 * (a main thread's, up to 3 s, then the slot stayed attached; an audit), and nobody awaits it.
 */
function detachDropped(d: Dropped): void {
  try {
    // Through guarded, as detach() is: a fault in it (which keeps the global lock, held since
    // detach began) marks the slot DEAD, so that the next taker breaks the lock. Called directly,
    // it left an ATTACHED slot holding the lock for good (an audit: every later malloc on that
    // heap timed out).
    runNoWait(() => guarded(d.t, 'detach()', detachThread));
    keepWatching(d.t); // its watches go to the thread's next attachment, as detach()'s do
  } catch (e) {
    if (e === WOULD_BLOCK && !d.t.detached && !d.t.runner.faulted) {
      const timer = setTimeout(() => detachDropped(d), DROPPED_RETRY_MS) as unknown as { unref?: () => void };
      timer.unref?.();
      return;
    }
    // left attached (above)
  }
  d.lock.release();
  releaseGone(d.gone);
}
/**
 * attach's and attachAsync's argument (`fn` names the call in errors): the heap's buffer, and its
 * memory when given that (heap.memory), checked, with the heap's id. A memory that is not shared,
 * or anything else that is not a heap's SharedArrayBuffer, is refused with `fn`'s TypeError.
 */
function heapArgument(given: SharedArrayBuffer | SharedMemoryLike, fn: string): { buffer: SharedArrayBuffer; memory: SharedMemory | undefined; id: number } {
  let buffer: unknown = given;
  let memory: SharedMemory | undefined;
  if (isWasmMemory(given)) {
    buffer = given.buffer;
    if (!isSharedArrayBuffer(buffer)) throw new TypeError(`${fn}: expected the heap's SharedArrayBuffer or its memory (heap.memory), got a WebAssembly.Memory that is not shared`);
    memory = given as SharedMemory;
  }
  if (!isSharedArrayBuffer(buffer)) throw new TypeError(`${fn}: expected the heap's SharedArrayBuffer, got ${describe(buffer)}`);
  readGeometry(buffer, fn);
  return { buffer, memory, id: heapIdOf(buffer) };
}

/** Only create() and attach() may construct an instance. */
const CONSTRUCT = Symbol('SharedHeap');
let contextOf: (heap: SharedHeap) => ThreadContext;
/** Without the heap's WebAssembly.Memory (t.copy null), realloc's fast path copies up to this many bytes word by word, larger copies with copyWithin (a native call). */
const REALLOC_WORD_COPY = 128;

function attachedContext(heap: SharedHeap, fn: string): ThreadContext {
  const t = contextOf(heap);
  if (t.detached) throw new HeapStateError(`${fn}: this thread has detached from the heap`);
  return t;
}

// The fast paths' one call out each (see free): through proxies, which V8 calls but does not
// inline, so that the slow paths' own calls stay out of the code of the fast paths and of the
// loops that inline them.
// Each goes through guarded (fault.ts): an error not the allocator's own stops this thread's use
// of the heap where it stands, and is thrown as a HeapStateError.
const mallocMiss = new Proxy(function mallocGuarded(t: ThreadContext, size: unknown): number {
  if (t.priming) return 0;
  return guarded(t, 'malloc(size)', mallocSlow, size);
}, {});
const freeMissCall = new Proxy(function freeGuarded(t: ThreadContext, block: unknown, cls: number, st: number): void {
  if (t.priming) return;
  guarded(t, 'free(ptr)', freeMiss, block, cls, st);
}, {});
const callocMiss = new Proxy(function callocGuarded(t: ThreadContext, n: unknown, size: unknown): number {
  if (t.priming) return 0;
  return guarded(t, 'calloc(n, size)', callocImpl, n, size);
}, {});
const reallocMiss = new Proxy(function reallocGuarded(t: ThreadContext, block: unknown, size: unknown): number {
  if (t.priming) return 0;
  return guarded(t, 'realloc(ptr, size)', reallocImpl, block, size);
}, {});
// realloc's fast path when its old block was freed by another thread while its malloc waited: it throws.
const reallocFreedCall = new Proxy(function reallocFreedGuarded(t: ThreadContext, block: number, q: number): number {
  return guarded(t, 'realloc(ptr, size)', reallocFreedMeanwhile, block, q);
}, {});

export class SharedHeap {
  readonly #t: ThreadContext;
  /** The Web Lock this thread holds while attached (liveness.ts). */
  #lock: ThreadLock = NO_THREAD_LOCK;
  /** The Web Locks of threads reclaimWhenGone() saw gone, by threadId, kept until this thread detaches. */
  readonly #gone = new Map<number, Promise<ThreadLock>>();
  /** reallocAsync calls from taking a large block's new place until its old one is freed (detach() refuses meanwhile). */
  #moving = 0;

  static {
    contextOf = (heap) => heap.#t;
    reviveCollected = (id) => SharedHeap.#revive(id);
  }

  /**
   * This thread's instance for the heap `id` was collected and its finalizer has not run yet (an
   * audit: attach() then claimed a second slot, and a new instance without the old one's watches
   * let reclaim(threadId) through for a watched worker still running, whose slot the next
   * worker took: check() found blocks CACHED in no magazine). Still attached, its context gets a
   * new instance, with its slot, Web Lock and watches; stopped by a fault, it is settled as the
   * finalizer would (the next attach takes its slot over).
   */
  static #revive(id: number): SharedHeap | undefined {
    const d = records.get(id);
    if (d === undefined || d.ref.deref() !== undefined) return undefined; // (a settled record is no longer in records)
    if (d.t.detached) {
      settleDropped(d);
      return undefined;
    }
    d.settled = true;
    const heap = SharedHeap.#register(d.t, id, d.lock);
    for (const [k, v] of d.gone) heap.#gone.set(k, v);
    return heap;
  }

  protected constructor(key: symbol, t: ThreadContext) {
    if (key !== CONSTRUCT) throw new TypeError('new SharedHeap(): use SharedHeap.create(options) or SharedHeap.attach(buffer)');
    this.#t = t;
  }

  /** Creates a heap in a new SharedArrayBuffer; the calling thread is attached to it. */
  static create(options: HeapOptions = {}): SharedHeap {
    const { buffer, memory } = createBuffer(options);
    return SharedHeap.attach(memory ?? buffer);
  }

  /**
   * Attaches the calling thread to a heap created elsewhere: pass the worker `heap.memory` where
   * it is defined (a heap of a fixed size is the buffer of a shared WebAssembly.Memory, which
   * realloc then copies with: wasm-copy.ts), else `heap.buffer`; the buffer alone works for
   * every heap. Claims a thread slot; attaching twice in one thread returns the same instance
   * (given the memory the second time, it copies with it from then on).
   */
  static attach(given: SharedArrayBuffer | SharedMemoryLike): SharedHeap {
    const { buffer, memory, id } = heapArgument(given, 'SharedHeap.attach(buffer)');
    let heap = SharedHeap.#current(id, buffer, 'SharedHeap.attach(buffer)');
    if (heap !== undefined) reattached.delete(heap); // made for reclaims at a watched exit: the program's now
    if (heap === undefined) {
      // An instance of this thread stopped by a fault gives up its Web Lock first: the new one takes the same.
      const stale = SharedHeap.#stopStale(id, 'SharedHeap.attach(buffer)');
      // Under Node's threadId (known now), the Web Lock is asked for before the slot shows ATTACHED:
      // a reclaimWhenGone(threadId) elsewhere, granted the lock while it was free (the thread
      // detached, or its stopped instance let it go, earlier), that found the slot ATTACHED alone
      // and asked for the lock again ('own-reclaim') in between, was granted it at once and took
      // the live attachment as gone (test/reclaim-when-gone-lock-requests.test.ts).
      const nodeId = nodeThreadId();
      // Near the stack's limit that request may be cut off (its promise rejected, not thrown: the
      // attachment would run on without its lock, taken as gone by a reclaimWhenGone elsewhere):
      // refused, before anything is asked or claimed (test/hold-thread-lock-stack-limit.test.ts).
      if (nodeId >= 0 && hasWebLocks() && !stackHasRoom()) {
        throw new HeapStateError(
          "SharedHeap.attach(buffer): this thread is too close to its stack's limit to ask for its Web Lock; attach again once the recursion has returned",
        );
      }
      const early = nodeId >= 0 ? holdThreadLock(threadLockName(id, nodeId)) : undefined;
      let t: ThreadContext;
      try {
        t = attachThread(buffer, -1, attachingForReclaim || stale !== undefined); // (a stale instance's slot is reclaimed below)
      } catch (e) {
        early?.release(); // no slot: nothing for the lock to say
        throw e;
      }
      heap = SharedHeap.#adopt(t, id, early ?? holdThreadLock(threadLockName(id, t.threadId)));
      SharedHeap.#takeOverStale(heap, stale, 'SharedHeap.attach(buffer)');
    }
    return SharedHeap.#withMemory(heap, memory);
  }

  /**
   * The last instance of this thread for the heap `id`, when a fault stopped it (fault.ts): its
   * slot marked DEAD again (in case the fault left no stack to do it then; `slot` -1 once it is no
   * longer that instance's), and its Web Lock given up. Refused near the stack's limit, where the
   * reclaim that follows would be cut off too, and leave one more slot DEAD each time (attaching
   * over and over deep in a recursion took every slot).
   */
  static #stopStale(id: number, fn: string): { t: ThreadContext; slot: number; gone: Map<number, Promise<ThreadLock>> | undefined } | undefined {
    const last = records.get(id)?.ref.deref();
    const live = last !== undefined && last.#t.runner.faulted ? last : undefined;
    const t = live !== undefined ? live.#t : stopped.get(id); // or one the collector took since (its lock went then)
    if (t === undefined) return undefined;
    if (!stackHasRoom()) {
      throw new HeapStateError(
        `${fn}: this thread is too close to its stack's limit to reclaim the slot that a fault stopped ` +
          '(the reclaim would be cut off too); attach again once the recursion has returned',
      );
    }
    const gone = live !== undefined ? live.#gone : stoppedGone.get(id);
    if (live === undefined) {
      stopped.delete(id);
      stoppedGone.delete(id);
    }
    const slot = stopOnFault(t);
    if (live !== undefined) live.#lock.release();
    return { t, slot, gone };
  }

  /**
   * The new attachment `heap` takes over the watches of the stopped instance, if any, and reclaims
   * its slot, and any DEAD slot under its own thread id (an instance of this thread stopped by a
   * fault and collected since: reclaim.ts reclaimOwnDead).
   */
  static #takeOverStale(heap: SharedHeap, stale: { t: ThreadContext; slot: number; gone: Map<number, Promise<ThreadLock>> | undefined } | undefined, fn: string): void {
    const id = heapIdOf(heap.#t.buffer);
    const waiting = detachedWatching.get(id);
    const watched = waiting !== undefined && !sharesMemory(heap.#t, waiting.buffer);
    if (watched || (stale !== undefined && !sharesMemory(heap.#t, stale.t.buffer))) {
      // A copy of a heap (the same heap id, other memory) whose original this thread still watches
      // workers on (detached since), or where a fault stopped its instance: the thread's registries
      // go by heap id, and the copy's attachment took those watches over (their exits reclaimed on
      // the copy while the original kept the dead workers' slots) and reclaimed the stopped slot in
      // the copy (an audit; test/heap-copy-watch.test.ts, test/heap-copy-stopped.test.ts). Refused
      // once attached (the probe writes one of this attachment's own words), nothing taken over:
      // the stopped instance waits for the thread's next attachment of the original again.
      heap.detach();
      if (stale !== undefined) {
        stopped.set(id, stale.t);
        if (stale.gone !== undefined) stoppedGone.set(id, stale.gone);
      }
      throw new HeapStateError(
        `${fn}: this buffer holds a copy of a heap ${watched ? 'this thread still watches workers on' : "where a fault stopped this thread's instance"} ` +
          `(the same heap id, other memory), ${watched ? 'whose exits are reclaimed on the original' : 'whose slot the next attachment of the original reclaims'}; ` +
          "share a heap's buffer (postMessage it, or heap.memory), never copy it",
      );
    }
    // The gone marks the stopped instance kept are this attachment's, given up when it detaches
    // (they outlived the thread's detach, held until it ended: an audit).
    if (stale?.gone !== undefined) {
      for (const [k, v] of stale.gone) if (!heap.#gone.has(k)) heap.#gone.set(k, v);
      stale.gone.clear();
    }
    if (waiting !== undefined) {
      detachedWatching.delete(id);
      adoptWatches(waiting, heap.#t);
    }
    // Both: the stopped instance's watches join the waiting ones (adopted second, they replaced them).
    if (stale !== undefined) (waiting !== undefined ? mergeWatches : adoptWatches)(stale.t, heap.#t);
    guarded(heap.#t, fn, reclaimOwnDead, stale?.slot ?? -1, stale?.t.threadId ?? -1);
  }

  /** `heap`, copying with `memory` from now on when it is given and the instance had none (attach, attachAsync). */
  static #withMemory(heap: SharedHeap, memory: SharedMemory | undefined): SharedHeap {
    if (memory !== undefined && heap.#t.copy === null) {
      const fns = memoryFunctions(memory);
      heap.#t.memory = memory;
      heap.#t.copy = fns?.copy ?? null;
      heap.#t.zero = fns?.zero ?? null;
    }
    return heap;
  }

  /**
   * Browsers: attaches a worker under the id its parent reserved for it with newThreadId(), once
   * it holds that id's Web Lock. The parent knows the id before the worker runs, so
   * reclaimWhenGone(threadId) returns the worker's slot wherever the worker dies, inside this
   * call too (with attach() the id exists only once the worker has attached and posted it). A
   * worker whose id was reclaimed before it got here never attaches (the parent keeps a gone mark:
   * reclaimWhenGone), and this promise stays pending. Rejects for an id this heap did not hand
   * out, one that names a slot still (a thread under it that was not reclaimed), a thread
   * attached already under another id, and where there is no Web Locks API (Node: there
   * worker.threadId names a worker, attach() and watch(worker)).
   * The worker may be given `heap.memory` instead of the buffer, as attach() takes it. A call made
   * while another of this thread under the same id is under way answers as that one does.
   */
  static async attachAsync(given: SharedArrayBuffer | SharedMemoryLike, options: { threadId: number }): Promise<SharedHeap> {
    const fn = 'SharedHeap.attachAsync(buffer, options)';
    const { buffer, memory, id } = heapArgument(given, fn); // heap.memory, as attach() takes it
    if (!isObjectArgument(options)) throw new TypeError(`${fn}: options: expected { threadId }, got ${describe(options)}`);
    const threadId = checkInteger('SharedHeap.attachAsync', 'options.threadId', options.threadId, 2 ** 31 - 1);
    const next = Atomics.load(new Int32Array(buffer, 0, G_NEXT_THREAD_ID + 1), G_NEXT_THREAD_ID);
    if (threadId < FIRST_HEAP_THREAD_ID || threadId >= next) {
      throw new RangeError(`${fn}: options.threadId ${threadId} was not handed out by this heap's newThreadId()`);
    }
    const attachedAs = (): SharedHeap | undefined => {
      const existing = SharedHeap.#current(id, buffer, fn);
      if (existing !== undefined && existing.threadId !== threadId) {
        throw new HeapStateError(`${fn}: this thread is attached to the heap already, as ${existing.threadId}`);
      }
      return existing;
    };
    const before = attachedAs();
    if (before !== undefined) return SharedHeap.#withMemory(before, memory);
    // Another attachAsync of this thread under the same id, still under way: its request holds the
    // id's Web Lock once granted, until the thread detaches, so a request made here waited behind it
    // for as long as the thread stayed attached (and then attached it again, after its detach: an
    // audit, test/attach-async-twice.test.ts). This call answers as that one does instead.
    const key = `${id}:${threadId}`;
    const earlier = attachingAsync.get(key);
    if (earlier !== undefined) {
      await earlier.catch(() => undefined); // its rejection is its caller's: this call tries again
      return SharedHeap.attachAsync(given, { threadId });
    }
    const attaching = SharedHeap.#attachAsyncLocked(buffer, memory, id, threadId, fn, attachedAs);
    attachingAsync.set(key, attaching);
    try {
      return await attaching;
    } finally {
      if (attachingAsync.get(key) === attaching) attachingAsync.delete(key);
    }
  }

  /** attachAsync once its arguments are checked and no attachAsync of this thread under the id is under way. */
  static async #attachAsyncLocked(
    buffer: SharedArrayBuffer,
    memory: SharedMemory | undefined,
    id: number,
    threadId: number,
    fn: string,
    attachedAs: () => SharedHeap | undefined,
  ): Promise<SharedHeap> {
    if (!hasWebLocks()) {
      throw new HeapStateError(
        `${fn}: this thread has no Web Locks API (navigator.locks), which makes a reserved id safe to reclaim; ` +
          'in Node attach with SharedHeap.attach(buffer) and reclaim with heap.watch(worker)',
      );
    }
    // An instance of this thread that a fault stopped (fault.ts): its slot is marked DEAD and its Web
    // Lock given up, so that reclaimWhenGone(its id) in the thread that reserved that id reclaims it;
    // this attachment reclaims it too (whichever comes first: reclaimOwnDead). Under the same id, whose
    // gone mark that reclaimWhenGone takes once granted, the attach would stay pending for good: refused.
    const stale = SharedHeap.#stopStale(id, fn);
    if (stale !== undefined && stale.t.threadId === threadId) {
      throw new HeapStateError(
        `${fn}: a fault stopped this thread's instance under threadId ${threadId}, whose slot reclaimWhenGone(${threadId}) ` +
          'reclaims; attach under a new id from newThreadId(), or with SharedHeap.attach(buffer), which reclaim that slot too',
      );
    }
    const name = threadLockName(id, threadId);
    const lock = holdThreadLock(name);
    if (!(await lock.held)) throw new HeapStateError(`${fn}: the Web Lock of threadId ${threadId} was refused`);
    if (await markedGone(name)) {
      // A reclaimWhenGone(threadId) saw this id's thread gone (this one, before it got here): it
      // never attaches behind that reclaim. The lock goes back, for other reclaimers of the id.
      lock.release();
      return new Promise<SharedHeap>(() => {});
    }
    let heap: SharedHeap;
    try {
      const meanwhile = attachedAs();
      if (meanwhile !== undefined) {
        lock.release();
        return SharedHeap.#withMemory(meanwhile, memory);
      }
      // A stale instance's slot is reclaimed below: the slot kept for reclaims may be taken, as
      // attach() takes it (with maxThreads 1 the stopped slot was the only one: an audit,
      // test/attach-async-fault-every-slot-taken.test.ts).
      heap = SharedHeap.#adopt(attachThread(buffer, threadId, stale !== undefined), id, lock);
    } catch (e) {
      lock.release();
      throw e;
    }
    SharedHeap.#takeOverStale(heap, stale, fn);
    return SharedHeap.#withMemory(heap, memory);
  }

  /**
   * This thread's attached instance for the heap `id`, if any. Given the `buffer` an attach got:
   * refused when that buffer is not the instance's memory but a copy of it (the same id), which
   * was taken for the original (an audit).
   */
  static #current(id: number, buffer?: SharedArrayBuffer, fn = ''): SharedHeap | undefined {
    const existing = attachedNow(id);
    if (existing === undefined) return undefined;
    if (buffer !== undefined && buffer !== existing.#t.buffer && !sharesMemory(existing.#t, buffer)) {
      throw new HeapStateError(
        `${fn}: this buffer holds a copy of a heap this thread is attached to (the same heap id, other memory); ` +
          "share a heap's buffer (postMessage it, or heap.memory), never copy it",
      );
    }
    return existing;
  }

  /** The instance for a context attachThread() made, registered for this thread. */
  static #adopt(t: ThreadContext, id: number, lock: ThreadLock): SharedHeap {
    // Answers other threads' asks to flush from this thread's event loop (flush-ask.ts); through
    // the context, not the instance, which the listener must not keep alive.
    listenForFlushAsks(t, () => guarded(t, 'flush()', flushThread));
    return SharedHeap.#register(t, id, lock);
  }

  /** A new instance over `t`, registered as this thread's for the heap `id`, its finalizer's record kept. */
  static #register(t: ThreadContext, id: number, lock: ThreadLock): SharedHeap {
    // Debug mode is a class of its own, chosen here: the default class's fast paths never test it.
    const debug = t.i32[G_DEBUG] === 1;
    const heap = debug ? new DebugSharedHeap(CONSTRUCT, t) : new SharedHeap(CONSTRUCT, t);
    heap.#lock = lock;
    if (!debug) heap.#primeFeedback();
    const ref = new WeakRef(heap);
    const d: Dropped = { id, ref, t, lock, gone: heap.#gone, settled: false };
    records.set(id, d);
    dropped.register(heap, d, heap);
    return heap;
  }

  /**
   * Runs each fast path's one way out (the call out at its end, and free's test for free(0) before
   * it) 128 times with arguments that take it at once, the calls out returning at once
   * (ThreadContext.priming), so that V8 has feedback for them before any caller's loop is
   * optimized. V8 compiles a compare or a call it has no feedback for as a deoptimization: free's
   * first call out comes at the first periodic drain or full magazine, and where a program's loop
   * was optimized before that (on-stack replacement early in its first long loop; bench W5's cold
   * runs of jq_customers and xmllint_format, seen with --trace-deopt), it threw the loop's code
   * away, which ran unoptimized until V8 compiled it again (test/jit.test.ts, 'free leaving its
   * fast path for the first time'). 128 rounds: V8 gives a function its feedback vector only after
   * it has run a while (lazy feedback allocation, a budget of 8 times its bytecode), and 32 left
   * free without one (%DebugPrint). Not primed: calloc's zeroing of a reused block (its call is
   * reached only with a block from the magazine), which deoptimizes such a loop at the first one.
   * The priming costs nothing measurable in create() (166-183 us, with or without it).
   */
  #primeFeedback(): void {
    const t = this.#t;
    t.priming = true;
    try {
      for (let k = 0; k < 128; k++) {
        this.malloc(-1);
        this.free(-1);
        this.calloc(-1, 0);
        this.realloc(-1, 0);
      }
    } finally {
      t.priming = false;
    }
  }

  /**
   * Browsers: reserves a fresh thread id for a worker still to start. Post it with the buffer;
   * the worker attaches with SharedHeap.attachAsync(buffer, { threadId }), and this thread can
   * reclaimWhenGone(threadId) from then on, whatever becomes of the worker. Ids are never reused
   * within a heap.
   */
  newThreadId(): number {
    const t = attachedContext(this, 'newThreadId()');
    return takeHeapThreadId(t.i32, 'newThreadId()');
  }

  /** The SharedArrayBuffer holding the heap; post it to workers and attach there. */
  get buffer(): SharedArrayBuffer {
    return this.#t.buffer;
  }

  /**
   * The shared WebAssembly.Memory whose buffer the heap is, where this thread has it (the thread
   * that created a heap of a fixed size, or one attached with it), else undefined. Post it to a
   * worker instead of the buffer, and the worker's realloc copies with WebAssembly's
   * `memory.copy`, faster than `copyWithin` on a shared buffer (wasm-copy.ts).
   */
  get memory(): SharedMemory | undefined {
    return this.#t.memory;
  }

  /** Uint8Array over the whole heap (fixed length; a new one after the heap grew). */
  get u8(): Uint8Array {
    const t = this.#t;
    t.ensureViews();
    return t.bytes;
  }

  /** The id reclaim() takes for this thread: Node's threadId, or one the heap hands out (browsers). */
  get threadId(): number {
    return this.#t.threadId;
  }

  /**
   * Allocates `size` bytes; returns the block's offset (> 0, a multiple of 16), or 0 when out
   * of memory. Fast path, no Atomics and no object: 8 loads (the context; its i32 and bytes
   * views and magazine-top index; the class table; the top; the entry's block and state
   * address) and 2 stores (the top, the state byte). An empty magazine, a size above MAX_SMALL or a
   * non-integer misses into mallocSlow, by one call (see free).
   */
  malloc(size: number): number {
    const t = this.#t;
    if (typeof size === 'number' && size >>> 0 === size && size <= MAX_SMALL) {
      const cls = CLASS_OF_GRANULE[(size + 15) >>> 4];
      const i32 = t.i32;
      const topW = (t.topW + cls) | 0;
      const top = (i32[topW] - MAG_ENTRY_WORDS) | 0;
      const block = i32[top];
      if (block !== 0) { // else the empty sentinel
        i32[topW] = top;
        t.bytes[i32[(top + MAG_STATE) | 0]] = ST_ALLOCATED;
        return block;
      }
    }
    return mallocMiss(t, size) | 0; // the one call out (see free); | 0: an int32 to the caller
  }

  /**
   * Frees a block from any thread. Fast path, no Atomics and no object: the slot meta gives
   * class, data and state offsets, a multiply by the inverse of the block size finds the
   * block's index, its state byte must say ALLOCATED, then a magazine push and the drain
   * countdown (a field of the context): 17 loads (context fields, slot-limit and meta words, the
   * three division constants, state byte, top, the entry under it, the countdown) and 5 stores
   * (state byte, entry block and state, top, countdown). Everything else leaves by one call,
   * freeMiss: misuse, large blocks and blocks beyond this thread's views to freeSlow, which
   * throws before changing anything; a full magazine; the end of the drain countdown.
   *
   * Each fast path here has one call out, at its end, through a proxy: V8 compiles a call it has
   * never seen made as a deoptimization, so a rare way out with a call of its own (the first large
   * block, the first full magazine) threw away the optimized code of the method and of the
   * caller's loop it was inlined into. The one call is made early (the first empty magazine, the
   * first periodic drain), and V8 does not inline a proxy's target, so the slow path's own calls
   * (some never made yet) stay out of the fast path's code; a call through a proxy costs about
   * 20 ns, on misses only. test/jit.test.ts checks that each rare way out leaves the caller's loop
   * optimized. (Measured in one process, alternated with the build before: W3 at one thread cold
   * 26-30 -> 37-40 M ops/s, W1 cold 30-34 -> 35-36, their warm runs unchanged.)
   *
   * V8 inlines a function of at most 460 bytes of bytecode into its caller; this one has 458 (malloc
   * 161, calloc 235), so a few more statements here would leave every loop that frees with a call
   * a free: test/inlining.test.ts checks that malloc, calloc and free are inlined into such loops.
   */
  free(block: number): void {
    const t = this.#t;
    // One call out, at the end, for every way off the fast path (see freeMiss).
    let cls = -1;
    let st = 0;
    if (typeof block === 'number' && block >>> 0 === block && block >>> SLOT_SHIFT < t.slotLimit) {
      const i32 = t.i32;
      const mW = (t.smW + ((block >>> SLOT_SHIFT) << SM_SHIFT)) | 0;
      const c = (i32[(mW + SM_CLS1) | 0] - 1) | 0; // -1: a large run, free(0), or not a slab
      // -1 and, should the meta word be overwritten, any class at or above the layout's
      // CLASS_SLOTS, 64 (whose entry `c << FD_LOG2_WORDS` would wrap onto a real class's), go to
      // freeMiss; a class from NUM_CLASSES to 63 reads beyond FREE_DIV, whose undefined count
      // fails the index test below. The mask is a literal (checked against CLASS_SLOTS at load):
      // `c >>> 0 < NUM_CLASSES`, or the mask as a module constant, ran W3 at one thread 7% slower
      // (worker A/B, four alternations: 13.7 against 12.8 ns an operation); the literal, 12.8.
      if ((c & -64) === 0) {
        // Exact division by the block size: a multiply by the inverse of its odd part, then a rotate
        // right by its power of two, which sends an offset that is not a block start, one into the
        // slab header (off < 0) included, to an index at or above COUNT: one test (size-classes.ts).
        const off = (block - i32[(mW + SM_DATA) | 0]) | 0;
        const d = c << FD_LOG2_WORDS;
        const q = Math.imul(off, FREE_DIV[d | FD_INV]);
        const sh = FREE_DIV[d | FD_SHIFT];
        const idx = (q >>> sh) | (q << (32 - sh));
        const s = (i32[(mW + SM_STATE) | 0] + idx) | 0;
        const bytes = t.bytes;
        if (idx >>> 0 < FREE_DIV[d | FD_COUNT] && bytes[s] === ST_ALLOCATED) {
          cls = c;
          st = s;
          const topW = (t.topW + c) | 0;
          const top = i32[topW];
          if (i32[top] !== MAG_FULL_SENTINEL) {
            bytes[s] = ST_CACHED;
            i32[top] = block;
            i32[(top + MAG_STATE) | 0] = s;
            i32[topW] = (top + MAG_ENTRY_WORDS) | 0;
            if (--t.drainLeft !== 0) return;
          }
        }
      }
    }
    if (block === 0) return; // free(0), which C programs make often: nothing to do, no call out
    freeMissCall(t, block, cls, st);
  }

  /**
   * malloc(n * size) whose bytes read as zero; 0 when out of memory or when n * size overflows.
   * Fast path (a small total): malloc's pop, then the bytes zeroed by zeroInHeap (WebAssembly's
   * memory.fill where this thread has the heap's memory, above ZERO_LOOP_MAX bytes; else eight at a
   * time through the Float64Array view), unless the block is CLEAN (never handed out, its bytes
   * zero as the buffer made them: its pages stay untouched). Anything else goes to callocImpl.
   * The pop is written out here rather than called as this.malloc, so that an empty magazine goes
   * to callocImpl, whose errors (a detached thread) name calloc.
   */
  calloc(n: number, size: number): number {
    const t = this.#t;
    if (typeof n === 'number' && typeof size === 'number' && n >>> 0 === n && size >>> 0 === size) {
      const total = n * size; // exact below 2^53; anything above MAX_SMALL goes to callocImpl
      if (total <= MAX_SMALL) {
        const cls = CLASS_OF_GRANULE[(total + 15) >>> 4];
        const i32 = t.i32;
        const topW = (t.topW + cls) | 0;
        const top = (i32[topW] - MAG_ENTRY_WORDS) | 0;
        const block = i32[top];
        if (block !== 0) { // else the empty sentinel
          i32[topW] = top;
          const bytes = t.bytes;
          const st = i32[(top + MAG_STATE) | 0];
          const clean = bytes[st] === ST_CLEAN; // never handed out: its bytes read zero already
          bytes[st] = ST_ALLOCATED;
          if (!clean) zeroInHeap(t, block, total);
          return block;
        }
      }
    }
    return callocMiss(t, n, size) | 0; // the one call out (see free)
  }

  /**
   * Resizes a block, keeping its contents up to the smaller size; 0 (old block intact) when out
   * of memory. Fast path (a live small block, a small size): free's validation, then the block
   * itself when it still fits, else malloc's fast path, a copy (WebAssembly's memory.copy where
   * this thread has the heap's memory, else word by word up to REALLOC_WORD_COPY bytes and
   * copyWithin above) and free's push; no Atomics, no object. Anything
   * else (errors, large blocks, a block that moves into a large run: alloc.ts reallocToRun) goes
   * to reallocImpl.
   */
  realloc(block: number, size: number): number {
    const t = this.#t;
    if (
      typeof size === 'number' && size >>> 0 === size && size <= MAX_SMALL &&
      typeof block === 'number' && block >>> 0 === block && block >>> SLOT_SHIFT < t.slotLimit
    ) {
      const i32 = t.i32;
      const mW = (t.smW + ((block >>> SLOT_SHIFT) << SM_SHIFT)) | 0;
      const cls = (i32[(mW + SM_CLS1) | 0] - 1) | 0;
      if ((cls & -64) === 0) { // (see free)
        const off = (block - i32[(mW + SM_DATA) | 0]) | 0;
        const d = cls << FD_LOG2_WORDS;
        const prod = Math.imul(off, FREE_DIV[d | FD_INV]); // free's exact division, rotate and all
        const sh = FREE_DIV[d | FD_SHIFT];
        const idx = (prod >>> sh) | (prod << (32 - sh));
        const st = (i32[(mW + SM_STATE) | 0] + idx) | 0;
        // A block that grows by half or more to REALLOC_RUN_FROM or more goes to a large run with
        // room to grow in place (alloc.ts reallocToRun; false for a size that fits): by the call out.
        if (idx >>> 0 < FREE_DIV[d | FD_COUNT] && t.bytes[st] === ST_ALLOCATED && !toRun(size, SIZE[cls])) {
          const usable = SIZE[cls];
          // Stays put down to a quarter of its size (any size for the 16-byte class); the floor
          // is computed on every call, so that no compare is left that V8 has not seen made.
          const floor = usable > 16 ? usable >>> REALLOC_SHRINK : -1;
          if (size <= usable && size > floor) return block;
          const keep = size < usable ? size : usable;
          const req = requestFor(size, usable); // at most MAX_SMALL: size, or twice it up to REALLOC_SLACK_TO
          // malloc's pop written out: a block from the magazine waits for nothing and changes no
          // view, so the old block needs no second look (under callgrind, a lua_inventory run:
          // realloc 498 -> 454 M instructions). An empty magazine goes through malloc, below.
          const nTopW = (t.topW + CLASS_OF_GRANULE[(req + 15) >>> 4]) | 0;
          const nTop = (i32[nTopW] - MAG_ENTRY_WORDS) | 0;
          let q = i32[nTop];
          if (q !== 0) { // else the empty sentinel
            i32[nTopW] = nTop;
            t.bytes[i32[(nTop + MAG_STATE) | 0]] = ST_ALLOCATED;
          } else {
            q = this.malloc(req);
            if (q === 0) return 0;
            // That malloc may have waited (for the lock, or for answers to its asks to flush), and
            // another thread freed the old block meanwhile (a double free): it is CACHED in that
            // thread's magazine or on a remote list, and the push below put it in two places
            // (check() failed, and malloc handed it out twice: an audit,
            // test/realloc-small-freed-meanwhile.test.ts). Refused unless still ALLOCATED in its class.
            if (t.bytes[st] !== ST_ALLOCATED || ((t.i32[(mW + SM_CLS1) | 0] - 1) | 0) !== cls) return reallocFreedCall(t, block, q) | 0;
          }
          const copy = t.copy;
          if (copy !== null) {
            copy(q, block, keep); // WebAssembly's memory.copy, where this thread has the heap's memory (wasm-copy.ts)
          } else if (keep <= REALLOC_WORD_COPY) {
            // Whole words: both blocks hold at least keep rounded up to 16 bytes (classes are multiples of 16).
            const v = t.i32; // malloc may have refreshed the views
            const from = block >>> 2;
            const to = q >>> 2;
            for (let w = 0, n = (keep + 3) >>> 2; w < n; w++) v[to + w] = v[from + w];
          } else {
            t.bytes.copyWithin(q, block, block + keep);
          }
          // free's push of the old block (validated above, and again after the malloc; still
          // ALLOCATED, so its slab stayed put), with free's one call out.
          const w = t.i32;
          const topW = (t.topW + cls) | 0;
          const top = w[topW];
          if (w[top] !== MAG_FULL_SENTINEL) {
            t.bytes[st] = ST_CACHED;
            w[top] = block;
            w[(top + MAG_STATE) | 0] = st;
            w[topW] = (top + MAG_ENTRY_WORDS) | 0;
            if (--t.drainLeft !== 0) return q;
          }
          freeMissCall(t, block, cls, st);
          return q;
        }
      }
    }
    // realloc(0, n) is malloc(n) (reallocImpl's rule), which programs that allocate through
    // realloc make for every block: malloc's fast path, not the call out, for a valid small size.
    if (block === 0 && typeof size === 'number' && size >>> 0 === size && size <= MAX_SMALL && !t.detached) return this.malloc(size);
    // A live large run that stays put (reallocImpl's rule: a size above half its usable size and up
    // to it), without the call out: a buffer grown in small steps (a string builder) reallocs it at
    // every step (an audit: 25-44 ns a call here against glibc's 4-6). The slot-limit test refuses
    // a detached or stopped thread, as above.
    if (
      typeof size === 'number' && size >>> 0 === size && size > MAX_SMALL &&
      typeof block === 'number' && block >>> 0 === block && (block & (SLOT_BYTES - 1)) === 0 && block >>> SLOT_SHIFT < t.slotLimit
    ) {
      const i32 = t.i32;
      const mW = (t.smW + ((block >>> SLOT_SHIFT) << SM_SHIFT)) | 0;
      if (i32[(mW + SM_KIND) | 0] === K_LARGE && i32[(mW + SM_HEAD) | 0] === block >>> SLOT_SHIFT && i32[(mW + SM_LARGE) | 0] === LARGE_LIVE) {
        const usable = i32[(mW + SM_SPAN) | 0] * SLOT_BYTES;
        if (size <= usable && size > usable >>> REALLOC_SHRINK_LARGE) return block;
      }
    }
    return reallocMiss(t, block, size) | 0; // the one call out (see free)
  }

  /**
   * malloc for the main thread: never blocks on the global lock. Where malloc would wait, this
   * waits with Atomics.waitAsync, the event loop running (so a dead worker's 'exit' handler can
   * mark it and its lock is broken), then tries again. Same result and errors as malloc.
   */
  mallocAsync(size: number): Promise<number> {
    return this.#withoutBlocking(() => this.malloc(size), 'malloc', 'mallocAsync');
  }

  /** calloc without blocking the event loop (see mallocAsync). */
  callocAsync(n: number, size: number): Promise<number> {
    return this.#withoutBlocking(() => this.calloc(n, size), 'calloc', 'callocAsync');
  }

  /** alignedAlloc without blocking the event loop (see mallocAsync). */
  alignedAllocAsync(align: number, size: number): Promise<number> {
    return this.#withoutBlocking(() => this.alignedAlloc(align, size), 'alignedAlloc', 'alignedAllocAsync');
  }

  /**
   * free without blocking the event loop (see mallocAsync). Same errors as free. A small block's
   * free never waits for the lock (it only tries it), but a large block's takes it (not one that
   * goes to the large-run pool's lock-free lists: large.ts): on a main
   * thread, free of a large block while a dying worker held the lock spun for 3 s and threw
   * LockTimeoutError (a browser page's loop in test/browser/chaos.test.ts).
   */
  freeAsync(block: number): Promise<void> {
    return this.#withoutBlocking(() => this.free(block), 'free', 'freeAsync');
  }

  /** realloc without blocking the event loop (see mallocAsync). Same errors as realloc. */
  async reallocAsync(block: number, size: number): Promise<number> {
    // realloc's checks, in its order: they never wait.
    checkInteger('reallocAsync', 'size', size);
    const t = this.#t;
    if (t.detached) throw new HeapStateError('reallocAsync(ptr, size): this thread has detached from the heap');
    const cls = block === 0 ? 0 : classifyBlock(t, 'reallocAsync', 'ptr', block);
    // (In debug mode usableSize checks the block's canary: an error there names this call, not usableSize.)
    let usable = 0;
    try {
      if (block !== 0) usable = this.usableSize(block);
    } catch (e) {
      throw renamedCall(e, 'usableSize', 'reallocAsync');
    }
    // A large run's span and generation as checked, for the free after the copy (layout.ts
    // SM_RUN_GEN), before any wait (debug mode's usable is the size asked for, not the run's).
    const span = cls < 0 ? runSpan(t, block) : 0;
    const gen = cls < 0 ? runGeneration(t, block) : 0;
    // A small block: realloc's free of it never waits for the lock (a small free only tries it), so
    // a WOULD_BLOCK comes before anything changed and the whole call is tried again. A large run,
    // even one whose usable size is at most MAX_SMALL (a run of one slot from alignedAlloc, or in
    // debug mode a run for a request up to MAX_SMALL), is freed under the lock after the new block
    // was taken and the contents copied (and, in debug mode, after free wrote its fill into the old
    // block): retried whole, that leaked the new block and copied the fill (an audit). So its
    // steps are retried one by one.
    if (cls >= 0) return this.#withoutBlocking(() => this.realloc(block, size), 'realloc', 'reallocAsync');
    // Kept, or resized in place, where it can: not in debug mode, which moves it as realloc does,
    // to write its size record and canary anew (usable is then the requested size; an audit).
    const debug = this instanceof DebugSharedHeap;
    if (!debug && size <= usable && size > usable >>> 1) return block;
    // Each step below runs after an await: the thread may have detached, or a fault stopped this
    // instance, meanwhile. A step on that context took the global lock in the name of a slot it no
    // longer had (another thread broke it as a dead holder's, two holders at once), or retried for
    // good on a lock its own stopped slot kept (an audit, test/realloc-async-detached.test.ts).
    const attached = (): void => {
      if (t.detached) {
        throw new HeapStateError(
          t.runner.faulted
            ? "realloc(ptr, size): a fault stopped this thread's instance while this call waited (attach again)"
            : 'realloc(ptr, size): this thread has detached from the heap',
        );
      }
    };
    const inPlace = (): boolean => {
      attached();
      return guarded(t, 'realloc(ptr, size)', resizeLargeInPlace, block, size, usable);
    };
    if (!debug && (await this.#withoutBlocking(inPlace, 'realloc', 'reallocAsync'))) return block;
    // Moved where realloc moves it (alloc.ts reallocTarget: a run that grows lands with room to
    // grow again); in debug mode by mallocAsync, which writes the new block's size record and canary.
    const target = (): number => {
      attached();
      return guarded(t, 'realloc(ptr, size)', reallocTarget, -1, size, usable);
    };
    // From the new block's take until the old run is freed, only this call knows the new block:
    // detach() refuses meanwhile (#moving), as a detach there left it to nobody.
    this.#moving++;
    try {
      const q = debug ? await this.mallocAsync(size) : await this.#withoutBlocking(target, 'realloc', 'reallocAsync');
      // Out of memory: that allocation gave back the runs and slabs kept for reuse, which may have held
      // the slots right after the run: once more in place (reallocImpl).
      if (q === 0) return !debug && (await this.#withoutBlocking(inPlace, 'realloc', 'reallocAsync')) ? block : 0;
      // The new block over the old one (live blocks never overlap): the old block was freed while
      // this call awaited (a double free, by another call of this thread or another thread) and the
      // allocation took its memory back. The free below would free the new block and return it free
      // (the next malloc handed it out again: an audit); refused as that free refuses it otherwise.
      if (q < block + usable && block < q + size) {
        await this.#withoutBlocking(() => this.free(q), 'free', 'reallocAsync');
        throw freedWhileWaited('reallocAsync', block, 'the large block there was freed while this call awaited');
      }
      try {
        attached(); // (the debug mallocAsync above awaited too)
        copyInHeap(t, q, block, Math.min(size, usable));
        // The run freed as copied (a resize in place by another thread meanwhile is refused: alloc.ts
        // freeMovedRun); debug mode's free fills it as freed.
        const freeOld = debug ? debugFreeMovedRun : freeMovedRun;
        await this.#withoutBlocking(
          () => {
            attached();
            guarded(t, 'realloc(ptr, size)', freeOld, block, span, gen);
          },
          'realloc',
          'reallocAsync',
        );
      } catch (e) {
        // Another call freed the old block while this one waited (a DoubleFreeError): the new block
        // goes back too, not lost (an audit; alloc.ts moveBlock). (A fault meanwhile: the new block
        // stays with the stopped instance, as a dead thread's blocks do.)
        if (e instanceof HeapError && !t.detached) await this.#withoutBlocking(() => this.free(q), 'free', 'reallocAsync').catch(() => undefined); // the first error is the one to report
        throw e;
      }
      return q;
    } finally {
      this.#moving--;
    }
  }

  /**
   * Runs `call` (the synchronous call named `sync`) without blocking; an error it throws names the
   * asynchronous call the program made, `name`, as every error names the call it came from (they
   * named the synchronous one: "malloc(size): ..." from mallocAsync(-1)).
   */
  async #withoutBlocking<T>(call: () => T, sync: string, name: string): Promise<T> {
    let since = 0; // when this call first awaited the lock, and how many times: stats()' lock counters
    let slices = 0;
    for (;;) {
      try {
        return runNoWait(call, since, slices);
      } catch (e) {
        if (e !== WOULD_BLOCK) throw renamedCall(e, sync, name);
      }
      if (since === 0) since = performance.now();
      slices++;
      await waitLockAsync(this.#t);
    }
  }

  /** Bytes the block can hold (>= what was asked for). */
  usableSize(block: number): number {
    return usableSizeImpl(this.#t, block);
  }

  /** A block of `size` bytes aligned to `align` (a power of two up to 1 MiB); 0 when out of memory. */
  alignedAlloc(align: number, size: number): number {
    return guarded(this.#t, 'alignedAlloc(align, size)', alignedAllocImpl, align, size);
  }

  /** Like malloc, but never blocks on the global lock: returns 0 when it is busy. */
  tryMalloc(size: number): number {
    return guarded(this.#t, 'tryMalloc(size)', tryMallocImpl, size);
  }

  /** Lock counters, stage counts, per-class and per-thread figures, footprint, live bytes. */
  stats(): HeapStats {
    return collectStats(attachedContext(this, 'stats()'));
  }

  /**
   * Walks every invariant; throws HeapCorruptionError naming what is wrong and where. For a quiet
   * heap: while another thread allocates or frees, it can read metadata in the middle of a change
   * and report that as corruption. Call it when the other threads are idle or done.
   */
  check(): void {
    checkHeap(attachedContext(this, 'check()'));
  }

  /** Returns this thread's cached blocks (magazines) to their slabs, and empty slabs to the pool. */
  flush(): void {
    guarded(attachedContext(this, 'flush()'), 'flush()', flushThread);
  }

  /** Flushes, abandons this thread's slabs to the pool and gives up its thread slot. */
  detach(): void {
    const t = this.#t;
    if (t.detached) return;
    if (this.#moving > 0) {
      throw new HeapStateError(
        'detach(): a reallocAsync of this instance is moving a large block (taking its new place, or its old one not yet freed); await it, then detach',
      );
    }
    guarded(t, 'detach()', detachThread);
    this.#lock.release();
    releaseGone(this.#gone);
    dropped.unregister(this);
    const id = heapIdOf(t.buffer);
    if (records.get(id)?.t === t) records.delete(id);
    keepWatching(t);
  }

  /**
   * Returns a stopped thread's magazines, slabs and held lock to the pool; true when a slot was
   * reclaimed. Pass the Worker (watched with watch() while it ran; refused until its 'exit' was
   * seen), or a threadId: the caller then states that the thread has stopped (as after an awaited
   * terminate()), and the reclaim completes promptly whatever that thread held.
   */
  reclaim(thread: number | WatchableWorker): boolean {
    const t = this.#t;
    const id = reclaimTarget(t, thread);
    return guarded(t, reclaimCall(thread), thread !== null && typeof thread === 'object' ? reclaimExited : reclaimId, id);
  }

  /**
   * Resolves true once this thread holds its Web Lock (named after the heap and `threadId`),
   * false where there is no Web Locks API (Node). A browser worker posts its `threadId` to the
   * thread that will reclaim it only after this resolved.
   */
  threadLockHeld(): Promise<boolean> {
    return this.#lock.held;
  }

  /**
   * Browsers: waits until the thread known by `threadId` is really gone (its Web Lock is
   * released), then reclaims its slot like reclaim(). Resolves to reclaim()'s answer; false when
   * this thread detached meanwhile. Rejects where there is no Web Locks API (in Node use watch()).
   * Throws at once for a bad threadId, one this heap has not handed out (a RangeError), or the
   * calling thread's own (whose lock it would wait on).
   *
   * The lock, once granted, is traded for a mark that the thread is gone, which this thread holds
   * until it detaches: a worker still on its way to attachAsync(buffer, { threadId }) under that
   * id (terminated, or never started) finds it, so never attaches a slot behind the reclaim.
   * Asking again for the same id answers at once, here and in other threads (false). Where another
   * attached thread keeps the global lock, its Web Lock is asked for too after a second, and once
   * granted that thread is taken as gone (its slot marked DEAD, its lock broken), so that the calls
   * for several terminated workers may be awaited one at a time.
   */
  reclaimWhenGone(threadId: number): Promise<boolean> {
    const id = checkInteger('reclaimWhenGone', 'threadId', threadId, 2 ** 31 - 1);
    if (id === this.threadId) throw new HeapStateError(`reclaimWhenGone(threadId): ${id} is the calling thread; use detach()`);
    if (this.#t.detached) throw new HeapStateError('reclaimWhenGone(threadId): this thread has detached from the heap');
    // An id the heap has not handed out yet is refused: its lock, granted at once (nobody holds
    // it) and kept, would leave the worker that newThreadId() gives it to later waiting in
    // attachAsync for good (an audit's repro, test/browser/chaos.test.ts). Ids below 2^30 are
    // Node's threadIds, which a thread with none (a browser) never meets in its heap.
    const next = Atomics.load(this.#t.i32, G_NEXT_THREAD_ID);
    if (id >= next || (id < FIRST_HEAP_THREAD_ID && nodeThreadId() < 0)) {
      throw new RangeError(
        `reclaimWhenGone(threadId): threadId ${id} was not handed out by this heap (ids come from newThreadId() and attach, ` +
          (next > FIRST_HEAP_THREAD_ID ? `${FIRST_HEAP_THREAD_ID} to ${next - 1} so far)` : 'none so far)'),
      );
    }
    const name = threadLockName(heapIdOf(this.#t.buffer), id);
    let gone = this.#gone.get(id);
    if (gone === undefined) {
      const lock = holdThreadLock(name);
      gone = lock.held.then(async (held) => {
        if (!held) {
          this.#gone.delete(id);
          throw new HeapStateError('reclaimWhenGone(threadId): this thread has no Web Locks API (navigator.locks); in Node use watch(worker)');
        }
        // The thread is gone: its lock is traded for the gone mark, shared with any other
        // reclaimer of the id (which would otherwise wait for this thread to detach) and found
        // by a late attachAsync under it, which then never attaches (liveness.ts).
        const mark = holdThreadLock(goneMarkName(name), 'shared');
        if (!(await mark.held)) {
          const kept = { inner: lock };
          const wrapper: ThreadLock = { held: lock.held, release: () => kept.inner.release() };
          keptThreadLocks.set(wrapper, kept);
          return wrapper;
        }
        lock.release();
        return mark;
      });
      this.#gone.set(id, gone);
    }
    return gone.then(async (lock) => {
      // The id's lock asked for again where an attachment under the id stands in the way, maybe the
      // thread attached again (reclaimIdNoWait's 'own-reclaim': inside or past its own reclaim):
      // the lock granted here was maybe the stopped instance's, given up as the thread attached
      // again (attach(), Node's threadId: SharedHeap #stopStale), and the new attachment asked for
      // it right after; granted again, that attachment is gone too, and its lock is broken.
      let again: ThreadLock | undefined;
      let asking: Promise<unknown> | undefined; // again's request, until it settles
      let refused = false; // again's request failed
      const tries: NoWaitTries = { tried: false, holderGone: false };
      // Another attached thread holding the global lock under one word since `since` (its id
      // `holder`), and the request of its Web Lock, made once the word stayed for STUCK_HOLDER_MS.
      let stuck: { word: number; holder: number; since: number; ask: ThreadLock | undefined; gone: boolean } | undefined;
      try {
        for (;;) {
          const t = latestAttachment(this.#t); // a fault stopped this instance: its thread's next attachment reclaims
          if (t.detached) {
            lock.release();
            return false;
          }
          // That thread's Web Lock granted: it is gone, as surely as the one this call waited for, and
          // its slot, if it still holds the lock under that word, is marked DEAD (the try below breaks
          // the lock). Without this, a program that awaited its reclaimWhenGone() calls one at a time
          // waited here for good when a later one's worker had died holding the lock (an audit,
          // test/reclaim-when-gone-dead-lock-holder.test.ts); only that later call would break it.
          if (stuck?.gone === true) {
            markLockHolderGone(t, stuck.word, stuck.holder);
            stuck.ask?.release();
            stuck = undefined;
          }
          // A fault inside this reclaim stops this thread's use of the heap, as in any call (fault.ts).
          // It marks the slot dead first (a global lock it held is broken), and never waits for a live
          // holder of the lock: it tries again once the lock word changed, the event loop running
          // meanwhile, where another worker's reclaim may break that holder's lock (reclaimIdNoWait).
          const done = guarded(t, 'reclaimWhenGone(threadId)', reclaimIdNoWait, id, tries);
          if (done === true || done === false) return done;
          if (done === 'own-reclaim' && again === undefined) {
            // Where the id's lock is kept here (no gone mark): nobody else holds it, but that attachment
            // may wait for it (the thread attached again under the id, live: taken as gone at once, it
            // was marked DEAD and reclaimed while it ran: test/reclaim-when-gone-lock-requests.test.ts).
            // Let go and asked for again behind it, as where the mark was taken; kept in its place.
            const kept = keptThreadLocks.get(lock);
            kept?.inner.release();
            again = holdThreadLock(name);
            if (kept !== undefined) kept.inner = again;
            asking = again.held.then((held) => {
              tries.holderGone = held;
              refused = !held;
              asking = undefined;
            });
          }
          // That request failed (the lock manager rejected it): nothing says when that attachment is
          // gone, and every try answers 'own-reclaim' again (a loop of microtasks for good where the
          // global lock is free, waitLockAsync answering at once): test/reclaim-when-gone-lock-requests.test.ts.
          if (refused) throw new HeapStateError(`reclaimWhenGone(threadId): the request of the Web Lock of threadId ${id}, asked again, failed`);
          if (done === 'busy') {
            // The lock's holder, live or not known gone. Its Web Lock is asked for only once it has
            // held the lock under one word for a while (a live holder lets it go within
            // milliseconds), and let go once the word changes (granted later, it is let go at once).
            const word = Atomics.load(t.i32, G_LOCK) & ~layout.LOCK_STATE_MASK;
            if (stuck === undefined || stuck.word !== word) {
              stuck?.ask?.release();
              const holder = lockHolderId(t, word);
              stuck = holder >= 0 && holder !== id ? { word, holder, since: performance.now(), ask: undefined, gone: false } : undefined;
            } else if (stuck.ask === undefined && performance.now() - stuck.since >= STUCK_HOLDER_MS) {
              const s = stuck;
              s.ask = holdThreadLock(threadLockName(heapIdOf(t.buffer), s.holder));
              void s.ask.held.then((held) => {
                s.gone = held;
              });
            }
          }
          // The lock free (that attachment found alone, its own reclaim done): its Web Lock says when
          // it is gone, a timer the while (waitLockAsync answers at once there: a loop of microtasks
          // for good; the timer keeps Node's event loop alive, and sees a detach meanwhile).
          if (asking === undefined) await waitLockAsync(t);
          else await Promise.race([Atomics.load(t.i32, G_LOCK) === 0 ? waitSlice() : waitLockAsync(t), asking]);
        }
      } finally {
        if (again !== keptThreadLocks.get(lock)?.inner) again?.release(); // granted later, let go at once (unless kept)
        stuck?.ask?.release();
      }
    });
  }

  /** Reclaims automatically when `worker` exits (Node worker_threads Worker). */
  watch(worker: WatchableWorker): void {
    // Detached (a pool that starts a thread after this thread detached: watchPool): the watch is
    // the thread's all the same: its attachment's now, else for its next attachment, or one made
    // for the reclaim at the exit.
    const now = this.#t.detached ? attachedNow(heapIdOf(this.#t.buffer)) : undefined;
    if (now !== undefined && !sharesMemory(now.#t, this.#t.buffer)) {
      // The thread's attachment now is a copy of this heap (the same id, other memory), which
      // would take the watch (an audit, test/audit-multiheap-copy-watch.test.ts).
      throw new HeapStateError(
        "watch(worker): this instance is detached and this thread is attached to a copy of its heap (the same heap id, other memory), which would take the watch; detach the copy first (share a heap's buffer, never copy it)",
      );
    }
    watchWorker(now !== undefined ? now.#t : latestAttachment(this.#t), worker);
    if (this.#t.detached) keepWatching(latestAttachment(this.#t));
  }
}

/**
 * How long reclaimWhenGone() waits on the global lock held under one word by another attached thread
 * before it asks for that thread's Web Lock too (a live holder lets the lock go within milliseconds).
 */
const STUCK_HOLDER_MS = 1000;

/** Frames stackHasRoom() asks for: far more stack than a reclaim and the compiling of its functions take. */
const ROOM_FRAMES = 2000;

function depth(n: number): number {
  return n === 0 ? 0 : depth(n - 1) + 1;
}

/** Whether ROOM_FRAMES more calls fit on this thread's stack. */
function stackHasRoom(): boolean {
  try {
    return depth(ROOM_FRAMES) === ROOM_FRAMES;
  } catch {
    return false;
  }
}

/**
 * What debug mode asks the default mode for, for a request of n bytes: DEBUG_EXTRA more. A size
 * above the largest heap stays above it (so the answer is 0, out of memory, as in the default
 * mode) instead of passing the largest safe integer.
 */
function debugRequest(n: number): number {
  return Math.min(n, layout.MAX_HEAP_BYTES + 1) + DEBUG_EXTRA;
}

/**
 * Debug mode's free of the large run `block` that a realloc (or reallocAsync) moved, checked at
 * `span` slots and generation `gen` (runGeneration): its record and canary as free checks them,
 * then, under the lock, the default mode's refusal of a run another thread resized or freed and
 * got back meanwhile (large.ts refuseChangedRun) before free's fill writes into it, then the free
 * with the same refusal (a thread that waits for the lock and may give up gives up before anything
 * changed). largeFree asks again: a free into a large-run list and a pop from it take no lock, so
 * the run may be freed and taken again even while this thread holds it. The default mode's moves
 * free the run by largeFree alone (alloc.ts moveBlock).
 */
function debugFreeMovedRun(t: ThreadContext, block: number, span: number, gen: number): void {
  classifyBlock(t, 'realloc', 'ptr', block);
  const n = debugCheckLive(t, 'realloc(ptr, size)', block);
  const head = block >>> layout.SLOT_SHIFT;
  lockedFirst(t, () => {
    refuseChangedRun(t, head, span, gen, 'realloc(ptr, size)');
    debugFillFreed(t, block, n);
    largeFree(t, head, false, 'realloc(ptr, size)', span, gen);
  });
}

/**
 * Debug mode (create({ debug: true }), debug.ts): every call that hands out a block asks for
 * DEBUG_EXTRA bytes more and writes a canary and a size record after the requested size; free,
 * realloc and check() verify them; freed small blocks are filled and checked when handed out
 * again. The fast paths are the default class's, reached through super.
 */
class DebugSharedHeap extends SharedHeap {
  override malloc(size: number): number {
    const n = checkInteger('malloc', 'size', size);
    this.#attached('malloc(size)');
    return this.#alloc('malloc(size)', n);
  }

  /** A block of `n` bytes for malloc, calloc or realloc (`call` names it in errors); the caller checked n. */
  #alloc(call: string, n: number): number {
    const req = debugRequest(n);
    // A small block gets its record before it leaves the magazine (debugTakeSmall).
    if (req <= MAX_SMALL) return guarded(contextOf(this), call, debugTakeSmall, CLASS_OF_GRANULE[(req + 15) >>> 4], call, n, true);
    return this.#takeLarge(call, n, () => super.malloc(req));
  }

  override tryMalloc(size: number): number {
    const n = checkInteger('tryMalloc', 'size', size);
    this.#attached('tryMalloc(size)');
    const req = debugRequest(n);
    if (req <= MAX_SMALL) return guarded(contextOf(this), 'tryMalloc(size)', debugTakeSmall, CLASS_OF_GRANULE[(req + 15) >>> 4], 'tryMalloc(size)', n, false);
    return this.#takeLarge('tryMalloc(size)', n, () => super.tryMalloc(req));
  }

  override alignedAlloc(align: number, size: number): number {
    const a = checkInteger('alignedAlloc', 'align', align); // in the default mode's order (alignedAllocImpl)
    const n = checkInteger('alignedAlloc', 'size', size);
    checkAlign(align, a);
    this.#attached('alignedAlloc(align, size)');
    if (a <= 16) return this.#alloc('alignedAlloc(align, size)', n);
    // A small block of a class aligned to `a` gets its record before it leaves the magazine, as
    // malloc's (debugTakeSmall). Popped first by the default mode's alignedAlloc and written after,
    // a worker terminated in between left a live block that nobody holds with whatever its memory
    // held before as its record: check() failed for good, and free() of it too (an audit).
    const cls = alignedClassOf(debugRequest(n), a);
    if (cls >= 0) return guarded(contextOf(this), 'alignedAlloc(align, size)', debugTakeSmall, cls, 'alignedAlloc(align, size)', n, true);
    return this.#takeLarge('alignedAlloc(align, size)', n, () => super.alignedAlloc(a, debugRequest(n)));
  }

  override calloc(n: number, size: number): number {
    const count = checkInteger('calloc', 'n', n);
    const each = checkInteger('calloc', 'size', size);
    this.#attached('calloc(n, size)');
    const total = count * each;
    if (total > layout.MAX_HEAP_BYTES) return 0;
    const p = this.#alloc('calloc(n, size)', total);
    if (p !== 0) this.u8.fill(0, p, p + total); // exactly: the canary follows the requested bytes
    return p;
  }

  override free(block: number): void {
    if (block === 0) return;
    const n = this.#live('free', block);
    const t = contextOf(this);
    // A run of at most MAX_SMALL bytes (one or two slots, from alignedAlloc) is filled as a small
    // block is, and then freed under the lock (unless its list takes it): where a wait for the lock
    // may give up (a main thread's LockTimeoutError, freeAsync's WOULD_BLOCK), the lock is taken
    // first, so that it gives up before the fill and the freed mark were written into the block,
    // which is then still live and the caller's (an audit). Through guarded, as realloc's move.
    if (waitsMayGiveUp() && debugFillsFreed(t, block, n) && classifyBlock(t, 'free', 'ptr', block) < 0) {
      guarded(t, 'free(ptr)', lockedFirst, () => {
        debugFillFreed(t, block, n);
        super.free(block);
      });
      return;
    }
    debugFillFreed(t, block, n);
    super.free(block);
  }

  override usableSize(block: number): number {
    return this.#live('usableSize', block);
  }

  override realloc(block: number, size: number): number {
    const n = checkInteger('realloc', 'size', size);
    if (block === 0) {
      this.#attached('realloc(ptr, size)');
      return this.#alloc('realloc(ptr, size)', n);
    }
    const old = this.#live('realloc', block, 'realloc(ptr, size)');
    const t = contextOf(this);
    // A large run: its span and generation as checked, for the free after the copy (debugFreeMovedRun).
    const large = classifyBlock(t, 'realloc', 'ptr', block) < 0;
    const span = large ? runSpan(t, block) : 0;
    const gen = large ? runGeneration(t, block) : 0;
    // A small free never waits for the lock; nor does a thread whose waits never give up.
    if (!large || !waitsMayGiveUp()) return this.#move(block, n, old, span, gen);
    // A large run's free takes the lock after the new block was taken, the contents copied and the
    // old block filled as freed: the lock first, so that a wait that gives up (LockTimeoutError,
    // WOULD_BLOCK) does so before anything changed (see reallocImpl). Through guarded, as
    // reallocImpl is: the copy and free's fill run here outside any guarded call, and a fault
    // there must stop the instance (its slot DEAD), not keep the lock for a slot still ATTACHED.
    // Out of memory there: waits for the threads it asked to flush once the lock is free (reallocImpl).
    return guarded(t, 'realloc(ptr, size)', moveUnderLock, () => this.#move(block, n, old, span, gen));
  }

  /** realloc's move of `block` (`old` bytes requested; a large run: `span` and `gen` as checked, else 0). */
  #move(block: number, n: number, old: number, span: number, gen: number): number {
    const q = this.#alloc('realloc(ptr, size)', n);
    if (q === 0) return 0;
    // The new block over the old one (live blocks never overlap): another thread freed the old
    // block since it was checked (while this realloc waited for the lock) and the allocation took
    // its memory back; the free below would free the new block and return it free (an audit).
    // Refused as reallocAsync's.
    if (q < block + old && block < q + n) {
      this.free(q);
      throw freedWhileWaited('realloc', block, 'the large block there was freed by another thread while this call waited');
    }
    const t = contextOf(this);
    copyInHeap(t, q, block, Math.min(n, old));
    try {
      if (span !== 0) guarded(t, 'realloc(ptr, size)', debugFreeMovedRun, block, span, gen);
      else this.free(block);
    } catch (e) {
      if (e instanceof HeapError) {
        try {
          this.free(q); // another thread freed the old block meanwhile: the new one is not lost (alloc.ts moveBlock)
        } catch {
          // the first error is the one to report
        }
      }
      throw e;
    }
    return q;
  }

  override check(): void {
    super.check();
    debugCheckAll(contextOf(this));
  }

  /** Throws HeapStateError naming `call` when this thread has detached. */
  #attached(call: string): void {
    if (contextOf(this).detached) throw new HeapStateError(`${call}: this thread has detached from the heap`);
  }

  /** Validates a live block (errors name `fn`) and checks its canary; returns its requested size. */
  #live(fn: string, block: number, call = `${fn}(ptr)`): number {
    const t = contextOf(this);
    this.#attached(call);
    classifyBlock(t, fn, 'ptr', block);
    try {
      return debugCheckLive(t, `${fn}(ptr)`, block);
    } catch (e) {
      if (!(e instanceof HeapCorruptionError)) throw e;
      // Validated and checked again: another thread that freed the block after the first
      // validation (the caller's race), and took its memory again, changed the slot or the bytes
      // the check read, and the block was reported written past its end in an intact heap (an
      // audit: usableSize beside another thread's free and malloc). Not live now, it gets the
      // error the default mode gives; a block still live that fails again was written past its end.
      classifyBlock(t, fn, 'ptr', block);
      return debugCheckLive(t, `${fn}(ptr)`, block);
    }
  }

  /**
   * `take()` (the default mode's call, for a request that may take a large run) with the record of
   * a large block written before its run is marked live (ThreadContext.debugLarge), then handed out.
   */
  #takeLarge(fn: string, n: number, take: () => number): number {
    const t = contextOf(this);
    let written: HeapCorruptionError | null = null;
    let recorded = 0;
    t.debugLarge = (p) => {
      written = debugRecordLarge(t, fn, p, n);
      recorded = p;
    };
    try {
      const p = take();
      // A run filled as freed (at most MAX_SMALL bytes) found written to after its free: reported
      // once the run is live, which stays allocated and out of use, as a small block does.
      if (p !== 0 && written !== null) throw written;
      // The run the take recorded is prepared: a hand-out after it went over the same bytes again
      // (its record, its canary, the marks over every byte it held before): a debug-mode malloc of
      // 1 GiB whose bytes were all written before, 243-248 -> 156-159 ms, taken again 110-117 ->
      // 51-91 ms (test/debug-large-one-pass.test.ts counts the passes).
      if (p !== 0 && p === recorded) return p;
      return this.#handOut(fn, p, n);
    } finally {
      t.debugLarge = null;
    }
  }

  #handOut(fn: string, p: number, n: number): number {
    if (p !== 0) debugHandOut(contextOf(this), fn, p, n);
    return p;
  }
}

/** Internal (tests, workers of this repository): the thread context of an instance. */
export function internals(heap: SharedHeap): ThreadContext {
  return contextOf(heap);
}

/**
 * Test hook, internal: takes the global lock and keeps it as if another thread held it (used
 * to test recovery from a dead holder, and that tryMalloc does not wait).
 */
export function testHoldGlobalLock(heap: SharedHeap): void {
  testHoldLock(contextOf(heap));
}

// A thread that detached while workers it watched ran: at such a worker's exit it attaches again,
// which takes the detached attachment's watches over, reclaims, and detaches again. From an exit
// event, so nothing here waits for the global lock (whose holder may be another exited worker
// whose own exit event, which marks it dead, cannot run meanwhile): an attach or a detach that
// would wait is tried again on a timer that keeps no thread alive, as is an attach that finds
// no slot free.
onDetachedReclaim((detached) => reattachToReclaim(detached, 0));

const REATTACH_RETRY_MS = 20; // first wait before an attach or detach for the reclaim is tried again
const REATTACH_RETRY_MAX_MS = 1000; // the longest wait, doubling from REATTACH_RETRY_MS

/** Instances attached for the reclaims alone, to detach once done (unless the program has since attached and been given one). */
const reattached = new WeakSet<SharedHeap>();

/**
 * Set while reattachToReclaim attaches: that attachment may take a slot kept for reclaims
 * (layout.ts RECLAIM_SLOTS), as the workers it reclaims may hold every other.
 */
let attachingForReclaim = false;

/** Calls `fn` with the next wait (doubled, from REATTACH_RETRY_MS up to REATTACH_RETRY_MAX_MS) after `wait` ms (reclaim.ts reclaimRetry: the thread kept alive a few seconds after a watched exit, no longer). */
function retryLater(fn: (next: number) => void, wait: number): void {
  const ms = Math.min(Math.max(wait, REATTACH_RETRY_MS), REATTACH_RETRY_MAX_MS);
  reclaimRetry(() => fn(ms * 2), ms);
}

function reattachToReclaim(detached: ThreadContext, wait: number): void {
  const buffer = detached.buffer;
  const id = heapIdOf(buffer);
  let heap = attachedNow(id);
  if (heap === undefined) {
    if (!hasPending(latestAttachment(detached))) return; // taken over meanwhile
    try {
      attachingForReclaim = true;
      heap = runNoWait(() => SharedHeap.attach(buffer));
    } catch {
      // The lock busy, no slot free (a slot frees when another thread detaches or is reclaimed),
      // or a fault: tried again later, the exits staying pending meanwhile. An instance the attach
      // registered before it gave up (its reclaim of a stopped slot found the lock busy) is this
      // one's, to detach once done (it was taken for the program's, and stayed attached).
      const made = attachedNow(id);
      if (made !== undefined) reattached.add(made);
      retryLater((next) => reattachToReclaim(detached, next), wait);
      return;
    } finally {
      attachingForReclaim = false;
    }
    reattached.add(heap);
  }
  const t = internals(heap);
  mergeWatches(detached, t);
  try {
    // An instance made here may have given up its reclaim of a stopped slot of this thread's
    // (a busy lock): tried again first.
    if (reattached.has(heap)) runNoWait(() => guarded(t, 'watch(worker)', reclaimOwnDead, -1, -1));
    runNoWait(() => reclaimPending(t));
  } catch {
    // Busy (retried by reclaimPending's own timer, or at the next exit), or a fault stopped the
    // instance: its watches go to the thread's next attachment (the next exit makes one).
  }
  detachReattached(heap, REATTACH_RETRY_MS);
}

/** Detaches an instance reattachToReclaim made, without waiting for the lock; once its reclaims are done. */
function detachReattached(heap: SharedHeap, wait: number): void {
  const t = internals(heap);
  if (!reattached.has(heap) || t.detached) return;
  if (hasPending(t)) {
    retryLater((next) => detachReattached(heap, next), wait);
    return;
  }
  try {
    runNoWait(() => heap.detach());
  } catch (e) {
    if (e === WOULD_BLOCK && !t.detached && !t.runner.faulted) retryLater((next) => detachReattached(heap, next), wait);
  }
}
