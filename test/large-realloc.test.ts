/**
 * realloc of large runs (above MAX_SMALL) in place: a run grows over the free slots after it
 * (a run past one SuperSlab also into fresh SuperSlabs at the carved end) and shrinks by giving
 * its tail back; it moves only when the slots after it are taken. A holder stopped in the middle
 * of either is test/crash-points.test.ts (scenario "large"); the repair of runs that a dead holder
 * left half-written is tested here on the slot table directly.
 */
import { describe, expect, it } from 'vitest';
import type { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { G_CARVED, K_FREE, K_LARGE, SLOT_BYTES, SLOT_SHIFT, SLOTS_PER_SUPER, SLOTS_SHIFT_IN_SUPER, SM_CLS1, SM_HEAD, SM_KIND, SM_SPAN, SS_TABLE_W } from '../src/layout.js';
import { DoubleFreeError } from '../src/errors.js';
import { MAX_SMALL } from '../src/size-classes.js';
import { commitTaken, findRun, repairSlotTable } from '../src/slots.js';
import { growthRoom } from '../src/large.js';
import { KiB, MiB, freshHeaps, rng } from './fixtures.js';

const { fresh } = freshHeaps({ initialBytes: 8 * MiB, maxBytes: 64 * MiB, maxThreads: 2 });

function fill(h: SharedHeap, p: number, n: number, v: number): void {
  h.u8.fill(v, p, p + n);
}

function holds(h: SharedHeap, p: number, n: number, v: number): boolean {
  return h.u8.subarray(p, p + n).every((b) => b === v);
}

/** The slot-table free bit of `slot` (set: UNUSED). */
function freeBit(h: SharedHeap, slot: number): boolean {
  const i32 = new Int32Array(h.buffer);
  return ((i32[SS_TABLE_W + (slot >>> SLOTS_SHIFT_IN_SUPER)]! >>> (slot & (SLOTS_PER_SUPER - 1))) & 1) === 1;
}

describe('realloc of a large run', () => {
  it('grows in place over the free slots after it, keeping its bytes, and counts the new ones', () => {
    const h = fresh();
    const p = h.malloc(200 * KiB);
    fill(h, p, 200 * KiB, 7);
    const before = h.stats().largeLiveBytes;
    const q = h.realloc(p, 600 * KiB);
    expect(q).toBe(p);
    // 600 KiB is 10 slots, and a quarter of that (2 slots) more as room to grow (growthRoom).
    expect(h.usableSize(q)).toBe(12 * SLOT_BYTES);
    expect(holds(h, q, 200 * KiB, 7)).toBe(true);
    expect(h.stats().largeLiveBytes - before).toBe(12 * SLOT_BYTES - 4 * SLOT_BYTES);
    h.check();
    fill(h, q, 12 * SLOT_BYTES, 9); // every byte of it is the caller's
    h.free(q);
    h.check();
    expect(h.stats().largeLiveBytes).toBe(0);
  });

  it('grows a run past one SuperSlab from the carved end into fresh SuperSlabs, the buffer growing', () => {
    const h = fresh({ initialBytes: 4 * MiB, maxBytes: 128 * MiB });
    let p = h.malloc(MAX_SMALL + 1);
    fill(h, p, MAX_SMALL + 1, 3);
    const first = p;
    for (let n = 256 * KiB; n <= 40 * MiB; n += 300 * KiB) {
      p = h.realloc(p, n);
      expect(p).toBe(first);
    }
    expect(h.buffer.byteLength).toBeGreaterThan(40 * MiB);
    expect(holds(h, p, MAX_SMALL + 1, 3)).toBe(true);
    h.check();
    h.free(p);
    h.check();
  });

  it('a run grown in small steps takes room, so the lock is taken O(log n) times, not at every step', () => {
    const h = fresh({ initialBytes: 16 * MiB });
    let p = h.malloc(200 * KiB);
    const first = p;
    fill(h, p, 200 * KiB, 6);
    const before = h.stats().lock.acquisitions;
    let n = 256 * KiB;
    for (; n <= 8 * MiB; n += 64 * KiB) {
      p = h.realloc(p, n);
      expect(p).toBe(first);
      expect(h.usableSize(p)).toBeGreaterThanOrEqual(n);
      h.u8[p + n - 1] = 6;
    }
    // 125 resizes; with a quarter's room from 4 to 128 slots about 16 take the lock (each one
    // resize at least), without room every one would.
    const taken = h.stats().lock.acquisitions - before;
    expect(taken).toBeGreaterThanOrEqual(10);
    expect(taken).toBeLessThanOrEqual(20);
    expect(holds(h, p, 200 * KiB, 6)).toBe(true);
    expect(h.usableSize(p)).toBeLessThanOrEqual(Math.ceil((n - 64 * KiB) / SLOT_BYTES) * SLOT_BYTES * 1.25 + SLOT_BYTES);
    h.check();
    h.free(p);
    h.check();
    expect(h.stats().largeLiveBytes).toBe(0);
  });

  it('room stops at the SuperSlab\'s end for a run of up to one SuperSlab, and at a taken slot', () => {
    // stage1Keep 0: freed runs give their slots back at once (none waits in a large-run list).
    const h = fresh({ initialBytes: 16 * MiB, stage1Keep: 0 });
    const a = h.malloc(10 * SLOT_BYTES); // slots 0-9 of a fresh SuperSlab
    expect((a >>> SLOT_SHIFT) & (SLOTS_PER_SUPER - 1)).toBe(0);
    // 13 slots and a quarter more (3) would be 16: exactly to the end.
    expect(h.realloc(a, 13 * SLOT_BYTES)).toBe(a);
    expect(h.usableSize(a)).toBe(16 * SLOT_BYTES);
    expect(growthRoom(a >>> SLOT_SHIFT, 14)).toBe(2); // 14 + 3 would cross: only 2 to the end
    expect(growthRoom((a >>> SLOT_SHIFT) + 3, 10)).toBe(2); // from slot 3, 10 slots: a quarter, 2
    expect(growthRoom(a >>> SLOT_SHIFT, 40)).toBe(10); // past one SuperSlab: a quarter, any SuperSlab
    h.free(a);
    // A taken slot: the run grows to the request and no further (runs of 3 slots are large:
    // MAX_SMALL is 2 slots).
    const b = h.malloc(4 * SLOT_BYTES);
    const c = h.malloc(3 * SLOT_BYTES);
    const blocker = h.malloc(3 * SLOT_BYTES);
    expect(c).toBe(b + 4 * SLOT_BYTES);
    expect(blocker).toBe(b + 7 * SLOT_BYTES);
    h.free(c);
    fill(h, b, 4 * SLOT_BYTES, 8);
    expect(h.realloc(b, 7 * SLOT_BYTES)).toBe(b); // room would be 1 slot, but slot 7 is taken
    expect(h.usableSize(b)).toBe(7 * SLOT_BYTES);
    expect(holds(h, b, 4 * SLOT_BYTES, 8)).toBe(true);
    h.check();
    h.free(b);
    h.free(blocker);
    h.check();
    expect(h.stats().largeLiveBytes).toBe(0);
  });

  it('moves when the slots after it are taken, and frees the old run', () => {
    const h = fresh();
    const a = h.malloc(300 * KiB);
    const b = h.malloc(300 * KiB);
    expect(b).toBe(a + 5 * SLOT_BYTES); // b follows a (the test relies on it)
    fill(h, a, 300 * KiB, 5);
    const c = h.realloc(a, 700 * KiB);
    expect(c).not.toBe(a);
    expect(holds(h, c, 300 * KiB, 5)).toBe(true);
    expect(() => h.free(a)).toThrow(DoubleFreeError);
    h.check();
    h.free(b);
    h.free(c);
    h.check();
  });

  // realloc and reallocAsync alike (alloc.ts reallocTarget).
  it.each([
    ['realloc', (h: SharedHeap, p: number, n: number): Promise<number> => Promise.resolve(h.realloc(p, n))],
    ['reallocAsync', (h: SharedHeap, p: number, n: number): Promise<number> => h.reallocAsync(p, n)],
  ] as const)('a run that %s moves to grow lands with free slots after it, so that its next growth stays in place', async (_name, resize) => {
    const h = fresh();
    const a = h.malloc(200 * KiB); // 4 slots
    const b = h.malloc(200 * KiB); // right after it: a cannot grow in place
    expect(b).toBe(a + 4 * SLOT_BYTES);
    fill(h, a, 200 * KiB, 9);
    const c = await resize(h, a, 400 * KiB); // 7 slots: moves (the 8 free slots after b would hold it, with 1 to spare)
    expect(c).not.toBe(a);
    const slot = c >>> SLOT_SHIFT;
    for (let s = slot + 7; s < slot + 14; s++) expect(freeBit(h, s), `slot ${s - slot} after the moved run`).toBe(true);
    fill(h, c + 200 * KiB, 200 * KiB, 10);
    const d = await resize(h, c, 800 * KiB); // 13 slots: over the free ones after it
    expect(d).toBe(c);
    expect(holds(h, d, 200 * KiB, 9) && holds(h, d + 200 * KiB, 200 * KiB, 10)).toBe(true);
    h.check();
    h.free(b);
    h.free(d);
    h.check();
    expect(h.stats().largeLiveBytes).toBe(0);
  });

  it('does not grow a run of up to one SuperSlab across a SuperSlab boundary', () => {
    const h = fresh({ initialBytes: 16 * MiB });
    // Runs of 5 slots: the third in a SuperSlab of 16 slots ends at slot 15, the fourth cannot follow it.
    const runs: number[] = [];
    for (let k = 0; k < 9; k++) runs.push(h.malloc(5 * SLOT_BYTES));
    const last = runs.find((p) => ((p >>> SLOT_SHIFT) & (SLOTS_PER_SUPER - 1)) + 5 === SLOTS_PER_SUPER - 1)!;
    expect(last).toBeDefined();
    fill(h, last, 5 * SLOT_BYTES, 1);
    const q = h.realloc(last, 7 * SLOT_BYTES); // one free slot before the boundary: must move
    expect(q).not.toBe(last);
    expect(holds(h, q, 5 * SLOT_BYTES, 1)).toBe(true);
    h.check();
    for (const p of runs) if (p !== last) h.free(p);
    h.free(q);
    h.check();
  });

  it('shrinks in place below half, giving the tail back for others to use', () => {
    const h = fresh();
    const p = h.malloc(1 * MiB);
    fill(h, p, 200 * KiB, 4);
    const q = h.realloc(p, 200 * KiB);
    expect(q).toBe(p);
    expect(h.usableSize(q)).toBe(4 * SLOT_BYTES);
    expect(holds(h, q, 200 * KiB, 4)).toBe(true);
    expect(h.stats().largeLiveBytes).toBe(4 * SLOT_BYTES);
    const tail = (p >>> SLOT_SHIFT) + 4;
    for (let s = tail; s < tail + 12; s++) expect(freeBit(h, s)).toBe(true);
    h.check();
    const other = h.malloc(700 * KiB); // fits in the tail
    expect(other).toBe(tail << SLOT_SHIFT);
    h.free(other);
    h.free(q);
    h.check();
  });

  it('a run past one SuperSlab shrunk to at most one SuperSlab\'s slots moves rather than cross a boundary', () => {
    const h = fresh({ initialBytes: 16 * MiB });
    const first = h.malloc(10 * SLOT_BYTES); // slots 0-9 of a SuperSlab
    const p = h.malloc(17 * SLOT_BYTES); // the first 17 free slots in a row: from slot 10, across the boundary
    const head = p >>> SLOT_SHIFT;
    expect(head >>> SLOTS_SHIFT_IN_SUPER).not.toBe((head + 7) >>> SLOTS_SHIFT_IN_SUPER); // 8 slots from it would cross
    fill(h, p, 8 * SLOT_BYTES, 3);
    const q = h.realloc(p, 8 * SLOT_BYTES); // below half: shrinks, here by moving
    expect(q).not.toBe(p);
    expect(holds(h, q, 8 * SLOT_BYTES, 3)).toBe(true);
    h.check();
    const r = h.realloc(q, 3 * SLOT_BYTES); // within one SuperSlab: in place
    expect(r).toBe(q);
    h.check();
    h.free(first);
    h.free(r);
    h.check();
  });

  it('a large run shrunk to a small size still moves to a size class', () => {
    const h = fresh();
    const p = h.malloc(300 * KiB);
    fill(h, p, 1000, 6);
    const q = h.realloc(p, 1000);
    expect(q).not.toBe(p);
    expect(h.usableSize(q)).toBeLessThan(2000);
    expect(holds(h, q, 1000, 6)).toBe(true);
    h.free(q);
    h.check();
  });

  it('reallocAsync grows in place too', async () => {
    const h = fresh();
    const p = h.malloc(200 * KiB);
    fill(h, p, 200 * KiB, 8);
    const q = await h.reallocAsync(p, 900 * KiB);
    expect(q).toBe(p);
    expect(holds(h, q, 200 * KiB, 8)).toBe(true);
    h.free(q);
    h.check();
  });
});

describe('the slot table repair after a dead holder', () => {
  /** Runs the repair as the lock's break would, then check(). */
  function repaired(h: SharedHeap): void {
    repairSlotTable(internals(h));
    h.check();
  }

  it("gives back slots taken beyond a run's span (a grow stopped before its commit, a shrink after it)", () => {
    const h = fresh();
    const p = h.malloc(200 * KiB); // 4 slots
    fill(h, p, 200 * KiB, 2);
    const t = internals(h);
    const head = p >>> SLOT_SHIFT;
    const i32 = new Int32Array(h.buffer);
    // Slots 4 and 5 written as the run's and taken, its span not yet raised.
    for (const s of [head + 4, head + 5]) {
      const mW = t.metaW(s);
      i32[mW + SM_KIND] = K_LARGE;
      i32[mW + SM_HEAD] = head;
      i32[mW + SM_SPAN] = 6;
    }
    commitTaken(t, head + 4, 2);
    expect(() => h.check()).toThrow();
    repaired(h);
    expect(freeBit(h, head + 4) && freeBit(h, head + 5)).toBe(true);
    expect(h.usableSize(p)).toBe(4 * SLOT_BYTES);
    expect(holds(h, p, 200 * KiB, 2)).toBe(true);
    h.free(p);
    h.check();
  });

  it('gives back the rest of a run whose give-back stopped half-way through its metas', () => {
    const h = fresh();
    const p = h.malloc(400 * KiB); // 7 slots
    const keep = h.malloc(100);
    const t = internals(h);
    const head = p >>> SLOT_SHIFT;
    const i32 = new Int32Array(h.buffer);
    // The head's meta already UNUSED, the others not, no free bit set yet.
    i32[t.metaW(head) + SM_KIND] = K_FREE;
    i32[t.metaW(head) + SM_CLS1] = 0;
    expect(() => h.check()).toThrow();
    repaired(h);
    for (let s = head; s < head + 7; s++) expect(freeBit(h, s)).toBe(true);
    expect(h.stats().largeLiveBytes).toBe(0);
    h.free(keep);
    h.check();
  });

  it('gives back a run of more than one SuperSlab whose take committed only its first SuperSlab', () => {
    const h = fresh({ initialBytes: 16 * MiB });
    const p = h.malloc(3 * MiB); // 48 slots: three SuperSlabs' worth
    const t = internals(h);
    const head = p >>> SLOT_SHIFT;
    const i32 = new Int32Array(h.buffer);
    // As if the take had cleared only the bits of the SuperSlab holding its head.
    const firstInNext = ((head >>> SLOTS_SHIFT_IN_SUPER) + 1) * SLOTS_PER_SUPER;
    for (let s = firstInNext; s < head + 48; s++) i32[SS_TABLE_W + (s >>> SLOTS_SHIFT_IN_SUPER)]! |= 1 << (s & (SLOTS_PER_SUPER - 1));
    expect(() => h.check()).toThrow();
    repaired(h);
    for (let s = head; s < head + 48; s++) expect(freeBit(h, s)).toBe(true);
    expect(h.stats().largeLiveBytes).toBe(0);
  });
});

describe('calloc of a large run zeroes only what was used before', () => {
  it('a run never touched is not written, and reads as zero', () => {
    const h = fresh({ initialBytes: 16 * MiB });
    const p = h.calloc(1, 3 * MiB);
    expect(internals(h).largeDirtyBytes).toBe(0);
    expect(holds(h, p, 3 * MiB, 0)).toBe(true);
    h.free(p);
    h.check();
  });

  it('runs over slots used before read as zero, in any mix of used and fresh slots', () => {
    const h = fresh({ maxBytes: 96 * MiB });
    const random = rng(12345);
    const next = (m: number): number => random() % m;
    const live: number[] = [];
    for (let round = 0; round < 300; round++) {
      if (live.length >= 24 || (live.length > 0 && next(2) === 0)) {
        h.free(live.splice(next(live.length), 1)[0]!);
        continue;
      }
      const size = MAX_SMALL + 1 + next(3 * MiB);
      const zeroed = next(2) === 0;
      const p = zeroed ? h.calloc(1, size) : h.malloc(size);
      expect(p).toBeGreaterThan(0);
      if (zeroed) expect(holds(h, p, size, 0), `calloc(1, ${size}) = ${p} in round ${round}`).toBe(true);
      fill(h, p, h.usableSize(p), 0xa5); // dirty every byte it may be given again
      live.push(p);
    }
    for (const p of live) h.free(p);
    h.check();
  });

  it('small blocks are zeroed as before', () => {
    const h = fresh();
    const a = h.malloc(1000);
    fill(h, a, 1000, 0xff);
    h.free(a);
    const b = h.calloc(10, 100);
    expect(b).toBe(a); // the same block, from the magazine
    expect(holds(h, b, 1000, 0)).toBe(true);
    h.free(b);
  });
});

describe('a run of more than one SuperSlab of slots', () => {
  /** The first slot of the first `n` free slots in a row by the slot table, bit by bit; 0 when none. */
  function firstRunByBits(h: SharedHeap, n: number): number {
    const i32 = new Int32Array(h.buffer);
    let run = 0;
    for (let s = internals(h).geo.metaSupers << SLOTS_SHIFT_IN_SUPER; s < Atomics.load(i32, G_CARVED) << SLOTS_SHIFT_IN_SUPER; s++) {
      run = freeBit(h, s) ? run + 1 : 0;
      if (run === n) return s - n + 1;
    }
    return 0;
  }

  it('is found at the first place that has it, among free slots left by runs of every length', () => {
    const h = fresh({ initialBytes: 48 * MiB });
    const random = rng(2026);
    for (let round = 0; round < 6; round++) {
      // Runs of 3-40 slots (and some small blocks) until the heap is full, then some of them freed.
      const live: number[] = [];
      for (;;) {
        const p = h.malloc(random() % 8 === 0 ? 1000 : (3 + (random() % 38)) * SLOT_BYTES - 100);
        if (p === 0) break;
        live.push(p);
      }
      const kept = live.filter((p) => random() % 3 === 0 || (h.free(p), false));
      h.flush();
      h.check();
      let found = 0;
      for (let n = SLOTS_PER_SUPER + 1; n <= 4 * SLOTS_PER_SUPER; n++) {
        const want = firstRunByBits(h, n);
        expect(findRun(internals(h), n), `round ${round}, ${n} slots`).toBe(want);
        if (want !== 0) found++;
      }
      expect(found, `round ${round}: runs to find`).toBeGreaterThan(0);
      for (const p of kept) h.free(p);
    }
  });
});
