/**
 * Output of `sabmalloc bench`: the environment, the text table, the MICRO
 * table and the SVG chart (hand-written, no dependencies).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CaseResult, PairedRatio } from './case.js';
import { ratioKey } from './summarize.js';
import type { MicroRow } from './micro.js';

export interface Environment {
  date: string;
  node: string;
  v8: string;
  cpuModel: string;
  cores: number;
  availableParallelism: number;
  platform: string;
  arch: string;
  osRelease: string;
  totalMemoryBytes: number;
  /** `git rev-parse HEAD` of the package's checkout, or null outside one. */
  gitCommit: string | null;
  /** Whether the checkout had uncommitted changes (null outside one). */
  gitDirty: boolean | null;
  packageVersion: string | null;
  /** os.loadavg() when the run started. */
  loadAverageStart: number[];
  /** os.loadavg() when it ended (set by the caller). */
  loadAverageEnd?: number[];
  /**
   * Microseconds a first touch of a fresh page took ({@link measureFirstTouchUs}): the cost of
   * each of a run's page faults, which every allocator pays for each page it touches first.
   */
  firstTouchUs?: number;
}

/**
 * Microseconds a first write to a fresh 4 KiB page takes here: one byte written a page over a
 * fresh SharedArrayBuffer of `bytes`, the median of `rounds`. On an ordinary machine well under
 * a microsecond; in some virtual machines ten times that and more (12-15 us on the Firecracker VM
 * the README's tables come from), where replaying a trace with a large live set spends most of
 * its time in first touches, whatever the allocator.
 */
export function measureFirstTouchUs(bytes = 16 << 20, rounds = 3): number {
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const u8 = new Uint8Array(new SharedArrayBuffer(bytes));
    const t0 = performance.now();
    for (let i = 0; i < bytes; i += 4096) u8[i] = 1;
    times.push(((performance.now() - t0) * 1000) / Math.ceil(bytes / 4096));
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1]!;
}

/** The directory holding this package's package.json (from bench/ or dist/bench/). */
export function packageRoot(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return undefined;
}

function git(root: string | undefined, args: string[]): string | null {
  if (root === undefined) return null;
  try {
    const r = spawnSync('git', args, { cwd: root, encoding: 'utf8', timeout: 5000 });
    return r.status === 0 ? r.stdout.trim() : null;
  } catch {
    return null;
  }
}

/** The machine line of a report's header: Node and V8, the CPU, its cores and os.availableParallelism(). */
export function machineLine(env: Pick<Environment, 'node' | 'v8' | 'cpuModel' | 'cores' | 'availableParallelism'>): string {
  return `Node ${env.node} (V8 ${env.v8}), ${env.cpuModel}, ${env.cores} cores, os.availableParallelism() = ${env.availableParallelism}`;
}

export function collectEnvironment(): Environment {
  const root = packageRoot();
  const cpus = os.cpus();
  let packageVersion: string | null = null;
  try {
    if (root !== undefined) packageVersion = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: string }).version ?? null;
  } catch {
    packageVersion = null;
  }
  const commit = git(root, ['rev-parse', 'HEAD']);
  const status = commit === null ? null : git(root, ['status', '--porcelain', '--untracked-files=no']);
  return {
    date: new Date().toISOString(),
    node: process.version,
    v8: process.versions.v8,
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    platform: process.platform,
    arch: process.arch,
    osRelease: os.release(),
    totalMemoryBytes: os.totalmem(),
    gitCommit: commit,
    gitDirty: status === null ? null : status.length > 0,
    packageVersion,
    loadAverageStart: os.loadavg(),
    firstTouchUs: measureFirstTouchUs(),
  };
}

// ---------------------------------------------------------------------------
// Number formats

/**
 * Operations per second in at most five characters (9.99M, 99.9M, 100M, 99.9k, 999k, 999): the
 * unit and the decimals are chosen on the rounded figure, so that 9,996,000 reads 10.0M, not
 * 10.00M, and 999,700 reads 1.00M, not 1000k (those six-character forms once widened the table
 * past its 120 columns).
 */
export function fmtOps(x: number): string {
  if (!Number.isFinite(x)) return '-';
  if (x >= 999_500) {
    const m = x / 1e6;
    return `${m.toFixed(m >= 99.95 ? 0 : m >= 9.995 ? 1 : 2)}M`;
  }
  if (x >= 999.5) {
    const k = x / 1e3;
    return `${k.toFixed(k >= 99.95 ? 0 : 1)}k`;
  }
  return x.toFixed(0);
}

