/**
 * The page of test/browser/main-thread.test.ts: the browser's main thread (which may not
 * block: Atomics.wait throws there) calls every synchronous and asynchronous call while a Web
 * Worker (worker.ts, the suite's, through test-worker.ts) holds the global lock, or was terminated holding it; a growable
 * heap grown by a worker; heap.memory against heap.buffer posted to workers.
 */
import { SharedHeap, HeapError, type SharedMemory } from '../../../src/index.js';
import { CTL_WORDS, C_HELD, badBytes, fillBlock, type AttachReply, type Request, type ViewReply, type ChainReply } from './protocol.js';
import { endWorkers, startWorker } from './test-worker.js';

const MiB = 1 << 20;

/** This page's own workers (main-thread-worker.ts), ended with the suite's. */
const plain: Worker[] = [];
function endAll(): void {
  endWorkers();
  for (const w of plain.splice(0)) w.terminate();
}


const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(ctl: Int32Array, index: number, value: number): Promise<void> {
  for (let k = 0; ; k++) {
    const v = Atomics.load(ctl, index);
    if (v === value) return;
    if (k > 2000) throw new Error(`ctl[${index}] stayed ${v}`);
    const r = Atomics.waitAsync(ctl, index, v, 10);
    if (r.async) await r.value;
  }
}

function canWait(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

export interface CallOutcome {
  call: string;
  ms: number;
  ok: boolean;
  value?: unknown;
  error?: string; // name: code: first 160 chars
  heldAtEnd: number; // ctl[C_HELD] when the call returned: 1 = the worker still held the lock
  checkAfter: string; // '' when check() passed once the lock was free
  badLive: number; // bytes of the page's live blocks changed
}

function describeError(e: unknown): string {
  const err = e as Error;
  const code = e instanceof HeapError ? e.code : '';
  return `${err?.name}:${code}:${String(err?.message).slice(0, 160)}`;
}

/** check()'s outcome: '' when it passes, else its error as describeError gives it. */
function checkText(heap: SharedHeap): string {
  try {
    heap.check();
    return '';
  } catch (e) {
    return describeError(e);
  }
}

interface Live {
  p: number;
  n: number;
  seed: number;
}

function liveBad(heap: SharedHeap, live: Live[]): number {
  return live.reduce((s, b) => s + badBytes(heap.u8, b.p, b.n, b.seed), 0);
}

/**
 * For each call name: the worker takes the global lock and keeps it `holdMs`; the page makes the
 * call while it is held and times it; then, the lock free again, check() and the live blocks.
 */
async function syncUnderHold(o: { holdMs: number; calls: string[] }): Promise<{ canWait: boolean; outcomes: CallOutcome[] }> {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 8 });
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  const outcomes: CallOutcome[] = [];
  try {
    const w = new Worker('/main-thread-worker.js', { type: 'module' });
    plain.push(w);
    const ask = (m: object) => new Promise<unknown>((resolve) => { w.onmessage = (e) => resolve(e.data); w.postMessage(m); });
    await ask({ mode: 'attach', buffer: heap.buffer });
    // A second worker that attaches and is terminated (gone before it is used: its Web Lock free), for reclaim(threadId).
    const gone = startWorker();
    const goneReply = await gone.attach(heap.buffer);
    gone.worker.terminate();
    for (let k = 0; ; k++) {
      const held = ((await navigator.locks.query()).held ?? []).some((l) => l.name === goneReply.lockName);
      if (!held) break;
      if (k > 200) throw new Error('terminated worker still holds its Web Lock');
      await sleep(50);
    }
    const live: Live[] = [];
    for (const [i, n] of [24, 1000, 5000, 200_000, 1_000_000].entries()) {
      const p = heap.malloc(n);
      fillBlock(heap.u8, p, n, 70 + i);
      live.push({ p, n, seed: 70 + i });
    }
    for (const call of o.calls) {
      // Operands prepared before the lock is taken.
      const large = heap.malloc(300_000);
      const small = heap.malloc(40);
      fillBlock(heap.u8, large, 300_000, 3);
      fillBlock(heap.u8, small, 40, 4);
      // Fill this thread's magazines so flush has work.
      const cached = Array.from({ length: 50 }, () => heap.malloc(48));
      for (const p of cached) heap.free(p);
      const hold = ask({ mode: 'hold', ctl, ms: o.holdMs });
      await waitFor(ctl, 2, 1);
      const fn: Record<string, () => unknown> = {
        malloc: () => heap.malloc(300_000),
        mallocSmall: () => heap.malloc(40),
        calloc: () => heap.calloc(1, 300_000),
        realloc: () => heap.realloc(large, 600_000),
        reallocSmallToLarge: () => heap.realloc(small, 400_000),
        free: () => heap.free(large),
        alignedAlloc: () => heap.alignedAlloc(65536, 200_000),
        usableSize: () => heap.usableSize(large),
        tryMalloc: () => heap.tryMalloc(300_000),
        flush: () => heap.flush(),
        check: () => heap.check(),
        stats: () => heap.stats().threadsAttached,
        reclaim: () => heap.reclaim(goneReply.threadId),
        detach: () => heap.detach(),
      };
      Atomics.store(ctl, 3, 1); // the worker's hold of o.holdMs starts now
      const t0 = performance.now();
      let out: Omit<CallOutcome, 'checkAfter' | 'badLive' | 'heldAtEnd' | 'ms'>;
      try {
        const value = fn[call]!();
        out = { call, ok: true, value };
      } catch (e) {
        out = { call, ok: false, error: describeError(e) };
      }
      const ms = performance.now() - t0;
      const heldAtEnd = Atomics.load(ctl, 2);
      await hold;
      if (call === 'detach') {
        outcomes.push({ ...out, ms, heldAtEnd, checkAfter: out.ok ? 'detached' : '', badLive: 0 });
        if (out.ok) break;
      }
      const checkAfter = checkText(heap);
      // Give back what the call made, so the next starts alike.
      if (out.ok && typeof out.value === 'number' && out.value > 0 && ['malloc', 'mallocSmall', 'calloc', 'alignedAlloc', 'tryMalloc'].includes(call)) heap.free(out.value);
      if (call === 'realloc') heap.free(out.ok && (out.value as number) > 0 ? (out.value as number) : large);
      else if (call !== 'free' || !out.ok) heap.free(large);
      if (call === 'reallocSmallToLarge') heap.free(out.ok && (out.value as number) > 0 ? (out.value as number) : small);
      else heap.free(small);
      if (call !== 'detach') outcomes.push({ ...out, ms, heldAtEnd, checkAfter, badLive: liveBad(heap, live) });
    }
    return { canWait: canWait(), outcomes };
  } finally {
    endAll();
  }
}

