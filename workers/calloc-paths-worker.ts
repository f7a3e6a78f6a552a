/**
 * Test worker for test/audit-calloc-*.test.ts: a thread of a shared heap (attached with the
 * buffer or with the heap's WebAssembly.Memory, workerData.heap) that allocates blocks and fills
 * them with a non-zero pattern, frees blocks (its own or other threads'), callocs blocks and
 * checks that every byte reads zero, flushes, detaches, or stops without detaching.
 *
 * Messages in, each answered with one message:
 *   { op: 'fill', size, count, byte } -> { ps }: malloc(size) up to `count` times (until 0), each block's usable size written with `byte`
 *   { op: 'write', ps, byte } -> { ok }: each block's usable size written with `byte`
 *   { op: 'free', ps, flush } -> { ok }
 *   { op: 'calloc', size, count, n? } -> { ps, bad }: calloc(n, size / n) up to `count` times (until 0); `bad` names blocks not zero
 *   { op: 'flush' } -> { ok }; { op: 'detach' } -> { ok }; { op: 'hasMemory' } -> { has }
 *   { op: 'stop' }: exits at once, without detaching (a dead worker)
 *   { op: 'churn', seed } -> { started }, then mallocs, callocs, reallocs and frees blocks (each written non-zero) until terminated
 * Posts { threadId } once attached.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedHeap, type SharedMemory } from '../src/index.js';

const heap = SharedHeap.attach((workerData as { heap: SharedArrayBuffer | SharedMemory }).heap);

type Message =
  | { op: 'fill'; size: number; count: number; byte: number }
  | { op: 'write'; ps: number[]; byte: number }
  | { op: 'free'; ps: number[]; flush: boolean }
  | { op: 'calloc'; size: number; count: number; n?: number }
  | { op: 'flush' }
  | { op: 'detach' }
  | { op: 'hasMemory' }
  | { op: 'stop' }
  | { op: 'churn'; seed: number };

function firstNonZero(p: number, n: number): number {
  const u8 = heap.u8;
  for (let i = p; i < p + n; i++) if (u8[i] !== 0) return i - p;
  return -1;
}

parentPort!.postMessage({ threadId: heap.threadId });
parentPort!.on('message', (m: Message) => {
  switch (m.op) {
    case 'fill': {
      const ps: number[] = [];
      for (let i = 0; i < m.count; i++) {
        const p = heap.malloc(m.size);
        if (p === 0) break;
        heap.u8.fill(m.byte, p, p + heap.usableSize(p));
        ps.push(p);
      }
      parentPort!.postMessage({ ps });
      return;
    }
    case 'write':
      for (const p of m.ps) heap.u8.fill(m.byte, p, p + heap.usableSize(p));
      parentPort!.postMessage({ ok: true });
      return;
    case 'free':
      for (const p of m.ps) heap.free(p);
      if (m.flush) heap.flush();
      parentPort!.postMessage({ ok: true });
      return;
    case 'calloc': {
      const n = m.n ?? 1;
      const ps: number[] = [];
      const bad: string[] = [];
      for (let i = 0; i < m.count; i++) {
        const p = heap.calloc(n, m.size / n);
        if (p === 0) break;
        ps.push(p);
        const at = firstNonZero(p, m.size);
        if (at >= 0 && bad.length < 5) bad.push(`worker calloc(${n}, ${m.size / n}) = ${p}: byte ${at} is ${heap.u8[p + at]}`);
      }
      parentPort!.postMessage({ ps, bad });
      return;
    }
    case 'flush':
      heap.flush();
      parentPort!.postMessage({ ok: true });
      return;
    case 'detach':
      heap.detach();
      parentPort!.postMessage({ ok: true });
      return;
    case 'hasMemory':
      parentPort!.postMessage({ has: heap.memory !== undefined });
      return;
    case 'stop':
      process.exit(0);
      return;
    case 'churn': {
      parentPort!.postMessage({ started: true });
      let x = m.seed >>> 0 || 1;
      const r = (): number => {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return (x >>>= 0);
      };
      const live: number[] = [];
      for (;;) {
        const k = r() % 8;
        if (k < 4 && live.length < 300) {
          const n = r() % 4 === 0 ? 130 * 1024 + (r() % 300_000) : r() % 9000;
          const p = k === 0 ? heap.calloc(1, n) : heap.malloc(n);
          if (p === 0) continue;
          heap.u8.fill(0x99, p, p + heap.usableSize(p));
          live.push(p);
        } else if (k < 5 && live.length > 0) {
          const j = r() % live.length;
          const q = heap.realloc(live[j]!, r() % 200_000);
          if (q !== 0) {
            live[j] = q;
            heap.u8.fill(0x9a, q, q + heap.usableSize(q));
          }
        } else if (live.length > 0) {
          const j = r() % live.length;
          heap.free(live[j]!);
          live[j] = live[live.length - 1]!;
          live.pop();
        }
      }
    }
  }
});
