/**
 * A module Web Worker of the chaos page (chaos.ts): attaches under the id its page reserved
 * (attachAsync) and runs random malloc/free/realloc/calloc/alignedAlloc, small and large, keeping
 * a table of the blocks it holds in shared memory (so the page knows them after the worker died)
 * and handing blocks to other workers through a shared mailbox. Every block it holds carries a
 * pattern of its own, checked whenever the block is resized, handed over or freed.
 */
import { SharedHeap } from '../../../src/index.js';
import { internals } from '../../../src/heap.js';
import { lockAcquire } from '../../../src/lock.js';
import {
  E_PTR, E_SEED, E_SIZE, E_STATE, ENTRIES, ENTRY_WORDS, M_PTR, M_SEED, M_SIZE, M_STATE, MAIL_SLOTS, MAIL_WORDS, S_AMBIGUOUS, S_EMPTY,
  S_LIVE, X_HELD, X_STOP, X_OPS, byteOf, mix, type ChaosRequest, type ChaosReply,
} from './chaos-protocol.js';

let heap: SharedHeap | undefined;

function run(h: SharedHeap, m: Extract<ChaosRequest, { cmd: 'loop' }>): ChaosReply {
  const { ctl, table, mail, index, closeAt } = m;
  const rnd = mix(m.seed);
  const base = index * ENTRIES * ENTRY_WORDS;
  let ops = 0;
  let bad = 0;
  let oom = 0;
  let serial = 0;
  const fill = (p: number, from: number, size: number, seed: number) => {
    const u8 = h.u8;
    for (let j = from; j < size; j++) u8[p + j] = byteOf(seed, j);
  };
  const verify = (p: number, size: number, seed: number) => {
    const u8 = h.u8;
    let n = 0;
    for (let j = 0; j < size; j++) if (u8[p + j] !== byteOf(seed, j)) n++;
    return n;
  };
  const size = (): number => {
    const r = rnd();
    if (r < m.largeShare) return 128 * 1024 + Math.floor(rnd() * 500_000); // large runs
    if (r < m.largeShare + 0.1) return 4096 + Math.floor(rnd() * 100_000);
    return 1 + Math.floor(rnd() * 2000);
  };
  const e = (i: number) => base + i * ENTRY_WORDS;
  const state = (i: number) => Atomics.load(table, e(i) + E_STATE);
  const set = (i: number, s: number) => Atomics.store(table, e(i) + E_STATE, s);
  const record = (i: number, p: number, n: number, seed: number) => {
    table[e(i) + E_PTR] = p;
    table[e(i) + E_SIZE] = n;
    table[e(i) + E_SEED] = seed;
  };
  const release = (i: number) => {
    // The state says "changing" before the block goes, so a page that finds this worker dead
    // never frees a block it may have freed already.
    set(i, S_AMBIGUOUS);
    const p = table[e(i) + E_PTR]!;
    bad += verify(p, table[e(i) + E_SIZE]!, table[e(i) + E_SEED]!);
    h.free(p);
    set(i, S_EMPTY);
  };
  while (Atomics.load(ctl, X_STOP) === 0) {
    if (closeAt > 0 && ops === closeAt) self.close(); // ends this worker once the current task returns
    if (closeAt > 0 && ops >= closeAt + 5000) break; // close()d: the rest of the task runs on
    const i = Math.floor(rnd() * ENTRIES);
    const op = rnd();
    const st = state(i);
    if (st === S_EMPTY) {
      set(i, S_AMBIGUOUS);
      const seed = ((index + 1) << 24) | (++serial & 0xffffff);
      let n = size();
      let p: number;
      if (op < 0.15) {
        p = h.calloc(1, n);
        if (p !== 0) {
          const u8 = h.u8;
          for (let j = 0; j < n; j++) if (u8[p + j] !== 0) bad++;
        }
      } else if (op < 0.3) {
        const align = 1 << (4 + Math.floor(rnd() * 13)); // 16 .. 64 KiB
        p = h.alignedAlloc(align, n);
        if (p % align !== 0) bad++;
      } else if (op < 0.45) {
        // A block another worker handed over.
        p = 0;
        for (let k = 0; k < MAIL_SLOTS; k++) {
          const w = k * MAIL_WORDS;
          if (Atomics.compareExchange(mail, w + M_STATE, S_LIVE, S_AMBIGUOUS) !== S_LIVE) continue;
          p = mail[w + M_PTR]!;
          n = mail[w + M_SIZE]!;
          const s = mail[w + M_SEED]!;
          record(i, p, n, s);
          set(i, S_LIVE);
          Atomics.store(mail, w + M_STATE, S_EMPTY);
          bad += verify(p, n, s);
          break;
        }
        if (p !== 0) {
          ops++;
          continue;
        }
        p = h.malloc(n);
      } else {
        p = h.malloc(n);
      }
      if (p === 0) {
        oom++;
        set(i, S_EMPTY);
      } else {
        fill(p, 0, n, seed);
        record(i, p, n, seed);
        set(i, S_LIVE);
      }
    } else if (st === S_LIVE) {
      const p = table[e(i) + E_PTR]!;
      const n = table[e(i) + E_SIZE]!;
      const seed = table[e(i) + E_SEED]!;
      if (op < 0.3) {
        set(i, S_AMBIGUOUS);
        const n2 = size();
        const q = h.realloc(p, n2);
        if (q === 0) {
          oom++;
        } else {
          bad += verify(q, Math.min(n, n2), seed);
          fill(q, Math.min(n, n2), n2, seed);
          record(i, q, n2, seed);
        }
        set(i, S_LIVE);
      } else if (op < 0.5) {
        // Hand it to whichever worker (or the page) takes it from the mailbox.
        set(i, S_AMBIGUOUS);
        let given = false;
        for (let k = 0; k < MAIL_SLOTS && !given; k++) {
          const w = k * MAIL_WORDS;
          if (Atomics.compareExchange(mail, w + M_STATE, S_EMPTY, S_AMBIGUOUS) !== S_EMPTY) continue;
          mail[w + M_PTR] = p;
          mail[w + M_SIZE] = n;
          mail[w + M_SEED] = seed;
          Atomics.store(mail, w + M_STATE, S_LIVE);
          given = true;
        }
        set(i, given ? S_EMPTY : S_LIVE);
      } else {
        release(i);
      }
    }
    if (++ops % 64 === 0) Atomics.store(ctl, X_OPS + index, ops);
  }
  Atomics.store(ctl, X_OPS + index, ops);
  return { ops, bad, oom };
}

