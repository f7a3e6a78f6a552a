/**
 * Child process of test/footprint.test.ts: one heap (so that its buffer is a mapping of its own),
 * a mixed single-thread run, then the kernel's resident size of the buffer's mapping (smaps Rss,
 * which leaves out pages only read, mapped to the shared zero page) next to the heap's stats.
 * Prints `RESULT {json}`. Arguments: "full" writes every usable byte of each block, "ends" one
 * byte at each end (as the trace replay does); then, optionally, create()'s options as JSON
 * (test/footprint.test.ts, a large magazineCapacity), by default a fixed heap of 93 MiB.
 */
import { SharedHeap, type HeapOptions } from '../src/index.js';
import { KiB, MiB, rng } from './fixtures.js';
import { residentBytes } from './smaps.js';

const mode = process.argv[2] ?? 'full';
const options = JSON.parse(process.argv[3] ?? 'null') as HeapOptions | null;
const heap = SharedHeap.create(options ?? { initialBytes: 93 * MiB, maxBytes: 93 * MiB });
const atStart = { resident: residentBytes(heap.buffer), footprint: heap.stats().footprintBytes };
// stats() and check() read the heap; they must not make pages resident (they once read every
// thread slot's area, 63 pages that no thread had used, here of a heap with 64 thread slots).
for (let i = 0; i < 3; i++) {
  heap.stats();
  heap.check();
}
const afterInspect = residentBytes(heap.buffer);
const next = rng(7);
const live: number[] = [];
const touch = (p: number): void => {
  const n = heap.usableSize(p);
  if (mode === 'full') heap.u8.fill(0xa5, p, p + n);
  else {
    heap.u8[p] = 1;
    heap.u8[p + n - 1] = 1;
  }
};
for (let i = 0; i < 40_000; i++) {
  const r = next() % 100;
  const size = next() % 100 < 97 ? 1 + (next() % (r < 50 ? 512 : 24 * KiB)) : 130 * KiB + (next() % (170 * KiB));
  if (live.length > 0 && r < 45) {
    const k = next() % live.length;
    heap.free(live[k]!);
    live[k] = live[live.length - 1]!;
    live.pop();
  } else if (live.length > 0 && r < 55) {
    const k = next() % live.length;
    live[k] = heap.realloc(live[k]!, size);
    touch(live[k]!);
  } else {
    const p = r < 60 ? heap.calloc(1, size) : heap.malloc(size);
    touch(p);
    live.push(p);
  }
}
heap.check();
const s = heap.stats();
const out = {
  atStart,
  afterInspect,
  resident: residentBytes(heap.buffer),
  footprint: s.footprintBytes,
  peakFootprint: s.peakFootprintBytes,
  carved: s.carvedBytes,
  live: s.liveBytes,
};
console.log('RESULT ' + JSON.stringify(out));
