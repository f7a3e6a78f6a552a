/**
 * ABA torture (test/aba.test.ts): pops 1..3 slabs from one Stage-1 list, records each in the
 * shared `held` table, then pushes them back in another order. A pop of a slab that another
 * worker holds is a double pop: the ABA problem. The test sets the hooks' delay so that a pop sits
 * between its read of the head and its CAS long enough for others to pop and push around it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap } from '../src/index.js';
import { internals } from '../src/heap.js';
import { setStage1TestHooks, stage1Pop, stage1Push } from '../src/pool.js';

export interface AbaWorkerData {
  kind: 'aba';
  buffer: SharedArrayBuffer;
  /** ctl[ABA_READY] counts attached workers; ctl[ABA_GO] is the start signal; ctl[ABA_DOUBLE] counts double pops. */
  ctl: Int32Array;
  /** held[slot] is 1 while a worker holds the slab at `slot`. */
  held: Int32Array;
  /** The Stage-1 test hooks (src/pool.ts setStage1TestHooks): [delay spins, guards off]. */
  hooks: Int32Array;
  cls: number;
  /** Pop rounds per worker. */
  rounds: number;
  /** Stop as soon as any worker saw a double pop (the untagged run). */
  stopOnDouble: boolean;
  seed: number;
}

export const ABA_READY = 0;
export const ABA_GO = 1;
export const ABA_DOUBLE = 2;
export const ABA_POPS = 3;
export const ABA_EMPTY = 4;
export const ABA_CTL_WORDS = 8;

function run(d: AbaWorkerData): void {
  const heap = SharedHeap.attach(d.buffer);
  const t = internals(heap);
  setStage1TestHooks(d.hooks);
  const { ctl, held, cls } = d;
  Atomics.add(ctl, ABA_READY, 1);
  Atomics.notify(ctl, ABA_READY);
  while (Atomics.load(ctl, ABA_GO) === 0) Atomics.wait(ctl, ABA_GO, 0);
  let x = d.seed | 1; // xorshift32
  const mine = [0, 0, 0];
  let pops = 0;
  let empty = 0;
  for (let r = 0; r < d.rounds; r++) {
    if (d.stopOnDouble && Atomics.load(ctl, ABA_DOUBLE) !== 0) break;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const want = 1 + ((x >>> 0) % 3);
    let n = 0;
    for (; n < want; n++) {
      const slot = stage1Pop(t, cls);
      if (slot === 0) {
        empty++;
        break;
      }
      pops++;
      if (Atomics.exchange(held, slot, 1) !== 0) Atomics.add(ctl, ABA_DOUBLE, 1);
      mine[n] = slot;
    }
    // Push back in reverse order of popping every other round, in popping order otherwise.
    for (let k = 0; k < n; k++) {
      const slot = mine[(r & 1) === 0 ? n - 1 - k : k]!;
      Atomics.store(held, slot, 0); // released before the push: after it another pop is legitimate
      stage1Push(t, cls, slot);
    }
  }
  Atomics.add(ctl, ABA_POPS, pops);
  Atomics.add(ctl, ABA_EMPTY, empty);
  heap.detach();
}

// Run only as a worker started for this (the test imports the constants above).
if (parentPort !== null && (workerData as Partial<AbaWorkerData> | null)?.kind === 'aba') run(workerData as AbaWorkerData);
