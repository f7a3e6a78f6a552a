/**
 * The crash-stop page: per heap, a Web Worker stopped at its n-th crash point (src/crash.ts) in a
 * seeded workload, holding what that step holds (the global lock, a journal half written), while
 * the page's mallocAsync and reallocAsync wait on it; then terminated, and reclaimed with
 * reclaimWhenGone. Each heap must then pass check(), keep the page's blocks, serve the page's
 * waiting calls, and let a fresh worker attach and work. Many heaps run at once, so that one
 * wait for Chromium to let the terminated workers' Web Locks go serves them all.
 */
import { SharedHeap } from '../../../src/index.js';
import { G_LOCK } from '../../../src/layout.js';
import { RequestWorker } from './request-worker.js';
import { byteOf } from './chaos-protocol.js';
import type { CrashStopRequest } from './crash-stop-worker.js';
import { sleep, within } from './bounded.js';

const MiB = 1 << 20;


export interface CrashStopOptions {
  seed: number;
  tiny: boolean;
  memory: boolean;
  every?: number; // stop at every `every`-th crash point the workload passes (one heap each)
  limit?: number; // at most this many heaps
  sync?: number; // on this many heaps whose lock a stopped worker holds, the page tries a synchronous malloc first
}

function makeHeap(o: CrashStopOptions): SharedHeap {
  return SharedHeap.create({ initialBytes: 8 * MiB, maxThreads: 4, ...(o.tiny ? { magazineCapacity: 1, refillCount: 1, drainInterval: 1 } : {}) });
}

/** The page's own blocks (patterned, kept) and blocks it gives the worker to free. */
function pageBlocks(heap: SharedHeap, seed: number): { own: [number, number, number][]; given: number[] } {
  const own: [number, number, number][] = [];
  for (let k = 0; k < 24; k++) {
    const size = k % 6 === 0 ? 150_000 : 16 + k * 97;
    const p = heap.malloc(size);
    const s = (seed << 8) | k;
    for (let j = 0; j < size; j++) heap.u8[p + j] = byteOf(s, j);
    own.push([p, size, s]);
  }
  const given: number[] = [];
  for (let k = 0; k < 24; k++) given.push(heap.malloc(k % 8 === 0 ? 130_000 : 24 + k * 31));
  return { own, given };
}

