/** bench/page-model.ts, the touched-page model docs/performance.md "What falls short (full text)" quotes, on traces small enough to count by hand. */
import { describe, expect, it } from 'vitest';
import { parseTrace } from '../bench/replay.js';
import { modelPages } from '../bench/page-model.js';
import { PAGE_BYTES } from '../src/layout.js';
import { SIZE, classOf } from '../src/size-classes.js';

const model = (lines: string[], o: Parameters<typeof modelPages>[1] = {}): ReturnType<typeof modelPages> =>
  modelPages(parseTrace(lines.join('\n')), o);

describe('page model', () => {
  it('lets a run of pages freed by one size serve another, where slabs of one size cannot', () => {
    const lines = ['a 1 8000', 'a 2 8000', 'f 1', 'a 3 4100'];
    // Runs: blocks 1 and 2 take pages 0-1 and 2-3; block 3 (two pages) takes 0-1 again.
    expect(model(lines, { pagesFrom: 4097 }).touchedBytes).toBe(4 * PAGE_BYTES);
    // Slabs: the 8 KiB slab still holds block 2, so block 3 starts a slab of its own class.
    expect(classOf(4100)).not.toBe(classOf(8000));
    expect(model(lines).touchedBytes).toBe(4 * PAGE_BYTES + Math.ceil(SIZE[classOf(4100)]! / PAGE_BYTES) * PAGE_BYTES);
  });

  it('grows a run into the free pages after it, and moves it when they are taken', () => {
    const inPlace = model(['a 1 5000', 'r 1 9000'], { pagesFrom: 4097 });
    expect(inPlace.reallocMoves).toBe(0);
    expect(inPlace.touchedBytes).toBe(3 * PAGE_BYTES);
    const moved = model(['a 1 5000', 'a 2 5000', 'r 1 9000'], { pagesFrom: 4097 });
    expect(moved.reallocMoves).toBe(1);
    expect(moved.reallocCopiedBytes).toBe(2 * PAGE_BYTES); // the old run's usable bytes
  });

  it('shrinks a run in place and gives its tail pages back', () => {
    const r = model(['a 1 9000', 'r 1 5000', 'a 2 4000'], { pagesFrom: 4000 });
    expect(r.reallocMoves).toBe(0);
    expect(r.touchedBytes).toBe(3 * PAGE_BYTES); // block 2 takes the page block 1 gave back
  });

  it('keeps freed blocks in a per-class cache, which other sizes cannot use until a drain', () => {
    const lines = ['a 1 12000', 'f 1', 'a 2 8000'];
    expect(model(lines, { pagesFrom: 4097 }).touchedBytes).toBe(3 * PAGE_BYTES);
    expect(model(lines, { pagesFrom: 4097, cacheEntries: 4, cacheBytes: 1 << 20 }).touchedBytes).toBe(5 * PAGE_BYTES);
    expect(model(lines, { pagesFrom: 4097, cacheEntries: 4, cacheBytes: 1 << 20, drainInterval: 1 }).touchedBytes).toBe(3 * PAGE_BYTES);
  });

  it("moves a class block as sabmalloc's realloc does: kept down to a quarter, room when it grows", () => {
    const c = classOf(100);
    expect(50).toBeGreaterThan(SIZE[c]! / 4);
    expect(20).toBeLessThanOrEqual(SIZE[c]! / 4);
    const r = model(['a 1 100', 'r 1 50', 'r 1 20', 'r 1 2000', 'r 1 3900']);
    // 50 stays, 20 moves (copies 20), 2000 moves with room for 4000 (copies the 20-byte class's
    // usable size), 3900 fits that room.
    expect(r.reallocMoves).toBe(2);
    expect(r.reallocCopiedBytes).toBe(20 + SIZE[classOf(20)]!);
  });
});
