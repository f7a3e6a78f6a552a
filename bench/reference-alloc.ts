/**
 * A trivial, single-threaded reference allocator over a plain ArrayBuffer,
 * used to validate the workloads and harnesses (mimalloc's test-stress also
 * runs against the system allocator for the same reason). Not a contender.
 *
 * Layout: blocks are carved from a bump pointer and never returned to it.
 * Each block has a 16-byte header right before its payload, so payloads are
 * 16-byte aligned:
 *
 *   header (16 bytes)                      payload (capacity bytes)
 *   | cls | state | unused | unused |      | next free (when free) ... |
 *   ^ block - 16                           ^ block (16-byte aligned)
 *
 * Size classes: sizes 1..1024 round up to a multiple of 16 (classes 1..64);
 * larger sizes use four classes per power of two (at most 25% waste), up to
 * 2^30. A freed block goes on its class's singly linked free list (the link
 * is the payload's first word); malloc pops that list or bumps.
 *
 * Invariant: every block below `top` is either allocated (state ==
 * STATE_USED) or on exactly one free list (state == STATE_FREE).
 */
import type { Allocator } from './workloads.js';

const HEADER_BYTES = 16;
const HEADER_CLS_W = -4; // word offsets from the payload's word index
const HEADER_STATE_W = -3;
const STATE_USED = 0x5ab0_0001;
const STATE_FREE = 0x5ab0_0002;
const SMALL_MAX = 1024;
const SMALL_CLASSES = SMALL_MAX >>> 4; // 64
const LARGE_MAX_LOG2 = 30; // 1 GiB
const CLASS_COUNT = SMALL_CLASSES + 1 + (LARGE_MAX_LOG2 - 10) * 4;

/** Size class of `size` bytes (size 0 is served as 1). */
export function referenceClassOf(size: number): number {
  if (size <= SMALL_MAX) return size <= 16 ? 1 : (size + 15) >>> 4;
  const e = 31 - Math.clz32(size - 1); // 2^e < size <= 2^(e+1), e >= 10
  const step = 1 << (e - 2);
  const q = Math.ceil((size - (1 << e)) / step); // 1..4
  return SMALL_CLASSES + (e - 10) * 4 + q;
}

/** Capacity in bytes of the blocks of class `cls`. */
export function referenceClassCapacity(cls: number): number {
  if (cls <= SMALL_CLASSES) return cls << 4;
  const i = cls - SMALL_CLASSES - 1;
  const e = 10 + (i >>> 2);
  const q = (i & 3) + 1;
  return (1 << e) + q * (1 << (e - 2));
}

export class ReferenceAllocator implements Allocator {
  readonly buffer: ArrayBuffer;
  readonly u8: Uint8Array;
  private readonly i32: Int32Array;
  /** Head of each class's free list (0 = empty). */
  private readonly freeHead = new Int32Array(CLASS_COUNT);
  /** Bump pointer: first byte never handed out. */
  private top = HEADER_BYTES; // so that the first payload sits at 32, never at 0
  /** Blocks currently allocated. */
  liveBlocks = 0;

  constructor(bytes: number) {
    if (!Number.isSafeInteger(bytes) || bytes < 64 || bytes > 0x7fff_fff0) {
      throw new RangeError(`ReferenceAllocator(bytes): expected an integer in [64, 2^31 - 16], got ${bytes}`);
    }
    this.buffer = new ArrayBuffer(bytes & ~15);
    this.u8 = new Uint8Array(this.buffer);
    this.i32 = new Int32Array(this.buffer);
  }

  /** Bytes of the buffer taken so far (the high-water mark: nothing is returned). */
  footprint(): number {
    return this.top;
  }

  malloc(size: number): number {
    if (!(size >= 0) || size > 1 << LARGE_MAX_LOG2) return 0;
    const cls = referenceClassOf(size);
    const head = this.freeHead[cls]!;
    if (head !== 0) {
      const w = head >>> 2;
      this.freeHead[cls] = this.i32[w]!;
      this.i32[w + HEADER_STATE_W] = STATE_USED;
      this.liveBlocks++;
      return head;
    }
    return this.bump(cls);
  }

  free(ptr: number): void {
    if (ptr === 0) return;
    const w = this.checkBlock('free', ptr);
    const cls = this.i32[w + HEADER_CLS_W]!;
    this.i32[w + HEADER_STATE_W] = STATE_FREE;
    this.i32[w] = this.freeHead[cls]!;
    this.freeHead[cls] = ptr;
    this.liveBlocks--;
  }

  calloc(n: number, size: number): number {
    const bytes = n * size;
    const p = this.malloc(bytes);
    if (p !== 0) this.u8.fill(0, p, p + bytes);
    return p;
  }

  realloc(ptr: number, size: number): number {
    if (ptr === 0) return this.malloc(size);
    const w = this.checkBlock('realloc', ptr);
    const capacity = referenceClassCapacity(this.i32[w + HEADER_CLS_W]!);
    if (size <= capacity && referenceClassOf(size) === this.i32[w + HEADER_CLS_W]) return ptr;
    const q = this.malloc(size);
    if (q === 0) return 0;
    this.u8.copyWithin(q, ptr, ptr + Math.min(capacity, size));
    this.free(ptr);
    return q;
  }

  /** Capacity of an allocated block. */
  usableSize(ptr: number): number {
    return referenceClassCapacity(this.i32[this.checkBlock('usableSize', ptr) + HEADER_CLS_W]!);
  }

  private bump(cls: number): number {
    const p = this.top + HEADER_BYTES;
    const end = p + referenceClassCapacity(cls);
    if (end > this.u8.length) return 0;
    this.top = end;
    const w = p >>> 2;
    this.i32[w + HEADER_CLS_W] = cls;
    this.i32[w + HEADER_STATE_W] = STATE_USED;
    this.liveBlocks++;
    return p;
  }

  private checkBlock(fn: string, ptr: number): number {
    if ((ptr & 15) !== 0 || ptr < 2 * HEADER_BYTES || ptr >= this.top) {
      throw new Error(`ReferenceAllocator.${fn}(ptr): 0x${ptr.toString(16)} is not a block`);
    }
    const w = ptr >>> 2;
    const state = this.i32[w + HEADER_STATE_W];
    if (state !== STATE_USED) {
      const what = state === STATE_FREE ? 'already free' : 'not the start of a block';
      throw new Error(`ReferenceAllocator.${fn}(ptr): 0x${ptr.toString(16)} is ${what}`);
    }
    return w;
  }
}
