/** Kinds of block the capacity tests allocate, in the main thread and in test/capacity-worker.ts. */
import type { SharedHeap } from '../src/index.js';

export type Kind =
  | { call: 'malloc'; size: number }
  | { call: 'calloc'; size: number }
  | { call: 'aligned'; size: number; align: number };

export const malloc = (size: number): Kind => ({ call: 'malloc', size });
export const calloc = (size: number): Kind => ({ call: 'calloc', size });
export const aligned = (align: number, size: number): Kind => ({ call: 'aligned', size, align });

/** One block of `kind`, or 0. */
export function allocOne(heap: SharedHeap, kind: Kind): number {
  if (kind.call === 'malloc') return heap.malloc(kind.size);
  if (kind.call === 'calloc') return heap.calloc(1, kind.size);
  return heap.alignedAlloc(kind.align, kind.size);
}

/** The bytes a block of `kind` occupies at least (its size, or its alignment where that is larger). */
export function footprintOf(kind: Kind): number {
  return kind.call === 'aligned' ? Math.max(kind.size, kind.align) : kind.size;
}

/** Allocates blocks of `kind` until 0 (or `max`); returns them. */
export function fill(heap: SharedHeap, kind: Kind, max = Infinity): number[] {
  const out: number[] = [];
  while (out.length < max) {
    const p = allocOne(heap, kind);
    if (p === 0) break;
    out.push(p);
  }
  return out;
}

export function name(kind: Kind): string {
  return kind.call === 'aligned' ? `alignedAlloc(${kind.align}, ${kind.size})` : `${kind.call}(${kind.size})`;
}
