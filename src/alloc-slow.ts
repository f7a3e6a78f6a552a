/**
 * The public calls other than the two fast paths, and the slow halves of malloc and free:
 * argument checks with clear errors, large blocks, calloc, realloc, usableSize, alignedAlloc,
 * tryMalloc. Every misuse throws before anything is changed.
 */
import {
  K_FREE, K_LARGE, K_SLAB, LARGE_FREED, LARGE_LIVE, MAX_HEAP_BYTES, SLOT_BYTES, SLOT_SHIFT, SM_BUMP, SM_CLS,
  SM_DATA, SM_FREED_CLS, SM_FREED_DATA, SM_HEAD, SM_KIND, SM_LARGE, SM_SHIFT, SM_SPAN, SM_STATE, ST_ALLOCATED, ST_FREE, SUPER_BYTES,
} from './layout.js';
import { COUNT, MAX_SMALL, SIZE, alignedClassOf, classOf } from './size-classes.js';
import type { HeapInternals } from './heap.js';
import { DoubleFreeError, HeapStateError, InvalidPointerError, checkInteger, describe, hex } from './errors.js';
import { largeAlloc, largeFree } from './large.js';
import { allocFromClass, ensureViews } from './refill.js';

function checkAttached(h: HeapInternals, fn: string): void {
  if (h.detached) throw new HeapStateError(`${fn}: this thread has detached from the heap`);
}

/** malloc's slow half: argument errors, and sizes above MAX_SMALL. */
export function mallocSlow(h: HeapInternals, size: unknown): number {
  const n = checkInteger('malloc', 'size', size);
  checkAttached(h, 'malloc(size)');
  if (n <= MAX_SMALL) return allocFromClass(h, classOf(n), true);
  return largeAlloc(h, n, SLOT_BYTES, true);
}

export function tryMallocImpl(h: HeapInternals, size: unknown): number {
  const n = checkInteger('tryMalloc', 'size', size);
  checkAttached(h, 'tryMalloc(size)');
  if (n <= MAX_SMALL) {
    const cls = classOf(n);
    return allocFromClass(h, cls, false);
  }
  return largeAlloc(h, n, SLOT_BYTES, false);
}

/**
 * Finds what `block` is. Returns the class of a live small block, or -1 for a live large run;
 * throws InvalidPointerError or DoubleFreeError (naming `fn` and `arg`) otherwise.
 */
export function classifyBlock(h: HeapInternals, fn: string, arg: string, block: unknown): number {
  const p = checkInteger(fn, arg, block);
  const where = `${fn}(${arg}): ${hex(p)}`;
  ensureViews(h);
  const i32 = h.i32;
  if (p >= h.viewBytes) throw new InvalidPointerError(`${where} is outside the heap (${h.viewBytes} bytes)`);
  if ((p & 15) !== 0) throw new InvalidPointerError(`${where} is not the start of a block (blocks are 16-byte aligned)`);
  const slot = p >>> SLOT_SHIFT;
  const mW = h.smW + (slot << SM_SHIFT);
  const kind = i32[mW + SM_KIND];
  if (p < h.geo.metaSupers * SUPER_BYTES) throw new InvalidPointerError(`${where} is inside the heap's metadata`);
  if (kind === K_SLAB) {
    const cls = i32[mW + SM_CLS];
    const off = p - i32[mW + SM_DATA];
    if (off < 0) throw new InvalidPointerError(`${where} is inside a slab header (metadata)`);
    const idx = Math.floor(off / SIZE[cls]);
    if (idx * SIZE[cls] !== off) {
      throw new InvalidPointerError(`${where} is not the start of a block (interior to a ${SIZE[cls]}-byte block)`);
    }
    if (idx >= COUNT[cls]) throw new InvalidPointerError(`${where} is not the start of a block (past a slab's last block)`);
    const state = h.bytes[i32[mW + SM_STATE] + idx];
    if (state === ST_ALLOCATED) return cls;
    const head = i32[mW + SM_HEAD];
    const bump = i32[h.smW + (head << SM_SHIFT) + SM_BUMP];
    if (state === ST_FREE && idx >= bump) {
      throw new InvalidPointerError(`${where} is not the start of a block (never allocated)`);
    }
    throw new DoubleFreeError(`${where} is not allocated: it was already freed (double free)`);
  }
  if (kind === K_LARGE) {
    const head = i32[mW + SM_HEAD];
    if (p !== head << SLOT_SHIFT) {
      throw new InvalidPointerError(`${where} is not the start of a block (interior to a large block at ${hex(head << SLOT_SHIFT)})`);
    }
    if (i32[mW + SM_LARGE] === LARGE_LIVE) return -1;
  }
  if (kind === K_FREE && (p & (SLOT_BYTES - 1)) === 0 && i32[mW + SM_LARGE] === LARGE_FREED) {
    throw new DoubleFreeError(`${where} is not allocated: the large block there was already freed (double free)`);
  }
  const freedCls = i32[mW + SM_FREED_CLS] - 1;
  if (kind === K_FREE && freedCls >= 0) {
    const off = p - i32[mW + SM_FREED_DATA];
    if (off >= 0 && off % SIZE[freedCls] === 0 && off / SIZE[freedCls] < COUNT[freedCls]) {
      throw new DoubleFreeError(`${where} is not allocated: it was freed and its slab given back to the pool (double free)`);
    }
  }
  throw new InvalidPointerError(`${where} is not the start of a block (never-allocated space)`);
}

