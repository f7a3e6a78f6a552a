/**
 * Programs a user builds on sabmalloc, as the README invites ("shared data structures and zero-copy
 * message exchanges"), written against the public API only. The main thread runs the sources
 * (../src/index.js), the workers run the build (dist/src/index.js: Node 20 cannot start a .ts
 * worker), as in test/watch-thread-id-range.test.ts.
 *
 * 1. A zero-copy message ring: producers malloc messages of 16 B to 64 KiB, write a checksummed
 *    payload and hand the offset to consumers through single-producer rings that live in the heap
 *    (Atomics wait/notify), or to the main thread by postMessage; the consumers verify and free.
 *    Producer-only-allocates / consumer-only-frees: the memory freed remotely must come back to the
 *    producers, so the footprint stops growing once the run is steady and no malloc answers 0.
 * 2. A shared hash map in the heap under a user-level futex lock: any worker inserts, updates
 *    (realloc of a node, which may move), deletes (free of another worker's node) and resizes the
 *    bucket array (realloc); a log of every change, ordered by a sequence number taken under the
 *    lock, replays into a model the final structure must equal.
 * 3. The ring and a churn of private blocks on a debug heap, with churn workers terminated
 *    mid-run, reclaimed by watch(), their recorded blocks freed by the main thread, and replaced.
 */
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';

const MiB = 1 << 20;
const distIndex = pathToFileURL(new URL('../dist/src/index.js', import.meta.url).pathname).href;

/** Helpers shared by the workers and the main thread (plain JavaScript, evaluated in both). */
const LIB = String.raw`
function xs(x) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return x | 0; }
function seedOf(a, b) { let x = (Math.imul(a + 1, 0x9E3779B1) ^ Math.imul(b + 7, 0x85EBCA77)) | 0; if (x === 0) x = 1; return xs(xs(x)); }
/** A message: words [size, a, b, checksum], then a payload from seedOf(a, b), bytes after the last word. */
function fillMsg(i32, u8, p, size, a, b) {
  const w0 = p >> 2, nw = size >> 2;
  i32[w0] = size; i32[w0 + 1] = a; i32[w0 + 2] = b;
  let x = seedOf(a, b), sum = 0;
  for (let k = 4; k < nw; k++) { x = xs(x); i32[w0 + k] = x; sum = (sum + x) | 0; }
  for (let j = nw * 4; j < size; j++) { const v = (x + j) & 255; u8[p + j] = v; sum = (sum + v) | 0; }
  i32[w0 + 3] = sum;
}
/** '' when the message at p is intact (and its header says a, b when given), else what is wrong. */
function checkMsg(i32, u8, p, a, b) {
  const w0 = p >> 2, size = i32[w0];
  if (size < 16 || size > 65536) return 'size ' + size + ' at ' + p;
  if (a !== undefined && (i32[w0 + 1] !== a || i32[w0 + 2] !== b)) return 'header ' + i32[w0 + 1] + '/' + i32[w0 + 2] + ' expected ' + a + '/' + b;
  const nw = size >> 2;
  let x = seedOf(i32[w0 + 1], i32[w0 + 2]), sum = 0;
  for (let k = 4; k < nw; k++) { x = xs(x); if (i32[w0 + k] !== x) return 'word ' + k + ' of ' + p + ' (' + size + ' B)'; sum = (sum + x) | 0; }
  for (let j = nw * 4; j < size; j++) { const v = (x + j) & 255; if (u8[p + j] !== v) return 'byte ' + j + ' of ' + p; sum = (sum + v) | 0; }
  if (i32[w0 + 3] !== sum) return 'checksum of ' + p;
  return '';
}
/** 70% 16-255 B, 25% 256-4095 B, 5% 4 KiB - 64 KiB. */
function msgSize(r) {
  const u = (r >>> 0) / 4294967296, v = ((r >>> 7) & 0xffff) / 65536;
  if (u < 0.7) return 16 + Math.floor(v * 240);
  if (u < 0.95) return 256 + Math.floor(v * 3840);
  return 4096 + Math.floor(v * (65536 - 4096 + 1));
}
`;
const lib = new Function(`${LIB}; return { xs, seedOf, fillMsg, checkMsg, msgSize };`)() as {
  xs(x: number): number;
  fillMsg(i32: Int32Array, u8: Uint8Array, p: number, size: number, a: number, b: number): void;
  checkMsg(i32: Int32Array, u8: Uint8Array, p: number, a?: number, b?: number): string;
  msgSize(r: number): number;
};

/**
 * A worker's source: the helpers (LIB) and `defs`, then `body` run once the heap is attached
 * (heap; i32 over its buffer, length-tracking on a growable heap: heap.u8 is read at each use,
 * as it is made anew after growth; d the workerData; parentPort).
 */
function workerSource(defs: string, body: string): string {
  return `const { parentPort, workerData: d } = require('node:worker_threads');
${LIB}
${defs}
(async () => {
  const { SharedHeap } = await import(d.index);
  const heap = SharedHeap.attach(d.memory ?? d.buffer);
  const i32 = new Int32Array(heap.buffer);
${body}
})();
`;
}

/**
 * The ring program's control block (Int32 words, in a calloc'd block of the heap):
 * [0] producers done, [1] messages produced, [2] messages consumed, [3] malloc answered 0,
 * [4] stop (churn workers), [8 + c] consumer c's wake word, [8 + C + p] producer p's space word,
 * then one ring per (producer, consumer): head, tail, CAP slots.
 */
const RING = String.raw`
const CAP = 64;
function ringBase(P, C, p, c) { return 8 + C + P + (p * C + c) * (2 + CAP); }
function ctlWords(P, C) { return 8 + C + P + P * C * (2 + CAP); }
`;

