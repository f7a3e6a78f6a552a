/**
 * reclaimWhenGone(threadId) refuses an id the heap has not handed out, naming the ids it has: none
 * before the first newThreadId() (an audit saw "1073741824 to 1073741823 so far", an empty range),
 * then the range from the first.
 */
import { expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';

it('names the ids handed out so far, or none', () => {
  const heap = SharedHeap.create({ initialBytes: 4 << 20, maxThreads: 2 });
  const first = 2 ** 30;
  expect(() => heap.reclaimWhenGone(first + 5)).toThrow(RangeError);
  expect(() => heap.reclaimWhenGone(first + 5)).toThrow(/\(ids come from newThreadId\(\) and attach, none so far\)$/);
  expect(heap.newThreadId()).toBe(first);
  expect(() => heap.reclaimWhenGone(first + 5)).toThrow(new RegExp(`, ${first} to ${first} so far\\)$`));
  heap.detach();
});