/**
 * Bytes in at most nine characters (999.9 KiB, 1.0 MiB, 999.9 MiB, 1.95 GiB): from 999.95 of a
 * unit the next one, so that no figure reads 1020.0 KiB or 1945.3 MiB and widens its column.
 */
export function fmtBytes(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  if (x >= 999.95 * (1 << 20)) return `${(x / (1 << 30)).toFixed(2)} GiB`;
  if (x >= 999.95 * (1 << 10)) return `${(x / (1 << 20)).toFixed(1)} MiB`;
  if (x >= 1000) return `${(x / (1 << 10)).toFixed(1)} KiB`;
  return `${x} B`;
}

/** `digits` decimals; a non-zero value that would print as 0 gets two significant digits instead. */
function fmtNum(x: number, digits: number): string {
  if (!Number.isFinite(x)) return '-';
  if (x === 0) return '0';
  return Math.abs(x) < 10 ** -digits ? x.toPrecision(2) : x.toFixed(digits);
}

/** Two decimals, or two significant digits below 0.1 (thi.ng's ratios are ~0.001). */
export function fmtRatio(x: number): string {
  if (!Number.isFinite(x)) return '-';
  return x >= 0.1 || x === 0 ? x.toFixed(2) : x.toPrecision(2);
}

function fmtCount(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-';
}

// ---------------------------------------------------------------------------
// Tables

// The default table: one line per case, at most TABLE_MAX_WIDTH columns.
// Everything else (lock and stage counters, metadata, per-run figures) is in
// the JSON and in the --wide table.

/** The widest line of the default table. */
export const TABLE_MAX_WIDTH = 120;
/** The workload column's widest cell; a longer trace name is cut (the JSON has it whole). */
const WORKLOAD_CELL_MAX = 24;
/** The notes column's widest cell. */
const NOTES_CELL_MAX = 16;

export const TABLE_HEADER = [
  'workload',
  'thr',
  'allocator',
  'cold ops/s',
  'warm ops/s (min-max)',
  'x glibc',
  'footprint',
  'peak live',
  'fp/live',
  'notes',
] as const;

function cut(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - 1) + '~';
}

function workloadCell(c: CaseResult): string {
  return cut(c.spec.trace !== undefined ? `${c.spec.workload} ${c.spec.trace}` : c.spec.workload, WORKLOAD_CELL_MAX);
}

/** Short notes for the default table (the long forms are in the JSON). */
function shortNotes(c: CaseResult): string {
  const n: string[] = [];
  if (c.spec.heapOptions?.magazineCapacity === 1) n.push('mags of 1');
  if (c.spec.heapNote !== undefined) n.push(c.spec.heapNote);
  if (c.spec.allocator === 'thi.ng') n.push(`${fmtOps(c.spec.cycles)} ops`);
  if (c.spec.allocator === 'reference') n.push('floor, 1 thread');
  return cut(n.join('; '), NOTES_CELL_MAX);
}

/** The cold, warm (median, min-max) and x glibc cells both tables show. */
function speedCells(s: NonNullable<CaseResult['summary']>): string[] {
  const o = s.opsPerSec;
  return [
    s.coldOpsPerSec !== undefined ? fmtOps(s.coldOpsPerSec) : '-',
    `${fmtOps(o.median)} (${fmtOps(o.min)}-${fmtOps(o.max)})`,
    s.ratioToGlibc !== undefined ? fmtRatio(s.ratioToGlibc) : '-',
  ];
}

/** The default table's rows, as cells (strings); a failed case shows its error in the last cell. */
export function tableRows(cases: CaseResult[]): string[][] {
  return cases.map((c) => {
    const s = c.summary;
    const head = [workloadCell(c), String(c.spec.threads), c.spec.allocator];
    if (s === undefined) return [...head, '-', '-', '-', '-', '-', '-', `ERROR (see below)`];
    return [
      ...head,
      ...speedCells(s),
      fmtBytes(s.footprintBytes),
      fmtBytes(s.peakLiveBytes),
      s.footprintRatio !== undefined ? s.footprintRatio.toFixed(2) : '-',
      shortNotes(c),
    ];
  });
}

