/**
 * A module Web Worker of test/browser/attach-async-twice.test.ts: given a heap's buffer and a
 * reserved id, it calls attachAsync twice at once under that id (as a worker that attaches in
 * each message handler does with two messages in a row), reports how each settled, detaches,
 * and reports whether anything attached again after the detach.
 */
import { SharedHeap } from '../../../src/index.js';

function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);
}

onmessage = async (ev: MessageEvent<{ buffer: SharedArrayBuffer; threadId: number }>) => {
  const { buffer, threadId } = ev.data;
  try {
    const first = SharedHeap.attachAsync(buffer, { threadId });
    const second = SharedHeap.attachAsync(buffer, { threadId });
    const a = await within(first, 5000);
    const b = await within(second, 5000);
    const same = a !== 'pending' && a === b;
    if (a !== 'pending') a.detach();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // An attachment made after the detach (the second call's, granted the lock then) holds the id's lock.
    const held = ((await navigator.locks.query()).held ?? []).map((l) => l.name).filter((n) => n!.endsWith(`:${threadId}`));
    postMessage({ first: a === 'pending' ? 'pending' : 'heap', second: b === 'pending' ? 'pending' : 'heap', same, heldAfterDetach: held.length });
  } catch (e) {
    postMessage({ error: String((e as Error)?.stack ?? e) });
  }
};