/** free's slow half: free(0), argument errors, large blocks, a full magazine. */
export function freeSlow(h: HeapInternals, block: unknown): void {
  if (block === 0) return;
  checkAttached(h, 'free(ptr)');
  const cls = classifyBlock(h, 'free', 'ptr', block);
  const p = block as number;
  if (cls < 0) {
    largeFree(h, p >>> SLOT_SHIFT);
    return;
  }
  // A live small block the fast path did not take: the views were older than the block.
  h.free(p);
}

export function usableSizeImpl(h: HeapInternals, block: unknown): number {
  const cls = classifyBlock(h, 'usableSize', 'ptr', block);
  if (cls >= 0) return SIZE[cls];
  const p = block as number;
  return h.i32[h.smW + ((p >>> SLOT_SHIFT) << SM_SHIFT) + SM_SPAN] * SLOT_BYTES;
}

export function callocImpl(h: HeapInternals, n: unknown, size: unknown): number {
  const count = checkInteger('calloc', 'n', n);
  const each = checkInteger('calloc', 'size', size);
  checkAttached(h, 'calloc(n, size)');
  const total = count * each;
  if (total > MAX_HEAP_BYTES) return 0; // overflow or simply too large: out of memory
  const p = h.malloc(total);
  if (p !== 0) h.u8.fill(0, p, p + total);
  return p;
}

export function reallocImpl(h: HeapInternals, block: unknown, size: unknown): number {
  const n = checkInteger('realloc', 'size', size);
  checkAttached(h, 'realloc(ptr, size)');
  if (block === 0) return h.malloc(n);
  const cls = classifyBlock(h, 'realloc', 'ptr', block);
  const p = block as number;
  const usable = cls >= 0 ? SIZE[cls] : usableSizeImpl(h, p);
  if (n <= usable && (n > usable >>> 1 || usable <= 16)) return p;
  if (n > MAX_HEAP_BYTES) return 0;
  const q = h.malloc(n);
  if (q === 0) return 0;
  h.u8.copyWithin(q, p, p + Math.min(n, usable));
  h.free(p);
  return q;
}

export function alignedAllocImpl(h: HeapInternals, align: unknown, size: unknown): number {
  const a = checkInteger('alignedAlloc', 'align', align);
  const n = checkInteger('alignedAlloc', 'size', size);
  if (a === 0 || (a & (a - 1)) !== 0 || a > SUPER_BYTES) {
    throw new RangeError(`alignedAlloc(align): expected a power of two from 1 to ${SUPER_BYTES}, got ${describe(align)}`);
  }
  checkAttached(h, 'alignedAlloc(align, size)');
  if (a <= 16) return h.malloc(n);
  const cls = alignedClassOf(n, a);
  if (cls >= 0) return allocFromClass(h, cls, true);
  return largeAlloc(h, Math.max(n, 1), a, true); // slot-aligned, or SuperSlab-aligned for a > 64 KiB
}
