/**
 * The demo page: N module Web Workers run a size mix against one heap made on this (main)
 * thread, and the page draws what it reads while they run: the heap map (readHeapMap), the
 * global lock and the Stage 1/2/3 counts over time (heap.stats()), and ops/s per worker.
 */
import {
  MAP_LARGE, MAP_METADATA, MAP_POOLED, MAP_SLAB, MAP_UNCARVED, MAP_UNUSED, NUM_CLASSES, CLASS_SIZES, SharedHeap,
  readHeapMap, type HeapStats,
} from '../src/index.js';
import { CTL_OPS, CTL_STOP, CTL_WORDS, MIXES, XFER_SLOTS, type StartMessage, type WorkerMessage } from './protocol.js';

const MiB = 1 << 20;
const SAMPLE_MS = 500;
const HISTORY = 60; // samples kept (30 s)
const THREAD_COLOURS = ['#ff6b6b', '#4dabf7', '#ffd43b', '#69db7c', '#da77f2', '#ff922b', '#3bc9db', '#f783ac'];
const BG = '#0f1115';

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

interface Sample {
  t: number;
  stats: HeapStats;
  ops: number[];
}

interface Run {
  heap: SharedHeap;
  workers: Worker[];
  threadIds: number[];
  ctl: Int32Array;
  xfer: Int32Array;
  samples: Sample[];
  timer: number;
  stopping: boolean;
}

let run: Run | undefined;

function classColour(cls: number, pooled: boolean): string {
  const hue = Math.round((cls / (NUM_CLASSES - 1)) * 300);
  return pooled ? `hsl(${hue} 25% 30%)` : `hsl(${hue} 75% 55%)`;
}

function threadColour(r: Run, threadId: number): string {
  const i = r.threadIds.indexOf(threadId);
  return i < 0 ? '#888' : THREAD_COLOURS[i % THREAD_COLOURS.length]!;
}

function fmt(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return `${Math.round(n)}`;
}

function bytes(n: number): string {
  return n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
}

function start(): void {
  if (run !== undefined) return;
  const threads = Number(($('threads') as HTMLInputElement).value);
  const mix = ($('mix') as HTMLSelectElement).value;
  const heap = SharedHeap.create({ initialBytes: 16 * MiB, maxBytes: 64 * MiB, maxThreads: 16 });
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_WORDS * 4));
  const xfer = new Int32Array(new SharedArrayBuffer(XFER_SLOTS * 4));
  const r: Run = { heap, workers: [], threadIds: [], ctl, xfer, samples: [], timer: 0, stopping: false };
  run = r;
  for (let i = 0; i < threads; i++) {
    const w = new Worker('/worker.js', { type: 'module' });
    w.onmessage = (e: MessageEvent<WorkerMessage>) => onWorkerMessage(r, i, w, e.data);
    w.onerror = (e) => status(`worker ${i}: ${e.message}`);
    // The id is reserved here, before the worker runs: heap.reclaimWhenGone(threadId) would
    // cover it wherever it died, inside attach too (README, Browsers).
    const threadId = heap.newThreadId();
    r.threadIds.push(threadId);
    const msg: StartMessage = { buffer: heap.buffer, ctl, xfer, index: i, mix, seed: 0x9e3779b9 * (i + 1), threadId };
    w.postMessage(msg);
    r.workers.push(w);
  }
  r.timer = window.setInterval(() => sample(r), SAMPLE_MS);
  $('start').setAttribute('disabled', '');
  $('stop').removeAttribute('disabled');
  status(`running: ${threads} worker${threads === 1 ? '' : 's'}, ${MIXES[mix]?.label}`);
  sample(r);
}

let done = 0;
function onWorkerMessage(r: Run, i: number, w: Worker, m: WorkerMessage): void {
  if (m.type === 'error') status(`worker ${i}: ${m.message}`);
  else if (m.type === 'done') {
    w.terminate();
    if (++done === r.workers.length) finish(r);
  }
}

function stop(): void {
  const r = run;
  if (r === undefined || r.stopping) return;
  r.stopping = true;
  done = 0;
  Atomics.store(r.ctl, CTL_STOP, 1);
  $('stop').setAttribute('disabled', '');
  status('stopping: workers free their blocks and detach');
}

/** All workers detached: free what is left in the xfer table, check the heap, show the result. */
function finish(r: Run): void {
  window.clearInterval(r.timer);
  for (let k = 0; k < XFER_SLOTS; k++) {
    const p = Atomics.exchange(r.xfer, k, 0);
    if (p !== 0) r.heap.free(p);
  }
  r.heap.flush();
  let verdict = 'check() passed';
  try {
    r.heap.check();
  } catch (e) {
    verdict = `check() failed: ${String(e)}`;
  }
  sample(r);
  const s = r.heap.stats();
  status(`stopped; ${verdict}; live bytes ${s.liveBytes}; threads attached ${s.threadsAttached}`);
  r.heap.detach();
  run = undefined;
  $('start').removeAttribute('disabled');
}