const PRODUCER = workerSource(RING, String.raw`
  const P = d.P, C = d.C, p = d.p, ctl = d.ctl >> 2;
  // A message's header says (p + 256 * generation, i): a producer started again after a kill
  // (test 3) sends a higher generation, so that its consumers still see one order.
  const a = p + 256 * (d.gen ?? 0);
  let r = seedOf(a, 99), zero = 0, posted = 0, c = p % C, stuck = -1;
  for (let i = 0; i < d.n && Atomics.load(i32, ctl + 4) === 0; i++) {
    r = xs(r);
    const size = msgSize(r);
    let m = heap.malloc(size);
    // Out of memory: wait a little and try again (up to ~3 s in all: then the run is stuck).
    for (let k = 0; m === 0 && k < 300; k++) { zero++; Atomics.add(i32, ctl + 3, 1); await new Promise((res) => setTimeout(res, 10)); m = heap.malloc(size); }
    if (m === 0) { stuck = i; break; }
    fillMsg(i32, heap.u8, m, size, a, i);
    if (d.postEvery > 0 && i % d.postEvery === d.postEvery - 1) { parentPort.postMessage(m); posted++; Atomics.add(i32, ctl + 1, 1); continue; }
    for (let tries = 0; ; tries++) {
      const b = ctl + ringBase(P, C, p, c);
      const head = Atomics.load(i32, b), tail = Atomics.load(i32, b + 1);
      if (tail - head < CAP) {
        i32[b + 2 + (tail % CAP)] = m;
        Atomics.add(i32, ctl + 1, 1);
        Atomics.store(i32, b + 1, tail + 1);
        Atomics.add(i32, ctl + 8 + c, 1); Atomics.notify(i32, ctl + 8 + c);
        c = (c + 1) % C;
        break;
      }
      c = (c + 1) % C;
      if (tries % C === C - 1) { const s = Atomics.load(i32, ctl + 8 + C + p); Atomics.wait(i32, ctl + 8 + C + p, s, 2); }
    }
  }
  Atomics.add(i32, ctl, 1);
  for (let k = 0; k < C; k++) { Atomics.add(i32, ctl + 8 + k, 1); Atomics.notify(i32, ctl + 8 + k); }
  parentPort.postMessage({ done: true, zero, posted, stuck });
  parentPort.once('message', () => { heap.detach(); process.exit(0); });
`);

const CONSUMER = workerSource(RING, String.raw`
  const P = d.P, C = d.C, c = d.c, ctl = d.ctl >> 2;
  const last = new Float64Array(P).fill(-1); // the last (generation, sequence number) seen from each producer on this ring
  let got = 0, bad = 0, firstBad = '', flushed = false, rr = seedOf(c, 4242);
  for (;;) {
    const seen = Atomics.load(i32, ctl + 8 + c);
    let any = false;
    for (let p = 0; p < P; p++) {
      const b = ctl + ringBase(P, C, p, c);
      const head = Atomics.load(i32, b), tail = Atomics.load(i32, b + 1);
      if (head === tail) continue;
      any = true;
      flushed = false;
      for (let h = head; h < tail; h++) {
        const m = i32[b + 2 + (h % CAP)];
        // Taken off the ring before it is freed: a consumer killed in between leaks it, where the
        // other order would have the one who drains its ring free it again.
        Atomics.store(i32, b, h + 1);
        // The ring is one producer's and one consumer's: its messages come in the producer's order.
        const w = m >> 2, key = (i32[w + 1] >> 8) * 1048576 + i32[w + 2];
        const why = (i32[w + 1] & 255) !== p || key <= last[p] ? 'order/header ' + i32[w + 1] + '/' + i32[w + 2] + ' at ' + m : checkMsg(i32, heap.u8, m);
        if (why !== '') { bad++; if (firstBad === '') firstBad = why; }
        else last[p] = key;
        if (d.relay && why === '') {
          // A relay: resize the message (grow, shrink, or across the small/large boundary),
          // check that realloc kept what fits, write it anew and post it on to the main thread.
          const size = i32[w], a = i32[w + 1], b2 = i32[w + 2];
          rr = xs(rr);
          const size2 = (rr & 15) === 0 ? 131072 + ((rr >>> 4) % 400000) : msgSize(rr);
          // At most 256 messages posted to the main thread and not yet freed there.
          while (Atomics.load(i32, ctl + 6) - Atomics.load(i32, ctl + 5) > 256) await new Promise((res) => setTimeout(res, 1));
          const m2 = heap.realloc(m, size2);
          if (m2 === 0) { bad++; if (firstBad === '') { const st = heap.stats(); firstBad = 'realloc(' + m + ', ' + size2 + ') answered 0 with ' + st.liveBytes + ' bytes live, footprint ' + st.footprintBytes; } heap.free(m); }
          else {
            const keep = Math.min(size, size2) >> 2;
            let x = seedOf(a, b2);
            for (let k = 4; k < keep; k++) { x = xs(x); if (i32[(m2 >> 2) + k] !== x) { bad++; if (firstBad === '') firstBad = 'realloc lost word ' + k + ' of ' + size + ' -> ' + size2; break; } }
            fillMsg(i32, heap.u8, m2, Math.min(size2, 65536), a + 128, b2);
            Atomics.add(i32, ctl + 6, 1);
            parentPort.postMessage(m2);
          }
        } else heap.free(m);
        got++;
        Atomics.add(i32, ctl + 2, 1);
      }
      Atomics.add(i32, ctl + 8 + C + p, 1); Atomics.notify(i32, ctl + 8 + C + p);
    }
    if (!any) {
      if (Atomics.load(i32, ctl) === P) {
        let empty = true;
        for (let p = 0; p < P; p++) { const b = ctl + ringBase(P, C, p, c); if (Atomics.load(i32, b) !== Atomics.load(i32, b + 1)) empty = false; }
        if (empty) break;
      }
      // A pending waitAsync does not keep a Node thread alive: a timer does (cleared at the end).
      if (d.asyncWait) { const w = Atomics.waitAsync(i32, ctl + 8 + c, seen, 2); if (w.async) { const t = setTimeout(() => {}, 1000); await w.value; clearTimeout(t); } }
      else {
        // Blocked in Atomics.wait a thread never answers an ask to flush: give the cached blocks
        // back before waiting (README, Memory a thread caches), or a producer short of memory
        // waits for good for what this thread holds.
        if (d.flushIdle && !flushed) { heap.flush(); flushed = true; }
        Atomics.wait(i32, ctl + 8 + c, seen, 2);
      }
    }
  }
  parentPort.postMessage({ done: true, got, bad, firstBad });
  // Idle in the event loop (answering asks to flush) until told to end.
  parentPort.once('message', () => { heap.detach(); process.exit(0); });
`);

interface Listened {
  worker: Worker;
  next: () => Promise<unknown>;
  exited: Promise<number>;
}

const started: Worker[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((w) => w.terminate()));
});

