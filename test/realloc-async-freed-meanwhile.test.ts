/**
 * reallocAsync of a large block that the program frees while the call is pending (its await
 * between the try to resize in place and the move): a double free, which one of the two calls
 * must refuse. The move's allocation can take the freed run back, the very offset, and the free
 * of the "old" block then freed the new one: reallocAsync resolved to a block that was free, which
 * the next malloc handed out again (an audit, test/misuse-model.test.ts's topic).
 */
import { describe, expect, it } from 'vitest';
import { DoubleFreeError, SharedHeap } from '../src/index.js';

const MiB = 1 << 20;
const SLOT = 64 * 1024;

describe('reallocAsync of a large block freed while the call is pending', () => {
  it('is refused with DoubleFreeError, not resolved to a block that is free', async () => {
    const heap = SharedHeap.create({ initialBytes: 16 * MiB });
    const keep = heap.malloc(1000); // a live block whose bytes must stay
    heap.u8.fill(0x5a, keep, keep + 1000);
    const p = heap.malloc(3 * SLOT);
    const r = heap.malloc(3 * SLOT);
    expect(r).toBe(p + 3 * SLOT); // right after p: p cannot grow in place, so reallocAsync moves it
    const pending = heap.reallocAsync(p, 5 * SLOT);
    // Misuse: p freed while its reallocAsync is pending; r freed too (a valid free), so that the
    // freed slots fit the move's request from p's offset on.
    heap.free(p);
    heap.free(r);
    let got: number | undefined;
    let err: unknown;
    try {
      got = await pending;
    } catch (e) {
      err = e;
    }
    if (got !== undefined) {
      // What the fix prevents: a "new" block that is free, handed out again by the next malloc.
      const other = heap.malloc(5 * SLOT);
      expect.fail(`reallocAsync resolved to 0x${got.toString(16)} (usable ${(() => { try { return heap.usableSize(got); } catch (e) { return (e as Error).message; } })()}), next malloc 0x${other.toString(16)}`);
    }
    expect(err).toBeInstanceOf(DoubleFreeError);
    expect((err as Error).message).toMatch(new RegExp(`^reallocAsync\\(ptr, size\\): 0x${p.toString(16)} `));
    // Nothing left behind: the new block went back, the heap is whole, the live block kept its bytes.
    heap.check();
    expect(heap.stats().liveBlocks).toBe(1);
    expect(heap.u8.subarray(keep, keep + 1000).every((b) => b === 0x5a)).toBe(true);
    const q = heap.malloc(5 * SLOT);
    expect(heap.usableSize(q)).toBeGreaterThanOrEqual(5 * SLOT);
    heap.free(q);
    heap.free(keep);
    heap.check();
    expect(heap.stats().liveBlocks).toBe(0);
    heap.detach();
  });
});
