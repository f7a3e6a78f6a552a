/**
 * Two attachAsync calls of one thread under the same reserved id, the second made before the
 * first settled (a worker that attaches in each message handler, two messages in a row): the
 * first holds the id's Web Lock from its grant until the thread detaches, so the second, asking
 * for that lock too, waited for as long as the thread stayed attached, and after its detach
 * attached the thread again behind the program's back (an audit). Both now answer the same
 * instance. Run in Node against the Web Locks stand-in (web-locks.ts), as attach-async.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { installWebLocks, within, type WebLocksStandIn } from './web-locks.js';

const MiB = 1 << 20;
let locks: WebLocksStandIn | undefined;
afterEach(() => {
  locks?.uninstall();
  locks = undefined;
});

/** A heap's buffer whose creator reserved one id and detached. */
function reserved(): { buffer: SharedArrayBuffer; id: number } {
  const creator = SharedHeap.create({ initialBytes: 32 * MiB, maxThreads: 4 });
  const id = creator.newThreadId();
  const buffer = creator.buffer;
  creator.detach();
  return { buffer, id };
}

describe('attachAsync twice at once under one id', () => {
  it('both calls answer the same instance, and its detach leaves the thread detached', async () => {
    locks = installWebLocks();
    const { buffer, id } = reserved();
    const first = SharedHeap.attachAsync(buffer, { threadId: id });
    const second = SharedHeap.attachAsync(buffer, { threadId: id });
    const heap = await within(first, 2000);
    expect(heap).toBeInstanceOf(SharedHeap);
    if (heap === 'pending') return;
    expect(await within(second, 2000)).toBe(heap);
    expect(heap.stats().threadsAttached).toBe(1);
    heap.detach();
    await new Promise((resolve) => setTimeout(resolve, 50));
    // No Web Lock of the id is held, and no attachment came back after the detach.
    expect(locks.held()).toEqual([]);
    const creator = SharedHeap.attach(buffer);
    expect(creator.stats().threadsAttached).toBe(1);
    creator.check();
    creator.detach();
  });

  it('three at once after a detach: one attaches, the others answer it', async () => {
    locks = installWebLocks();
    const { buffer, id } = reserved();
    (await SharedHeap.attachAsync(buffer, { threadId: id })).detach();
    const answers = await within(Promise.all([0, 1, 2].map(() => SharedHeap.attachAsync(buffer, { threadId: id }))), 2000);
    expect(answers).not.toBe('pending');
    if (answers === 'pending') return;
    expect(answers[0]).toBeInstanceOf(SharedHeap);
    expect(answers[1]).toBe(answers[0]);
    expect(answers[2]).toBe(answers[0]);
    expect(answers[0].stats().threadsAttached).toBe(1);
    answers[0].detach();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(locks.held()).toEqual([]);
  });
});
