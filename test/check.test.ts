/**
 * check() (src/check.ts): deliberately corrupted metadata, written through the buffer with the
 * constants of src/layout.ts, is detected and reported as a HeapCorruptionError naming what is
 * wrong and where; check() never hangs (every test has a timeout and measures check()'s time) and
 * never throws anything else, even when random metadata words are overwritten
 * (CHECK_FUZZ_TRIALS of them, default 2,000).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { HeapCorruptionError, HeapError, SharedHeap, type HeapOptions } from '../src/index.js';
import {
  ABANDONED_W, F_LARGE_HELD_BYTES, G_BUFFER_SUPERS, G_CARVED, G_LOCK, G_MAG_CAP, G_MAX_SUPERS, G_MAX_THREADS, HEADER_WORDS,
  K_FREE, S1_HEAD_W, S1_SLOT_MASK, SLOT_SHIFT, SM_ABANDON_LISTED, SM_ABANDON_NEXT, SM_BUMP, SM_CLS1, SM_FREE_REGIONS,
  SM_DATA, SM_HEAD, SM_INUSE, SM_KIND, SM_LARGE, SM_NFREE, SM_POOL_DEPTH, SM_POOL_NEXT, SM_REMOTE, SM_SHIFT, SM_SPAN, SM_STATE, SS_TABLE_W,
  ST_ALLOCATED, ST_CACHED, ST_CLEAN, ST_FREE, ST_PENDING, SUPER_SHIFT, TH_TOP, geometry,
  SM_LISTED, SM_PART_PREV, TH_CUR, TH_PARTIAL, TH_PARTIAL_TAIL, TH_THREAD_ID, G_SLOTS_USED,
} from '../src/layout.js';
import { COUNT, NUM_CLASSES, REGION_SHIFT, SIZE, SPAN, classOf } from '../src/size-classes.js';

const MiB = 1 << 20;
const TIMEOUT = 5000;

const heaps: SharedHeap[] = [];
function fresh(options: HeapOptions = {}): SharedHeap {
  // corrupted heaps are never detached (detach walks the corrupted lists): small buffers
  const heap = SharedHeap.create({ initialBytes: 6 * MiB, maxThreads: 2, ...options });
  heaps.push(heap);
  return heap;
}
afterEach(() => {
  heaps.length = 0;
});

const hex = (n: number): string => '0x' + n.toString(16);

/** Views and word addresses computed from layout.ts and the header, as a debugger would. */
function raw(heap: SharedHeap) {
  const i32 = new Int32Array(heap.buffer);
  const u8 = new Uint8Array(heap.buffer);
  const f64 = new Float64Array(heap.buffer, 0, heap.buffer.byteLength >>> 3);
  const geo = geometry(i32[G_MAX_SUPERS], i32[G_MAX_THREADS], i32[G_MAG_CAP], NUM_CLASSES);
  const meta = (slot: number): number => geo.slotMetaW + (slot << SM_SHIFT);
  const thread = (tid: number): number => geo.threadsW + tid * geo.threadWords;
  /** Byte offset of the state byte of a small block. */
  const stateOf = (block: number): number => {
    const mW = meta(block >>> SLOT_SHIFT);
    const cls = i32[mW + SM_CLS1] - 1;
    return i32[mW + SM_STATE] + (block - i32[mW + SM_DATA]) / SIZE[cls];
  };
  return { i32, u8, f64, geo, meta, thread, stateOf };
}

/** check() must throw HeapCorruptionError whose message contains every token, quickly. */
function expectCorruption(heap: SharedHeap, ...tokens: string[]): HeapCorruptionError {
  const t0 = performance.now();
  let error: unknown;
  try {
    heap.check();
  } catch (e) {
    error = e;
  }
  const ms = performance.now() - t0;
  expect(ms, 'check() time').toBeLessThan(2000);
  expect(error, 'check() should have thrown').toBeInstanceOf(HeapCorruptionError);
  const err = error as HeapCorruptionError;
  expect(err).toBeInstanceOf(HeapError);
  expect(err.code).toBe('ERR_HEAP_CORRUPTION');
  expect(err.name).toBe('HeapCorruptionError');
  expect(err.message).toMatch(/^check\(\): /);
  for (const t of tokens) expect(err.message).toContain(t);
  return err;
}