function sample(r: Run): void {
  const ops = r.workers.map((_, i) => Atomics.load(r.ctl, CTL_OPS + i));
  r.samples.push({ t: performance.now(), stats: r.heap.stats(), ops });
  if (r.samples.length > HISTORY) r.samples.shift();
  draw(r);
}

function draw(r: Run): void {
  drawMap(r);
  const cur = r.samples[r.samples.length - 1]!;
  const s = cur.stats;
  const total = cur.ops.reduce((a, b) => a + b, 0);
  $('ops-total').textContent = fmt(total);
  $('stat-acq').textContent = fmt(s.lock.acquisitions);
  $('stat-contended').textContent = fmt(s.lock.contended);
  $('stat-waits').textContent = fmt(s.lock.waits);
  $('stat-s1').textContent = fmt(s.stages.stage1);
  $('stat-s2').textContent = fmt(s.stages.stage2);
  $('stat-s3').textContent = fmt(s.stages.stage3);
  $('stat-footprint').textContent = `${bytes(s.footprintBytes)} of ${bytes(s.bufferBytes)} (max ${bytes(s.maxBytes)})`;
  $('stat-live').textContent = bytes(s.liveBytes);
  $('stat-remote').textContent = fmt(s.threads.reduce((n, t) => n + t.remoteFrees, 0));
  $('stat-threads').textContent = String(s.threadsAttached);
  drawSeries(
    $('lockChart'),
    r,
    [
      { label: 'acquisitions/s', colour: '#4dabf7', get: (x) => x.stats.lock.acquisitions },
      { label: 'contended/s', colour: '#ffd43b', get: (x) => x.stats.lock.contended },
      { label: 'waits/s', colour: '#ff6b6b', get: (x) => x.stats.lock.waits },
    ],
  );
  drawSeries(
    $('stageChart'),
    r,
    [
      { label: 'Stage 1/s', colour: '#69db7c', get: (x) => x.stats.stages.stage1 },
      { label: 'Stage 2/s', colour: '#da77f2', get: (x) => x.stats.stages.stage2 },
      { label: 'Stage 3/s', colour: '#ff922b', get: (x) => x.stats.stages.stage3 },
    ],
  );
  drawOps($('opsChart'), r);
}

function ctx2d(c: HTMLCanvasElement): CanvasRenderingContext2D {
  const g = c.getContext('2d')!;
  g.fillStyle = BG;
  g.fillRect(0, 0, c.width, c.height);
  g.font = '12px system-ui, sans-serif';
  return g;
}

const SUPERS_PER_ROW = 4;
const CELL_W = 9;
const CELL_H = 14;

function drawMap(r: Run): void {
  const c = $<HTMLCanvasElement>('map');
  const m = readHeapMap(r.heap.buffer);
  const height = Math.ceil(m.maxSupers / SUPERS_PER_ROW) * (CELL_H + 4) + 70;
  if (c.height !== height) c.height = height;
  const g = ctx2d(c);
  const rowW = SUPERS_PER_ROW * (m.slotsPerSuper * CELL_W + 6);
  for (let sup = 0; sup < m.maxSupers; sup++) {
    const x0 = (sup % SUPERS_PER_ROW) * (m.slotsPerSuper * CELL_W + 6) + 4;
    const y0 = Math.floor(sup / SUPERS_PER_ROW) * (CELL_H + 4) + 4;
    if (x0 + rowW < 0) continue;
    for (let k = 0; k < m.slotsPerSuper; k++) {
      const s = sup * m.slotsPerSuper + k;
      const x = x0 + k * CELL_W;
      const kind = s < m.kind.length ? m.kind[s]! : -1;
      let fill = '#15181e'; // beyond the buffer
      if (kind === MAP_METADATA) fill = '#5c6370';
      else if (kind === MAP_UNCARVED) fill = '#1e222b';
      else if (kind === MAP_UNUSED) fill = '#2c3342';
      else if (kind === MAP_LARGE) fill = '#e9ecef';
      else if (kind === MAP_SLAB || kind === MAP_POOLED) fill = classColour(m.cls[s]!, kind === MAP_POOLED);
      g.fillStyle = fill;
      g.fillRect(x, y0, CELL_W - 1, CELL_H);
      if (kind === MAP_SLAB && m.tid[s]! >= 0) {
        g.fillStyle = threadColour(r, m.owner[s]!);
        g.fillRect(x, y0 + CELL_H - 5, CELL_W - 1, 5);
      }
    }
  }
  // Legend: the class hues and the thread colours.
  const ly = c.height - 60;
  for (let cls = 0; cls < NUM_CLASSES; cls++) {
    g.fillStyle = classColour(cls, false);
    g.fillRect(4 + cls * 6, ly, 6, 12);
  }
  g.fillStyle = '#ccc';
  g.fillText(`size class: ${CLASS_SIZES[0]} B … ${CLASS_SIZES[NUM_CLASSES - 1]! >> 10} KiB`, 8 + NUM_CLASSES * 6, ly + 10);
  let lx = 4;
  let ty = ly + 20;
  g.fillText('owner (bottom stripe):', lx, ty + 10);
  lx += 142;
  r.threadIds.forEach((id, i) => {
    g.fillStyle = THREAD_COLOURS[i % THREAD_COLOURS.length]!;
    g.fillRect(lx, ty, 12, 12);
    g.fillStyle = '#ccc';
    g.fillText(`w${i}`, lx + 15, ty + 10);
    lx += 42;
  });
  lx = 4;
  ty += 20;
  const keys: [string, string][] = [['#5c6370', 'metadata'], ['#2c3342', 'unused'], ['#e9ecef', 'large run'], ['hsl(200 25% 30%)', 'Stage 1 (empty)']];
  for (const [colour, label] of keys) {
    g.fillStyle = colour;
    g.fillRect(lx, ty, 12, 12);
    g.fillStyle = '#ccc';
    g.fillText(label, lx + 15, ty + 10);
    lx += 30 + label.length * 6;
  }
}

