/**
 * realloc(ptr, size) on a thread that has detached names its whole signature in debug mode as in
 * the default mode ("realloc(ptr, size): this thread has detached from the heap", as calloc(n,
 * size), malloc(size) and free(ptr) do). Found by an audit: debug mode's realloc validated the block
 * through a helper that named the call `realloc(ptr)`, dropping its second argument.
 */
import { describe, expect, it } from 'vitest';
import { HeapStateError, SharedHeap } from '../src/index.js';

function message(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(HeapStateError);
    return (e as Error).message;
  }
  return 'no error';
}

describe('realloc on a detached thread', () => {
  it('names realloc(ptr, size) in debug mode as in the default mode', () => {
    const messages: string[] = [];
    for (const debug of [false, true]) {
      const heap = SharedHeap.create({ initialBytes: 16 << 20, maxThreads: 2, debug });
      const p = heap.malloc(40);
      heap.detach();
      messages.push(message(() => heap.realloc(p, 80)));
      expect(message(() => heap.realloc(0, 80))).toBe('realloc(ptr, size): this thread has detached from the heap');
    }
    expect(messages).toEqual([
      'realloc(ptr, size): this thread has detached from the heap',
      'realloc(ptr, size): this thread has detached from the heap',
    ]);
  });
});
