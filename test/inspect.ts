/**
 * Test helper: looks inside a heap (through the layout constants) for what the public API cannot
 * show. Meant for a quiescent heap.
 */
import { HeapError, type SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import {
  G_CARVED, K_SLAB, SLOT_SHIFT, SM_BUMP, SM_CLS1, SM_HEAD, SM_INUSE, SM_KIND, SM_LISTED, SM_NFREE, SM_NOTIFIED, SM_OWNER,
  SM_REMOTE, SM_STATE, SUPER_SHIFT,
} from '../src/layout.js';
import { COUNT } from '../src/size-classes.js';

/**
 * The first slot of every slab and large run carved so far (SM_HEAD names itself), with the word
 * index of its meta: where the inspections start. Free slots and the metadata's are left out.
 */
export function carvedHeads(heap: SharedHeap): { s: number; mW: number }[] {
  const t = internals(heap);
  const end = Atomics.load(t.i32, G_CARVED) << (SUPER_SHIFT - SLOT_SHIFT);
  const out: { s: number; mW: number }[] = [];
  for (let s = t.geo.metaSupers << (SUPER_SHIFT - SLOT_SHIFT); s < end; s++) {
    const mW = t.metaW(s);
    if (t.i32[mW + SM_HEAD] === s) out.push({ s, mW });
  }
  return out;
}

/** Whether `p` is a live block of `heap` (usableSize answers it), false where the heap refuses it. */
export function isLiveBlock(heap: SharedHeap, p: number): boolean {
  try {
    heap.usableSize(p);
    return true;
  } catch (e) {
    if (e instanceof HeapError) return false;
    throw e;
  }
}

/**
 * Slabs that count blocks out (INUSE != 0), each described with its block states. Once every
 * block was freed and every live thread flushed, any entry is a leak: blocks that are neither
 * allocated nor on any list, so the slab can never become empty again.
 */
export function slabsWithBlocksOut(heap: SharedHeap): string[] {
  const i32 = new Int32Array(heap.buffer);
  const bytes = new Uint8Array(heap.buffer);
  const out: string[] = [];
  for (const { s, mW } of carvedHeads(heap)) {
    if (i32[mW + SM_KIND] !== K_SLAB || i32[mW + SM_INUSE] === 0) continue;
    const cls = i32[mW + SM_CLS1]! - 1;
    const states = [0, 0, 0, 0]; // FREE, ALLOCATED, CACHED, PENDING
    const bump = Math.min(i32[mW + SM_BUMP]!, COUNT[cls]!);
    for (let b = 0; b < bump; b++) states[bytes[i32[mW + SM_STATE]! + b]!]!++;
    let remote = 0;
    for (let b = Atomics.load(i32, mW + SM_REMOTE); b !== 0 && remote <= COUNT[cls]!; b = i32[b >>> 2]!) remote++;
    out.push(
      `slab ${s} class ${cls} owner ${Atomics.load(i32, mW + SM_OWNER)} INUSE ${i32[mW + SM_INUSE]} NFREE ${i32[mW + SM_NFREE]} ` +
        `BUMP ${bump} LISTED ${i32[mW + SM_LISTED]} NOTIFIED ${Atomics.load(i32, mW + SM_NOTIFIED)} remote list ${remote}; ` +
        `states FREE ${states[0]} ALLOCATED ${states[1]} CACHED ${states[2]} PENDING ${states[3]}`,
    );
  }
  return out;
}
