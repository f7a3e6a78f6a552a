/**
 * The chaos page: Web Workers share one heap, run random allocations, hand blocks to each other
 * and die at arbitrary moments (terminate() right after start, during attachAsync, in their loop;
 * self.close()); the page reclaims each with reclaimWhenGone and keeps allocating, then checks the
 * heap, every block still held, and that the memory of the dead came back.
 */
import { SharedHeap } from '../../../src/index.js';
import {
  CTL_WORDS, E_PTR, E_SEED, E_SIZE, E_STATE, ENTRIES, ENTRY_WORDS, M_PTR, M_SEED, M_SIZE, M_STATE, MAIL_SLOTS, MAIL_WORDS,
  S_AMBIGUOUS, S_EMPTY, S_LIVE, X_HELD, X_OPS, X_STOP, byteOf, mix, type ChaosReply, type ChaosRequest,
} from './chaos-protocol.js';
import { RequestWorker } from './request-worker.js';
import { BOUND_MS, sleep, within } from './bounded.js';

const MiB = 1 << 20;

/** A worker of the chaos page (chaos-worker.ts). */
class ChaosWorker extends RequestWorker<ChaosRequest> {
  constructor() {
    super('/chaos-worker.js');
  }
}

/** The largest block, in whole MiB, malloc gives on the page now (given back at once). */
function largestMiB(heap: SharedHeap, limit: number): number {
  let lo = 0;
  let hi = limit;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const p = heap.malloc(mid * MiB);
    if (p !== 0) {
      heap.free(p);
      lo = mid;
    } else hi = mid - 1;
  }
  return lo;
}

export type Fate = 'survive' | 'early' | 'attaching' | 'loop' | 'close' | 'holdLock';

export interface ChaosOptions {
  seed: number;
  fates: Fate[];
  largeShare: number;
  tiny?: boolean; // magazineCapacity 1, refillCount 1, drainInterval 1
  runMs?: number;
  growable?: boolean; // 16 MiB that grows to 48 under the workers
  debug?: boolean;
}

