/**
 * The room realloc gives a block that grows (alloc.ts reallocRequest): twice the size for a block
 * that grows out of the smallest class to at most 32 bytes, and for one that grows past
 * REALLOC_SLACK_FROM (up to REALLOC_SLACK_TO); exactly the size in between, where the room cost
 * gawk_records' footprint its goal. The fast path (heap.ts realloc) and reallocImpl (reached by
 * the misses) ask the same function. (Debug mode's usableSize answers the requested size.)
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { REALLOC_SLACK_FROM, REALLOC_SLACK_TO, reallocRequest } from '../src/alloc.js';
import { MiB, fillPattern, firstWrong } from './fixtures.js';

const make = (): SharedHeap => SharedHeap.create({ initialBytes: 8 * MiB, maxBytes: 32 * MiB, maxThreads: 2 });

describe('realloc: room to grow', () => {
  it('asks twice the size out of the smallest class up to 32 bytes and past REALLOC_SLACK_FROM, else the size', () => {
    expect(reallocRequest(17, 16)).toBe(34);
    expect(reallocRequest(32, 16)).toBe(64);
    expect(reallocRequest(33, 16)).toBe(33);
    expect(reallocRequest(64, 32)).toBe(64);
    expect(reallocRequest(REALLOC_SLACK_FROM, 256)).toBe(REALLOC_SLACK_FROM);
    expect(reallocRequest(REALLOC_SLACK_FROM + 1, 512)).toBe(2 * REALLOC_SLACK_FROM + 2);
    expect(reallocRequest(REALLOC_SLACK_TO / 2 + 16, REALLOC_SLACK_TO / 2)).toBe(REALLOC_SLACK_TO);
    expect(reallocRequest(REALLOC_SLACK_TO + 16, REALLOC_SLACK_TO)).toBe(REALLOC_SLACK_TO + 16);
    expect(reallocRequest(16, 32)).toBe(16); // fits: no room asked
  });

  it('a 16-byte block doubled twice moves once, its bytes kept', () => {
    const h = make();
    const p = h.malloc(16);
    expect(h.usableSize(p)).toBe(16);
    fillPattern(h, p, 16, 3);
    const q = h.realloc(p, 32);
    expect(q).not.toBe(p);
    expect(h.usableSize(q)).toBe(64);
    expect(firstWrong(h, q, 16, 3)).toBe(-1);
    fillPattern(h, q, 32, 4);
    expect(h.realloc(q, 64)).toBe(q); // the second doubling in place
    expect(firstWrong(h, q, 32, 4)).toBe(-1);
    // Past 32 bytes (and below REALLOC_SLACK_FROM): exactly the size again.
    const r = h.realloc(q, 128);
    expect(h.usableSize(r)).toBe(128);
    expect(firstWrong(h, r, 32, 4)).toBe(-1);
    h.free(r);
    h.check();
  });
});