/** Starts eval'd `code` with workerData, watched by `heap`; `onMessage` takes the numbers it posts, `next()` the rest. */
function start(heap: SharedHeap, code: string, data: Record<string, unknown>, onMessage?: (m: number) => void): Listened {
  const worker = new Worker(code, { eval: true, execArgv: [], workerData: { index: distIndex, buffer: heap.buffer, memory: heap.memory, ...data } });
  started.push(worker);
  heap.watch(worker);
  const queue: unknown[] = [];
  const waiting: { resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  let failed: unknown;
  worker.on('message', (m: unknown) => {
    if (typeof m === 'number' && onMessage) onMessage(m);
    else if (waiting.length > 0) waiting.shift()!.resolve(m);
    else queue.push(m);
  });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  worker.once('error', (e) => {
    failed = e;
    for (const w of waiting.splice(0)) w.reject(e);
  });
  const next = (): Promise<unknown> =>
    new Promise((resolve, reject) => {
      if (failed !== undefined) reject(failed);
      else if (queue.length > 0) resolve(queue.shift());
      else waiting.push({ resolve, reject });
    });
  return { worker, next, exited };
}

/** How many `size`-byte blocks the calling thread can malloc from `heap` (freed again after). */
async function fillCount(heap: SharedHeap, size: number): Promise<number> {
  const got: number[] = [];
  const fill = (): void => {
    for (let p = heap.malloc(size); p !== 0; p = heap.malloc(size)) got.push(p);
  };
  fill();
  // An ask to flush is answered from the other threads' event loops: a later malloc finds it.
  await new Promise((r) => setTimeout(r, 100));
  fill();
  for (const p of got) heap.free(p);
  return got.length;
}

/** Waits until `heap` no longer lists any of `ids` (watch() reclaims at the exit, or retries). */
async function reclaimed(heap: SharedHeap, ids: number[]): Promise<void> {
  for (let k = 0; k < 300 && heap.stats().threads.some((t) => ids.includes(t.threadId)); k++) await new Promise((r) => setTimeout(r, 20));
}

interface RingResult {
  produced: number;
  stuck: number[];
  consumed: number;
  bad: number;
  firstBad: string;
  zero: number;
  footprints: number[];
  liveAfter: number;
  fillAfter: number;
  fillFresh: number;
  /** The heap's size at the end (a growable heap's grown size), which fillFresh's heap has. */
  bufferBytes: number;
  /** The heap's size when the run ended, before the main thread filled it. */
  grownTo: number;
}

/**
 * The ring program: P producers, C consumers, n messages each producer (every postEvery-th of
 * producer 0's to the main thread by postMessage); footprint sampled at every tenth of the run.
 */
async function runRing(o: { P: number; C: number; n: number; postEvery: number; heapBytes: number; debug?: boolean; asyncWait?: boolean; flushIdle?: boolean; maxBytes?: number }): Promise<RingResult> {
  const heap = SharedHeap.create({ initialBytes: o.heapBytes, maxBytes: o.maxBytes ?? o.heapBytes, maxThreads: o.P + o.C + 2, debug: o.debug ?? false });
  try {
    const i32 = new Int32Array(heap.buffer);
    const words = new Function(`${RING}; return ctlWords(${o.P}, ${o.C});`)() as number;
    const ctlBlock = heap.calloc(words, 4);
    const ctl = ctlBlock >> 2;
    let mainBad = 0;
    let mainFirstBad = '';
    let mainGot = 0;
    const onMessage = (m: number): void => {
      const why = lib.checkMsg(i32, heap.u8, m, 0, i32[(m >> 2) + 2]);
      if (why !== '') {
        mainBad++;
        if (mainFirstBad === '') mainFirstBad = `main: ${why}`;
      }
      heap.free(m);
      mainGot++;
    };
    const consumers = Array.from({ length: o.C }, (_, c) => start(heap, CONSUMER, { P: o.P, C: o.C, c, ctl: ctlBlock, asyncWait: o.asyncWait ?? false, flushIdle: o.flushIdle ?? false }));
    const producers = Array.from({ length: o.P }, (_, p) =>
      start(heap, PRODUCER, { P: o.P, C: o.C, p, ctl: ctlBlock, n: o.n, postEvery: p === 0 ? o.postEvery : 0 }, onMessage),
    );
    const total = o.P * o.n;
    const footprints: number[] = [];
    const sampler = setInterval(() => {
      const done = Atomics.load(i32, ctl + 1);
      while (footprints.length < 10 && done >= ((footprints.length + 1) * total) / 10) footprints.push(heap.stats().footprintBytes);
    }, 5);
    const pDone = (await Promise.all(producers.map((w) => w.next()))) as { zero: number; posted: number; stuck: number }[];
    const cDone = (await Promise.all(consumers.map((w) => w.next()))) as { got: number; bad: number; firstBad: string }[];
    const posted = pDone.reduce((s, d) => s + d.posted, 0);
    for (let k = 0; k < 500 && mainGot < posted; k++) await new Promise((r) => setTimeout(r, 10));
    clearInterval(sampler);
    while (footprints.length < 10) footprints.push(heap.stats().footprintBytes);
    heap.free(ctlBlock);
    // Every thread is idle now (the workers in their event loops): the heap must check clean.
    heap.check();
    const liveAfter = heap.stats().liveBytes;
    const grownTo = heap.stats().bufferBytes;
    const fillAfter = await fillCount(heap, 1024);
    for (const w of [...producers, ...consumers]) w.worker.postMessage('end');
    await Promise.all([...producers, ...consumers].map((w) => w.exited));
    await reclaimed(heap, [...producers, ...consumers].map((w) => w.worker.threadId));
    heap.check();
    const bufferBytes = heap.stats().bufferBytes;
    const fresh = SharedHeap.create({ initialBytes: bufferBytes, maxThreads: o.P + o.C + 2, debug: o.debug ?? false });
    const fillFresh = await fillCount(fresh, 1024);
    fresh.detach();
    return {
      produced: pDone.reduce((a, d) => a + (d.stuck >= 0 ? d.stuck : o.n), 0),
      stuck: pDone.map((d) => d.stuck),
      consumed: cDone.reduce((s, d) => s + d.got, 0) + mainGot,
      bad: cDone.reduce((s, d) => s + d.bad, 0) + mainBad,
      firstBad: [mainFirstBad, ...cDone.map((d) => d.firstBad)].filter((s) => s !== '').join('; '),
      zero: pDone.reduce((s, d) => s + d.zero, 0),
      footprints,
      liveAfter,
      fillAfter,
      fillFresh,
      bufferBytes,
      grownTo,
    };
  } finally {
    heap.detach();
  }
}

/** Every message of a ring run went through intact, no malloc answered 0 for good, and nothing is left live. */
function expectAllThrough(r: RingResult): void {
  expect({ stuck: r.stuck.filter((x) => x >= 0), consumed: r.consumed, bad: r.bad, firstBad: r.firstBad, liveAfter: r.liveAfter }).toEqual({
    stuck: [],
    consumed: r.produced,
    bad: 0,
    firstBad: '',
    liveAfter: 0,
  });
  expect(r.fillAfter).toBeGreaterThanOrEqual(r.fillFresh * 0.99);
}

describe('a zero-copy message ring between workers', () => {
  it('1 producer, 3 consumers, 300,000 messages of 16 B - 64 KiB: all intact, remote frees reused, footprint bounded', async () => {
    const r = await runRing({ P: 1, C: 3, n: 300_000, postEvery: 16, heapBytes: 64 * MiB });
    expectAllThrough(r);
    expect(r.zero).toBe(0);
    // Steady state: the last 70% of the run adds at most 25% (+ 2 MiB) to the footprint reached at 30%.
    expect(r.footprints[9]!).toBeLessThanOrEqual(r.footprints[2]! * 1.3 + 4 * MiB);
    expect(r.footprints[9]!).toBeLessThan(48 * MiB);
  });
});

describe('the ring in a small heap (8 MiB, about 0.5 MB in flight)', () => {
  // Consumers blocked in Atomics.wait between messages, without flush(), hold what they cached
  // (4-5 MB each here) out of the producer's reach for good: the producer's mallocs answered 0
  // after 1,900 messages (8 MiB) or 20,000 (16 MiB) and never again anything else, as the README
  // says of a thread idle in Atomics.wait. The two ways out the README gives:
  it.each([
    ['consumers that wait in their event loops (Atomics.waitAsync), answering asks to flush', { asyncWait: true }],
    ['consumers that flush() before blocking in Atomics.wait', { flushIdle: true }],
  ])('%s: 100,000 messages go through', async (_, how) => {
    const r = await runRing({ P: 1, C: 3, n: 100_000, postEvery: 0, heapBytes: 8 * MiB, ...how });
    expectAllThrough(r);
    expect(r.produced).toBe(100_000);
  });
});

describe('the ring in a growable heap', () => {
  it('8 MiB growing up to 128 MiB, consumers that never flush: the heap grows, 100,000 messages intact', async () => {
    const r = await runRing({ P: 1, C: 3, n: 100_000, postEvery: 0, heapBytes: 8 * MiB, maxBytes: 128 * MiB });
    expectAllThrough(r);
    expect([r.produced, r.zero]).toEqual([100_000, 0]);
    expect(r.grownTo).toBeGreaterThan(8 * MiB);
    expect(r.grownTo).toBeLessThan(128 * MiB);
  });
});

describe('the ring over-subscribed: 8 workers on the machine`s cores', () => {
  it('2 producers, 6 consumers, 2 x 150,000 messages: all intact, no malloc answers 0, footprint bounded', async () => {
    const r = await runRing({ P: 2, C: 6, n: 150_000, postEvery: 64, heapBytes: 96 * MiB });
    expectAllThrough(r);
    expect(r.zero).toBe(0);
    // Six consumers cache up to a magazine a class each (README, Sizing a heap for many threads):
    // 44-63 MB in runs of up to 6 M messages, never more, where a producer that did not get the
    // remote frees back would have run out of the 96 MiB after ~40,000 messages.
    expect(r.footprints[9]!).toBeLessThanOrEqual(r.footprints[2]! * 1.5 + 8 * MiB);
  });
});

/**
 * The map's header block (Int32 words): [0] lock (0 free, 1 held, 2 held with waiters), [1] count,
 * [2] bucket array, [3] buckets, [4] last sequence number, [5] resizes, [6] malloc/realloc answered 0.
 * A node: [0] next, [1] key, [2] sequence number of its last write, [3] value bytes, then the value
 * (fillMsg's payload for (key, seq), its header words skipped: the value starts at word 4 too).
 */
const MAP = String.raw`
function lock(i32, w) {
  let c = Atomics.compareExchange(i32, w, 0, 1);
  if (c === 0) return;
  if (c !== 2) c = Atomics.exchange(i32, w, 2);
  while (c !== 0) { Atomics.wait(i32, w, 2, 50); c = Atomics.exchange(i32, w, 2); }
}
function unlock(i32, w) { if (Atomics.sub(i32, w, 1) !== 1) { Atomics.store(i32, w, 0); Atomics.notify(i32, w, 1); } }
function hashOf(key) { return (Math.imul(key, 0x9E3779B1) >>> 7) | 0; }
function writeValue(i32, u8, n, key, seq, len) {
  // fillMsg writes [size, a, b, checksum] at n: keep next and key, then set seq and len.
  const next = i32[n >> 2];
  fillMsg(i32, u8, n, 16 + len, key, seq);
  i32[n >> 2] = next; i32[(n >> 2) + 1] = key; i32[(n >> 2) + 2] = seq; i32[(n >> 2) + 3] = len;
}
function valueIntact(i32, u8, n) {
  const w = n >> 2, next = i32[w], key = i32[w + 1], seq = i32[w + 2], len = i32[w + 3];
  if (len < 0 || len > 400000) return 'len ' + len;
  // Check as fillMsg wrote it, with its header words put back, then restore them.
  const sum = i32[w + 3];
  let x = seedOf(key, seq), s = 0;
  const size = 16 + len, nw = size >> 2;
  for (let k = 4; k < nw; k++) { x = xs(x); if (i32[w + k] !== x) return 'word ' + k + ' of node ' + n + ' key ' + key; }
  for (let j = nw * 4; j < size; j++) { if (u8[n + j] !== ((x + j) & 255)) return 'byte ' + j + ' of node ' + n + ' key ' + key; }
  return '';
}
/** Every node, from every chain. */
function nodes(i32, H) {
  const out = [];
  const b = i32[H + 2] >> 2, nb = i32[H + 3];
  for (let i = 0; i < nb; i++) for (let n = i32[b + i]; n !== 0; n = i32[n >> 2]) out.push(n);
  return out;
}
/** realloc the bucket array to nb2 buckets and rehash every node into it. */
function resize(heap, i32, H, nb2) {
  const all = nodes(i32, H);
  const b2 = heap.realloc(i32[H + 2], nb2 * 4);
  if (b2 === 0) return false;
  i32[H + 2] = b2; i32[H + 3] = nb2; i32[H + 5]++;
  const b = b2 >> 2;
  for (let i = 0; i < nb2; i++) i32[b + i] = 0;
  for (const n of all) { const h = hashOf(i32[(n >> 2) + 1]) % nb2; i32[n >> 2] = i32[b + h]; i32[b + h] = n; }
  return true;
}
`;

const MAP_WORKER = workerSource(MAP, String.raw`
  const H = d.header >> 2, L = H;
  const log = []; // [seq, key, len, tag] (len -1: deleted); a node's value is fillMsg's payload for (key, tag)
  let r = seedOf(d.id, 12345), bad = 0, firstBad = '', zero = 0, gets = 0;
  for (let op = 0; op < d.ops; op++) {
    r = xs(r);
    const key = (r >>> 3) % d.keys, kind = (r >>> 20) & 15;
    r = xs(r);
    const len = (r & 1023) === 0 ? 131072 + ((r >>> 10) % 200000) : (r >>> 12) % 1500;
    const put = kind >= 3 && kind < (((op / 5000) | 0) & 1 ? 6 : 13); // phases of growth and of shrinking
    // d.outside: a put's node is made (malloc, value written) before the lock, the node it
    // replaces and a deleted one freed after it, so that the workers' allocator calls run at once.
    const tag = d.id * 1048576 + op;
    let fresh = 0, old = 0;
    if (d.outside && put) {
      fresh = heap.malloc(16 + len);
      if (fresh === 0) { zero++; continue; }
      writeValue(i32, heap.u8, fresh, key, tag, len);
    }
    lock(i32, L);
    const nb = i32[H + 3], b = i32[H + 2] >> 2, h = hashOf(key) % nb;
    let prev = 0, n = i32[b + h];
    while (n !== 0 && i32[(n >> 2) + 1] !== key) { prev = n; n = i32[n >> 2]; }
    if (kind < 3) { // get
      gets++;
      if (n !== 0) { const why = valueIntact(i32, heap.u8, n); if (why !== '') { bad++; if (!firstBad) firstBad = why; } }
    } else if (put) {
      const seq = ++i32[H + 4];
      if (d.outside) {
        if (n === 0) { i32[fresh >> 2] = i32[b + h]; i32[b + h] = fresh; i32[H + 1]++; }
        else { i32[fresh >> 2] = i32[n >> 2]; if (prev === 0) i32[b + h] = fresh; else i32[prev >> 2] = fresh; old = n; }
        log.push(seq, key, len, tag);
      } else if (n === 0) {
        const m = heap.malloc(16 + len);
        if (m === 0) { zero++; i32[H + 4]--; unlock(i32, L); continue; }
        i32[m >> 2] = i32[b + h]; i32[b + h] = m; i32[H + 1]++;
        writeValue(i32, heap.u8, m, key, seq, len);
        log.push(seq, key, len, seq);
      } else {
        const m = heap.realloc(n, 16 + len);
        if (m === 0) { zero++; i32[H + 4]--; unlock(i32, L); continue; }
        if (prev === 0) i32[b + h] = m; else i32[prev >> 2] = m;
        writeValue(i32, heap.u8, m, key, seq, len);
        log.push(seq, key, len, seq);
      }
      if (i32[H + 1] > 2 * nb && !resize(heap, i32, H, nb * 2)) zero++;
    } else if (n !== 0) { // delete
      const seq = ++i32[H + 4];
      if (prev === 0) i32[b + h] = i32[n >> 2]; else i32[prev >> 2] = i32[n >> 2];
      if (d.outside) old = n; else heap.free(n);
      i32[H + 1]--;
      log.push(seq, key, -1, 0);
      if (i32[H + 1] < nb / 3 && nb > 16 && !resize(heap, i32, H, nb >> 1)) zero++;
    }
    unlock(i32, L);
    if (old !== 0) {
      // Nobody reaches it any more: check it was left intact, then free it.
      const why = valueIntact(i32, heap.u8, old);
      if (why !== '') { bad++; if (!firstBad) firstBad = 'freed node: ' + why; }
      heap.free(old);
    }
  }
  parentPort.postMessage({ log, bad, firstBad, zero, gets });
  parentPort.once('message', () => { heap.detach(); process.exit(0); });
`);

const mapLib = new Function(`${LIB}; ${MAP}; return { nodes, valueIntact, hashOf };`)() as {
  nodes(i32: Int32Array, H: number): number[];
  valueIntact(i32: Int32Array, u8: Uint8Array, n: number): string;
  hashOf(key: number): number;
};

/** Runs `workers` map workers of `ops` operations each over `keys` keys; returns what the final structure and the replayed log say. */
async function runMap(o: { workers: number; ops: number; keys: number; heapBytes: number; maxBytes?: number; debug?: boolean; outside?: boolean }) {
  const heap = SharedHeap.create({ initialBytes: o.heapBytes, maxBytes: o.maxBytes ?? o.heapBytes, maxThreads: o.workers + 2, debug: o.debug ?? false });
  try {
    const i32 = new Int32Array(heap.buffer);
    const header = heap.calloc(8, 4);
    const H = header >> 2;
    i32[H + 2] = heap.calloc(16, 4);
    i32[H + 3] = 16;
    const ws = Array.from({ length: o.workers }, (_, id) => start(heap, MAP_WORKER, { id, header, ops: o.ops, keys: o.keys, outside: o.outside ?? false }));
    const results = (await Promise.all(ws.map((w) => w.next()))) as { log: number[]; bad: number; firstBad: string; zero: number; gets: number }[];
    // The model: every change replayed in the order of its sequence number.
    const changes: [number, number, number, number][] = [];
    for (const r of results) for (let k = 0; k < r.log.length; k += 4) changes.push([r.log[k]!, r.log[k + 1]!, r.log[k + 2]!, r.log[k + 3]!]);
    changes.sort((a, b) => a[0] - b[0]);
    const model = new Map<number, [number, number]>();
    for (const [, key, len, tag] of changes) {
      if (len < 0) model.delete(key);
      else model.set(key, [tag, len]);
    }
    // The structure.
    const found = new Map<number, [number, number]>();
    const problems: string[] = [];
    const nb = i32[H + 3]!;
    const b = i32[H + 2]! >> 2;
    for (let h = 0; h < nb; h++) {
      for (let n = i32[b + h]!; n !== 0; n = i32[n >> 2]!) {
        const key = i32[(n >> 2) + 1]!;
        if (found.has(key)) problems.push(`key ${key} twice`);
        if (mapLib.hashOf(key) % nb !== h) problems.push(`key ${key} in bucket ${h}`);
        const why = mapLib.valueIntact(i32, heap.u8, n);
        if (why !== '') problems.push(why);
        if (heap.usableSize(n) < 16 + i32[(n >> 2) + 3]!) problems.push(`node ${n} smaller than its value`);
        found.set(key, [i32[(n >> 2) + 2]!, i32[(n >> 2) + 3]!]);
        if (found.size > o.keys) break;
      }
    }
    const s = heap.stats();
    heap.check();
    const out = {
      changes: changes.length,
      seqsDense: changes.every((c, k) => c[0] === k + 1),
      lastSeq: i32[H + 4],
      count: i32[H + 1],
      resizes: i32[H + 5],
      bad: results.reduce((a, r) => a + r.bad, 0),
      firstBad: results.map((r) => r.firstBad).filter((x) => x).join('; '),
      zero: results.reduce((a, r) => a + r.zero, 0),
      problems: problems.slice(0, 5),
      sameAsModel: JSON.stringify([...found].sort((x, y) => x[0] - y[0])) === JSON.stringify([...model].sort((x, y) => x[0] - y[0])),
      modelSize: model.size,
      liveBlocks: s.liveBlocks,
    };
    // Take it down: every node, the buckets and the header freed by the main thread.
    for (const n of mapLib.nodes(i32, H)) heap.free(n);
    heap.free(i32[H + 2]!);
    heap.free(header);
    heap.check();
    const liveAfter = heap.stats().liveBytes;
    for (const w of ws) w.worker.postMessage('end');
    await Promise.all(ws.map((w) => w.exited));
    await reclaimed(heap, ws.map((w) => w.worker.threadId));
    heap.check();
    return { ...out, liveAfter, attachedAfter: heap.stats().threadsAttached };
  } finally {
    heap.detach();
  }
}

describe('a shared hash map under a user-level lock', () => {
  it.each([
    { workers: 4, ops: 100_000, debug: false, growable: false, outside: false },
    { workers: 8, ops: 50_000, debug: false, growable: false, outside: false },
    { workers: 4, ops: 20_000, debug: true, growable: false, outside: false },
    { workers: 4, ops: 50_000, debug: false, growable: true, outside: false },
    { workers: 4, ops: 100_000, debug: false, growable: false, outside: true },
    { workers: 8, ops: 50_000, debug: false, growable: true, outside: true },
    { workers: 4, ops: 20_000, debug: true, growable: false, outside: true },
  ])('$workers workers x $ops operations, debug $debug, growable $growable, allocations outside the lock $outside: the structure equals the replayed log, every value intact, nothing leaked', async ({ workers, ops, debug, growable, outside }) => {
    const r = await runMap({ workers, ops, keys: 3000, heapBytes: growable ? 8 * MiB : 128 * MiB, maxBytes: growable ? 256 * MiB : undefined, debug, outside });
    expect(r).toEqual({
      changes: r.lastSeq,
      seqsDense: true,
      lastSeq: r.changes,
      count: r.modelSize,
      resizes: expect.any(Number),
      bad: 0,
      firstBad: '',
      zero: 0,
      problems: [],
      sameAsModel: true,
      modelSize: r.count,
      // Every node, the bucket array and the header.
      liveBlocks: r.count + 2,
      liveAfter: 0,
      attachedAfter: 1,
    });
    expect(r.resizes).toBeGreaterThan(0);
  });
});

/**
 * A churn worker: keeps up to `slots` blocks of its own, recorded in a table in the heap (Int32
 * words at d.table: 0 or the block's offset; a record is cleared before its block is freed or
 * realloc'ed and set after malloc returns, so a kill leaks at most the one block in flight).
 * Each block holds fillMsg(gen, slot). Stops at ctl[4] != 0, freeing its blocks.
 */
const CHURN = workerSource('', String.raw`
  const T = d.table >> 2, ctl = d.ctl >> 2;
  let r = seedOf(d.gen, 777), ops = 0, bad = 0, firstBad = '', zero = 0;
  parentPort.postMessage({ started: true });
  while (Atomics.load(i32, ctl + 4) === 0) {
    r = xs(r);
    const s = (r >>> 4) % d.slots, t = Atomics.load(i32, T + s);
    r = xs(r);
    const size = (r & 63) === 0 ? 131072 + ((r >>> 8) % 300000) : msgSize(r);
    ops++;
    if (t === 0) {
      // One in eight aligned (16 B to 64 KiB), as a user's cache-line or page-aligned buffers.
      const align = (r & 7) === 1 ? 1 << (4 + ((r >>> 3) % 13)) : 0;
      const m = align ? heap.alignedAlloc(align, size) : heap.malloc(size);
      if (m === 0) { zero++; continue; }
      if (align && m % align !== 0) { bad++; if (!firstBad) firstBad = 'alignedAlloc(' + align + ', ' + size + ') gave ' + m; }
      fillMsg(i32, heap.u8, m, Math.min(size, 65536), d.gen, s);
      Atomics.store(i32, T + s, m);
    } else {
      const why = checkMsg(i32, heap.u8, t, d.gen, s);
      if (why !== '') { bad++; if (!firstBad) firstBad = why; }
      Atomics.store(i32, T + s, 0);
      if ((r >>> 30) === 0) {
        const m = heap.realloc(t, size);
        if (m === 0) { zero++; heap.free(t); continue; }
        fillMsg(i32, heap.u8, m, Math.min(size, 65536), d.gen, s);
        Atomics.store(i32, T + s, m);
      } else heap.free(t);
    }
  }
  for (let s = 0; s < d.slots; s++) { const t = i32[T + s]; if (t !== 0) { i32[T + s] = 0; heap.free(t); } }
  parentPort.postMessage({ done: true, ops, bad, firstBad, zero });
  parentPort.once('message', () => { heap.detach(); process.exit(0); });
`);

describe('workers terminated mid-run', () => {
  it.each([
    { debug: true, C: 2, churners: 2, rounds: 9, everyMs: 120, small: false },
    { debug: false, C: 4, churners: 3, rounds: 9, everyMs: 120, small: false },
    // Small caches make the slow paths (refills, drains, trims, the global lock) frequent, so
    // that kills land in them too.
    { debug: false, C: 2, churners: 3, rounds: 30, everyMs: 25, small: true },
  ])('debug $debug, $C consumers, $churners churn workers, small caches $small: $rounds kills of churn workers, a consumer and the producer, replaced; the rest goes on, memory is recovered, check() passes', async ({ debug, C, churners, rounds, everyMs, small }) => {
    const P = 1;
    const SLOTS = 256;
    const heapBytes = 96 * MiB;
    const options = { initialBytes: heapBytes, maxThreads: 12, debug, ...(small ? { magazineCapacity: 4, refillCount: 2, drainInterval: 8, trimInterval: 1, stage1Keep: 0 } : {}) };
    const heap = SharedHeap.create(options);
    try {
      const i32 = new Int32Array(heap.buffer);
      const ctlBlock = heap.calloc(new Function(`${RING}; return ctlWords(${P}, ${C});`)() as number, 4);
      const ctl = ctlBlock >> 2;
      const ringAt = new Function(`${RING}; return (p, c) => ringBase(${P}, ${C}, p, c);`)() as (p: number, c: number) => number;
      let gen = 0;
      const consumer = (c: number): Listened => start(heap, CONSUMER, { P, C, c, ctl: ctlBlock, flushIdle: true });
      const producer = (): Listened => start(heap, PRODUCER, { P, C, p: 0, ctl: ctlBlock, n: 1e9, postEvery: 0, gen: ++gen });
      const churn = (table: number): Listened & { table: number; gen: number } => {
        gen++;
        return { ...start(heap, CHURN, { ctl: ctlBlock, table, slots: SLOTS, gen }), table, gen };
      };
      const consumers = Array.from({ length: C }, (_, c) => consumer(c));
      let prod = producer();
      const tables = Array.from({ length: churners }, () => heap.calloc(SLOTS, 4));
      const churns = tables.map((t) => churn(t));
      for (const w of churns) expect(await w.next()).toEqual({ started: true });
      const kills = { churn: 0, consumer: 0, producer: 0 };
      let recovered = 0;
      let drained = 0;
      const mainBad: string[] = [];
      const ended: Listened[] = [];
      // A replacement is killed only once it attached (a worker killed before that has no slot to reclaim).
      const attached = async (w: Listened): Promise<void> => {
        for (let k = 0; k < 500 && !heap.stats().threads.some((t) => t.threadId === w.worker.threadId); k++) await new Promise((r) => setTimeout(r, 10));
      };
      for (let round = 0; round < rounds; round++) {
        await new Promise((r) => setTimeout(r, everyMs));
        const what = round % 3;
        if (what === 0) {
          // A churn worker: its recorded blocks are intact, and ours to free.
          const k = (round / 3) % churners;
          const victim = churns[k]!;
          await victim.worker.terminate();
          kills.churn++;
          ended.push(victim);
          await reclaimed(heap, [victim.worker.threadId]);
          const T = victim.table >> 2;
          for (let s = 0; s < SLOTS; s++) {
            const t = i32[T + s]!;
            if (t === 0) continue;
            const why = lib.checkMsg(i32, heap.u8, t, victim.gen, s);
            if (why !== '') mainBad.push(`dead churn: ${why}`);
            i32[T + s] = 0;
            heap.free(t);
            recovered++;
          }
          churns[k] = churn(victim.table);
          expect(await churns[k]!.next()).toEqual({ started: true });
        } else if (what === 1) {
          // A consumer: the main thread drains its ring, then a new one takes it over.
          const c = ((round - 1) / 3) % C;
          const victim = consumers[c]!;
          await attached(victim);
          await victim.worker.terminate();
          kills.consumer++;
          ended.push(victim);
          await reclaimed(heap, [victim.worker.threadId]);
          const b = ctl + ringAt(0, c);
          while (Atomics.load(i32, b) !== Atomics.load(i32, b + 1)) {
            const h = Atomics.load(i32, b);
            const m = i32[b + 2 + (h % 64)]!;
            Atomics.store(i32, b, h + 1);
            const why = lib.checkMsg(i32, heap.u8, m);
            if (why !== '') mainBad.push(`dead consumer's ring: ${why}`);
            heap.free(m);
            drained++;
            Atomics.add(i32, ctl + 2, 1);
          }
          consumers[c] = consumer(c);
        } else {
          // The producer: the one in flight is lost; a new one goes on with a higher generation.
          await attached(prod);
          await prod.worker.terminate();
          kills.producer++;
          ended.push(prod);
          await reclaimed(heap, [prod.worker.threadId]);
          prod = producer();
        }
      }
      Atomics.store(i32, ctl + 4, 1);
      const pDone = (await prod.next()) as { zero: number };
      const cDone = (await Promise.all(consumers.map((w) => w.next()))) as { got: number; bad: number; firstBad: string }[];
      const churnDone = (await Promise.all(churns.map((w) => w.next()))) as { ops: number; bad: number; firstBad: string; zero: number }[];
      const produced = i32[ctl + 1]!;
      const consumed = i32[ctl + 2]!;
      for (const t of tables) heap.free(t);
      heap.free(ctlBlock);
      heap.check();
      const s = heap.stats();
      const result = {
        ringBad: cDone.map((d) => d.firstBad).filter((x) => x),
        mainBad,
        producerZero: pDone.zero,
        churnBad: churnDone.map((d) => d.firstBad).filter((x) => x),
        churnZero: churnDone.reduce((a, d) => a + d.zero, 0),
        kills,
        reclaims: s.reclaims,
      };
      expect(result).toEqual({
        ringBad: [],
        mainBad: [],
        producerZero: 0,
        churnBad: [],
        churnZero: 0,
        kills: { churn: rounds / 3, consumer: rounds / 3, producer: rounds / 3 },
        reclaims: rounds,
      });
      expect(recovered).toBeGreaterThan(0);
      // A killed producer may have counted a message it never put on a ring; a killed consumer may
      // have taken one off its ring and died before counting it.
      expect(consumed).toBeGreaterThanOrEqual(produced - kills.producer - kills.consumer);
      expect(consumed).toBeLessThanOrEqual(produced);
      expect(produced).toBeGreaterThan(1000);
      // At most the one block in flight per kill is lost (a churn block at most 300 KiB + 128 KiB).
      expect(s.liveBlocks).toBeLessThanOrEqual(rounds);
      expect(s.liveBytes).toBeLessThanOrEqual(rounds * 512 * 1024);
      const all = [...consumers, prod, ...churns];
      for (const w of all) w.worker.postMessage('end');
      await Promise.all(all.map((w) => w.exited));
      await reclaimed(heap, [...all, ...ended].map((w) => w.worker.threadId));
      heap.check();
      expect(heap.stats().threadsAttached).toBe(1);
      // The heap is whole again: the main thread gets nearly a fresh heap's worth of 1 KiB blocks.
      const fresh = SharedHeap.create(options);
      const fillFresh = await fillCount(fresh, 1024);
      fresh.detach();
      const fillAfter = await fillCount(heap, 1024);
      // Each block lost to a kill (at most one per kill) holds its slab, or its run, besides its bytes.
      expect(fillAfter).toBeGreaterThanOrEqual(fillFresh * 0.98 - (s.liveBytes + s.liveBlocks * 128 * 1024) / 1024);
    } finally {
      heap.detach();
    }
  });
});

/** A consumer of messages posted to it (offsets): verifies, frees, acknowledges every 64th. */
const PM_CONSUMER = workerSource('', String.raw`
  let got = 0, bad = 0, firstBad = '';
  parentPort.on('message', (m) => {
    if (m === 'report') { parentPort.postMessage({ got, bad, firstBad }); return; }
    if (m === 'end') { heap.detach(); process.exit(0); }
    const why = checkMsg(i32, heap.u8, m, 0, i32[(m >> 2) + 2]);
    if (why !== '') { bad++; if (!firstBad) firstBad = why; }
    heap.free(m);
    if (++got % 64 === 0) parentPort.postMessage(64);
  });
  parentPort.postMessage({ ready: true });
`);

describe('the main thread as the producer, posting offsets to workers', () => {
  it('200,000 messages to 3 workers by postMessage: all intact, the main thread gets the memory back, footprint bounded', async () => {
    const heap = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
    try {
      const i32 = new Int32Array(heap.buffer);
      let acked = 0;
      const ws = Array.from({ length: 3 }, () => start(heap, PM_CONSUMER, {}, (n) => (acked += n)));
      for (const w of ws) expect(await w.next()).toEqual({ ready: true });
      let r = 12345;
      let zero = 0;
      const total = 200_000;
      const footprints: number[] = [];
      for (let i = 0; i < total; i++) {
        // At most 1,024 messages in flight: wait for the acknowledgements.
        while (i - acked > 1024) await new Promise((res) => setImmediate(res));
        r = lib.xs(r);
        const size = lib.msgSize(r);
        let m = heap.malloc(size);
        for (let k = 0; m === 0 && k < 100; k++) {
          zero++;
          await new Promise((res) => setTimeout(res, 10));
          m = heap.malloc(size);
        }
        if (m === 0) throw new Error(`malloc(${size}) answered 0 for 1 s at message ${i}: ${JSON.stringify(heap.stats().liveBytes)} live`);
        lib.fillMsg(i32, heap.u8, m, size, 0, i);
        ws[i % 3]!.worker.postMessage(m);
        if (i % (total / 10) === total / 10 - 1) footprints.push(heap.stats().footprintBytes);
      }
      const reports = await Promise.all(
        ws.map((w) => {
          w.worker.postMessage('report');
          return w.next();
        }),
      );
      heap.check();
      const s = heap.stats();
      expect({ zero, got: (reports as { got: number }[]).reduce((a, x) => a + x.got, 0), bad: reports.map((x) => (x as { firstBad: string }).firstBad).filter((x) => x), live: s.liveBytes }).toEqual({
        zero: 0,
        got: total,
        bad: [],
        live: 0,
      });
      expect(footprints[9]!).toBeLessThanOrEqual(footprints[2]! * 1.3 + 4 * MiB);
      const fresh = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 6 });
      const fillFresh = await fillCount(fresh, 1024);
      fresh.detach();
      expect(await fillCount(heap, 1024)).toBeGreaterThanOrEqual(fillFresh * 0.99);
      for (const w of ws) w.worker.postMessage('end');
      await Promise.all(ws.map((w) => w.exited));
      await reclaimed(heap, ws.map((w) => w.worker.threadId));
      expect(heap.stats().threadsAttached).toBe(1);
      heap.check();
    } finally {
      heap.detach();
    }
  });
});