/** The default table, then one line per failed case with its error. */
export function renderTable(cases: CaseResult[]): string {
  const table = formatTable(TABLE_HEADER, tableRows(cases), new Set([1, 3, 4, 5, 6, 7, 8]));
  const errors = cases
    .filter((c) => c.summary === undefined)
    .map((c) => `ERROR: ${c.spec.allocator} ${workloadCell(c)} threads=${c.spec.threads}: ${c.error ?? 'no result'}`);
  return [table, ...errors].join('\n');
}

/**
 * sabmalloc's ratio to glibc round by round (CaseSummary.pairedRatio), one line per case that has
 * one, with the reference floor's on the same workload and threads where it ran; '' when none
 * has. On a machine whose speed drifts between runs, the spread of these says more than a ratio
 * of two medians, and the floor's says what any allocator in this loop could reach.
 */
export function renderPairedRatios(cases: CaseResult[]): string {
  const floor = new Map<string, PairedRatio>();
  for (const c of cases) {
    const p = c.summary?.pairedRatio;
    if (c.spec.allocator === 'reference' && p !== undefined) floor.set(ratioKey(c), p);
  }
  const cell = (p: PairedRatio): string =>
    `${fmtRatio(p.median)} (${fmtRatio(p.min)}-${fmtRatio(p.max)}), at least 1.0 in ${p.atLeastOne} of ${p.rounds}`;
  const lines: string[] = [];
  for (const c of cases) {
    const p = c.summary?.pairedRatio;
    if (c.spec.allocator !== 'sabmalloc' || p === undefined) continue;
    const f = floor.get(ratioKey(c));
    const what = `${workloadCell(c)}, ${c.spec.threads} thread${c.spec.threads === 1 ? '' : 's'}`;
    lines.push(`  ${what}: ${cell(p)} rounds${f !== undefined ? `; the floor ${cell(f)}` : ''}`);
  }
  if (lines.length === 0) return '';
  return ["sabmalloc x glibc round by round (each timed run over glibc's timed run of the same round, run just before or after it):", ...lines].join('\n');
}

/** Lines of at most `width` columns (breaking at spaces). */
export function wrap(text: string, width = TABLE_MAX_WIDTH): string {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') out.push(line);
  return out.join('\n');
}

/** The --wide table: every figure of the summary on one line per case. */
export const WIDE_TABLE_HEADER = [
  'allocator',
  'workload',
  'threads',
  'cold',
  'ops/s median (min-max)',
  'x glibc',
  'footprint',
  'carved',
  'meta',
  'peak live',
  'fp/live',
  'page faults',
  'lock acq/contended/waits/wait ms per Mops',
  'S1/S2/S3',
  'remote frees',
  'notes',
] as const;

/** The --wide table's rows, as cells (strings). */
export function wideTableRows(cases: CaseResult[]): string[][] {
  return cases.map((c) => {
    const s = c.summary;
    const head = [c.spec.allocator, c.spec.trace !== undefined ? `${c.spec.workload} ${c.spec.trace}` : c.spec.workload, String(c.spec.threads)];
    if (s === undefined) {
      return [...head, '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', `ERROR: ${c.error ?? 'no result'}`];
    }
    const lock = s.lockPerMops;
    return [
      ...head,
      ...speedCells(s),
      fmtBytes(s.footprintBytes),
      fmtBytes(s.carvedBytes),
      fmtBytes(s.metaBytes),
      fmtBytes(s.peakLiveBytes),
      s.footprintRatio !== undefined ? s.footprintRatio.toFixed(2) : '-',
      s.minorFaults !== undefined ? fmtCount(s.minorFaults) : '-',
      lock !== undefined
        ? `${fmtNum(lock.acquisitions, 1)}/${fmtNum(lock.contended, 1)}/${fmtNum(lock.waits, 1)}/${fmtNum(lock.waitMs, 3)}`
        : '-',
      s.stages !== undefined ? `${fmtCount(s.stages.stage1)}/${fmtCount(s.stages.stage2)}/${fmtCount(s.stages.stage3)}` : '-',
      s.remoteFrees !== undefined ? fmtCount(s.remoteFrees) : '-',
      c.spec.notes.join('; '),
    ];
  });
}

/** Left-aligns text columns and right-aligns numeric ones, with a rule under the header. */
export function formatTable(header: readonly string[], rows: string[][], numeric: ReadonlySet<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function renderWideTable(cases: CaseResult[]): string {
  return formatTable(WIDE_TABLE_HEADER, wideTableRows(cases), new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]));
}

