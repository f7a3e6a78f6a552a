/**
 * fuzz: a randomized fuzzer of one heap shared by the main thread and 1-3 workers
 * (workers/fuzz-worker.ts, workers/fuzz-core.ts), on heaps made with option values drawn from
 * the ranges create() accepts. Each thread makes random malloc/calloc/realloc/free/alignedAlloc/
 * usableSize calls of sizes from 0 to a few MiB, fills every block with a pattern of its tag and
 * checks it before free and realloc, hands blocks to other threads to be freed there, makes bad
 * calls expecting the documented errors, and (main thread, while the workers are idle) writes into
 * blocks it has just freed where the README says that is harmless. Some rounds terminate a worker
 * at a random moment (watched: reclaimed at its exit). After every round: check() passes and every
 * live block's pattern is intact. Seeded: FUZZ_SEED=<n> reproduces one case.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { SharedHeap, type HeapOptions } from '../../src/index.js';
import { workerEntry } from '../../bench/worker-entry.js';
import { Fuzzer, Rng, type Block, type FuzzConfig, type FuzzCounts } from '../../workers/fuzz-core.js';

const BASE_SEED = Number(process.env.FUZZ_SEED ?? 0x5ab0f1);
const CASES = Number(process.env.FUZZ_CASES ?? 12);
const CASE_MS = Number(process.env.FUZZ_CASE_MS ?? 9000);

interface W {
  worker: Worker;
  who: string;
  threadId: number;
  exited: Promise<number>;
  dead: boolean;
  counts?: FuzzCounts;
  live: Block[];
}

const started: Worker[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((w) => w.terminate()));
});

function message(w: W): Promise<{ type: string; [k: string]: unknown }> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { type: string; message?: string }): void => {
      w.worker.off('exit', onExit);
      if (m.type === 'fail') reject(new Error(`${w.who} failed: ${m.message}`));
      else resolve(m);
    };
    const onExit = (code: number): void => {
      w.worker.off('message', onMsg);
      reject(new Error(`${w.who} exited (${code}) while a reply was awaited`));
    };
    w.worker.once('message', onMsg);
    w.worker.once('exit', onExit);
  });
}

async function call(w: W, msg: unknown): Promise<{ type: string; [k: string]: unknown }> {
  const reply = message(w);
  w.worker.postMessage(msg);
  const r = await reply;
  if (r.counts !== undefined) w.counts = r.counts as FuzzCounts;
  return r;
}

async function startFuzzWorker(heap: SharedHeap, seed: number, who: string, cfg: FuzzConfig): Promise<W> {
  const e = workerEntry('fuzz-worker');
  const worker = new Worker(e.filename, { execArgv: e.execArgv, workerData: { buffer: heap.memory ?? heap.buffer, seed, who, cfg } });
  started.push(worker);
  heap.watch(worker);
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const w: W = { worker, who, threadId: worker.threadId, exited, dead: false, live: [] };
  const ready = await message(w);
  expect(ready.type).toBe('ready');
  return w;
}

/** Option values from the ranges create() accepts (src/create.ts), small ones favoured. */
function pickOptions(rng: Rng, workers: number): HeapOptions {
  const o: HeapOptions = {};
  const MiB = 1 << 20;
  if (rng.chance(0.8)) o.maxThreads = rng.pick([workers + 2, workers + 3, 8, 16, 64, 200, 1024]);
  if (rng.chance(0.85)) o.magazineCapacity = rng.pick([1, 2, 3, 4, 7, 16, 64, 255, 1024, 4096]);
  if (rng.chance(0.85)) o.refillCount = rng.pick([1, 2, 3, 5, 32, 100, 4096]);
  if (rng.chance(0.85)) o.drainInterval = rng.pick([1, 2, 3, 17, 1024, 2 ** 30]);
  if (rng.chance(0.85)) o.stage1Keep = rng.pick([0, 1, 2, 32, 1024, 1 << 20]);
  if (rng.chance(0.85)) o.trimInterval = rng.pick([0, 0, 1, 2, 16, 1 << 20]);
  o.initialBytes = rng.pick([2, 3, 4, 6, 8, 16, 48]) * MiB + (rng.chance(0.2) ? rng.range(1, MiB - 1) : 0);
  if (rng.chance(0.45)) o.maxBytes = o.initialBytes + rng.pick([1, 4, 16, 64]) * MiB;
  if (rng.chance(0.35)) o.debug = true;
  else if (rng.chance(0.3)) o.debug = false;
  // maxThreads x magazineCapacity sizes the metadata: keep it within a few hundred MiB.
  if ((o.maxThreads ?? 64) * (o.magazineCapacity ?? 64) > 64 * 1024) o.magazineCapacity = 64;
  return o;
}