/** A heap with a slab of 48-byte blocks holding `nFree` free blocks (blocks 0, 2, 4, ... freed). */
function withLocalList(nFree = 20): { heap: SharedHeap; slot: number; blocks: number[] } {
  const heap = fresh();
  const blocks = Array.from({ length: 200 }, () => heap.malloc(48));
  const slot = blocks[0] >>> SLOT_SHIFT;
  expect(blocks.every((b) => b >>> SLOT_SHIFT === slot)).toBe(true);
  for (let i = 0; i < nFree; i++) heap.free(blocks[2 * i]);
  heap.flush(); // back into the slab: FREE, counted in NFREE
  heap.check();
  const { i32, meta } = raw(heap);
  expect(i32[meta(slot) + SM_NFREE]).toBeGreaterThanOrEqual(3);
  return { heap, slot, blocks };
}

describe('a valid heap passes', () => {
  it('after a mixed workload with cached, freed, pooled and large blocks', () => {
    const heap = fresh();
    const keep: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const p = heap.malloc((i * 97) % 5000);
      if (i % 3 === 0) heap.free(p);
      else keep.push(p);
    }
    keep.push(heap.malloc(300_000));
    heap.check();
    heap.flush();
    heap.check();
    for (const p of keep) heap.free(p);
    heap.check();
    heap.flush();
    heap.check();
  });
});

describe('slab lists and counts', () => {
  it('a FREE block whose region bit is clear', () => {
    const { heap, slot, blocks } = withLocalList();
    const { i32, meta } = raw(heap);
    const rs = REGION_SHIFT[classOf(48)];
    const idx = (blocks[0] - i32[meta(slot) + SM_DATA]) / SIZE[classOf(48)]; // freed: FREE in the slab
    expect(i32[meta(slot) + SM_FREE_REGIONS] & (1 << (idx >>> rs))).not.toBe(0);
    i32[meta(slot) + SM_FREE_REGIONS] &= ~(1 << (idx >>> rs));
    expectCorruption(heap, `slab at slot ${slot}`, 'FREE_REGIONS', hex(blocks[0]));
  }, TIMEOUT);

  it('FREE_REGIONS cleared while NFREE counts free blocks: a refill takes none, recounts, and check() passes', () => {
    const { heap, slot } = withLocalList();
    const { i32, meta } = raw(heap);
    const nfree = i32[meta(slot) + SM_NFREE];
    i32[meta(slot) + SM_FREE_REGIONS] = 0;
    // The next refill of the class finds no region to scan: it takes what it can elsewhere, and the
    // slab's counts and regions are taken from its states again.
    const got = Array.from({ length: 300 }, () => heap.malloc(48));
    expect(new Set(got).size).toBe(300);
    heap.check();
    for (const p of got) heap.free(p);
    heap.flush();
    heap.check();
    expect(i32[meta(slot) + SM_NFREE]).toBeGreaterThanOrEqual(nfree);
  }, TIMEOUT);

  it('a wrong NFREE', () => {
    const { heap, slot } = withLocalList();
    const { i32, meta } = raw(heap);
    i32[meta(slot) + SM_NFREE]++;
    expectCorruption(heap, `slab at slot ${slot}`, 'NFREE');
  }, TIMEOUT);

  it('a wrong INUSE', () => {
    const { heap, slot } = withLocalList();
    const { i32, meta } = raw(heap);
    i32[meta(slot) + SM_INUSE]--;
    expectCorruption(heap, `slab at slot ${slot}`, 'INUSE');
  }, TIMEOUT);

  it('a BUMP beyond the slab', () => {
    const { heap, slot } = withLocalList();
    const { i32, meta } = raw(heap);
    i32[meta(slot) + SM_BUMP] = COUNT[classOf(48)] + 1;
    expectCorruption(heap, `slab at slot ${slot}`, 'BUMP');
  }, TIMEOUT);

  it('a cycle in a remote free list', () => {
    const { heap, slot, blocks } = withLocalList();
    const { i32, u8, meta, stateOf } = raw(heap);
    // two allocated blocks made to look remote-freed, linked in a cycle
    const [a, b] = [blocks[101], blocks[103]];
    u8[stateOf(a)] = ST_PENDING;
    u8[stateOf(b)] = ST_PENDING;
    i32[a >>> 2] = b;
    i32[b >>> 2] = a;
    Atomics.store(i32, meta(slot) + SM_REMOTE, a);
    expectCorruption(heap, `slab at slot ${slot}`);
  }, TIMEOUT);
});

