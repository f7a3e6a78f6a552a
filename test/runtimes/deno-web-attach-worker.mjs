// A Web Worker for deno-web-attach.mjs: attaches with attach(), waits for its Web Lock (at most
// 5 s), mallocs 100 blocks tagged with a byte, posts { threadId, held, blocks }, then stays.
import { SharedHeap } from '../../dist/src/index.js';

self.onmessage = async (e) => {
  const heap = SharedHeap.attach(e.data.buffer);
  const held = await Promise.race([heap.threadLockHeld(), new Promise((resolve) => setTimeout(() => resolve('pending'), 5000))]);
  const blocks = [];
  for (let i = 0; i < 100; i++) {
    const p = heap.malloc(24 + ((i * e.data.seed * 13) % 2000));
    const v = (i + e.data.seed) & 255;
    heap.u8[p] = v;
    blocks.push([p, v]);
  }
  self.postMessage({ threadId: heap.threadId, held, blocks });
};
