// A Web Worker that attaches under the id it is given and runs the malloc/free loop of churn.mjs
// in batches, with a turn of the event loop between them, until it is terminated.
import { SharedHeap } from '../../dist/src/index.js';
import { churner } from './churn.mjs';

self.onmessage = async (e) => {
  const heap = await SharedHeap.attachAsync(e.data.buffer, { threadId: e.data.threadId });
  self.postMessage('attached');
  const step = churner(heap, e.data.seed);
  const batch = () => {
    step(20_000);
    setTimeout(batch, 0);
  };
  batch();
};
