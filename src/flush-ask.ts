/**
 * Asking idle threads to flush. Blocks freed into a thread's slabs by other threads wait on the
 * slabs' remote lists until that owner collects them, and a thread keeps its magazines and a few
 * empty slabs for itself (README, "Memory a thread caches"). An owner that goes idle (a producer
 * that handed all its blocks to consumers and awaits their answers) held all of that out of every
 * other thread's reach: a consumer's every malloc answered 0 on a heap that was all free.
 *
 * So each attached thread with an event loop listens (Atomics.waitAsync, which keeps no thread
 * alive) on a word of its thread area, TH_FLUSH_ASK (layout.ts): a thread about to answer 0 for
 * want of memory, after it gave back what it caches itself, asks every listening thread with a
 * CAS LISTENING -> ASKED and a notify, and waits a short while for the answers (where it may
 * block). An idle thread's event loop takes the ask up (a CAS to FLUSHING and a notify), runs the
 * flush (the same as its own flush() call) and answers with a CAS back to LISTENING and a notify;
 * the asker then tries once more. A thread busy in synchronous code answers when it next yields
 * to its event loop: a later malloc finds the memory. An ask still unanswered is not made again,
 * so a thread that never answers (killed, or blocked) costs one wait, not one a call; its word is
 * notified again though (no wait), since the asker may have died between its CAS and its notify,
 * leaving the listener asleep for good.
 *
 * A flush under way is waited for longer than an ask not taken up yet: an owner with some
 * hundreds of thousands of blocks freed into its slabs by others takes 10-15 ms to collect them on
 * a quiet machine, several times that on a loaded one, and an asker that gave up after the short
 * wait answered 0 while the memory was on its way (CI, 5e5f486). An asker whose own ask was
 * taken up waits for that flush up to FLUSH_WAIT_MAX_MS, while the flusher's thread is attached;
 * one that finds a flush already under way (taken up for another asker) waits for it the short
 * while only. A word that stays FLUSHING through such a wait (a thread stopped in its flush, not
 * reclaimed yet) is not waited on again by the same asker until it finds the word saying
 * something else (ThreadContext.flushStuck): it costs each asker one wait, not one a call.
 */
import type { ThreadContext } from './context.js';
import { FA_ASKED, FA_FLUSHING, FA_LISTENING, FA_NONE, TF_DRAINS, TF_REFILLS, TF_REMOTE_FREES, TH_F64_W, TH_FLUSH_ASK, TH_STATE, TH_THREAD_ID, TS_ATTACHED, usedSlots } from './layout.js';
import { CAN_BLOCK, waitAsync, waitingAllowed } from './lock.js';

/** How long a thread out of memory waits, at most, for the threads it asked to take its ask up. */
export const FLUSH_ASK_WAIT_MS = 50;

/** How long, at most, a thread out of memory waits for a flush that took its own ask up. */
export const FLUSH_WAIT_MAX_MS = 2000;

/**
 * A thread's ask word the asker waits on: `mine` when its own CAS made the word ASKED (it waits
 * for the flush that takes it up), else a flush found under way (waited for the short while only).
 */
interface Asked {
  /** The asked thread's slot: its ask word and state are in its area (t.threadW). */
  readonly slot: number;
  readonly mine: boolean;
}

/**
 * Asks every other attached, listening thread to flush; where this thread may block (and holds
 * no lock) and `wait`, waits up to FLUSH_ASK_WAIT_MS for their answers. True when at least one
 * answered (the caller then tries again). Out-of-memory paths only.
 */