export const MICRO_HEADER = ['allocator', 'micro-benchmark', 'ops/s (median)', 'mean ns', 'p50 ns', 'p99 ns', 'rme %', 'samples'] as const;

export function renderMicroTable(rows: MicroRow[]): string {
  const cells = rows.map((r) =>
    r.error !== undefined
      ? [r.allocator, r.task, '-', '-', '-', '-', '-', `ERROR: ${r.error}`]
      : [
          r.allocator,
          r.task,
          fmtOps(r.opsPerSec),
          r.meanNs.toFixed(1),
          r.p50Ns.toFixed(1),
          r.p99Ns.toFixed(1),
          r.rme.toFixed(2),
          String(r.samples),
        ],
  );
  return formatTable(MICRO_HEADER, cells, new Set([2, 3, 4, 5, 6, 7]));
}

// ---------------------------------------------------------------------------
// SVG

const COLORS: Record<string, string> = {
  sabmalloc: '#d62728',
  glibc: '#1f77b4',
  system: '#1f77b4',
  jemalloc: '#2ca02c',
  tcmalloc: '#9467bd',
  mimalloc: '#ff7f0e',
  'thi.ng': '#8c564b',
  reference: '#7f7f7f',
};
const EXTRA_COLORS = ['#17becf', '#bcbd22', '#e377c2', '#aec7e8'];

const WORKLOAD_TITLES: Record<string, string> = {
  W1: 'W1 random_mixed',
  W2: 'W2 mid_large',
  W3: 'W3 larson',
  W5: 'W5 replay',
  LOCK: 'LOCK lock storm',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A "nice" axis maximum and step (1, 2 or 5 times a power of ten) for values up to `max`. */
export function niceAxis(max: number, ticks = 5): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const raw = max / ticks;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  return { top: Math.ceil(max / step) * step, step };
}

/**
 * Ops/s against threads: one panel per workload, a line per allocator
 * (median, with a bar from the fastest to the slowest run), axes labelled,
 * a shared legend, and the date and machine underneath.
 */