describe('a pipeline: producer -> relays that realloc -> the main thread', () => {
  it('100,000 messages resized by 3 relay workers (16 B - 390 KiB) and freed by the main thread: all intact', async () => {
    const P = 1;
    const C = 3;
    const heap = SharedHeap.create({ initialBytes: 96 * MiB, maxThreads: 8 });
    try {
      const i32 = new Int32Array(heap.buffer);
      const ctlBlock = heap.calloc(new Function(`${RING}; return ctlWords(${P}, ${C});`)() as number, 4);
      let got = 0;
      const bad: string[] = [];
      const onMessage = (m: number): void => {
        const why = lib.checkMsg(i32, heap.u8, m, 128, i32[(m >> 2) + 2]);
        if (why !== '') bad.push(why);
        heap.free(m);
        got++;
        Atomics.add(i32, (ctlBlock >> 2) + 5, 1);
      };
      const relays = Array.from({ length: C }, (_, c) => start(heap, CONSUMER, { P, C, c, ctl: ctlBlock, relay: true, asyncWait: true }, onMessage));
      const producer = start(heap, PRODUCER, { P, C, p: 0, ctl: ctlBlock, n: 100_000, postEvery: 0 });
      const pDone = (await producer.next()) as { zero: number; stuck: number };
      const rDone = (await Promise.all(relays.map((w) => w.next()))) as { got: number; bad: number; firstBad: string }[];
      for (let k = 0; k < 1000 && got < 100_000; k++) await new Promise((r) => setTimeout(r, 10));
      heap.free(ctlBlock);
      heap.check();
      const s = heap.stats();
      expect({ zero: pDone.zero, stuck: pDone.stuck, relayed: rDone.reduce((a, d) => a + d.got, 0), relayBad: rDone.map((d) => d.firstBad).filter((x) => x), got, bad, live: s.liveBytes }).toEqual({
        zero: 0,
        stuck: -1,
        relayed: 100_000,
        relayBad: [],
        got: 100_000,
        bad: [],
        live: 0,
      });
      const all = [producer, ...relays];
      for (const w of all) w.worker.postMessage('end');
      await Promise.all(all.map((w) => w.exited));
      await reclaimed(heap, all.map((w) => w.worker.threadId));
      heap.check();
      expect(heap.stats().threadsAttached).toBe(1);
    } finally {
      heap.detach();
    }
  });
});