/**
 * The async calls, each started while the worker holds the lock `holdMs`: when each settles,
 * and how many setTimeout(0) and requestAnimationFrame callbacks ran meanwhile.
 */
async function asyncUnderHold(o: { holdMs: number }) {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 8 });
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  try {
    const w = startWorker();
    await w.attach(heap.buffer);
    const large = heap.malloc(300_000);
    const large2 = heap.malloc(300_000);
    fillBlock(heap.u8, large, 300_000, 8);
    const hold = w.call({ cmd: 'holdLock', ctl, ms: o.holdMs });
    await waitFor(ctl, C_HELD, 1);
    const t0 = performance.now();
    let ticks = 0;
    let frames = 0;
    let maxGap = 0;
    let last = performance.now();
    let running = true;
    const tick = () => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
      if (running) setTimeout(tick, 0);
    };
    setTimeout(tick, 0);
    const frame = () => {
      frames++;
      if (running) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    const settle = <T>(name: string, p: Promise<T>) =>
      p.then(
        (v) => ({ name, ok: true, value: v as unknown, ms: performance.now() - t0, heldAt: Atomics.load(ctl, C_HELD) }),
        (e) => ({ name, ok: false, value: describeError(e) as unknown, ms: performance.now() - t0, heldAt: Atomics.load(ctl, C_HELD) }),
      );
    const results = await Promise.all([
      settle('mallocAsync', heap.mallocAsync(300_000)),
      settle('callocAsync', heap.callocAsync(1, 300_000)),
      settle('alignedAllocAsync', heap.alignedAllocAsync(65536, 200_000)),
      settle('reallocAsync', heap.reallocAsync(large, 700_000)),
      settle('freeAsync', heap.freeAsync(large2)),
    ]);
    running = false;
    const callMs = performance.now() - t0;
    await hold;
    const moved = results[3]!.value as number;
    const bad = results[3]!.ok ? badBytes(heap.u8, moved, 300_000, 8) : -1;
    for (const r of results.slice(0, 4)) if (r.ok && (r.value as number) > 0) heap.free(r.value as number);
    const checkAfter = checkText(heap);
    return { results, callMs, ticks, frames, maxGap, bad, checkAfter, liveBytes: heap.stats().liveBytes };
  } finally {
    endAll();
  }
}