async function chaos(o: ChaosOptions) {
  const rnd = mix(o.seed);
  const heap = SharedHeap.create({
    initialBytes: o.growable ? 16 * MiB : 48 * MiB,
    ...(o.growable ? { maxBytes: 48 * MiB } : {}),
    ...(o.debug ? { debug: true } : {}),
    maxThreads: 16,
    ...(o.tiny ? { magazineCapacity: 1, refillCount: 1, drainInterval: 1 } : {}),
  });
  const n = o.fates.length;
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  const table = new Int32Array(new SharedArrayBuffer(n * ENTRIES * ENTRY_WORDS * 4));
  const mail = new Int32Array(new SharedArrayBuffer(MAIL_SLOTS * MAIL_WORDS * 4));
  const workers: ChaosWorker[] = [];
  const log: string[] = [];
  try {
    const largestBefore = largestMiB(heap, 48);
    const ids = o.fates.map(() => heap.newThreadId());
    const loops: (Promise<ChaosReply> | undefined)[] = [];
    const dead: number[] = [];
    const reclaims: Promise<boolean>[] = [];
    const t0 = performance.now();
    // Start them all; those that die before or inside attachAsync die here.
    await Promise.all(
      o.fates.map(async (fate, i) => {
        const w = new ChaosWorker();
        workers.push(w);
        if (fate === 'early') {
          w.worker.postMessage({ cmd: 'attachAs', buffer: heap.buffer, threadId: ids[i], id: 0 });
          w.worker.terminate(); // right after start: maybe before its module even ran
          dead.push(i);
          return;
        }
        await within(`ping ${i}`, w.call({ cmd: 'ping' }));
        const attach = w.call<number>({ cmd: 'attachAs', buffer: heap.buffer, threadId: ids[i]! });
        if (fate === 'attaching') {
          void attach.catch(() => undefined);
          await sleep(Math.floor(rnd() * 4));
          w.worker.terminate(); // inside attachAsync, somewhere
          dead.push(i);
          return;
        }
        await within(`attachAsync ${i}`, attach);
        if (fate === 'holdLock') {
          void w.call({ cmd: 'holdLock', ctl }).catch(() => undefined);
          return;
        }
        const closeAt = fate === 'close' ? 2000 + Math.floor(rnd() * 20_000) : 0;
        const loop = w.call<ChaosReply>({ cmd: 'loop', ctl, table, mail, index: i, seed: o.seed * 100 + i, largeShare: o.largeShare, closeAt });
        loops[i] = loop;
        if (fate === 'loop' || fate === 'close') void loop.catch(() => undefined);
      }),
    );
    for (const i of dead) reclaims[i] = heap.reclaimWhenGone(ids[i]!);
    // The page allocates too, and takes blocks handed over, while workers die.
    let pageStop = false;
    let pageBad = 0;
    let pageOps = 0;
    const pageHeld: [number, number, number][] = [];
    const pageLoop = (async () => {
      let serial = 0;
      while (!pageStop) {
        for (let k = 0; k < 20; k++) {
          const r = rnd();
          if (r < 0.4 || pageHeld.length === 0) {
            const size = rnd() < 0.1 ? 200_000 : 1 + Math.floor(rnd() * 3000);
            const p = await heap.mallocAsync(size);
            if (p === 0) continue;
            const seed = (0x7f << 24) | ++serial;
            for (let j = 0; j < size; j++) heap.u8[p + j] = byteOf(seed, j);
            pageHeld.push([p, size, seed]);
          } else if (r < 0.6) {
            for (let s = 0; s < MAIL_SLOTS; s++) {
              const w = s * MAIL_WORDS;
              if (Atomics.compareExchange(mail, w + M_STATE, S_LIVE, S_AMBIGUOUS) !== S_LIVE) continue;
              pageHeld.push([mail[w + M_PTR]!, mail[w + M_SIZE]!, mail[w + M_SEED]!]);
              Atomics.store(mail, w + M_STATE, S_EMPTY);
              break;
            }
          } else {
            const [p, size, seed] = pageHeld.splice(Math.floor(rnd() * pageHeld.length), 1)[0]!;
            for (let j = 0; j < size; j++) if (heap.u8[p + j] !== byteOf(seed, j)) pageBad++;
            // freeAsync: a large block's free takes the global lock, which a worker that dies
            // holding it keeps until its reclaim (a sync free spun 3 s, then LockTimeoutError).
            await heap.freeAsync(p);
          }
          pageOps++;
        }
        await sleep(1);
      }
    })();
    // Terminate the 'loop' ones at random moments.
    for (let i = 0; i < n; i++) {
      if (o.fates[i] === 'loop') {
        await sleep(Math.floor(rnd() * 300));
        log.push(`terminate ${i} after ${Atomics.load(ctl, X_OPS + i)} ops`);
        workers[i]!.worker.terminate();
        dead.push(i);
        reclaims[i] = heap.reclaimWhenGone(ids[i]!);
      } else if (o.fates[i] === 'holdLock') {
        // Terminated while it holds the global lock: the others wait for it until the reclaim.
        for (let k = 0; Atomics.load(ctl, X_HELD) === 0; k++) {
          if (k > 1000) throw new Error('the holdLock worker never took the lock');
          await sleep(10);
        }
        await sleep(100);
        log.push(`terminate ${i} holding the lock; page ops ${pageOps}, worker ops ${o.fates.map((_, j) => Atomics.load(ctl, X_OPS + j)).join(',')}`);
        workers[i]!.worker.terminate();
        dead.push(i);
        reclaims[i] = heap.reclaimWhenGone(ids[i]!);
      } else if (o.fates[i] === 'close') {
        dead.push(i);
        reclaims[i] = heap.reclaimWhenGone(ids[i]!);
      }
    }
    const reclaimed: Record<number, boolean> = {};
    const reclaimMs: Record<number, number> = {};
    for (const i of dead) {
      reclaimed[i] = await within(`reclaimWhenGone(${ids[i]}) of worker ${i} (${o.fates[i]})`, reclaims[i]!);
      reclaimMs[i] = Math.round(performance.now() - t0);
    }
    await sleep(o.runMs ?? 300); // survivors and the page go on
    Atomics.store(ctl, X_STOP, 1);
    pageStop = true;
    await within('page loop', pageLoop);
    const replies: Record<number, ChaosReply> = {};
    for (let i = 0; i < n; i++) if (o.fates[i] === 'survive') replies[i] = await within(`loop of worker ${i}`, loops[i]!);
    // A survivor may still be answering a flush ask from its event loop (flush-ask.ts), which
    // check() can read halfway: a failure is noted, and check() must pass a moment later.
    let firstCheck = '';
    try {
      heap.check();
    } catch (e) {
      firstCheck = (e as Error).message;
      await sleep(200);
      heap.check();
    }

    // Every block someone holds keeps its pattern, and no two overlap.
    const held: [number, number, number, string][] = pageHeld.map(([p, s, seed]) => [p, s, seed, 'page']);
    let ambiguous = 0;
    const maybe: number[] = []; // offsets a dead worker was changing (or had just got) when it died
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < ENTRIES; k++) {
        const w = (i * ENTRIES + k) * ENTRY_WORDS;
        const st = table[w + E_STATE];
        if (st === S_LIVE) held.push([table[w + E_PTR]!, table[w + E_SIZE]!, table[w + E_SEED]!, `w${i}`]);
        else if (st === S_AMBIGUOUS) {
          ambiguous++;
          maybe.push(table[w + E_PTR]!);
        }
      }
    }
    for (let s = 0; s < MAIL_SLOTS; s++) {
      const w = s * MAIL_WORDS;
      if (mail[w + M_STATE] === S_LIVE) held.push([mail[w + M_PTR]!, mail[w + M_SIZE]!, mail[w + M_SEED]!, 'mail']);
      else if (mail[w + M_STATE] === S_AMBIGUOUS) {
        ambiguous++;
        maybe.push(mail[w + M_PTR]!);
      }
    }
    let badHeld = 0;
    for (const [p, size, seed] of held) for (let j = 0; j < size; j++) if (heap.u8[p + j] !== byteOf(seed, j)) badHeld++;
    const ranges = held.map(([p, size, , who]) => [p, p + Math.max(size, 1), who] as const).sort((a, b) => a[0] - b[0]);
    const overlaps: string[] = [];
    for (let k = 1; k < ranges.length; k++) {
      if (ranges[k]![0] < ranges[k - 1]![1]) overlaps.push(`${ranges[k - 1]![2]}@${ranges[k - 1]![0]} / ${ranges[k]![2]}@${ranges[k]![0]}`);
    }
    const heldBytes = held.reduce((s, [p]) => s + heap.usableSize(p), 0);
    const statsHeld = heap.stats();

    // Give everything back: survivors free theirs, the page frees the rest.
    for (let i = 0; i < n; i++) if (o.fates[i] === 'survive') await within(`freeAll ${i}`, workers[i]!.call({ cmd: 'freeAll', table, index: i }));
    for (const [p, , , who] of held) if (who === 'page' || who === 'mail' || o.fates[Number(who.slice(1))] !== 'survive') heap.free(p);
    heap.flush();
    heap.check();
    const end = heap.stats();
    // Everything known is free now: a block still live at an offset a dead worker was changing is
    // the one it died with (the application's leak, not the heap's); give those back too.
    let recovered = 0;
    for (const p of new Set(maybe)) {
      if (p <= 0) continue;
      try {
        heap.usableSize(p);
      } catch {
        continue;
      }
      heap.free(p);
      recovered++;
    }
    heap.flush();
    heap.check();
    const liveBlocksFinal = heap.stats().liveBlocks;
    const largestAfter = largestMiB(heap, 48);
    const pooled = { largePooledBytes: end.largePooledBytes, stage1Slabs: end.classes.reduce((a, c) => a + c.stage1Slabs, 0) };
    for (let i = 0; i < n; i++) if (o.fates[i] === 'survive') await within(`detach ${i}`, workers[i]!.call({ cmd: 'detach' }));
    const largestAfterDetach = largestMiB(heap, 48);
    return {
      log,
      firstCheck,
      ops: Object.fromEntries(o.fates.map((f, i) => [i, `${f}:${Atomics.load(ctl, X_OPS + i)}`])),
      replies,
      reclaimed,
      reclaimMs,
      pageOps,
      pageBad,
      heldBlocks: held.length,
      heldBytes,
      badHeld,
      overlaps: overlaps.slice(0, 5),
      ambiguous,
      liveBlocksHeld: statsHeld.liveBlocks,
      liveBlocksEnd: end.liveBlocks,
      recovered,
      liveBlocksFinal,
      liveBytesEnd: end.liveBytes,
      threadsAttached: end.threadsAttached,
      largestBefore,
      largestAfter,
      largestAfterDetach,
      pooled,
    };
  } finally {
    Atomics.store(ctl, X_STOP, 1);
    for (const w of workers) w.worker.terminate();
  }
}