export function askOthersToFlush(t: ThreadContext, wait = true): boolean {
  const i32 = t.i32;
  const asked: Asked[] = [];
  for (let s = 0, used = usedSlots(i32, t.geo.maxThreads); s < used; s++) {
    if (s === t.slot) continue;
    const thW = t.threadW(s);
    if (Atomics.load(i32, thW + TH_STATE) !== TS_ATTACHED) continue;
    const was = Atomics.compareExchange(i32, thW + TH_FLUSH_ASK, FA_LISTENING, FA_ASKED);
    if (was !== FA_FLUSHING) t.flushStuck[s] = 0; // the flush this thread found stuck ended (or never was)
    if (was === FA_ASKED) {
      // Asked, not answered yet: not waited for again, but woken again. An asker stopped between
      // its CAS and its notify (worker.terminate() stops a thread between two Atomics calls; a
      // stack overflow can meet the notify) left the word ASKED with the listener never woken, and
      // every later asker skipped the thread for good: an idle owner's memory stayed out of reach
      // (an audit, test/flush-ask-asker-dies.test.ts). A listener already woken, or busy, finds
      // no waiter here to wake: harmless.
      Atomics.notify(i32, thW + TH_FLUSH_ASK);
      continue;
    }
    if (was === FA_FLUSHING) {
      // A flush under way, taken up for another asker: what it gives back may serve this one too.
      // Not when this thread waited on it before and it stayed FLUSHING: its thread stopped in it
      // (killed, not reclaimed yet), and every call out of memory would wait on it again.
      if (t.flushStuck[s] === 0) asked.push({ slot: s, mine: false });
      continue;
    }
    if (was !== FA_LISTENING) continue;
    Atomics.notify(i32, thW + TH_FLUSH_ASK);
    asked.push({ slot: s, mine: true });
  }
  if (asked.length === 0 || !wait || !CAN_BLOCK || !waitingAllowed()) return false;
  if (t.runner.lockDepth > 0) {
    // Not while this thread holds the lock (the answers take it): a caller that records the asks
    // waits for them once it let the lock go (recordAsksUnderLock).
    if (recording) askedUnderLock = { i32, words: asked };
    return false;
  }
  return waitForAnswers(t, i32, asked);
}

/** Rounds of asks one call out of memory makes at most (askRound). */
export const ASK_ROUNDS = 3;

/**
 * The `round`th ask (0 the first) of one call out of memory, which tries again after each that
 * was answered: the first always; a later one only while the answers to the one before freed
 * blocks into other threads' slabs (remote frees), up to ASK_ROUNDS. An owner that answered
 * before such a freer did collects them only when asked again: a worker's blocks freed by another
 * worker, both idle, stayed out of reach of a third thread's malloc of the whole heap, which
 * answered 0 in 5 of 5 runs (an audit; test/capacity-phases.test.ts). True when answered.
 *
 * After a call whose asks found nothing, and while no other thread has done a slow path's work
 * since (a refill, a drain, a remote free: WORK), the others are asked without waiting for their
 * answers: what they took up is found by a later call, as a thread that may not block finds it. A cache that evicts on a 0 waited for every idle thread's event loop at each eviction
 * (0.14-0.34 ms with 0-8 other threads attached, against 6 us for a 0 alone: an audit).
 */
export function askRound(t: ThreadContext, round: number): boolean {
  const remote = othersCount(t, REMOTE);
  if (round >= ASK_ROUNDS || (round > 0 && remote === t.remoteFreesAtAsk)) {
    t.workAtFruitlessAsk = othersCount(t, WORK);
    return false;
  }
  t.remoteFreesAtAsk = remote;
  if (askOthersToFlush(t, round > 0 || othersCount(t, WORK) !== t.workAtFruitlessAsk)) return true;
  t.workAtFruitlessAsk = othersCount(t, WORK);
  return false;
}

/** The remote frees counted in the other thread slots (askRound). */
const REMOTE = [TF_REMOTE_FREES] as const;
/** The other thread slots' slow-path work: refills, drains and remote frees (askRound). */
const WORK = [TF_REFILLS, TF_DRAINS, TF_REMOTE_FREES] as const;

/**
 * The sum of the counts `tfs` (layout.ts TF_*) over the other thread slots: each thread's own, read
 * plain here, as stats() does; a read torn by a concurrent count costs at most one round or one
 * wait more or less.
 */
