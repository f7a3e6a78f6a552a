/**
 * A module Web Worker of the crash-stop page (crash-stop.ts): attaches under the id its page
 * reserved and runs a seeded workload of small and large blocks (remote frees of the page's
 * blocks among them). Armed at the n-th crash point (src/crash.ts), it stops there in an endless
 * loop, holding whatever that step holds, until the page terminates it.
 */
import { SharedHeap, type SharedMemory } from '../../../src/index.js';
import { armCrash, countCrashPoints, crashCounts } from '../../../src/crash.js';
import { mix } from './chaos-protocol.js';

export type CrashStopRequest =
  | { cmd: 'count' | 'run'; buffer: SharedArrayBuffer | SharedMemory; threadId: number; seed: number; given: number[] }
  | { cmd: 'spin'; buffer: SharedArrayBuffer | SharedMemory; threadId: number; close: boolean; ms: number; ctl: Int32Array; index: number }
  | { cmd: 'hold'; buffer: SharedArrayBuffer | SharedMemory; threadId: number; seed: number; given: number[] }
  | { cmd: 'reclaimStop'; buffer: SharedArrayBuffer | SharedMemory; threadId: number; seed: number; given: number[]; x: number; n: number; ctl: Int32Array; index: number }
  | { cmd: 'stop'; buffer: SharedArrayBuffer | SharedMemory; threadId: number; seed: number; given: number[]; n: number; ctl: Int32Array; index: number };

function workload(h: SharedHeap, seed: number, given: number[]): void {
  const rnd = mix(seed);
  const held: number[] = [];
  const size = () => (rnd() < 0.2 ? 100_000 + Math.floor(rnd() * 500_000) : 1 + Math.floor(rnd() * 3000));
  for (let k = 0; k < 300; k++) {
    const r = rnd();
    if (r < 0.1 && given.length > 0) h.free(given.pop()!); // a remote free of the page's block
    else if (r < 0.45 || held.length === 0) {
      const p = r < 0.2 ? h.calloc(1, size()) : h.malloc(size());
      if (p !== 0) held.push(p);
    } else if (r < 0.6) {
      const i = Math.floor(rnd() * held.length);
      const q = h.realloc(held[i]!, size());
      if (q !== 0) held[i] = q;
    } else h.free(held.splice(Math.floor(rnd() * held.length), 1)[0]!);
  }
  h.flush();
}

onmessage = async (ev: MessageEvent<CrashStopRequest & { id: number }>) => {
  const m = ev.data;
  try {
    const h = await SharedHeap.attachAsync(m.buffer, { threadId: m.threadId });
    let value: unknown = null;
    if (m.cmd === 'count') {
      countCrashPoints();
      workload(h, m.seed, m.given);
      value = crashCounts().reduce((a, b) => a + b, 0);
      h.detach();
    } else if (m.cmd === 'run') {
      workload(h, m.seed, m.given);
      h.detach();
    } else if (m.cmd === 'spin') {
      // Works on for `ms` after self.close() (or until terminated), counting its calls in ctl.
      postMessage({ id: m.id, ok: true, value: null });
      if (m.close) self.close();
      const end = performance.now() + m.ms;
      let k = 0;
      while (performance.now() < end) {
        const p = h.malloc(k % 16 === 0 ? 200_000 : 1 + (k % 3000));
        if (p !== 0) h.free(p);
        k++;
        Atomics.add(m.ctl, m.index, 1);
      }
      return;
    } else if (m.cmd === 'hold') {
      workload(h, m.seed, m.given); // and stays attached, its blocks held, until terminated
    } else if (m.cmd === 'reclaimStop') {
      // reclaimWhenGone of the terminated worker `x`: counting its crash points, or stopped at the n-th.
      const { ctl, index } = m;
      if (m.n < 0) {
        countCrashPoints();
        await h.reclaimWhenGone(m.x);
        value = crashCounts().reduce((a, b) => a + b, 0);
      } else {
        armCrash(m.n, (path) => {
          Atomics.store(ctl, index, path + 1);
          for (;;); // stopped here until terminated
        });
        value = await h.reclaimWhenGone(m.x);
        armCrash(0, () => { throw new Error('off'); });
        Atomics.store(ctl, index, -1);
      }
    } else if (m.cmd === 'stop') {
      const { ctl, index } = m;
      armCrash(m.n, (path) => {
        Atomics.store(ctl, index, path + 1);
        for (;;); // stopped here until terminated
      });
      workload(h, m.seed, m.given);
      armCrash(0, () => { throw new Error('off'); });
      Atomics.store(ctl, index, -1); // the workload passed fewer crash points than n
    }
    postMessage({ id: m.id, ok: true, value });
  } catch (err) {
    postMessage({ id: m.id, ok: false, error: String((err as Error)?.stack ?? err) });
  }
};