/**
 * A worker takes the global lock and is terminated holding it. mode 'sync': the page's malloc
 * right away (bounded spin, then LockTimeoutError), then reclaimWhenGone; 'async': a mallocAsync
 * pending across reclaimWhenGone. `reserved`: the worker attached under newThreadId() with attachAsync.
 */
async function terminatedHolder(o: { mode: 'sync' | 'async'; reserved: boolean }) {
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 8 });
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  const log: Record<string, unknown> = {};
  try {
    const w = startWorker();
    let threadId: number;
    if (o.reserved) {
      threadId = heap.newThreadId();
      await w.call<AttachReply>({ cmd: 'attachAs', buffer: heap.buffer, threadId });
    } else {
      threadId = (await w.attach(heap.buffer)).threadId;
    }
    const mine = heap.malloc(5000);
    fillBlock(heap.u8, mine, 5000, 12);
    void w.call({ cmd: 'holdLock', ctl, ms: 600_000 }).catch(() => undefined);
    await waitFor(ctl, C_HELD, 1);
    const tTerm = performance.now();
    w.worker.terminate();
    if (o.mode === 'sync') {
      const t0 = performance.now();
      try {
        log.syncMalloc = heap.malloc(300_000);
      } catch (e) {
        log.syncMalloc = describeError(e);
      }
      log.syncMallocMs = performance.now() - t0;
      // tryMalloc never waits
      const t1 = performance.now();
      log.tryMalloc = heap.tryMalloc(300_000);
      log.tryMallocMs = performance.now() - t1;
      const r = await heap.reclaimWhenGone(threadId);
      log.reclaimed = r;
      log.reclaimMs = performance.now() - tTerm;
      const t2 = performance.now();
      const p = heap.malloc(300_000);
      log.mallocAfterMs = performance.now() - t2;
      log.mallocAfter = p;
      heap.free(p);
    } else {
      let ticks = 0;
      let running = true;
      const tick = () => {
        ticks++;
        if (running) setTimeout(tick, 1);
      };
      tick();
      const pending = heap.mallocAsync(300_000).then(
        (v) => ({ v, at: performance.now() - tTerm }),
        (e) => ({ v: describeError(e), at: performance.now() - tTerm }),
      );
      const reclaimed = heap.reclaimWhenGone(threadId).then((r) => ({ r, at: performance.now() - tTerm }));
      const [a, b] = await Promise.all([pending, reclaimed]);
      running = false;
      log.mallocAsync = a;
      log.reclaim = b;
      log.ticks = ticks;
      if (typeof a.v === 'number' && a.v > 0) heap.free(a.v);
    }
    log.check = checkText(heap);
    log.bad = badBytes(heap.u8, mine, 5000, 12);
    heap.free(mine);
    const s = heap.stats();
    log.threadsAttached = s.threadsAttached;
    log.liveBytes = s.liveBytes;
    return log;
  } finally {
    endAll();
  }
}