export function renderSvg(cases: CaseResult[], env: Environment): string {
  const ok = cases.filter((c) => c.summary !== undefined);
  // one panel per workload, and per trace for W5
  const panelOf = (c: CaseResult): string => (c.spec.trace !== undefined ? `${c.spec.workload} ${c.spec.trace}` : c.spec.workload);
  const workloads = [...new Set(ok.map(panelOf))];
  const allocators = [...new Set(ok.map((c) => c.spec.allocator))];
  const color = (a: string): string => COLORS[a] ?? EXTRA_COLORS[allocators.indexOf(a) % EXTRA_COLORS.length]!;
  const PW = 340; // panel width
  const PH = 250; // panel height
  const M = { l: 58, r: 14, t: 28, b: 42 }; // margins inside a panel
  const cols = Math.max(1, Math.min(3, workloads.length));
  const rowsN = Math.max(1, Math.ceil(workloads.length / cols));
  const legendH = 30;
  const footH = 34;
  const W = cols * PW + 20;
  const H = legendH + rowsN * PH + footH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
  );
  // legend
  let lx = 12;
  for (const a of allocators) {
    out.push(
      `<line x1="${lx}" y1="16" x2="${lx + 22}" y2="16" stroke="${color(a)}" stroke-width="2.5"/>`,
      `<circle cx="${lx + 11}" cy="16" r="3" fill="${color(a)}"/>`,
      `<text x="${lx + 27}" y="20">${esc(a)}</text>`,
    );
    lx += 36 + a.length * 7;
  }
  workloads.forEach((w, i) => {
    const ox = 10 + (i % cols) * PW;
    const oy = legendH + Math.floor(i / cols) * PH;
    const wc = ok.filter((c) => panelOf(c) === w);
    const threads = [...new Set(wc.map((c) => c.spec.threads))].sort((a, b) => a - b);
    const maxV = Math.max(...wc.map((c) => c.summary!.opsPerSec.max / 1e6));
    const { top, step } = niceAxis(maxV);
    const x0 = ox + M.l;
    const x1 = ox + PW - M.r;
    const y0 = oy + PH - M.b;
    const y1 = oy + M.t;
    // A panel at one thread count (every W5 trace) spreads its allocators along the x axis, each
    // named under it: at one x their points and bars hid one another.
    const here = allocators.filter((a) => wc.some((c) => c.spec.allocator === a));
    const byAllocator = threads.length === 1 && here.length > 1;
    const spread = (k: number, n: number): number => (n === 1 ? (x0 + x1) / 2 : x0 + 16 + (k * (x1 - x0 - 32)) / (n - 1));
    const xs = (t: number, a?: string): number =>
      byAllocator && a !== undefined ? spread(here.indexOf(a), here.length) : spread(threads.indexOf(t), threads.length);
    const ys = (v: number): number => y0 - (v / top) * (y0 - y1);
    out.push(`<g>`);
    out.push(`<text x="${(x0 + x1) / 2}" y="${oy + 16}" text-anchor="middle" font-size="13" font-weight="bold">${esc(WORKLOAD_TITLES[w] ?? (w.startsWith('W5 ') ? `W5 replay: ${w.slice(3)}` : w))}</text>`);
    for (let v = 0; v <= top + step / 2; v += step) {
      const y = ys(v).toFixed(1);
      out.push(
        `<line x1="${x0}" y1="${y}" x2="${x1}" y2="${y}" stroke="#e5e5e5"/>`,
        `<text x="${x0 - 5}" y="${(+y + 4).toFixed(1)}" text-anchor="end">${+v.toFixed(6)}</text>`,
      );
    }
    out.push(
      `<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="#333"/>`,
      `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="#333"/>`,
    );
    // Allocators' names on two staggered rows, so that long neighbours do not overlap.
    const ticks = byAllocator ? here.map((a, k) => ({ x: xs(threads[0]!, a), label: a, dy: k % 2 === 0 ? 13 : 23 })) : threads.map((t) => ({ x: xs(t), label: String(t), dy: 16 }));
    for (const { x, label, dy } of ticks) {
      out.push(
        `<line x1="${x}" y1="${y0}" x2="${x}" y2="${y0 + 4}" stroke="#333"/>`,
        `<text x="${x}" y="${y0 + dy}" text-anchor="middle"${byAllocator ? ' font-size="9"' : ''}>${esc(label)}</text>`,
      );
    }
    out.push(
      `<text x="${(x0 + x1) / 2}" y="${y0 + (byAllocator ? 36 : 32)}" text-anchor="middle">${byAllocator ? `allocators, ${threads[0]} thread${threads[0] === 1 ? '' : 's'}` : 'threads'}</text>`,
      `<text x="${ox + 14}" y="${(y0 + y1) / 2}" text-anchor="middle" transform="rotate(-90 ${ox + 14} ${(y0 + y1) / 2})">M ops/s</text>`,
    );
    for (const a of allocators) {
      const pts = wc
        .filter((c) => c.spec.allocator === a)
        .sort((p, q) => p.spec.threads - q.spec.threads)
        .map((c) => ({ x: xs(c.spec.threads, a), s: c.summary!.opsPerSec }));
      if (pts.length === 0) continue;
      const col = color(a);
      if (pts.length > 1) {
        const d = pts.map((p, k) => `${k === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${ys(p.s.median / 1e6).toFixed(1)}`).join(' ');
        out.push(`<path d="${d}" fill="none" stroke="${col}" stroke-width="2"/>`);
      }
      for (const p of pts) {
        out.push(
          `<line x1="${p.x.toFixed(1)}" y1="${ys(p.s.min / 1e6).toFixed(1)}" x2="${p.x.toFixed(1)}" y2="${ys(p.s.max / 1e6).toFixed(1)}" stroke="${col}" stroke-width="1"/>`,
          `<circle cx="${p.x.toFixed(1)}" cy="${ys(p.s.median / 1e6).toFixed(1)}" r="3.5" fill="${col}"><title>${esc(a)} ${w} ${p.s.median.toFixed(0)} ops/s</title></circle>`,
        );
      }
    }
    out.push(`</g>`);
  });
  const foot =
    `${env.date}  ·  ${env.cpuModel}, ${env.cores} cores, os.availableParallelism() ${env.availableParallelism}  ·  ` +
    `Node ${env.node}  ·  ${env.gitCommit ? env.gitCommit.slice(0, 12) + (env.gitDirty ? ' (modified)' : '') : 'no git commit'}  ·  median of the runs, bar = min-max`;
  out.push(`<text x="12" y="${H - 12}" fill="#555" font-size="10">${esc(foot)}</text>`, `</svg>`);
  return out.join('\n') + '\n';
}
