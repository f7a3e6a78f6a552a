/**
 * Found by an audit of the public API under bad input (2026-12-07); before the fix, watchPool(heap, pool) refuses a `pool`
 * that is not a worker pool with "watchPool(heap, pool): expected a worker pool with `threads` and
 * on() (a Piscina)" whatever was passed (src/node.ts, the second check), where its refusal of a bad
 * `heap` just above says what it got (describe(heap): "got 5 (0x5)", "got null", "got an
 * object"). The contract (README "API": misuse throws "with a message naming the function, the
 * argument and the value") asks for the value: a pool of 5, null, a string or an object without
 * `threads` must be told apart in the message, as every other call's TypeError does.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { watchPool } from '../src/node.js';

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});

describe('watchPool(heap, pool) with a pool that is not a worker pool', () => {
  it.each([
    ['5', 5, '5 (0x5)'],
    ['null', null, 'null'],
    ['a string', 'pool', '"pool" (a string)'],
    ['an object without threads', { on: (): void => undefined }, 'an object'],
  ])('names the value it got: %s', (_what, pool, shown) => {
    const heap = SharedHeap.create({ initialBytes: 4 << 20, maxThreads: 2 });
    heaps.push(heap);
    expect(() => watchPool(heap, pool as never)).toThrow(TypeError);
    expect(() => watchPool(heap, pool as never)).toThrow(/^watchPool\(heap, pool\): /);
    expect(() => watchPool(heap, pool as never)).toThrow(`got ${shown}`);
  });
});
