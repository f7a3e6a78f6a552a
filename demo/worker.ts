/**
 * A demo worker: attaches to the heap and runs a random malloc/free loop over a window of live
 * blocks of the chosen size mix. One operation in 16 hands a block to another worker through
 * the shared xfer table (whoever takes it frees it: a cross-thread free).
 */
import { SharedHeap } from '../src/index.js';
import { CTL_OPS, CTL_STOP, MIXES, XFER_SLOTS, type StartMessage, type WorkerMessage } from './protocol.js';

function send(m: WorkerMessage): void {
  postMessage(m);
}

async function run(m: StartMessage): Promise<void> {
  const heap = await SharedHeap.attachAsync(m.buffer, { threadId: m.threadId });
  const mix = MIXES[m.mix] ?? MIXES.mixed!;
  const logMin = Math.log2(mix.min);
  const logSpan = Math.log2(mix.max) - logMin;
  const live = new Int32Array(mix.window);
  let x = m.seed | 1;
  let ops = 0;
  const { ctl, xfer } = m;
  // Runs in slices so the worker's event loop stays responsive between them.
  const slice = (): void => {
    const end = performance.now() + 50;
    while (performance.now() < end) {
      for (let k = 0; k < 1024; k++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        const r = x >>> 0;
        const i = r % live.length;
        const old = live[i]!;
        if (old !== 0) {
          if ((r & 15) === 0) {
            // Hand it to whichever worker takes this xfer slot next; free what was there.
            const prev = Atomics.exchange(xfer, (r >>> 4) % XFER_SLOTS, old);
            if (prev !== 0) heap.free(prev);
          } else heap.free(old);
          live[i] = 0;
        } else {
          const size = Math.round(2 ** (logMin + ((r >>> 8) / 16777216) * logSpan));
          const p = heap.malloc(size);
          if (p !== 0) heap.u8[p] = r & 255;
          live[i] = p;
        }
      }
      ops += 1024;
      Atomics.store(ctl, CTL_OPS + m.index, ops);
    }
    if (Atomics.load(ctl, CTL_STOP) !== 0) {
      for (const p of live) if (p !== 0) heap.free(p);
      heap.detach();
      send({ type: 'done', ops });
      return;
    }
    setTimeout(slice, 0);
  };
  slice();
}

onmessage = (e: MessageEvent<StartMessage>) => {
  run(e.data).catch((err: unknown) => send({ type: 'error', message: String((err as Error)?.stack ?? err) }));
};
