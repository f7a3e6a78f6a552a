/**
 * Child process of test/calloc-clean.test.ts: one heap (its buffer a mapping of its own), then the
 * kernel's resident size of the buffer (test/smaps.ts) around calloc of blocks that come fresh from
 * the buffer, and of blocks freed and taken again. Prints `RESULT {json}`; argv[2]: the block size.
 */
import { SharedHeap } from '../src/index.js';
import { MiB } from './fixtures.js';
import { residentBytes } from './smaps.js';

const size = Number(process.argv[2]);
const n = Math.floor((8 * MiB) / size);
const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxBytes: 64 * MiB });
const allZero = (ps: number[]): boolean => {
  const u8 = heap.u8;
  for (const p of ps) for (let b = p; b < p + size; b++) if (u8[b] !== 0) return false;
  return true;
};
heap.free(heap.calloc(1, size)); // the first slab and its metadata
const before = residentBytes(heap.buffer);
const fresh: number[] = [];
for (let i = 0; i < n; i++) fresh.push(heap.calloc(1, size));
const afterFresh = residentBytes(heap.buffer);
for (const p of fresh) heap.free(p);
const again: number[] = [];
for (let i = 0; i < n; i++) again.push(heap.calloc(1, size));
const afterAgain = residentBytes(heap.buffer);
// Read only now: a page read counts in Rss too (test/footprint.test.ts).
const zero = allZero(again);
const reused = again.filter((p) => fresh.includes(p)).length;
heap.check();
console.log('RESULT ' + JSON.stringify({ n, bytes: n * size, before, afterFresh, afterAgain, zero, reused }));