describe('current slabs and partial lists', () => {
  /** A heap whose thread 0 has two slabs of 48-byte blocks on its partial list. */
  function withPartials(): { heap: SharedHeap; cls: number; first: number } {
    const heap = fresh();
    const cls = classOf(48);
    const n = COUNT[cls];
    const blocks = Array.from({ length: 3 * n }, () => heap.malloc(48)); // three full slabs
    heap.free(blocks[0]!); // a block of the first ...
    heap.free(blocks[n]!); // ... and of the second
    heap.flush(); // magazines drained: both slabs, neither full nor empty, go on the partial list
    const { i32, thread } = raw(heap);
    const first = i32[thread(0) + TH_PARTIAL + cls]!;
    expect(first).toBeGreaterThan(0);
    heap.check();
    return { heap, cls, first };
  }

  it('a partial list whose tail word is wrong', () => {
    const { heap, cls } = withPartials();
    const { i32, thread } = raw(heap);
    i32[thread(0) + TH_PARTIAL_TAIL + cls] = 0;
    expectCorruption(heap, 'partial list ends at');
  });

  it('a slab on a partial list that links back wrongly', () => {
    const { heap, first } = withPartials();
    const { i32, meta } = raw(heap);
    i32[meta(first) + SM_PART_PREV] = first;
    expectCorruption(heap, 'links back to');
  });

  it('a current slab that is not flagged current', () => {
    const heap = fresh();
    heap.malloc(48);
    const { i32, meta, thread } = raw(heap);
    const cur = i32[thread(0) + TH_CUR + classOf(48)]!;
    i32[meta(cur) + SM_LISTED] = 0;
    expectCorruption(heap, `current slab ${cur}`);
  });
});