/** A growable heap grown by a worker while the page is idle; then the page's calls. */
async function growth() {
  const heap = SharedHeap.create({ initialBytes: 4 * MiB, maxBytes: 64 * MiB, maxThreads: 4 });
  const log: Record<string, unknown> = {};
  try {
    const initial = heap.buffer.byteLength;
    const u8Before = heap.u8;
    const mine = heap.malloc(100);
    fillBlock(heap.u8, mine, 100, 1);
    const w = startWorker();
    await w.attach(heap.buffer);
    const sizes = Array.from({ length: 20 }, () => 512 << 10);
    const blocks = await w.call<number[]>({ cmd: 'fill', sizes, seed: 44 });
    const smallFromW = await w.call<number[]>({ cmd: 'fill', sizes: Array.from({ length: 200 }, () => 64), seed: 45 });
    const midFromW = await w.call<number[]>({ cmd: 'fill', sizes: Array.from({ length: 100 }, () => 3000), seed: 46 });
    log.midBeyond = midFromW.filter((p) => p >= initial).length;
    log.initial = initial;
    log.grownTo = heap.buffer.byteLength;
    log.oldU8Length = u8Before.length; // the view taken before: is it length-tracking?
    const beyond = blocks.filter((p) => p >= initial);
    const smallBeyond = smallFromW.filter((p) => p >= initial);
    log.beyond = beyond.length;
    log.smallBeyond = smallBeyond.length;
    // Calls that need no lock first, before anything refreshed this thread's views.
    const first = beyond[0]!;
    const tryCall = (f: () => unknown) => {
      try {
        return f();
      } catch (e) {
        return describeError(e);
      }
    };
    log.usableBeyond = tryCall(() => heap.usableSize(first));
    log.usableSmallBeyond = smallBeyond.length > 0 ? tryCall(() => heap.usableSize(smallBeyond[0]!)) : 'none';
    log.u8Length = heap.u8.length;
    log.badRead = beyond.reduce((n, p) => n + badBytes(heap.u8, p, 512 << 10, 44), 0);
    // realloc (fast path) and free of a worker's small block beyond the old length.
    if (smallBeyond.length > 0) {
      const q = tryCall(() => heap.realloc(smallBeyond[0]!, 100));
      log.reallocSmallBeyond = typeof q === 'number' ? badBytes(heap.u8, q, 64, 45) : q;
      if (typeof q === 'number') heap.free(q);
      log.freeSmallBeyond = tryCall(() => heap.free(smallBeyond[1]!)) ?? 'ok';
    }
    // The worker's 3000-byte blocks: usableSize, realloc (fast path: same class) and free on the page.
    const mb = midFromW.filter((p) => p >= initial);
    if (mb.length > 2) {
      log.usableMidBeyond = tryCall(() => heap.usableSize(mb[0]!));
      const q = tryCall(() => heap.realloc(mb[0]!, 2900));
      log.reallocMidBeyond = typeof q === 'number' ? (q === mb[0] ? 'same' : badBytes(heap.u8, q, 2900, 46)) : q;
      const r = tryCall(() => heap.realloc(mb[1]!, 5000));
      log.reallocMidMoved = typeof r === 'number' ? badBytes(heap.u8, r, 3000, 46) : r;
    }
    // free of the worker's large blocks
    for (const p of blocks) heap.free(p);
    // The page's own mallocs after growth may land beyond the old length.
    const mineNew: number[] = [];
    for (let i = 0; i < 30; i++) {
      const p = heap.malloc(256 << 10);
      if (p === 0) break;
      fillBlock(heap.u8, p, 256 << 10, 9);
      mineNew.push(p);
    }
    log.mineBeyond = mineNew.filter((p) => p >= initial).length;
    const smallMine = Array.from({ length: 2000 }, () => heap.calloc(1, 200));
    log.smallMineBeyond = smallMine.filter((p) => p >= initial).length;
    log.callocNonZero = smallMine.reduce((n, p) => n + (heap.u8.subarray(p, p + 200).some((b) => b !== 0) ? 1 : 0), 0);
    for (const p of smallMine) heap.free(p);
    log.badMineNew = mineNew.reduce((n, p) => n + badBytes(heap.u8, p, 256 << 10, 9), 0);
    for (const p of mineNew) heap.free(p);
    log.badMine = badBytes(heap.u8, mine, 100, 1);
    heap.free(mine);
    for (const p of smallFromW.slice(2)) heap.free(p);
    const viewW = await w.call<ViewReply>({ cmd: 'view' });
    log.viewW = viewW;
    await w.call({ cmd: 'flush' });
    heap.flush();
    log.check = checkText(heap);
    log.liveBytes = heap.stats().liveBytes;
    log.memory = heap.memory === undefined ? 'undefined' : 'defined';
    return log;
  } finally {
    endAll();
  }
}