async function crashStop(o: CrashStopOptions) {
  const arg = (h: SharedHeap) => (o.memory ? h.memory! : h.buffer);
  // The number of crash points the workload passes, counted in a heap set up the same way.
  const counter = new RequestWorker<CrashStopRequest>('/crash-stop-worker.js');
  let total: number;
  try {
    const h = makeHeap(o);
    const { given } = pageBlocks(h, o.seed);
    total = await within('count', counter.call<number>({ cmd: 'count', buffer: arg(h), threadId: h.newThreadId(), seed: o.seed, given }), 10_000);
  } finally {
    counter.worker.terminate();
  }
  let points = Array.from({ length: Math.ceil(total / (o.every ?? 1)) }, (_, k) => 1 + k * (o.every ?? 1));
  if (o.limit !== undefined) points = points.slice(0, o.limit);
  const ctl = new Int32Array(new SharedArrayBuffer(points.length * 4));
  const runs = points.map((n, index) => {
    const heap = makeHeap(o);
    const { own, given } = pageBlocks(heap, o.seed);
    const id = heap.newThreadId();
    const w = new RequestWorker<CrashStopRequest>('/crash-stop-worker.js');
    const call = w.call({ cmd: 'stop', buffer: arg(heap), threadId: id, seed: o.seed, given, n, ctl, index });
    void call.catch(() => undefined);
    return { n, index, heap, own, id, w, call };
  });
  const out: Record<string, string> = {};
  const fresh = new RequestWorker<CrashStopRequest>('/crash-stop-worker.js');
  try {
    // Every worker stopped (or done).
    for (let k = 0; points.some((_, i) => Atomics.load(ctl, i) === 0); k++) {
      if (k > 1000) throw new Error(`workers never stopped: ${points.filter((_, i) => Atomics.load(ctl, i) === 0).join(',')}`);
      await sleep(10);
    }
    // A synchronous call on a heap whose lock a stopped worker holds gives up after its bound,
    // having changed nothing (checked with the rest below).
    const syncErrors: string[] = [];
    for (const r of runs.filter((x) => Atomics.load(new Int32Array(x.heap.buffer), G_LOCK) !== 0).slice(0, o.sync ?? 0)) {
      try {
        const p = r.heap.malloc(300_000);
        syncErrors.push(`n=${r.n}: malloc answered ${p}`);
        if (p !== 0) r.heap.free(p);
      } catch (e) {
        if ((e as Error).name !== 'LockTimeoutError') syncErrors.push(`n=${r.n}: ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
    // The page's calls that need the global lock start while the workers hold what they hold.
    const waits = runs.map((r) => {
      const [p0, size0, seed0] = r.own[1]!;
      const big = r.heap.mallocAsync(300_000);
      const moved = r.heap.reallocAsync(p0, 200_000).then((q) => {
        if (q !== 0) r.own[1] = [q, size0, seed0];
        return q;
      });
      return { big, moved };
    });
    for (const r of runs) r.w.worker.terminate();
    const results = await Promise.all(
      runs.map(async (r, i) => {
        const path = Atomics.load(ctl, r.index);
        const label = `n=${r.n} (${path > 0 ? `path ${path - 1}` : 'finished'})`;
        try {
          const reclaimed = await within(`${label} reclaimWhenGone`, r.heap.reclaimWhenGone(r.id), 15_000);
          const big = await within(`${label} mallocAsync`, waits[i]!.big, 5000);
          const moved = await within(`${label} reallocAsync`, waits[i]!.moved, 5000);
          r.heap.check();
          let bad = 0;
          for (const [p, size, s] of r.own) for (let j = 0; j < size; j++) if (r.heap.u8[p + j] !== byteOf(s, j)) bad++;
          if (big === 0 || moved === 0) return `${label}: out of memory (big ${big}, moved ${moved})`;
          r.heap.free(big);
          if (bad > 0) return `${label}: ${bad} bad bytes`;
          if (reclaimed !== true) return `${label}: reclaimWhenGone answered ${reclaimed}`;
          if (r.heap.stats().threadsAttached !== 1) return `${label}: ${r.heap.stats().threadsAttached} attached`;
          return 'ok';
        } catch (e) {
          return `${label}: ${(e as Error).message.slice(0, 300)}`;
        }
      }),
    );
    // A fresh worker attaches to each heap, works and detaches.
    for (let i = 0; i < runs.length; i++) {
      const r = runs[i]!;
      if (results[i] !== 'ok') continue;
      try {
        await within(`n=${r.n} fresh`, fresh.call({ cmd: 'run', buffer: arg(r.heap), threadId: r.heap.newThreadId(), seed: o.seed + 1, given: [] }), 10_000);
        r.heap.check();
        for (const [p] of r.own) r.heap.free(p);
        r.heap.flush();
        r.heap.check();
      } catch (e) {
        results[i] = `n=${r.n} fresh: ${(e as Error).message.slice(0, 300)}`;
      }
    }
    results.forEach((v, i) => (out[String(runs[i]!.n)] = v));
    return { total, syncErrors, failures: Object.fromEntries(Object.entries(out).filter(([, v]) => v !== 'ok')), runs: runs.length, stoppedAt: runs.map((r) => Atomics.load(ctl, r.index)) };
  } finally {
    for (const r of runs) r.w.worker.terminate();
    fresh.worker.terminate();
  }
}

declare global {
  interface Window {
    crashStop: (o: CrashStopOptions) => Promise<unknown>;
  }
}

window.crashStop = crashStop;
document.title = 'ready';

/**
 * Per heap: worker X works and is terminated holding its blocks; worker R reclaimWhenGone()s it and
 * is stopped at its n-th crash point inside that reclaim, then terminated; the page reclaims both
 * (X first, or R first), with a mallocAsync waiting meanwhile.
 */
async function reclaimerStop(o: CrashStopOptions & { rFirst: boolean; count?: number }) {
  const arg = (h: SharedHeap) => (o.memory ? h.memory! : h.buffer);
  const ctl = new Int32Array(new SharedArrayBuffer(64 * 4));
  const setup = async (index: number, n: number) => {
    const heap = makeHeap(o);
    const { own, given } = pageBlocks(heap, o.seed);
    const idX = heap.newThreadId();
    const idR = heap.newThreadId();
    const x = new RequestWorker<CrashStopRequest>('/crash-stop-worker.js');
    const r = new RequestWorker<CrashStopRequest>('/crash-stop-worker.js');
    await within('hold', x.call({ cmd: 'hold', buffer: arg(heap), threadId: idX, seed: o.seed, given }), 10_000);
    x.worker.terminate();
    const call = r.call<number>({ cmd: 'reclaimStop', buffer: arg(heap), threadId: idR, seed: o.seed, given: [], x: idX, n, ctl, index });
    void call.catch(() => undefined);
    return { heap, own, idX, idR, x, r, call, n, index };
  };
  const c = await setup(0, -1);
  const total = await within('count', c.call, 15_000);
  c.r.worker.terminate();
  let points = Array.from({ length: Math.ceil(total / (o.every ?? 1)) }, (_, k) => 1 + k * (o.every ?? 1));
  if (o.limit !== undefined) points = points.slice(0, o.limit);
  const runs = await Promise.all(points.map((n, i) => setup(i + 1, n)));
  const fresh = new RequestWorker<CrashStopRequest>('/crash-stop-worker.js');
  const answers: string[] = [];
  try {
    for (let k = 0; runs.some((r) => Atomics.load(ctl, r.index) === 0); k++) {
      if (k > 1500) throw new Error(`reclaimers never stopped: ${runs.filter((r) => Atomics.load(ctl, r.index) === 0).map((r) => r.n).join(',')}`);
      await sleep(10);
    }
    const results = await Promise.all(
      runs.map(async (r) => {
        const path = Atomics.load(ctl, r.index);
        const label = `n=${r.n} (${path > 0 ? `path ${path - 1}` : 'finished'})`;
        const big = r.heap.mallocAsync(300_000);
        r.r.worker.terminate();
        try {
          const first = o.rFirst ? r.idR : r.idX;
          const second = o.rFirst ? r.idX : r.idR;
          const a = await within(`${label} reclaimWhenGone(${o.rFirst ? 'R' : 'X'})`, r.heap.reclaimWhenGone(first), 15_000);
          const b = await within(`${label} reclaimWhenGone(${o.rFirst ? 'X' : 'R'})`, r.heap.reclaimWhenGone(second), 15_000);
          const p = await within(`${label} mallocAsync`, big, 5000);
          r.heap.check();
          let bad = 0;
          for (const [q, size, s] of r.own) for (let j = 0; j < size; j++) if (r.heap.u8[q + j] !== byteOf(s, j)) bad++;
          if (bad > 0) return `${label}: ${bad} bad bytes`;
          if (p === 0) return `${label}: mallocAsync out of memory`;
          r.heap.free(p);
          const st = r.heap.stats();
          if (st.threadsAttached !== 1 || st.threads.some((t) => t.state !== 'free' && t.threadId !== r.heap.threadId)) return `${label}: threads ${JSON.stringify(st.threads.map((t) => [t.threadId, t.state]))} (answers ${a}, ${b})`;
          answers.push(`${r.n}:${path - 1}:${a}/${b}`);
          await within(`${label} fresh`, fresh.call({ cmd: 'run', buffer: arg(r.heap), threadId: r.heap.newThreadId(), seed: o.seed + 1, given: [] }), 10_000);
          r.heap.check();
          return 'ok';
        } catch (e) {
          return `${label}: ${(e as Error).message.slice(0, 300)}`;
        }
      }),
    );
    const failures: Record<string, string> = {};
    results.forEach((v, i) => {
      if (v !== 'ok') failures[String(runs[i]!.n)] = v;
    });
    return { total, answers, failures, runs: runs.length, stoppedAt: runs.map((r) => Atomics.load(ctl, r.index)) };
  } finally {
    for (const r of runs) r.r.worker.terminate();
    fresh.worker.terminate();
  }
}

declare global {
  interface Window {
    reclaimerStop: (o: CrashStopOptions & { rFirst: boolean }) => Promise<unknown>;
  }
}
window.reclaimerStop = reclaimerStop;

/**
 * A worker that goes on calling the heap after self.close() (the rest of its task runs) or after
 * terminate() (Chromium runs a terminated worker on for a while): its reclaimWhenGone must not
 * resolve while it still runs. Answers, per worker, the calls it made after the reclaim resolved.
 */
async function spinAfterEnd(o: { close: boolean; n: number; ms: number }) {
  const ctl = new Int32Array(new SharedArrayBuffer(64 * 4));
  const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: o.n + 2 });
  const ws: RequestWorker<CrashStopRequest>[] = [];
  try {
    const ids: number[] = [];
    for (let i = 0; i < o.n; i++) {
      const w = new RequestWorker<CrashStopRequest>('/crash-stop-worker.js');
      ws.push(w);
      ids.push(heap.newThreadId());
      await within('spin', w.call({ cmd: 'spin', buffer: heap.buffer, threadId: ids[i]!, close: o.close, ms: o.ms, ctl, index: i }), 10_000);
    }
    await sleep(50);
    if (!o.close) for (const w of ws) w.worker.terminate();
    const t0 = performance.now();
    const out = await Promise.all(
      ids.map(async (id, i) => {
        const r = await within(`reclaimWhenGone ${i}`, heap.reclaimWhenGone(id), 15_000);
        const at = Atomics.load(ctl, i);
        const ms = Math.round(performance.now() - t0);
        await sleep(300);
        return { r, ms, after: Atomics.load(ctl, i) - at, calls: at };
      }),
    );
    heap.check();
    return out;
  } finally {
    for (const w of ws) w.worker.terminate();
  }
}
declare global {
  interface Window {
    spinAfterEnd: (o: { close: boolean; n: number; ms: number }) => Promise<unknown>;
  }
}
window.spinAfterEnd = spinAfterEnd;