onmessage = async (ev: MessageEvent<ChaosRequest & { id: number }>) => {
  const m = ev.data;
  try {
    let value: unknown = null;
    if (m.cmd === 'ping') value = null;
    else if (m.cmd === 'attachAs') {
      heap = await SharedHeap.attachAsync(m.buffer, { threadId: m.threadId });
      value = heap.threadId;
    } else if (m.cmd === 'loop') value = run(heap!, m);
    else if (m.cmd === 'freeAll') {
      const h = heap!;
      const base = m.index * ENTRIES * ENTRY_WORDS;
      for (let i = 0; i < ENTRIES; i++) {
        const w = base + i * ENTRY_WORDS;
        if (Atomics.load(m.table, w + E_STATE) !== S_LIVE) continue;
        Atomics.store(m.table, w + E_STATE, S_AMBIGUOUS);
        h.free(m.table[w + E_PTR]!);
        Atomics.store(m.table, w + E_STATE, S_EMPTY);
      }
      h.flush();
    } else if (m.cmd === 'detach') heap!.detach();
    else if (m.cmd === 'spawn') {
      // A worker of this worker, attached under an id this worker reserved for it.
      const id = heap!.newThreadId();
      const sub = new Worker('/chaos-worker.js', { type: 'module' });
      value = await new Promise((resolve, reject) => {
        sub.onmessage = (e: MessageEvent<{ ok: boolean; value: unknown; error?: string }>) =>
          e.data.ok ? resolve(e.data.value) : reject(new Error(e.data.error));
        sub.postMessage({ cmd: 'attachAs', buffer: heap!.buffer, threadId: id, id: 1 });
      });
    } else if (m.cmd === 'reclaimWhenGone') value = await heap!.reclaimWhenGone(m.threadId);
    else if (m.cmd === 'holdLock') {
      // Takes the global lock and keeps it until terminated: a worker that dies holding it.
      lockAcquire(internals(heap!));
      Atomics.store(m.ctl, X_HELD, 1);
      for (;;);
    }
    postMessage({ id: m.id, ok: true, value });
  } catch (err) {
    postMessage({ id: m.id, ok: false, error: String((err as Error)?.stack ?? err) });
  }
};
