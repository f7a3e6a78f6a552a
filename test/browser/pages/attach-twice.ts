/**
 * The page of test/browser/attach-async-twice.test.ts: a heap, one reserved id, and a worker
 * (attach-twice-worker.ts) that attaches under it twice at once and then detaches.
 */
import { SharedHeap } from '../../../src/index.js';

async function attachTwice(): Promise<Record<string, unknown>> {
  const heap = SharedHeap.create({ initialBytes: 16 * (1 << 20), maxThreads: 4 });
  const threadId = heap.newThreadId();
  const worker = new Worker('/attach-twice-worker.js', { type: 'module' });
  try {
    const reply = await new Promise<Record<string, unknown>>((resolve) => {
      worker.onmessage = (e: MessageEvent<Record<string, unknown>>) => resolve(e.data);
      worker.onerror = (e) => resolve({ error: e.message });
      worker.postMessage({ buffer: heap.buffer, threadId });
    });
    heap.check();
    return { ...reply, threadsAttached: heap.stats().threadsAttached };
  } finally {
    worker.terminate();
  }
}

declare global {
  interface Window {
    attachTwice: () => Promise<Record<string, unknown>>;
  }
}

window.attachTwice = attachTwice;
document.title = 'ready';