/** reclaimWhenGone of odd ids: twice, never handed out, one handed out later. */
async function oddIds() {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
  const out: Record<string, string> = {};
  const tryIt = async (label: string, f: () => Promise<unknown>) => {
    try {
      out[label] = `ok ${String(await within(label, f(), 3000))}`;
    } catch (e) {
      out[label] = `${(e as Error).name}: ${(e as Error).message}`;
    }
  };
  const workers: ChaosWorker[] = [];
  try {
    const next = heap.newThreadId(); // the id newThreadId() handed out; the next would be next + 1
    await tryIt('never handed out (below 2^30)', () => heap.reclaimWhenGone(5));
    await tryIt('never handed out (the next id)', () => heap.reclaimWhenGone(next + 1));
    await tryIt('twice (first)', () => heap.reclaimWhenGone(next));
    await tryIt('twice (second)', () => heap.reclaimWhenGone(next));
    // The id reclaimWhenGone(next + 1) asked for is handed out now: its worker must be able to attach.
    const later = heap.newThreadId();
    const w = new ChaosWorker();
    workers.push(w);
    await within('ping', w.call({ cmd: 'ping' }));
    await tryIt(`attachAsync under ${later} (handed out after a reclaimWhenGone of it)`, () =>
      w.call({ cmd: 'attachAs', buffer: heap.buffer, threadId: later }),
    );
    out.later = String(later === next + 1);
    return out;
  } finally {
    for (const w of workers) w.worker.terminate();
  }
}

