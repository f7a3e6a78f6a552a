/** bench/slab-model.ts, the ideal-slab floor docs/performance.md "What falls short (full text)" quotes, on traces small enough to count by hand. */
import { describe, expect, it } from 'vitest';
import { parseTrace } from '../bench/replay.js';
import { classShapes, modelTrace } from '../bench/slab-model.js';
import { SLOT_BYTES } from '../src/layout.js';
import { COUNT, SIZE, SPAN, classOf } from '../src/size-classes.js';

describe('slab model', () => {
  it('counts one slab per class in use, and gives a slab back the moment it empties', () => {
    const c40 = classOf(40_000);
    expect([SPAN[c40], COUNT[c40]]).toEqual([1, 1]); // one 40 KiB block a slot
    const lines = ['a 1 40000', 'a 2 40000', 'a 3 100', 'f 1', 'f 2', 'a 4 40000', 'f 3', 'f 4'];
    const r = modelTrace(parseTrace(lines.join('\n')), classShapes());
    expect(r.peakSlots).toBe(3); // two 40 KiB slabs and a small one; block 4 reuses a slot given back
    expect(r.peakLiveBytes).toBe(80_100);
    expect(r.sumOfClassPeaks).toBe(2 * SIZE[c40]! + SIZE[classOf(100)]!);
  });

  it('fills the lowest slab with room first, so a class needs only the slabs its live blocks fill', () => {
    const c = classOf(4000);
    const per = COUNT[c]!;
    const lines: string[] = [];
    for (let i = 0; i < 3 * per; i++) lines.push(`a ${i} 4000`);
    for (let i = 0; i < 3 * per; i += 3) lines.push(`f ${i}`); // a third freed, spread over all three slabs
    for (let i = 0; i < 3 * per; i += 3) lines.push(`a ${i} 4000`); // refilled in place: no new slab
    const r = modelTrace(parseTrace(lines.join('\n')), classShapes());
    expect(r.peakSlots).toBe(3 * SPAN[c]!);
  });

  it('takes other classes above a size: N per doubling, the fewest slots that hold a block', () => {
    const shape = classShapes(4096, 2);
    expect(shape(5000).usable).toBe(6144);
    expect(shape(7000).usable).toBe(8192);
    expect(shape(70_000).span).toBe(2);
    expect(shape(70_000).count).toBe(Math.floor((2 * SLOT_BYTES) / shape(70_000).usable));
    expect(shape(100).usable).toBe(SIZE[classOf(100)]);
  });
});