function createHeap(o: HeapOptions): SharedHeap {
  for (let i = 0; ; i++) {
    try {
      return SharedHeap.create(o);
    } catch (e) {
      const m = /at least (\d+) are needed/.exec((e as Error).message);
      if (!(e instanceof RangeError) || m === null || i > 0) throw e;
      // create()'s suggestion must itself be accepted (a tenth audit's finding).
      const least = Number(m[1]);
      o.initialBytes = least;
      if (o.maxBytes !== undefined) o.maxBytes = Math.max(o.maxBytes, least);
    }
  }
}

interface CaseResult {
  options: HeapOptions;
  rounds: number;
  kills: number;
  ops: number;
  counts: FuzzCounts;
}

function addCounts(a: FuzzCounts, b: FuzzCounts | undefined): void {
  if (b === undefined) return;
  for (const k of Object.keys(a) as (keyof FuzzCounts)[]) a[k] += b[k];
}

async function runCase(seed: number): Promise<CaseResult> {
  const rng = new Rng(seed);
  const nWorkers = rng.range(1, 3);
  const options = pickOptions(rng, nWorkers);
  const heap = createHeap(options);
  console.log(`fuzz seed ${seed}: options ${JSON.stringify(options)}, ${nWorkers} workers`);
  const debug = options.debug === true;
  const heapBytes = heap.u8.length;
  const cfg: FuzzConfig = {
    debug,
    maxSize: Math.min(4 << 20, Math.floor(heapBytes / 6)),
    badRate: rng.pick([0.02, 0.05, 0.15]),
    targetLive: rng.pick([8, 40, 200]),
  };
  const main = new Fuzzer(heap, new Rng(seed ^ 0x9e3779b9), 'main', cfg);
  const workers: W[] = [];
  let wseq = 0;
  for (let i = 0; i < nWorkers; i++) workers.push(await startFuzzWorker(heap, seed + 1000 * ++wseq, `w${wseq}`, cfg));
  const total: FuzzCounts = { ...main.counts };
  const deadCounts: FuzzCounts = { ...main.counts };
  for (const k of Object.keys(deadCounts) as (keyof FuzzCounts)[]) deadCounts[k] = 0;
  const t0 = Date.now();
  let rounds = 0;
  let kills = 0;
  const ctx = (): string => `seed ${seed} round ${rounds} options ${JSON.stringify(options)}`;
  while (Date.now() - t0 < CASE_MS && rounds < 400) {
    rounds++;
    // Hand blocks over: the main thread's outbox and the workers' go to another thread.
    const inbox = new Map<W | 'main', Block[]>();
    const all: (W | 'main')[] = ['main', ...workers];
    for (const t of all) inbox.set(t, []);
    const route = (from: W | 'main', bs: Block[]): void => {
      for (const b of bs) {
        const others = all.filter((t) => t !== from);
        inbox.get(rng.pick(others.length > 0 ? others : all))!.push(b);
      }
    };
    route('main', main.outbox);
    main.outbox = [];
    for (const w of workers) {
      route(w, (w as W & { outbox?: Block[] }).outbox ?? []);
      (w as W & { outbox?: Block[] }).outbox = [];
    }
    const kill = rng.chance(0.1) ? rng.pick(workers) : undefined;
    const replies = workers.map((w) =>
      call(w, { type: 'round', ops: rng.range(20, kill === w ? 4000 : 1500), inbox: inbox.get(w)! }).then(
        (r) => {
          (w as W & { outbox?: Block[] }).outbox = r.outbox as Block[];
          w.live = r.live as Block[];
        },
        (e) => {
          if (w !== kill) throw e;
        },
      ),
    );
    if (kill === undefined) {
      main.receive(inbox.get('main')!);
      const n = rng.range(20, 1500);
      for (let i = 0; i < n; i++) main.step(false);
    } else {
      // The main thread makes no blocking call while a worker may die holding the lock: its async
      // calls (README: use them on a main thread whenever workers may be terminated) run meanwhile.
      let stop = false;
      const asyncOps = (async () => {
        // A macrotask turn between calls: an async call that never waits resolves in microtasks,
        // which would starve the timers (and the exit events) of the event loop.
        while (!stop) {
          await main.stepAsync();
          await new Promise((r) => setImmediate(r));
        }
      })();
      await new Promise((r) => setTimeout(r, rng.int(12)));
      await kill.worker.terminate();
      await new Promise((r) => setTimeout(r, rng.int(10)));
      stop = true;
      await asyncOps;
      kill.dead = true;
      kills++;
      addCounts(deadCounts, kill.counts);
      main.receive(inbox.get('main')!);
    }
    await Promise.all(replies);
    if (kill !== undefined) {
      await kill.exited;
      // watch() reclaims at the exit; give its listener a turn.
      await new Promise((r) => setTimeout(r, 5));
      workers.splice(workers.indexOf(kill), 1);
      // Its blocks (live, outbox, inbox) are lost: not checked any more.
      workers.push(await startFuzzWorker(heap, seed + 1000 * ++wseq, `w${wseq}`, cfg));
    }
    // Quiet: only the main thread runs; stray writes into blocks it has just freed.
    const q = rng.range(0, 300);
    for (let i = 0; i < q; i++) main.step(true);
    // Idle workers still answer asks to flush from their event loops: a walk made meanwhile can
    // fail, and check() says so ("ask to flush unanswered"); made again once they answered.
    for (let attempt = 1; ; attempt++) {
      try {
        heap.check();
        break;
      } catch (e) {
        const m = (e as Error).message;
        if (attempt >= 5 || !/ask to flush unanswered/.test(m)) throw new Error(`check() failed: ${ctx()}: ${m}`);
        await new Promise((r) => setTimeout(r, 30));
      }
    }
    main.verifyAll(`after round ${rounds}`);
    for (const w of workers) {
      for (const b of w.live) main.verify(b, `after round ${rounds} (${w.who}'s block, seen from main)`);
      await call(w, { type: 'verify' });
    }
  }
  // Free everything, each thread its own; then the heap must check and hold nothing but the lost blocks.
  for (const w of workers) {
    const ob = (w as W & { outbox?: Block[] }).outbox ?? [];
    main.receive(ob);
    await call(w, { type: 'freeAll' });
  }
  main.freeAll();
  heap.flush();
  for (const w of workers) await call(w, { type: 'flush' });
  heap.check();
  if (kills === 0) {
    const s = heap.stats();
    if (s.liveBlocks !== 0) throw new Error(`${ctx()}: ${s.liveBlocks} blocks (${s.liveBytes} bytes) live after every thread freed all of its`);
  }
  for (const w of workers) {
    await call(w, { type: 'detach' });
    await w.worker.terminate();
  }
  heap.check();
  addCounts(total, main.counts);
  for (const w of workers) addCounts(total, w.counts);
  addCounts(total, deadCounts);
  heap.detach();
  return { options, rounds, kills, ops: total.ops, counts: total };
}