/**
 * Two threads, the page and a worker, each reclaimWhenGone() the same terminated worker; then the
 * page detaches. Returns how each call settled and when (ms after the terminate).
 */
async function twoReclaimers() {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
  const out: Record<string, string> = {};
  const workers: ChaosWorker[] = [];
  const t0 = performance.now();
  const settle = (label: string, p: Promise<unknown>, ms: number) =>
    within(label, p, ms).then(
      (v) => (out[label] = `ok ${String(v)} after ${Math.round(performance.now() - t0)} ms`),
      (e: Error) => (out[label] = `${e.name}: ${e.message}`),
    );
  try {
    const idW = heap.newThreadId();
    const idC = heap.newThreadId();
    const [w, c] = [new ChaosWorker(), new ChaosWorker()];
    workers.push(w, c);
    await within('attach W', w.call({ cmd: 'attachAs', buffer: heap.buffer, threadId: idW }));
    await within('attach C', c.call({ cmd: 'attachAs', buffer: heap.buffer, threadId: idC }));
    c.worker.terminate();
    const fromPage = heap.reclaimWhenGone(idC);
    const fromWorker = w.call<boolean>({ cmd: 'reclaimWhenGone', threadId: idC });
    await settle('page', fromPage, BOUND_MS);
    await settle('worker', fromWorker, BOUND_MS);
    out.slotsNamingC = String(heap.stats().threads.filter((t) => t.threadId === idC).length);
    heap.detach(); // gives up the locks its reclaims kept
    await settle('worker, after the page detached', fromWorker, 3000);
    return out;
  } finally {
    for (const x of workers) x.worker.terminate();
  }
}

/** A worker that started a worker of its own (attached under an id it reserved) is terminated. */
async function nested() {
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 8 });
  const p = new ChaosWorker();
  try {
    const idP = heap.newThreadId();
    await within('attach P', p.call({ cmd: 'attachAs', buffer: heap.buffer, threadId: idP }));
    const idS = await within('spawn', p.call<number>({ cmd: 'spawn' }));
    const attachedBefore = heap.stats().threads.filter((t) => t.state === 'attached').map((t) => t.threadId);
    p.worker.terminate(); // its worker goes with it
    const reclaimedP = await within('reclaimWhenGone(P)', heap.reclaimWhenGone(idP));
    await sleep(3000);
    const left = heap.stats().threads.filter((t) => t.state !== 'free').map((t) => `${t.threadId}:${t.state}`);
    // The page can find the slot by its id in stats() and reclaim it once its lock is free.
    const reclaimedS = await within('reclaimWhenGone(S)', heap.reclaimWhenGone(idS));
    heap.check();
    return { idP, idS, attachedBefore, reclaimedP, left, reclaimedS, threadsAttached: heap.stats().threadsAttached };
  } finally {
    p.worker.terminate();
  }
}

declare global {
  interface Window {
    chaos: { run: (o: ChaosOptions) => Promise<unknown>; oddIds: () => Promise<unknown>; twoReclaimers: () => Promise<unknown>; nested: () => Promise<unknown> };
  }
}

window.chaos = { run: chaos, oddIds, twoReclaimers, nested };
document.title = 'ready';
