/**
 * Liveness of browser threads through the Web Locks API.
 *
 * A browser gives no exit event for a Web Worker, and a worker keeps running for a while after
 * `terminate()` (about 2 s seen in Chromium), so the main thread has no safe moment to reclaim
 * its thread slot from the Worker object alone. A Web Lock does give one: every attached thread
 * requests an exclusive lock named after its heap and its thread id, and keeps it until it
 * detaches; the browser releases a lock whose holder's agent is really gone, and only then. So
 * when another thread's `navigator.locks.request(name)` is granted, the thread it names can no
 * longer touch the heap, and reclaiming its slot is safe.
 *
 * The name uses the heap's thread id (`heap.threadId`), never reused within one heap, rather
 * than the thread slot, which a later thread may take: a request made for a thread that has
 * gone and been replaced must not wait on its successor.
 *
 * Where there is no `navigator.locks` (Node), every function here is a no-op; Node has exit
 * events (`heap.watch(worker)`).
 *
 * Two protocols. Either the parent reserves the id (`heap.newThreadId()`) and posts it with the
 * buffer, and the worker attaches with `SharedHeap.attachAsync(buffer, { threadId })`, which
 * takes the lock before it claims a slot; or the worker attaches with `attach(buffer)` and posts
 * its `heap.threadId` only after `await heap.threadLockHeld()` resolved (a request made before
 * the worker holds its lock would be granted at once and reclaim a live thread). The first
 * covers a worker that dies inside attach, before it could post anything. Either way the
 * reclaiming thread, once granted the lock (`reclaimWhenGone`), trades it for a mark saying the
 * thread is gone (`<name>:gone`, held in shared mode until the reclaimer detaches): a worker that
 * was terminated on its way to attachAsync and gets the lock then finds the mark and never
 * attaches behind the reclaim, and a second reclaimer of the id, in another thread, gets the lock
 * too (it waited for good while the first kept it: an audit's repro, test/browser/chaos.test.ts).
 */

/** The part of the Web Locks API (LockManager) used here. */
interface LockManagerLike {
  request(name: string, options: { mode: 'exclusive' | 'shared'; ifAvailable?: boolean }, callback: (lock: unknown) => unknown): Promise<unknown>;
}

function lockManager(): LockManagerLike | undefined {
  const nav = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator;
  const locks = nav?.locks;
  return locks !== undefined && locks !== null && typeof locks.request === 'function' ? locks : undefined;
}

/** Whether this thread has the Web Locks API (browsers: window and workers; not Node 20). */
export function hasWebLocks(): boolean {
  return lockManager() !== undefined;
}

/** The Web Lock name of the thread known by `threadId` in the heap `heapId`. */
export function threadLockName(heapId: number, threadId: number): string {
  return `sabmalloc:${heapId}:${threadId}`;
}

/** A Web Lock this thread holds while it is attached. */
export interface ThreadLock {
  /** Resolves true once the lock is held; false where there is no Web Locks API or the request failed. */
  readonly held: Promise<boolean>;
  /** Lets the lock go (on detach). Safe to call more than once. */
  release(): void;
}

/** What a thread without the Web Locks API holds. */
export const NO_THREAD_LOCK: ThreadLock = { held: Promise.resolve(false), release() {} };

/** The name of the mark a reclaimer of the thread whose lock is `name` holds once that thread is gone. */
export function goneMarkName(name: string): string {
  return `${name}:gone`;
}

/**
 * Resolves true when some thread holds the gone mark of the thread lock `name` (a reclaimer saw
 * that thread gone); false where there is none, or no Web Locks API.
 */
export function markedGone(name: string): Promise<boolean> {
  const locks = lockManager();
  if (locks === undefined) return Promise.resolve(false);
  return locks.request(goneMarkName(name), { mode: 'exclusive', ifAvailable: true }, (lock) => lock === null).then(
    (v) => v === true,
    () => false,
  );
}

/**
 * Requests the lock `name` (exclusive unless `mode` says shared) and holds it until release() or
 * until this thread is gone. Called at attach; returns at once (the lock is granted
 * asynchronously: see `held`).
 */
export function holdThreadLock(name: string, mode: 'exclusive' | 'shared' = 'exclusive'): ThreadLock {
  const locks = lockManager();
  if (locks === undefined) return NO_THREAD_LOCK;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let settle!: (held: boolean) => void;
  const held = new Promise<boolean>((resolve) => (settle = resolve));
  locks
    .request(name, { mode }, () => {
      settle(true);
      return released; // the lock is held until this promise settles
    })
    .catch(() => settle(false));
  return { held, release };
}
