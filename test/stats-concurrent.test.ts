/**
 * stats() while three workers allocate, reallocate and free (each other's blocks too): each figure
 * a moment's value (README.md's row for stats(); src/stats.ts), never NaN, negative, or above
 * its bound, and the peaks never go down from one call to the next.
 */
import { afterAll, expect, it } from 'vitest';
import { SharedHeap, type HeapStats } from '../src/index.js';
import { startWorker, terminateAll } from './remote-heap.js';

const MiB = 1 << 20;
afterAll(terminateAll);

function problems(s: HeapStats, prev: HeapStats | undefined, maxThreads: number): string[] {
  const bad: string[] = [];
  const walk = (o: unknown, path: string): void => {
    if (typeof o === 'number') {
      if (!Number.isFinite(o) || o < 0) bad.push(`${path} = ${o}`);
    } else if (o !== null && typeof o === 'object') {
      for (const [k, v] of Object.entries(o)) if (k !== 'threadId') walk(v, `${path}.${k}`);
    }
  };
  walk(s, 's');
  const classLive = s.classes.reduce((a, c) => a + c.liveBlocks, 0);
  const classBytes = s.classes.reduce((a, c) => a + c.liveBlocks * c.blockSize, 0);
  if (classLive + s.largeLiveBlocks !== s.liveBlocks) bad.push(`liveBlocks ${s.liveBlocks} != classes ${classLive} + large ${s.largeLiveBlocks}`);
  if (classBytes + s.largeLiveBytes !== s.liveBytes) bad.push(`liveBytes ${s.liveBytes} != classes ${classBytes} + large ${s.largeLiveBytes}`);
  if (s.liveBytes > s.footprintBytes) bad.push(`liveBytes ${s.liveBytes} > footprintBytes ${s.footprintBytes}`);
  if (s.footprintBytes > s.carvedBytes) bad.push(`footprintBytes ${s.footprintBytes} > carvedBytes ${s.carvedBytes}`);
  if (s.peakFootprintBytes < s.footprintBytes) bad.push('peakFootprintBytes < footprintBytes');
  if (s.metadataBytes > s.footprintBytes) bad.push('metadataBytes > footprintBytes');
  if (s.largePooledBytes > 2 * MiB) bad.push(`largePooledBytes ${s.largePooledBytes} > 2 MiB`);
  if (s.threadsAttached > maxThreads) bad.push(`threadsAttached ${s.threadsAttached}`);
  if (s.lock.contended > s.lock.acquisitions) bad.push('contended > acquisitions');
  if (s.lock.maxWaitMs > s.lock.waitMs) bad.push('maxWaitMs > waitMs');
  if (prev !== undefined) {
    if (s.peakFootprintBytes < prev.peakFootprintBytes) bad.push(`peakFootprintBytes went down ${prev.peakFootprintBytes} -> ${s.peakFootprintBytes}`);
    if (s.peakCarvedBytes < prev.peakCarvedBytes) bad.push(`peakCarvedBytes went down ${prev.peakCarvedBytes} -> ${s.peakCarvedBytes}`);
    for (const k of ['acquisitions', 'contended', 'spins', 'waits', 'wakes', 'waitMs', 'recoveries'] as const) {
      if (s.lock[k] < prev.lock[k]) bad.push(`lock.${k} went down ${prev.lock[k]} -> ${s.lock[k]}`);
    }
    for (const k of ['stage1', 'stage2', 'stage3', 'stage1Pushes', 'adopted', 'slotsReturned'] as const) {
      if (s.stages[k] < prev.stages[k]) bad.push(`stages.${k} went down ${prev.stages[k]} -> ${s.stages[k]}`);
    }
    if (s.largeAllocations < prev.largeAllocations) bad.push('largeAllocations went down');
  }
  return bad;
}

it('stats() while three workers allocate and free: no exception, no negative or NaN figure, none above its bound', async () => {
  const N = 3;
  const heap = SharedHeap.create({ initialBytes: 64 * MiB, maxBytes: 128 * MiB, maxThreads: 6 });
  const ctl = new Int32Array(new SharedArrayBuffer(8));
  const boxes = new Int32Array(new SharedArrayBuffer(4 * 64 * N));
  const ws = Array.from({ length: N }, (_, id) => startWorker('stats-busy-worker', { buffer: heap.buffer, ctl, boxes, id, n: N, seed: 17 + id }));
  await Promise.all(ws.map((w) => new Promise((r) => w.once('message', r))));
  const seen = new Map<string, number>();
  let prev: HeapStats | undefined;
  let calls = 0;
  const end = Date.now() + 4000;
  while (Date.now() < end) {
    let s: HeapStats;
    try {
      s = heap.stats();
    } catch (e) {
      seen.set(`threw ${String(e)}`, (seen.get(`threw ${String(e)}`) ?? 0) + 1);
      continue;
    }
    calls++;
    for (const b of problems(s, prev, 6)) {
      const key = b.replace(/[0-9.e+-]+/g, 'N');
      if (!seen.has(key)) console.log('first:', b);
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    prev = s;
    if ((calls & 31) === 0) await new Promise((r) => setImmediate(r));
  }
  Atomics.store(ctl, 0, 1);
  const done = ws.map((w) => new Promise<void>((r) => w.on('message', (m: { done?: boolean }) => m.done && r())));
  await Promise.all(done);
  heap.flush();
  const last = heap.stats();
  console.log('calls', calls, 'final', last.liveBlocks, last.liveBytes, last.lock);
  expect({ calls: calls > 100, problems: Object.fromEntries(seen) }).toEqual({ calls: true, problems: {} });
  expect({ liveBlocks: last.liveBlocks, liveBytes: last.liveBytes, threadsAttached: last.threadsAttached }).toEqual({ liveBlocks: 0, liveBytes: 0, threadsAttached: 1 });
}, 60_000);
