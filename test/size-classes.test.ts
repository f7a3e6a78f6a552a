/**
 * Size classes (src/size-classes.ts): every request size maps to a class that holds it with the
 * stated worst-case waste, slab geometry is sane, the division used by free()'s fast path gives
 * exact block indices, and alignedClassOf picks the smallest class that is aligned enough.
 */
import { describe, expect, it } from 'vitest';
import { CLASS_SLOTS, SLOTS_PER_SUPER, SLOT_BYTES, SM_STATE_BYTES } from '../src/layout.js';
import {
  ALIGN, CLASS_OF_GRANULE, COUNT, DIV_INV, DIV_MASK, DIV_SHIFT, FREE_DIV, HDR, MAX_SMALL, META_STATES, NUM_CLASSES, PER_DOUBLING, REGION_SHIFT, SIZE, SPAN,
  alignedClassOf, classOf, slabBytes,
  STEP16_FROM,
  STEP16_TO,
  FINE_TO,
  FIRST_WIDE_CLASS,
  TWO_PER_DOUBLING_FROM,
  TWO_PER_DOUBLING_TO,
  FEWEST_SLOTS_FROM,
} from '../src/size-classes.js';

const classes = Array.from({ length: NUM_CLASSES }, (_, cls) => [cls, SIZE[cls]] as const);

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

describe('class sizes', () => {
  it('are strictly increasing multiples of 16 from 16 up to MAX_SMALL', () => {
    expect(SIZE.length).toBe(NUM_CLASSES);
    expect(NUM_CLASSES).toBeLessThanOrEqual(CLASS_SLOTS); // per-class arrays of the layout
    expect(SIZE[0]).toBe(16);
    expect(SIZE[NUM_CLASSES - 1]).toBe(MAX_SMALL);
    for (let cls = 0; cls < NUM_CLASSES; cls++) {
      expect(SIZE[cls] % 16, `class ${cls}`).toBe(0);
      if (cls > 0) expect(SIZE[cls], `class ${cls}`).toBeGreaterThan(SIZE[cls - 1]);
    }
  });

  it('have steps of 16 up to 128 and from STEP16_FROM to STEP16_TO, eight per doubling from there to FINE_TO, two from TWO_PER_DOUBLING_FROM to TWO_PER_DOUBLING_TO, four elsewhere', () => {
    const all = Array.from(SIZE);
    for (let s = 16; s <= 128; s += 16) expect(all).toContain(s);
    for (let s = STEP16_FROM + 16; s <= STEP16_TO; s += 16) expect(all).toContain(s);
    for (let base = 128; base < MAX_SMALL; base *= 2) {
      const n = all.filter((s) => s > base && s <= 2 * base).length;
      const want = base === STEP16_FROM ? STEP16_FROM / 16 : base >= STEP16_TO && base < FINE_TO ? 8 : base >= TWO_PER_DOUBLING_FROM && base < TWO_PER_DOUBLING_TO ? 2 : 4;
      expect(n, `classes in (${base}, ${2 * base}]`).toBe(want);
    }
  });

  it('PER_DOUBLING says how many classes share each class\'s doubling', () => {
    for (let cls = 0; cls < NUM_CLASSES; cls++) {
      const size = SIZE[cls];
      const want = size <= 128 ? 8 : size > TWO_PER_DOUBLING_FROM && size <= TWO_PER_DOUBLING_TO ? 2 : undefined;
      if (want !== undefined) expect(PER_DOUBLING[cls], `class ${cls} (${size})`).toBe(want);
      // the classes of one doubling (base, 2 * base] are PER_DOUBLING of them
      const base = 2 ** Math.ceil(Math.log2(size)) / 2;
      if (size > 128) expect(Array.from(SIZE).filter((s) => s > base && s <= 2 * base).length, `class ${cls} (${size})`).toBe(PER_DOUBLING[cls]);
    }
  });

  it('for every size 0..MAX_SMALL, classOf gives the smallest class that holds it, with the stated waste', () => {
    const failures: string[] = [];
    for (let size = 0; size <= MAX_SMALL; size++) {
      const cls = classOf(size);
      const usable = SIZE[cls];
      if (!(cls >= 0 && cls < NUM_CLASSES)) failures.push(`size ${size}: class ${cls}`);
      else if (usable < size) failures.push(`size ${size}: class ${cls} holds only ${usable}`);
      else if (cls > 0 && SIZE[cls - 1] >= size) failures.push(`size ${size}: class ${cls - 1} (${SIZE[cls - 1]}) would do`);
      // size 0 takes the smallest class (tested below)
      else if (size > 0 && (size <= 128 || (size > STEP16_FROM && size <= STEP16_TO)) && usable - size > 15) failures.push(`size ${size}: ${usable - size} bytes wasted (> 15)`);
      else if (size > STEP16_TO && size <= FINE_TO && !(usable < 1.125 * size)) failures.push(`size ${size}: usable ${usable} >= 1.125 * size`);
      else if (size > TWO_PER_DOUBLING_FROM && size <= 2 * TWO_PER_DOUBLING_FROM && !(usable < 1.6 * size)) failures.push(`size ${size}: usable ${usable} >= 1.6 * size`);
      else if (size > 2 * TWO_PER_DOUBLING_FROM && size <= TWO_PER_DOUBLING_TO && !(usable < 1.5 * size)) failures.push(`size ${size}: usable ${usable} >= 1.5 * size`);
      else if (size > 128 && (size <= TWO_PER_DOUBLING_FROM || size > TWO_PER_DOUBLING_TO) && !(usable < 1.25 * size)) failures.push(`size ${size}: usable ${usable} >= 1.25 * size`);
      if (failures.length > 10) break;
    }
    expect(failures).toEqual([]);
  });

  it("holds SQLite's page-cache blocks (4,104-4,368 bytes) in the 5 KiB class, FIRST_WIDE_CLASS", () => {
    expect(SIZE[classOf(TWO_PER_DOUBLING_FROM + 1)]).toBe(FIRST_WIDE_CLASS);
    for (const size of [4104, 4200, 4368, 5120]) expect(SIZE[classOf(size)], `size ${size}`).toBe(5120);
    expect(SIZE[classOf(5121)]).toBe(8192);
  });

  it('maps size 0 to the 16-byte class (malloc(0) returns a real block)', () => {
    expect(classOf(0)).toBe(0);
    expect(SIZE[classOf(0)]).toBe(16);
  });

  it('CLASS_OF_GRANULE covers every 16-byte granule up to MAX_SMALL', () => {
    expect(CLASS_OF_GRANULE.length).toBe((MAX_SMALL >>> 4) + 1);
    for (let g = 1; g < CLASS_OF_GRANULE.length; g++) {
      const cls = CLASS_OF_GRANULE[g];
      expect(SIZE[cls]).toBeGreaterThanOrEqual(g * 16);
      if (cls > 0) expect(SIZE[cls - 1]).toBeLessThan(g * 16);
    }
  });
});

