/**
 * Child process of test/debug-large-fresh.test.ts: a debug-mode heap (its buffer a mapping of its
 * own), then the kernel's resident size of the buffer (test/smaps.ts) around malloc of a large
 * block on slots no block used before, and around its free and malloc again. Prints `RESULT {json}`.
 */
import { SharedHeap } from '../src/index.js';
import { MiB } from './fixtures.js';
import { residentBytes } from './smaps.js';

const size = 40 * MiB;
const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxBytes: 64 * MiB, debug: true });
heap.free(heap.malloc(100)); // the first slab and its metadata
const before = residentBytes(heap.buffer);
const p = heap.malloc(size);
const afterFresh = residentBytes(heap.buffer);
heap.u8.fill(0x5a, p, p + size);
heap.free(p);
const q = heap.malloc(size);
let kept = true; // debug mode's marks of the last life are gone, the program's bytes as they were
for (let b = q; b < q + size; b += 4096) if (heap.u8[b + 1] !== 0x5a) kept = false;
heap.check();
heap.free(q);
heap.check();
console.log('RESULT ' + JSON.stringify({ size, p, q, before, afterFresh, kept }));