interface Series {
  label: string;
  colour: string;
  get: (s: Sample) => number;
}

/** Per-second rates of cumulative counters over the kept samples. */
function drawSeries(c: HTMLCanvasElement, r: Run, series: Series[]): void {
  const g = ctx2d(c);
  const pad = 34;
  const w = c.width - pad - 8;
  const h = c.height - 40;
  const rates = series.map((se) => {
    const out: number[] = [];
    for (let i = 1; i < r.samples.length; i++) {
      const a = r.samples[i - 1]!;
      const b = r.samples[i]!;
      out.push(((se.get(b) - se.get(a)) * 1000) / Math.max(1, b.t - a.t));
    }
    return out;
  });
  const max = Math.max(1, ...rates.flat());
  g.strokeStyle = '#333';
  g.beginPath();
  g.moveTo(pad, 8);
  g.lineTo(pad, 8 + h);
  g.lineTo(pad + w, 8 + h);
  g.stroke();
  g.fillStyle = '#999';
  g.fillText(fmt(max), 2, 16);
  g.fillText('0', 2, 8 + h);
  rates.forEach((pts, k) => {
    g.strokeStyle = series[k]!.colour;
    g.lineWidth = 2;
    g.beginPath();
    pts.forEach((v, i) => {
      const x = pad + (i / (HISTORY - 1)) * w;
      const y = 8 + h - (v / max) * h;
      if (i === 0) g.moveTo(x, y);
      else g.lineTo(x, y);
    });
    g.stroke();
    g.lineWidth = 1;
  });
  let lx = pad;
  series.forEach((se, k) => {
    g.fillStyle = se.colour;
    g.fillRect(lx, c.height - 20, 10, 10);
    g.fillStyle = '#ccc';
    const last = rates[k]![rates[k]!.length - 1] ?? 0;
    const text = `${se.label} ${fmt(last)}`;
    g.fillText(text, lx + 14, c.height - 11);
    lx += 24 + g.measureText(text).width;
  });
}

function drawOps(c: HTMLCanvasElement, r: Run): void {
  const g = ctx2d(c);
  const n = r.workers.length;
  const a = r.samples[r.samples.length - 2];
  const b = r.samples[r.samples.length - 1]!;
  const rates = b.ops.map((v, i) => (a === undefined ? 0 : ((v - (a.ops[i] ?? 0)) * 1000) / Math.max(1, b.t - a.t)));
  const max = Math.max(1, ...rates);
  const barW = Math.min(60, (c.width - 20) / Math.max(1, n) - 8);
  rates.forEach((v, i) => {
    const h = (v / max) * (c.height - 44);
    const x = 10 + i * (barW + 8);
    g.fillStyle = THREAD_COLOURS[i % THREAD_COLOURS.length]!;
    g.fillRect(x, c.height - 24 - h, barW, h);
    g.fillStyle = '#ccc';
    g.fillText(`w${i}`, x, c.height - 8);
    g.fillText(fmt(v), x, c.height - 28 - h);
  });
  g.fillStyle = '#999';
  g.fillText(`ops/s per worker (total ${fmt(rates.reduce((x, y) => x + y, 0))})`, c.width - 230, 14);
}

function status(text: string): void {
  $('status').textContent = text;
}

function init(): void {
  const mixSel = $<HTMLSelectElement>('mix');
  for (const [key, m] of Object.entries(MIXES)) {
    const o = document.createElement('option');
    o.value = key;
    o.textContent = m.label;
    mixSel.append(o);
  }
  const params = new URLSearchParams(location.search);
  const threadsIn = $<HTMLInputElement>('threads');
  threadsIn.value = params.get('threads') ?? String(Math.min(4, navigator.hardwareConcurrency || 2));
  mixSel.value = params.get('mix') ?? 'mixed';
  const showThreads = (): void => void ($('threads-value').textContent = threadsIn.value);
  threadsIn.oninput = showThreads;
  showThreads();
  $('start').onclick = start;
  $('stop').onclick = stop;
  if (!globalThis.crossOriginIsolated) {
    status('this page is not cross-origin isolated (no COOP/COEP headers): SharedArrayBuffer is unavailable');
    $('start').setAttribute('disabled', '');
    return;
  }
  status('ready');
  if (params.get('autostart') === '1') start();
}

init();