describe('slab geometry', () => {
  it.each(classes)('class %i (%i bytes): span, header, count and tail fit the slab', (cls, size) => {
    const span = SPAN[cls];
    const bytes = span * SLOT_BYTES;
    expect(isPowerOfTwo(span)).toBe(true);
    expect(span).toBeLessThanOrEqual(SLOTS_PER_SUPER); // a slab never crosses a SuperSlab
    expect(slabBytes(cls)).toBe(bytes);
    expect(COUNT[cls]).toBeGreaterThanOrEqual(1);
    if (META_STATES[cls] !== 0) {
      // state bytes in the head slot's meta entry: they fit there, and the blocks start the slab
      expect(COUNT[cls]).toBeLessThanOrEqual(SM_STATE_BYTES);
      expect(HDR[cls]).toBe(0);
      expect(COUNT[cls] * size).toBeLessThanOrEqual(bytes);
      expect((COUNT[cls] + 1) * size).toBeGreaterThan(bytes); // no room for one more block
    } else {
      // the header holds one state byte per block and keeps blocks 16-byte aligned
      expect(HDR[cls]).toBeGreaterThanOrEqual(COUNT[cls]);
      expect(HDR[cls] % 16).toBe(0);
      expect(HDR[cls] + COUNT[cls] * size).toBeLessThanOrEqual(bytes);
      // no room for one more block (with its state byte, at the least padding)
      expect(Math.ceil((COUNT[cls] + 1) / 16) * 16 + (COUNT[cls] + 1) * size).toBeGreaterThan(bytes);
    }
    if (size >= FEWEST_SLOTS_FROM) {
      // the fewest slots that hold a block (the unused tail is never touched)
      expect(bytes).toBeGreaterThanOrEqual(size);
      expect(span === 1 || (span / 2) * SLOT_BYTES < size).toBe(true);
    } else {
      // at least 85% of the slab holds blocks (regression bound; the worst class today is 87.5%)
      expect((COUNT[cls] * size) / bytes).toBeGreaterThanOrEqual(0.85);
    }
  });

  it.each(classes)('class %i (%i bytes): every block is aligned to ALIGN[cls]', (cls, size) => {
    const a = ALIGN[cls];
    expect(isPowerOfTwo(a)).toBe(true);
    expect(a).toBeGreaterThanOrEqual(16);
    // slabs start at a multiple of their span; try the first few positions in a SuperSlab and beyond
    for (const start of [0, 1, 2, 3, 17].map((k) => (SLOTS_PER_SUPER + k * SPAN[cls]) * SLOT_BYTES)) {
      for (let i = 0; i < COUNT[cls]; i++) {
        const block = start + HDR[cls] + i * size;
        if (block % a !== 0) throw new Error(`class ${cls}: block ${i} at ${block} is not ${a}-aligned`);
      }
    }
  });

  it('a slab\'s blocks fit in the 32 bits of SM_FREE_REGIONS, regions of at least 4 blocks (one word of states), and no wider than needed', () => {
    for (let cls = 0; cls < NUM_CLASSES; cls++) {
      const rs = REGION_SHIFT[cls]!;
      expect(rs, `class ${cls}`).toBeGreaterThanOrEqual(2);
      expect(Math.ceil(COUNT[cls]! / 2 ** rs), `class ${cls}: regions`).toBeLessThanOrEqual(32);
      if (rs > 2) expect(Math.ceil(COUNT[cls]! / 2 ** (rs - 1)), `class ${cls}: a narrower region fits too`).toBeGreaterThan(32);
    }
  });

  it('power-of-two classes up to 4 KiB are naturally aligned', () => {
    for (let cls = 0; cls < NUM_CLASSES; cls++) {
      if (isPowerOfTwo(SIZE[cls]) && SIZE[cls] <= 4096) expect(ALIGN[cls], `class ${cls}`).toBe(SIZE[cls]);
    }
  });
});