describe('state bytes', () => {
  /**
   * A heap whose thread has cached blocks of 48 bytes in its magazine; returns the top entry: a
   * block the refill carved from fresh bytes (CLEAN), or with `freed` one malloc returned and free
   * pushed back (CACHED).
   */
  function withCached(freed: boolean): { heap: SharedHeap; block: number; state: number } {
    const heap = fresh();
    const p = heap.malloc(48); // the refill left more blocks in the magazine
    if (freed) heap.free(p);
    heap.check();
    const { i32, thread } = raw(heap);
    const top = i32[thread(0) + TH_TOP + classOf(48)];
    const block = i32[top - 2];
    const state = i32[top - 1];
    expect(block).toBeGreaterThan(0);
    expect(block === p).toBe(freed);
    expect(new Uint8Array(heap.buffer)[state]).toBe(freed ? ST_CACHED : ST_CLEAN);
    return { heap, block, state };
  }

  describe.each([{ what: 'CLEAN', freed: false }, { what: 'CACHED', freed: true }])('a magazine entry that says $what', ({ freed }) => {
    it('the state byte of a cached block overwritten with ALLOCATED', () => {
      const { heap, block, state } = withCached(freed);
      new Uint8Array(heap.buffer)[state] = ST_ALLOCATED;
      expectCorruption(heap, hex(block), 'expected CACHED or CLEAN');
    }, TIMEOUT);

    it('the state byte of a cached block overwritten with FREE', () => {
      const { heap, block, state } = withCached(freed);
      new Uint8Array(heap.buffer)[state] = ST_FREE;
      const slot = block >>> SLOT_SHIFT;
      expectCorruption(heap, `slot ${slot}`);
    }, TIMEOUT);

    it('the state byte of a cached block overwritten with an unknown value', () => {
      const { heap, block, state } = withCached(freed);
      new Uint8Array(heap.buffer)[state] = 0x5a;
      expectCorruption(heap, `slot ${block >>> SLOT_SHIFT}`);
    }, TIMEOUT);
  });

  it('the state byte of a free block (back in its slab) overwritten with ALLOCATED', () => {
    const { heap, slot, blocks } = withLocalList();
    const { u8, stateOf } = raw(heap);
    u8[stateOf(blocks[0])] = ST_ALLOCATED;
    expectCorruption(heap, `slab at slot ${slot}`, 'INUSE');
  }, TIMEOUT);

  it('a never-carved block whose state byte is not FREE', () => {
    const { heap, slot } = withLocalList();
    const { i32, u8, meta } = raw(heap);
    const idx = COUNT[classOf(48)] - 1;
    expect(i32[meta(slot) + SM_BUMP]).toBeLessThan(idx);
    u8[i32[meta(slot) + SM_STATE] + idx] = ST_ALLOCATED;
    expectCorruption(heap, `slab at slot ${slot}`, 'never-carved');
  }, TIMEOUT);

  it('an allocated block whose state byte says CACHED although no magazine holds it', () => {
    const { heap, slot, blocks } = withLocalList();
    const { u8, stateOf } = raw(heap);
    u8[stateOf(blocks[1])] = ST_CACHED; // free(blocks[1]) would now report a double free
    expectCorruption(heap, `slot ${slot}`);
  }, TIMEOUT);

  it('an allocated block whose state byte says PENDING although no remote list holds it', () => {
    const { heap, slot, blocks } = withLocalList();
    const { u8, stateOf } = raw(heap);
    u8[stateOf(blocks[1])] = ST_PENDING;
    expectCorruption(heap, `slot ${slot}`);
  }, TIMEOUT);

  it('a state byte kept in the slab meta (a class with few blocks per slab) overwritten', () => {
    const heap = fresh();
    const blocks = Array.from({ length: 3 }, () => heap.malloc(20000));
    heap.free(blocks[1]);
    heap.flush();
    heap.check();
    const { u8, stateOf } = raw(heap);
    u8[stateOf(blocks[1])] = ST_ALLOCATED; // a free block, back in its slab
    expectCorruption(heap, `slot ${blocks[1] >>> SLOT_SHIFT}`);
  }, TIMEOUT);
});

describe('magazines', () => {
  it('a magazine top below its base, past its end, or huge', () => {
    const cls = classOf(48);
    for (const delta of [-4, 1, 1 << 12, 1 << 24]) {
      const heap = fresh();
      heap.malloc(48);
      const { i32, thread } = raw(heap);
      const topW = thread(0) + TH_TOP + cls;
      i32[topW] = delta === -4 ? i32[topW] - 1000 : i32[topW] + delta;
      expectCorruption(heap, 'thread 0', `class ${cls}`);
    }
  }, TIMEOUT);

  it('a block cached twice', () => {
    const heap = fresh();
    heap.malloc(48);
    const { i32, thread } = raw(heap);
    const topW = thread(0) + TH_TOP + classOf(48);
    const top = i32[topW];
    i32[top - 4] = i32[top - 2]; // the entry below the top now repeats it
    i32[top - 3] = i32[top - 1];
    const err = expectCorruption(heap, 'thread 0');
    expect(err.message).toContain(hex(i32[top - 2]));
  }, TIMEOUT);

  it('a magazine entry that is not a block of its class', () => {
    const heap = fresh();
    heap.malloc(48);
    const other = heap.malloc(100);
    const { i32, thread } = raw(heap);
    const top = i32[thread(0) + TH_TOP + classOf(48)];
    i32[top - 2] = other;
    expectCorruption(heap, 'thread 0', hex(other));
  }, TIMEOUT);
});