function othersCount(t: ThreadContext, tfs: readonly number[]): number {
  let n = 0;
  for (let s = 0, used = usedSlots(t.i32, t.geo.maxThreads); s < used; s++) {
    if (s === t.slot) continue;
    const f = (t.threadW(s) + TH_F64_W) >>> 1;
    for (const tf of tfs) n += t.f64[f + tf]!;
  }
  return n;
}

/**
 * Whether askOthersToFlush records the threads it asks while this thread holds the global lock,
 * where it cannot wait for their answers (realloc of a large run that moves, which takes the lock
 * first where a wait may give up: alloc.ts reallocImpl), and those it recorded; null when none.
 */
let recording = false;
let askedUnderLock: { i32: Int32Array; words: Asked[] } | null = null;

/** From here on, askOthersToFlush records the threads it asks while this thread holds the lock. */
export function recordAsksUnderLock(): void {
  recording = true;
  askedUnderLock = null;
}

/**
 * Stops recordAsksUnderLock's record; with `wait` (the call it was for answered 0 for want of
 * memory, and let the lock go), waits as askOthersToFlush would have for the threads it asked
 * meanwhile. True when at least one answered (the caller tries again).
 */
export function answersToAsksUnderLock(t: ThreadContext, wait: boolean): boolean {
  const a = askedUnderLock;
  recording = false;
  askedUnderLock = null;
  if (!wait || a === null || a.i32.buffer !== t.i32.buffer || t.runner.lockDepth > 0 || !waitingAllowed()) return false;
  return waitForAnswers(t, a.i32, a.words);
}

/**
 * The thread ids of the other attached threads whose asks to flush are not answered yet: each
 * may flush from its event loop at any moment (a live, idle one), or never (one killed and not
 * yet reclaimed). check() names them where a walk fails (check.ts).
 */
export function unansweredAsks(t: ThreadContext): number[] {
  // Not its own: its own answer cannot run while it walks.
  return askedSlots(t)
    .filter((s) => s !== t.slot)
    .map((s) => Atomics.load(t.i32, t.threadW(s) + TH_THREAD_ID) - 1); // the word holds threadId + 1
}

/**
 * The slots of the attached threads whose ask word says ASKED or FLUSHING (an ask not answered
 * yet, or a flush under way).
 */
function askedSlots(t: ThreadContext): number[] {
  const i32 = t.i32;
  const slots: number[] = [];
  for (let s = 0, used = usedSlots(i32, t.geo.maxThreads); s < used; s++) {
    const thW = t.threadW(s);
    if (Atomics.load(i32, thW + TH_STATE) !== TS_ATTACHED) continue;
    const v = Atomics.load(i32, thW + TH_FLUSH_ASK);
    if (v === FA_ASKED || v === FA_FLUSHING) slots.push(s);
  }
  return slots;
}

/** Test hook: the listener waits this long before each flush it takes up (0: none). */
let answerDelayMs = 0;

/** Test hook: makes this thread's listeners wait `ms` before each flush they take up (0: no wait). */
export function testDelayFlushAnswers(ms: number): void {
  answerDelayMs = ms;
}

/** The longest single Atomics.wait on a FLUSHING word, between looks at whether its thread is still attached. */
const FLUSHING_SLICE_MS = 20;

/**
 * Waits for the threads whose ask words are `asked` to answer: up to FLUSH_ASK_WAIT_MS for an ask
 * to be taken up, and for a flush found under way; up to FLUSH_WAIT_MAX_MS for a flush that took
 * this thread's own ask up, while its thread is attached (a thread stopped in its flush, and
 * marked so, is not waited for: fault.ts). A word still FLUSHING at its deadline is recorded in
 * t.flushStuck, which askOthersToFlush reads. True when one answered.
 */
