/**
 * A module Web Worker of the browser suite: attaches to the heap it is sent and runs the
 * commands of protocol.ts, answering each with a Reply.
 */
import { SharedHeap } from '../../../src/index.js';
import { internals } from '../../../src/heap.js';
import { lockAcquire, lockRelease } from '../../../src/lock.js';
import { threadLockName } from '../../../src/liveness.js';
import { heapIdOf } from '../../../src/layout.js';
import { armCrash } from '../../../src/crash.js';
import {
  CHUNK, C_COUNT, C_HELD, C_READY, C_STOP, badBytes, fillBlock, reallocChain, type AttachReply, type ChainReply, type LoopReply, type Reply,
  type Request, type ViewReply,
} from './protocol.js';

let heap: SharedHeap | undefined;

function attached(): SharedHeap {
  if (heap === undefined) throw new Error('worker: attach first');
  return heap;
}

/** malloc, fill, verify, free in a loop until ctl[C_STOP]; counts published every CHUNK. */
function loop(h: SharedHeap, ctl: Int32Array, index: number, sizes: number[], seed: number, live: number[] = []): LoopReply {
  let ops = 0;
  let bad = 0;
  Atomics.add(ctl, C_READY, 1);
  Atomics.notify(ctl, C_READY);
  while (Atomics.load(ctl, C_STOP) === 0) {
    const size = sizes[ops % sizes.length]!;
    const p = h.malloc(size);
    if (p === 0) throw new Error(`worker: malloc(${size}) returned 0`);
    const u8 = h.u8;
    const n = Math.min(size, 64);
    fillBlock(u8, p, n, seed);
    // Keep a few blocks alive across iterations so frees are not always of the last block.
    live.push(p, n);
    if (live.length > 16) {
      const q = live.shift()!;
      const m = live.shift()!;
      bad += badBytes(h.u8, q, m, seed);
      h.free(q);
    }
    if (++ops % CHUNK === 0) {
      Atomics.add(ctl, C_COUNT + index, CHUNK);
      Atomics.notify(ctl, C_COUNT + index);
    }
  }
  for (let i = 0; i < live.length; i += 2) {
    bad += badBytes(h.u8, live[i]!, live[i + 1]!, seed);
    h.free(live[i]!);
  }
  return { ops, bad };
}

function run(m: Request): unknown {
  switch (m.cmd) {
    case 'attach':
      heap = SharedHeap.attach(m.buffer);
      return null; // the reply waits for the Web Lock: see onmessage
    case 'attachAs':
      return null; // attachAsync: see onmessage
    case 'ping':
      return null; // loaded and listening
    case 'fill': {
      const h = attached();
      return m.sizes.map((size) => {
        const p = h.malloc(size);
        if (p === 0) throw new Error(`worker: malloc(${size}) returned 0`);
        fillBlock(h.u8, p, size, m.seed);
        return p;
      });
    }
    case 'reallocChain': {
      const h = attached();
      return { bad: reallocChain(h, m.sizes, m.seed), hasMemory: h.memory !== undefined } satisfies ChainReply;
    }
    case 'verifyFree': {
      const h = attached();
      let bad = 0;
      for (const [p, size] of m.blocks) {
        bad += badBytes(h.u8, p, size, m.seed);
        h.free(p);
      }
      return bad;
    }
    case 'loop':
      return loop(attached(), m.ctl, m.index, m.sizes, m.seed);
    case 'holdAndLoop': {
      const h = attached();
      const held: number[] = [];
      for (let i = 0; i < m.hold; i++) {
        const p = h.malloc(m.size);
        fillBlock(h.u8, p, m.size, m.seed);
        held.push(p);
      }
      postMessage({ id: -1, ok: true, value: held } satisfies Reply); // the blocks it keeps
      return loop(h, m.ctl, m.index, [m.size], m.seed);
    }
    case 'holdLock': {
      // Takes the global lock, says so through ctl[C_HELD], keeps it `ms` milliseconds, releases.
      const t = internals(attached());
      lockAcquire(t);
      Atomics.store(m.ctl, C_HELD, 1);
      Atomics.notify(m.ctl, C_HELD);
      const until = performance.now() + m.ms;
      while (performance.now() < until);
      Atomics.store(m.ctl, C_HELD, 0);
      lockRelease(t);
      return null;
    }
    case 'view': {
      const h = attached();
      return { u8Length: h.u8.length, byteLength: h.buffer.byteLength, bufferBytes: h.stats().bufferBytes } satisfies ViewReply;
    }
    case 'write':
      fillBlock(attached().u8, m.block, m.size, m.seed);
      return null;
    case 'check':
      attached().check();
      return null;
    case 'faultLarge': {
      // A 3 MiB malloc cut off under the global lock by the RangeError of a stack overflow (thrown
      // at its 3rd crash point): the instance stops, as if the thread had died there (fault.ts).
      armCrash(3, () => {
        throw new RangeError('Maximum call stack size exceeded');
      });
      try {
        attached().malloc(3 << 20);
        return 'not cut off';
      } catch (e) {
        return `${(e as Error).name}: ${(e as Error).message}`;
      } finally {
        armCrash(0, () => {
          throw new Error('off');
        });
      }
    }
    case 'flush':
      attached().flush();
      return null;
    case 'detach':
      attached().detach();
      return null;
  }
}

onmessage = async (e: MessageEvent<Request & { id: number }>) => {
  const m = e.data;
  try {
    let value = run(m);
    if (m.cmd === 'attachAs') heap = await SharedHeap.attachAsync(m.buffer, { threadId: m.threadId });
    if (m.cmd === 'attach' || m.cmd === 'attachAs') {
      const h = attached();
      // The thread id is handed out only once the Web Lock that says "alive" is held.
      const lockHeld = await h.threadLockHeld();
      value = {
        threadId: h.threadId,
        lockHeld,
        lockName: threadLockName(heapIdOf(h.buffer), h.threadId),
        crossOriginIsolated: globalThis.crossOriginIsolated,
      } satisfies AttachReply;
    }
    postMessage({ id: m.id, ok: true, value } satisfies Reply);
  } catch (err) {
    postMessage({ id: m.id, ok: false, error: String((err as Error)?.stack ?? err) } satisfies Reply);
  }
};