describe('fuzz: random calls, good and bad, from the main thread and 1-3 workers', () => {
  const seeds = process.env.FUZZ_SEED !== undefined && process.env.FUZZ_CASES === undefined ? [BASE_SEED] : Array.from({ length: CASES }, (_, i) => BASE_SEED + i * 7919);
  for (const seed of seeds) {
    it(`seed ${seed}`, async () => {
      const r = await runCase(seed);
      console.log(`fuzz seed ${seed}: ${r.rounds} rounds, ${r.kills} kills, ${r.ops} ops ${JSON.stringify(r.counts)} options ${JSON.stringify(r.options)}`);
    }, 30_000);
  }
});

/**
 * The README's promise for the words the allocator keeps in a freed block (layout.ts
 * FREE_LINK_W and FREE_CHECK_W: the link of a block freed by another thread, PENDING on its slab's
 * remote list, and its check): a stray write over the link is told from it by the check (remote.ts
 * linkOf); where it is not, the owner's collection ends there, the blocks after it are lost to the
 * heap (check() names them: PENDING on no list) and nothing else changes: no live block is handed
 * out, no live block's bytes change.
 */
describe('fuzz: stray writes over the remote-free link of a block freed by another thread', () => {
  const seeds = Array.from({ length: Number(process.env.FUZZ_LINK_CASES ?? 60) }, (_, i) => BASE_SEED + 31 + i * 104729);
  const LOST = /^check\(\): 0 blocks say CACHED but are in no magazine and \d+ say PENDING but are on no remote list/;
  it('keeps every live block out of malloc and intact, and check() names only lost PENDING blocks', async () => {
    const notes: string[] = [];
    for (const seed of seeds) {
      const rng = new Rng(seed);
      const debug = rng.chance(0.3);
      const options: HeapOptions = {
        initialBytes: 48 << 20,
        magazineCapacity: rng.pick([1, 2, 8, 64, 256]),
        refillCount: rng.pick([1, 4, 32, 256]),
        drainInterval: rng.pick([1, 3, 1024]),
        stage1Keep: rng.pick([0, 1024]),
        debug,
      };
      const heap = SharedHeap.create(options);
      const cfg: FuzzConfig = { debug, maxSize: 1 << 20, badRate: 0, targetLive: 100 };
      const main = new Fuzzer(heap, new Rng(seed + 1), 'main', cfg);
      const w = await startFuzzWorker(heap, seed + 2, 'freer', cfg);
      const size = rng.pick([8, 16, 48, 64, 100, 1000, 5000, 20000, 100000]);
      const n = rng.range(4, 300);
      const blocks: Block[] = [];
      for (let i = 0; i < n; i++) {
        const p = heap.malloc(size);
        if (p === 0) break;
        const b = { p, size, tag: seed + i };
        main.fill(b);
        blocks.push(b);
      }
      // Some other thread's live blocks too (a worker's slab), and blocks of another class.
      const wr = await call(w, { type: 'mallocN', size, n: rng.range(0, 20) });
      const workerLive = wr.ps as number[];
      const freed: Block[] = [];
      const keep: Block[] = [];
      for (const b of blocks) (rng.chance(0.6) ? freed : keep).push(b);
      // Freed by the worker in a few batches, each flushed: chains on the remote lists of the main thread's slabs.
      for (let i = 0; i < freed.length; ) {
        const k = rng.range(1, 40);
        await call(w, { type: 'freeThese', ps: freed.slice(i, i + k).map((b) => b.p), flush: true });
        i += k;
      }
      const i32 = new Int32Array(heap.buffer);
      const strays = rng.range(1, 3);
      const what: string[] = [];
      for (let s = 0; s < strays && freed.length > 0; s++) {
        const v = rng.pick(freed).p;
        const choices: [string, number][] = [
          ['0', 0],
          ['random', rng.u32() | 0],
          ['itself', v],
          ['another freed block', rng.pick(freed).p],
          ['a live block of the slab', keep.length > 0 ? rng.pick(keep).p : v + 16],
          ['a worker live block', workerLive.length > 0 ? rng.pick(workerLive) : 16],
          ['next block', v + (usableStep(size, debug))],
          ['interior', v + 16],
          ['metadata', 16 * rng.range(1, 1000)],
          ['past the heap', heap.u8.length + 16],
          ['negative', -16],
          ['odd', v + 1],
        ];
        const [name, x] = rng.pick(choices);
        i32[(v >>> 2) + 0] = x;
        what.push(`${name} (${x}) into ${v}`);
      }
      const ctx = `seed ${seed} options ${JSON.stringify(options)} size ${size} n ${n} freed ${freed.length} strays ${what.join(', ')}`;
      // The owner takes its remote lists as it refills: malloc that class well past what was freed.
      const liveSet = new Set<number>([...keep.map((b) => b.p), ...workerLive]);
      const got: Block[] = [];
      for (let i = 0; i < freed.length + 64; i++) {
        let p = 0;
        try {
          p = heap.malloc(size);
        } catch (e) {
          // Debug mode: a stray write at bytes 0..3 is not a use-after-free it reports.
          throw new Error(`${ctx}: malloc threw ${(e as Error).message}`);
        }
        if (p === 0) break;
        if (liveSet.has(p)) throw new Error(`${ctx}: malloc(${size}) handed out ${p}, a live block`);
        liveSet.add(p);
        const b = { p, size, tag: seed ^ (i + 7777) };
        main.fill(b);
        got.push(b);
      }
      heap.flush();
      for (const b of [...keep, ...got]) main.verify(b, ctx);
      const checkOutcome = (when: string): void => {
        try {
          heap.check();
        } catch (e) {
          const m = (e as Error).message;
          if (!LOST.test(m)) throw new Error(`${ctx}: check() ${when}: ${m}`);
          notes.push(`${when}: ${m.slice(0, 100)}`);
        }
      };
      checkOutcome('after the collection');
      for (const b of [...keep, ...got]) main.freeBlock(b, ctx);
      await call(w, { type: 'freeThese', ps: workerLive, flush: true });
      heap.flush();
      // And it goes on working: every class, patterns checked.
      for (let i = 0; i < 3000; i++) main.step(true);
      main.verifyAll(ctx);
      main.freeAll();
      heap.flush();
      checkOutcome('after more use');
      await call(w, { type: 'detach' });
      await w.worker.terminate();
      heap.detach();
    }
    console.log(`fuzz link: ${seeds.length} cases; check() reported lost blocks ${notes.length} times`);
  }, 120_000);
});

function usableStep(size: number, debug: boolean): number {
  const n = debug ? size + 9 : size;
  return Math.max(16, (n + 15) & ~15);
}