describe('exact division on free (FREE_DIV: DIV_SHIFT, DIV_INV, DIV_MASK, COUNT)', () => {
  // idx = imul(off >>> DIV_SHIFT, DIV_INV); a block start iff (off & DIV_MASK) === 0 and
  // idx >>> 0 < COUNT; the fast paths' form, imul(off, DIV_INV) rotated right by DIV_SHIFT, a
  // block start iff below COUNT. No test of off >= 0 in either: an offset into the slab header
  // (off < 0) must never pass. Checked for every byte offset of a slab, header included.
  it('FREE_DIV holds the DIV_SHIFT, DIV_INV, DIV_MASK and COUNT of each class side by side', () => {
    for (let cls = 0; cls < NUM_CLASSES; cls++) {
      expect([...FREE_DIV.subarray(cls * 4, cls * 4 + 4)]).toEqual([DIV_SHIFT[cls], DIV_INV[cls], DIV_MASK[cls], COUNT[cls]]);
    }
  });

  it.each(classes)('class %i (%i bytes): accepts exactly the block starts, with their exact index', (cls, size) => {
    const end = SPAN[cls] * SLOT_BYTES - HDR[cls];
    const d = cls * 4;
    for (let off = -HDR[cls]; off < end; off++) {
      const idx = Math.imul(off >>> FREE_DIV[d], FREE_DIV[d + 1]);
      const accepted = (off & FREE_DIV[d + 2]) === 0 && idx >>> 0 < FREE_DIV[d + 3];
      const isStart = off >= 0 && off % size === 0 && off / size < COUNT[cls];
      if (accepted !== isStart) throw new Error(`class ${cls}: offset ${off} accepted=${accepted}, block start=${isStart}`);
      if (isStart && idx !== off / size) throw new Error(`class ${cls}: block ${off / size} gives index ${idx}`);
      // The fast paths' form: multiply, rotate right, one test.
      const q = Math.imul(off, FREE_DIV[d + 1]);
      const rot = (q >>> FREE_DIV[d]!) | (q << (32 - FREE_DIV[d]!));
      const rotAccepted = rot >>> 0 < FREE_DIV[d + 3]!;
      if (rotAccepted !== isStart) throw new Error(`class ${cls}: offset ${off} accepted by the rotate=${rotAccepted}, block start=${isStart}`);
      if (isStart && rot !== off / size) throw new Error(`class ${cls}: block ${off / size} gives index ${rot} by the rotate`);
    }
  });
});

describe('alignedClassOf', () => {
  const aligns = Array.from({ length: 17 }, (_, k) => 1 << k); // 1 .. 64 KiB

  it('returns the smallest class that holds the size and is aligned enough, or -1', () => {
    const failures: string[] = [];
    const sizes: number[] = [];
    for (let s = 0; s <= 4096; s++) sizes.push(s);
    for (let s = 4096; s <= MAX_SMALL; s += 61) sizes.push(s);
    sizes.push(MAX_SMALL - 1, MAX_SMALL);
    for (const align of aligns) {
      for (const size of sizes) {
        let want = -1;
        for (let c = 0; c < NUM_CLASSES; c++) {
          if (SIZE[c] >= size && ALIGN[c] >= align) {
            want = c;
            break;
          }
        }
        const got = alignedClassOf(size, align);
        if (got !== want) failures.push(`alignedClassOf(${size}, ${align}) = ${got}, expected ${want}`);
        if (failures.length > 10) break;
      }
    }
    expect(failures).toEqual([]);
  });

  it('agrees with classOf when no alignment beyond 16 is asked', () => {
    for (let size = 0; size <= MAX_SMALL; size += 7) {
      expect(alignedClassOf(size, 16)).toBe(classOf(size));
      expect(alignedClassOf(size, 1)).toBe(classOf(size));
    }
  });

  it('returns -1 above MAX_SMALL and for alignments no class has', () => {
    expect(alignedClassOf(MAX_SMALL + 1, 16)).toBe(-1);
    expect(alignedClassOf(1 << 20, 16)).toBe(-1);
    const maxAlign = Math.max(...ALIGN);
    expect(alignedClassOf(1, maxAlign * 2)).toBe(-1);
    expect(alignedClassOf(1, maxAlign)).toBeGreaterThanOrEqual(0);
  });
});
