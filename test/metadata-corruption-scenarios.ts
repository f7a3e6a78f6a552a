/**
 * Scenarios for test/audit-corruption-*.test.ts: one word of a heap's metadata overwritten, as a
 * program's stray write would, then check() and a few calls. Each runs in a child process (the
 * tests start `node --import tsx test/metadata-corruption-scenarios.ts <name>` with a deadline and kill
 * it when the deadline passes, as test/faults.test.ts does), so that a hang fails one test instead
 * of the run. A scenario prints one line `RESULT <json>` and exits.
 */
import { SharedHeap, HeapError } from '../src/index.js';
import { internals } from '../src/heap.js';
import { SLOT_SHIFT, SM_NOTICE_NEXT, SM_HEAD, TH_NOTICE } from '../src/layout.js';
import { startHeapWorker, terminateAll } from './remote-heap.js';

const MiB = 1 << 20;

interface Outcome {
  ok: boolean;
  name?: string;
  heapError?: boolean;
  message?: string;
}

function attempt(fn: () => unknown): Outcome {
  try {
    fn();
    return { ok: true };
  } catch (e) {
    const err = e as Error;
    return { ok: false, name: err?.name, heapError: e instanceof HeapError, message: String(err?.message ?? e).slice(0, 300) };
  }
}

export const scenarios: Record<string, () => Promise<Record<string, unknown>>> = {
  /**
   * The empty sentinel of a magazine (the word just below its first entry, layout.ts
   * MAG_EMPTY_SENTINEL, which malloc's fast path tests for 0) overwritten with another value.
   */
  async emptySentinel() {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 2 });
    const t = internals(heap);
    const i32 = new Int32Array(heap.buffer);
    const size = 100;
    const cls = 6; // the class of `size`
    const ps: number[] = [];
    for (let i = 0; i < 8; i++) ps.push(heap.malloc(size));
    const before = attempt(() => heap.check());
    const base = t.magazineBase(cls);
    const sentinelW = base - 2;
    i32[sentinelW] = -1078209659; // the stray write (seed 172 of the sweep)
    const check = attempt(() => heap.check());
    const got: number[] = [];
    const mallocs: Outcome[] = [];
    for (let i = 0; i < 100; i++) {
      const o = attempt(() => got.push(heap.malloc(size)));
      if (!o.ok) mallocs.push(o);
    }
    const frees: Outcome[] = [];
    for (const p of [...ps, ...got]) {
      const o = attempt(() => heap.free(p));
      if (!o.ok) frees.push(o);
    }
    return {
      before,
      check,
      odd: got.filter((p) => p <= 0 || (p & 15) !== 0).slice(0, 5),
      mallocs: mallocs.slice(0, 3),
      frees: frees.slice(0, 3),
      // (free of a value that is no offset, as the odd ones are, is refused by its argument check, a RangeError naming free: not counted)
      nonHeapErrors: [...mallocs, ...frees].filter((o) => o.heapError !== true && !(o.message ?? '').startsWith('free(ptr)')).length,
    };
  },

  /**
   * The link of a slab on its owner's notice list (SM_NOTICE_NEXT), or the list's head
   * (TH_NOTICE), overwritten with a negative or out-of-range slot.
   */
  async noticeLink() {
    const which = process.argv[3] ?? 'next';
    const value = Number(process.argv[4] ?? -115);
    const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxThreads: 4 });
    const t = internals(heap);
    const i32 = new Int32Array(heap.buffer);
    const size = 100;
    const ps: number[] = [];
    for (let i = 0; i < 200; i++) ps.push(heap.malloc(size));
    const r = startHeapWorker();
    await r.remote.attach(heap.buffer);
    await r.remote.freeMany(ps.slice(0, 100)); // remote frees: the slab goes onto this thread's notice list
    const head = Atomics.load(i32, t.thW + TH_NOTICE);
    const slab = i32[t.metaW(ps[0]! >>> SLOT_SHIFT) + SM_HEAD]!;
    const before = attempt(() => heap.check());
    if (which === 'next') i32[t.metaW(slab) + SM_NOTICE_NEXT] = value; // the stray write
    else if (which === 'cycle') i32[t.metaW(slab) + SM_NOTICE_NEXT] = slab; // a link to itself
    else i32[t.thW + TH_NOTICE] = value;
    const check = attempt(() => heap.check());
    const calls: Outcome[] = [];
    for (let i = 0; i < 300; i++) {
      const o = attempt(() => heap.free(heap.malloc(size)));
      if (!o.ok) calls.push(o);
    }
    const flush = attempt(() => heap.flush());
    await terminateAll();
    return { head, slab, before, check, calls: calls.slice(0, 3), flush };
  },
};

if (process.argv[1]?.endsWith('metadata-corruption-scenarios.ts')) {
  const name = process.argv[2]!;
  const run = scenarios[name];
  if (run === undefined) {
    console.error(`unknown scenario ${name}`);
    process.exit(2);
  }
  run().then(
    (r) => {
      console.log(`RESULT ${JSON.stringify(r)}`);
      process.exit(0);
    },
    (e) => {
      console.log(`RESULT ${JSON.stringify({ thrown: String((e as Error)?.stack ?? e) })}`);
      process.exit(0);
    },
  );
}