/** heap.memory against heap.buffer, posted to workers. */
async function memoryVsBuffer() {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
  const log: Record<string, unknown> = {};
  try {
    log.mainMemory = heap.memory instanceof WebAssembly.Memory && heap.memory.buffer === heap.buffer;
    const m = startWorker();
    const b = startWorker();
    const r = startWorker();
    const ra = await m.attach(heap.memory!);
    const rb = await b.attach(heap.buffer);
    const id = heap.newThreadId();
    const rr = await r.call<AttachReply>({ cmd: 'attachAs', buffer: heap.memory!, threadId: id });
    log.ids = [ra.threadId, rb.threadId, rr.threadId === id];
    // Twice in the memory worker: the buffer now (same thread, same heap): same instance, same id?
    const again = await m.attach(heap.buffer);
    log.againSameId = again.threadId === ra.threadId;
    const again2 = await b.attach(heap.memory!);
    log.again2SameId = again2.threadId === rb.threadId;
    log.chains = [
      await m.call<ChainReply>({ cmd: 'reallocChain', sizes: [1, 100, 5000, 200_000], seed: 1 }),
      await b.call<ChainReply>({ cmd: 'reallocChain', sizes: [1, 100, 5000, 200_000], seed: 2 }),
      await r.call<ChainReply>({ cmd: 'reallocChain', sizes: [1, 100, 5000, 200_000], seed: 3 }),
    ];
    const fromM = await m.call<number[]>({ cmd: 'fill', sizes: [100, 200_000], seed: 5 });
    log.badFromM = badBytes(heap.u8, fromM[0]!, 100, 5) + badBytes(heap.u8, fromM[1]!, 200_000, 5);
    for (const p of fromM) heap.free(p);
    // The page attaches again with its own memory object: same instance.
    log.attachSelfMemory = SharedHeap.attach(heap.memory!) === heap;
    log.attachSelfBuffer = SharedHeap.attach(heap.buffer) === heap;
    for (const w of [m, b, r]) await w.call({ cmd: 'flush' });
    log.check = checkText(heap);
    log.threadsAttached = heap.stats().threadsAttached;
    return log;
  } finally {
    endAll();
  }
}

declare global {
  interface Window {
    audit: Record<string, (o?: never) => Promise<unknown>>;
  }
}

window.audit = { syncUnderHold, asyncUnderHold, terminatedHolder, growth, memoryVsBuffer } as unknown as Window['audit'];
document.title = 'ready';

/** Workers busy on the lock; the page's synchronous calls that need it: longest call, any error. */
async function contention(o: { workers: number; mode: 'large' | 'lock'; size: number; holdUs: number; calls: number; mainSize: number }) {
  const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxThreads: 8 });
  const ctl = new Int32Array(new SharedArrayBuffer(64));
  const ws: Worker[] = [];
  const done: Promise<{ ok: boolean; n: number; error?: string }>[] = [];
  try {
    for (let i = 0; i < o.workers; i++) {
      const w = new Worker('/main-thread-worker.js', { type: 'module' });
      plain.push(w);
      ws.push(w);
      done.push(new Promise((resolve) => (w.onmessage = (e) => resolve(e.data))));
      w.postMessage({ buffer: heap.buffer, ctl, index: i, mode: o.mode, size: o.size, holdUs: o.holdUs });
    }
    for (let i = 0; i < o.workers; i++) await waitFor(ctl, 1 + i, 1);
    await sleep(100);
    let maxMs = 0;
    let total = 0;
    const errors: string[] = [];
    let got = 0;
    const t0 = performance.now();
    for (let i = 0; i < o.calls; i++) {
      const s = performance.now();
      try {
        const p = o.mainSize < 0 ? heap.alignedAlloc(1 << 20, -o.mainSize) : heap.malloc(o.mainSize);
        if (p > 0) {
          got++;
          heap.free(p);
        }
      } catch (e) {
        errors.push(describeError(e).slice(0, 80));
      }
      const d = performance.now() - s;
      total += d;
      maxMs = Math.max(maxMs, d);
      if (errors.length >= 2) break;
    }
    const wall = performance.now() - t0;
    Atomics.store(ctl, 0, 1);
    const results = await Promise.all(done);
    const checkAfter = checkText(heap);
    return { maxMs, total, wall, got, errors, results, checkAfter };
  } finally {
    Atomics.store(ctl, 0, 1);
    endAll();
  }
}
window.audit.contention = contention as unknown as Window['audit'][string];