function waitForAnswers(t: ThreadContext, i32: Int32Array, asked: Asked[]): boolean {
  const start = performance.now();
  const short = start + FLUSH_ASK_WAIT_MS;
  const long = start + FLUSH_WAIT_MAX_MS;
  let answered = 0;
  for (const a of asked) {
    const areaW = t.threadW(a.slot);
    const w = areaW + TH_FLUSH_ASK;
    const stateW = areaW + TH_STATE;
    let sawFlushing = false;
    for (;;) {
      const v = Atomics.load(i32, w);
      // Answered; or the flush seen under way ended, though another asker's ask came in since.
      if (v !== FA_FLUSHING && (v !== FA_ASKED || sawFlushing)) {
        answered++;
        break;
      }
      if (v === FA_FLUSHING) sawFlushing = true;
      const flushing = v === FA_FLUSHING && a.mine;
      if (flushing && Atomics.load(i32, stateW) !== TS_ATTACHED) break;
      const left = (flushing ? long : short) - performance.now();
      if (left <= 0) {
        // Still FLUSHING at the deadline: not waited on again while it stays so (askOthersToFlush).
        if (v === FA_FLUSHING) t.flushStuck[a.slot] = 1;
        break;
      }
      Atomics.wait(i32, w, v, flushing ? Math.min(left, FLUSHING_SLICE_MS) : left);
    }
  }
  return answered > 0;
}

/**
 * Makes t's thread answer asks to flush from its event loop, with `flush` (its heap's flush(),
 * errors caught). Stops once t is detached, or its word no longer says LISTENING or ASKED (a
 * detach, or another attachment of the slot). Does nothing where there is no Atomics.waitAsync.
 */
export function listenForFlushAsks(t: ThreadContext, flush: () => void): void {
  if (waitAsync === undefined) return;
  const i32 = t.i32; // the word lies in the header, which every view of the buffer covers
  const w = t.thW + TH_FLUSH_ASK;
  const wait = waitAsync;
  const onWake = (): void => {
    if (t.detached) return; // detached, or stopped by a fault (fault.ts notifies the word for this)
    if (Atomics.compareExchange(i32, w, FA_ASKED, FA_FLUSHING) === FA_ASKED) {
      // Taken up: the asker waits for this flush longer than for an ask not taken up yet.
      Atomics.notify(i32, w);
      if (answerDelayMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, answerDelayMs); // tests only
      try {
        flush();
      } catch {
        // A detached or stopped thread (it stops listening below), or a lock that timed out: the
        // asker tries again anyway, and so does the next one.
      }
      if (t.detached) return; // a detach stored NONE; a fault marked the thread DEAD (askers stop waiting)
      Atomics.compareExchange(i32, w, FA_FLUSHING, FA_LISTENING);
      Atomics.notify(i32, w);
    }
    // Armed again unless the word says nobody listens here (a detach). Asked again since the
    // answer above (another thread out of memory): waitAsync says not-equal, and the ask is
    // answered on a later turn of the event loop, which runs other tasks meanwhile. (Returning on
    // anything but LISTENING here left the word ASKED for good: every later asker skipped this
    // thread. An audit's repro, two askers at once, 3 of 3 runs.)
    if (Atomics.load(i32, w) === FA_NONE) return;
    const r = wait(i32, w, FA_LISTENING);
    if (r.async) void (r.value as Promise<unknown>).then(onWake);
    else setTimeout(onWake, 0);
  };
  Atomics.store(i32, w, FA_LISTENING);
  onWake();
}

/**
 * Wakes the listener of every attached thread whose word says ASKED (a reclaim of a thread that
 * ended, which may have died between an ask's CAS and its notify: that listener, its waitAsync
 * having no timeout, slept for good, and its thread was never asked again; an audit,
 * test/flush-ask-asker-dies.test.ts). A listener woken for an ask it answers anyway finds it
 * answered or answers it: a notify with no waiter, or a spare one, changes nothing.
 */
export function wakeAskedListeners(t: ThreadContext): void {
  for (const s of askedSlots(t)) Atomics.notify(t.i32, t.threadW(s) + TH_FLUSH_ASK);
}

/** t stops answering asks (a detach): an asker no longer waits for it. */
export function stopListening(t: ThreadContext): void {
  const w = t.thW + TH_FLUSH_ASK;
  Atomics.store(t.i32, w, FA_NONE);
  Atomics.notify(t.i32, w);
}
