/**
 * An offset in a slab's tail (the bytes after its last block, too few for another) names what it
 * is, "past a slab's last block", whether or not it falls on a multiple of the block size from the
 * slab's data: classifyBlock tested "interior to a block" first, so an offset of the tail that is
 * not such a multiple was called interior to a block that does not exist (an audit, 2026-12-07:
 * 0xfff0 into a slab of 3072-byte blocks). Both modes, free, realloc and usableSize; nothing changes.
 */
import { describe, expect, it } from 'vitest';
import { InvalidPointerError, SharedHeap } from '../src/index.js';
import { SLOT_BYTES } from '../src/layout.js';
import { DEBUG_EXTRA } from '../src/debug.js';
import { COUNT, HDR, SIZE, SPAN, classOf } from '../src/size-classes.js';

/** Classes whose slab tail holds an offset that is 16-aligned and not a block-size multiple from the data. */
function tailOffsets(size: number): number[] {
  const cls = classOf(size);
  const end = SPAN[cls] * SLOT_BYTES;
  const dataEnd = HDR[cls] + COUNT[cls] * SIZE[cls];
  const out: number[] = [];
  for (let off = dataEnd; off < end; off += 16) out.push(off);
  return out;
}

describe("a pointer into a slab's tail", () => {
  for (const debug of [false, true]) {
    it(`is called past the slab's last block (${debug ? 'debug' : 'default'} mode)`, () => {
      const size = 3072;
      const offs = tailOffsets(size);
      // The case the audit met: some tail offset that is not a multiple of the block size.
      expect(offs.some((o) => (o - HDR[classOf(size)]) % SIZE[classOf(size)] !== 0)).toBe(true);
      const heap = SharedHeap.create({ initialBytes: 8 << 20, debug });
      const want = debug ? size - DEBUG_EXTRA : size; // debug mode's block holds its record besides
      const p = heap.malloc(want);
      heap.u8.fill(7, p, p + want);
      const start = p - (p % (SPAN[classOf(size)] * SLOT_BYTES));
      for (const off of offs) {
        const q = start + off;
        for (const call of [() => heap.free(q), () => heap.usableSize(q), () => heap.realloc(q, 10)]) {
          let err: unknown;
          try {
            call();
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(InvalidPointerError);
          expect((err as Error).message).toContain("past a slab's last block");
        }
      }
      expect(heap.u8.subarray(p, p + want).every((b) => b === 7)).toBe(true);
      heap.check();
      heap.free(p);
      heap.check();
      heap.detach();
    });
  }
});

describe('alignedAlloc with bad arguments', () => {
  it('gives the same error in both modes (debug mode checked size before align)', () => {
    const cases: Array<[unknown, unknown]> = [[Number.NaN, Number.NaN], [3, -1], [-1, 3], [0, 0.5], [2 ** 21, 'x'], ['x', 2 ** 40]];
    const messages = (debug: boolean): string[] => {
      const heap = SharedHeap.create({ initialBytes: 8 << 20, debug });
      const out = cases.map(([a, n]) => {
        try {
          heap.alignedAlloc(a as number, n as number);
          return 'no error';
        } catch (e) {
          return `${(e as Error).name}: ${(e as Error).message}`;
        }
      });
      heap.check();
      heap.detach();
      return out;
    };
    const plain = messages(false);
    expect(plain[0]).toMatch(/^RangeError: alignedAlloc\(align\)/);
    expect(plain[1]).toMatch(/^RangeError: alignedAlloc\(size\)/);
    expect(messages(true)).toEqual(plain);
  });
});