describe('the pool: Stage-1 lists, SuperSlab masks, slot metas, abandoned lists', () => {
  /** Two or more EMPTY slabs of the 4096-byte class waiting in Stage 1. */
  function withStage1(): { heap: SharedHeap; cls: number; first: number; second: number } {
    const heap = fresh();
    const cls = classOf(4096);
    const blocks = Array.from({ length: 3 * COUNT[cls] }, () => heap.malloc(4096));
    for (const b of blocks) heap.free(b);
    heap.flush();
    heap.check();
    const { i32, meta } = raw(heap);
    expect(heap.stats().classes[cls].stage1Slabs).toBeGreaterThanOrEqual(2);
    const first = Atomics.load(i32, S1_HEAD_W + cls) & S1_SLOT_MASK;
    const second = i32[meta(first) + SM_POOL_NEXT];
    expect(second).toBeGreaterThan(0);
    return { heap, cls, first, second };
  }

  it('a cycle in a Stage-1 list', () => {
    const { heap, cls, first, second } = withStage1();
    const { i32, meta } = raw(heap);
    Atomics.store(i32, meta(second) + SM_POOL_NEXT, first);
    expectCorruption(heap, `Stage-1 list of class ${cls}`, 'twice');
  }, TIMEOUT);

  it('a Stage-1 list that points at itself', () => {
    const { heap, cls, first } = withStage1();
    const { i32, meta } = raw(heap);
    Atomics.store(i32, meta(first) + SM_POOL_NEXT, first);
    expectCorruption(heap, `Stage-1 list of class ${cls}`);
  }, TIMEOUT);

  it('a Stage-1 slab whose depth disagrees with the list after it', () => {
    {
      const { heap, cls, first } = withStage1();
      const { i32, meta } = raw(heap);
      Atomics.add(i32, meta(first) + SM_POOL_DEPTH, 1); // the head: the list's count
      expectCorruption(heap, `Stage-1 list of class ${cls}`, `slab ${first} says`);
    }
    {
      const { heap, cls, second } = withStage1();
      const { i32, meta } = raw(heap);
      Atomics.sub(i32, meta(second) + SM_POOL_DEPTH, 1);
      expectCorruption(heap, `Stage-1 list of class ${cls}`, `slab ${second} says`);
    }
  }, TIMEOUT);

  it('a Stage-1 list holding an owned slab, a slab of another class, or a slot outside the heap', () => {
    {
      const { heap, cls } = withStage1();
      const owned = heap.malloc(48) >>> SLOT_SHIFT; // a slab the thread owns
      const { i32, meta } = raw(heap);
      const last = (() => {
        let s = Atomics.load(i32, S1_HEAD_W + cls) & S1_SLOT_MASK;
        while (i32[meta(s) + SM_POOL_NEXT] !== 0) s = i32[meta(s) + SM_POOL_NEXT];
        return s;
      })();
      Atomics.store(i32, meta(last) + SM_POOL_NEXT, owned);
      expectCorruption(heap, `Stage-1 list of class ${cls}`, `slot ${owned}`);
    }
    {
      const { heap, cls, first } = withStage1();
      const { i32 } = raw(heap);
      const otherCls = classOf(48);
      Atomics.store(i32, S1_HEAD_W + otherCls, first); // a slab of class `cls` on another class's list
      void cls;
      expectCorruption(heap, `Stage-1 list of class ${otherCls}`);
    }
    {
      const { heap, cls } = withStage1();
      const { i32 } = raw(heap);
      Atomics.store(i32, S1_HEAD_W + cls, 30000); // far beyond the carved heap
      expectCorruption(heap, `Stage-1 list of class ${cls}`, 'outside');
    }
  }, TIMEOUT);

  it('a pooled slab on no Stage-1 list', () => {
    const { heap, cls, first } = withStage1();
    const { i32, meta } = raw(heap);
    const second = i32[meta(first) + SM_POOL_NEXT];
    Atomics.store(i32, S1_HEAD_W + cls, second); // first is dropped from the list
    expectCorruption(heap, `slab ${first}`);
  }, TIMEOUT);

  it('a SuperSlab free mask that disagrees with its slots, or has stray bits', () => {
    {
      const heap = fresh();
      const p = heap.malloc(48);
      const { i32 } = raw(heap);
      const sup = p >>> SUPER_SHIFT;
      i32[SS_TABLE_W + sup] |= 1 << ((p >>> SLOT_SHIFT) & 15); // a used slot marked free
      expectCorruption(heap, `slot ${p >>> SLOT_SHIFT}`, 'free mask');
    }
    {
      const heap = fresh();
      const p = heap.malloc(48);
      const { i32 } = raw(heap);
      i32[SS_TABLE_W + (p >>> SUPER_SHIFT)] |= 1 << 20;
      expectCorruption(heap, `SuperSlab ${p >>> SUPER_SHIFT}`, 'stray');
    }
  }, TIMEOUT);

  it('a slot of unknown kind, a slab whose head or class is wrong, a bad span', () => {
    const cases: Array<(h: SharedHeap, p: number) => string> = [
      (h, p) => {
        raw(h).i32[raw(h).meta(p >>> SLOT_SHIFT) + SM_KIND] = 9;
        return `slot ${p >>> SLOT_SHIFT}`;
      },
      (h, p) => {
        raw(h).i32[raw(h).meta(p >>> SLOT_SHIFT) + SM_HEAD] = (p >>> SLOT_SHIFT) + 1;
        return `slot ${p >>> SLOT_SHIFT}`;
      },
      (h, p) => {
        raw(h).i32[raw(h).meta(p >>> SLOT_SHIFT) + SM_CLS1] = NUM_CLASSES + 3 + 1;
        return `slot ${p >>> SLOT_SHIFT}`;
      },
      (h, p) => {
        raw(h).i32[raw(h).meta(p >>> SLOT_SHIFT) + SM_SPAN] = 0;
        return `slot ${p >>> SLOT_SHIFT}`;
      },
      (h, p) => {
        raw(h).i32[raw(h).meta(p >>> SLOT_SHIFT) + SM_SPAN] = 1 << 24;
        return `slot ${p >>> SLOT_SHIFT}`;
      },
    ];
    for (const corrupt of cases) {
      const heap = fresh();
      const p = heap.malloc(48);
      const where = corrupt(heap, p);
      expectCorruption(heap, where);
    }
  }, TIMEOUT);

  it('a slot of a multi-slot slab that disagrees with the head of its slab', () => {
    let cls = 0;
    while (cls < NUM_CLASSES && SPAN[cls] < 2) cls++;
    expect(cls).toBeLessThan(NUM_CLASSES);
    const heap = fresh();
    const p = heap.malloc(SIZE[cls]);
    const head = p >>> SLOT_SHIFT;
    const { i32, meta } = raw(heap);
    i32[meta(head + 1) + SM_CLS1] = (cls === 0 ? 1 : 0) + 1;
    expectCorruption(heap, `slot ${head + 1}`);
  }, TIMEOUT);

  it('an UNUSED slot with a class', () => {
    const heap = fresh();
    const p = heap.malloc(48);
    const { i32, meta } = raw(heap);
    const sup = p >>> SUPER_SHIFT;
    const mask = i32[SS_TABLE_W + sup];
    const k = 31 - Math.clz32(mask); // a free slot of the SuperSlab
    const slot = (sup << (SUPER_SHIFT - SLOT_SHIFT)) + k;
    expect(i32[meta(slot) + SM_KIND]).toBe(K_FREE);
    i32[meta(slot) + SM_CLS1] = 3 + 1;
    expectCorruption(heap, `slot ${slot}`);
  }, TIMEOUT);

  it('a cycle in an abandoned list', () => {
    const heap = fresh();
    const p = heap.malloc(48);
    const slot = p >>> SLOT_SHIFT;
    const cls = classOf(48);
    const { i32, meta } = raw(heap);
    i32[ABANDONED_W + cls] = slot;
    i32[meta(slot) + SM_ABANDON_LISTED] = 1;
    i32[meta(slot) + SM_ABANDON_NEXT] = slot;
    expectCorruption(heap, `abandoned list of class ${cls}`, `slot ${slot}`);
  }, TIMEOUT);
});

