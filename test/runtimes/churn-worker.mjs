// Attaches and runs the malloc/free loop of churn.mjs until it is terminated.
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../../dist/src/index.js';
import { churner } from './churn.mjs';

const heap = SharedHeap.attach(workerData.buffer);
parentPort.postMessage('attached');
const step = churner(heap, workerData.seed);
for (;;) step(1_000_000);