describe('large runs and the header', () => {
  it('a large run not marked live', () => {
    const heap = fresh();
    const p = heap.malloc(300_000);
    const { i32, meta } = raw(heap);
    i32[meta(p >>> SLOT_SHIFT) + SM_LARGE] = 0;
    expectCorruption(heap, `slot ${p >>> SLOT_SHIFT}`, 'live');
  }, TIMEOUT);

  it('live large bytes that disagree with the runs', () => {
    const heap = fresh();
    heap.malloc(300_000);
    raw(heap).f64[F_LARGE_HELD_BYTES] += 65536;
    expectCorruption(heap, 'large runs');
  }, TIMEOUT);

  it('a lock word out of range', () => {
    const heap = fresh();
    heap.malloc(16);
    Atomics.store(raw(heap).i32, G_LOCK, 7);
    expectCorruption(heap, 'lock word is 7');
  }, TIMEOUT);

  it('a carved count beyond the buffer', () => {
    const heap = fresh();
    heap.malloc(16);
    const { i32 } = raw(heap);
    Atomics.store(i32, G_CARVED, i32[G_BUFFER_SUPERS] + 5);
    expectCorruption(heap, 'header', 'carved');
  }, TIMEOUT);
});

describe('thread slots', () => {
  it('a slot in use whose threadId is gone, and a count of slots ever used that leaves the caller out', () => {
    const heap = fresh();
    const { i32, thread } = raw(heap);
    const tid = heap.stats().threads.find((t) => t.state === 'attached')!.tid;
    i32[thread(tid) + TH_THREAD_ID] = 0;
    expectCorruption(heap, `thread ${tid}`, 'no threadId');
    i32[thread(tid) + TH_THREAD_ID] = heap.threadId + 1;
    heap.check();
    i32[G_SLOTS_USED] = 0;
    expectCorruption(heap, 'thread slots ever used');
    i32[G_SLOTS_USED] = tid + 1;
    heap.check();
  }, TIMEOUT);
});

describe('never hangs, never throws anything else', () => {
  /** A heap with slabs of many classes (owned, partial, pooled), cached blocks and large runs. */
  function busyHeap(): SharedHeap {
    const heap = fresh({ initialBytes: 8 * MiB, stage1Keep: 2 });
    const keep: number[] = [];
    let x = 12345;
    for (let i = 0; i < 4000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      const size = x % 16 === 0 ? 8192 + (x % 30000) : x % 1500;
      const p = heap.malloc(size);
      if (x % 3 === 0) heap.free(p);
      else keep.push(p);
    }
    keep.push(heap.malloc(200_000), heap.malloc(1_500_000));
    for (let i = 0; i < keep.length; i += 4) heap.free(keep[i]);
    heap.flush();
    for (let i = 1; i < keep.length; i += 8) heap.free(keep[i]); // some cached again
    heap.check();
    return heap;
  }

  it('random single-word corruptions of the metadata: HeapCorruptionError or a pass, quickly', () => {
    let x = 987654321;
    const rand = (): number => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0);
    const values = (old: number): number[] => [0, 1, -1, 2, 3, old + 1, old - 1, old ^ 0x10, 0x7fffffff, -0x80000000, rand() | 0];
    let detected = 0;
    const trials = Number(process.env.CHECK_FUZZ_TRIALS ?? 2000);
    const heap0 = busyHeap();
    const { geo } = raw(heap0);
    const carved = heap0.stats().carvedBytes >>> SUPER_SHIFT;
    // the words that matter: header, SuperSlab table, slot metas of carved slots, thread 0's area
    const regions: Array<[number, number]> = [
      [0, HEADER_WORDS + carved],
      [geo.slotMetaW, geo.slotMetaW + ((carved << (SUPER_SHIFT - SLOT_SHIFT)) << SM_SHIFT)],
      [geo.threadsW, geo.threadsW + geo.threadWords],
    ];
    const i32 = new Int32Array(heap0.buffer);
    for (let t = 0; t < trials; t++) {
      const [lo, hi] = regions[rand() % regions.length];
      const w = lo + (rand() % (hi - lo));
      const old = i32[w];
      const vs = values(old);
      i32[w] = vs[rand() % vs.length];
      const t0 = performance.now();
      try {
        heap0.check();
      } catch (e) {
        if (!(e instanceof HeapCorruptionError)) {
          throw new Error(`trial ${t}: word ${w} = ${i32[w]} (was ${old}): check() threw ${String(e)}`);
        }
        detected++;
      } finally {
        i32[w] = old; // check() only reads: one word put back restores the heap
      }
      const ms = performance.now() - t0;
      if (ms > 2000) throw new Error(`trial ${t}: word ${w}: check() took ${ms.toFixed(0)} ms`);
    }
    heap0.check();
    expect(detected).toBeGreaterThan(trials / 10);
  }, 60_000);
});
