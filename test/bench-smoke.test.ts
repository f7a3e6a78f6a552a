/**
 * `sabmalloc bench --smoke`: the seconds-long run CI does. Runs the CLI as a
 * child process from the sources (node --import tsx bench/cli.ts) and checks
 * the output's format: the table's header, a number in every row, the JSON's
 * environment fields and runs, and the SVG. The figures themselves are not
 * checked (CI machines are noisy); the workloads check their own results.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, parseBenchArgs, type BenchReport, type CliIO } from '../bench/cli.js';
import { nativeSkipReason } from '../bench/native.js';
import { fmtBytes, fmtOps, renderPairedRatios, renderWideTable, TABLE_HEADER, TABLE_MAX_WIDTH, WIDE_TABLE_HEADER } from '../bench/report.js';
import { addRatios, pairedRatio, summarizeCase } from '../bench/summarize.js';
import { primeBytesFor, w5HeapBytes } from '../bench/plan.js';
import { primeMemory } from '../bench/prime.js';
import type { CaseResult, RunRecord } from '../bench/case.js';
import { makeSampleTrace } from '../bench/traces/make-sample.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'bench/cli.ts', ...args],
      { cwd: ROOT, timeout: 120_000, maxBuffer: 16 << 20, env: { ...process.env, FORCE_COLOR: '0' } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The main table's lines: its header, rule and rows, up to the first blank line. */
function tableLines(stdout: string): string[] {
  const lines = stdout.split('\n');
  const h = lines.findIndex((l) => l.startsWith('workload  ') && l.includes('warm ops/s'));
  if (h < 0) return [];
  let end = h;
  while (end < lines.length && lines[end]!.trim() !== '') end++;
  return lines.slice(h, end);
}

/** The rows of the main table, as cells (columns are at least two spaces apart). */
function tableRows(stdout: string): string[][] {
  return tableLines(stdout)
    .slice(2)
    .map((l) => l.trim().split(/\s{2,}/));
}

/** Columns of the default table (TABLE_HEADER). */
const COL = { workload: 0, threads: 1, allocator: 2, cold: 3, warm: 4, xGlibc: 5, footprint: 6, peakLive: 7, fpLive: 8 } as const;
const OPS = String.raw`\d+(\.\d+)?[kM]?`;

describe('sabmalloc bench --smoke', () => {
  let dir: string;
  let run: Run;
  let report: BenchReport;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-smoke-'));
    run = await runCli(['bench', '--smoke', '--json', join(dir, 'out.json'), '--svg', join(dir, 'out.svg')]);
    if (run.code === 0) report = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8')) as BenchReport;
  }, 120_000);

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 0', () => {
    expect(run.stderr + run.stdout).not.toMatch(/FAILED|ERROR/);
    expect(run.code).toBe(0);
  });

  it('prints the table header, the cycles and os.availableParallelism()', () => {
    const header = tableLines(run.stdout)[0];
    expect(header).toBeDefined();
    for (const col of TABLE_HEADER) expect(header).toContain(col);
    expect(run.stdout).toMatch(/os\.availableParallelism\(\) = \d+/);
    expect(run.stdout).toMatch(/W1: [\d,]+ cycles/);
  });

  it("names the cost of a page's first touch on this machine, in the header and the JSON", () => {
    const m = /first touch of a fresh page: (\d+\.\d\d) us/.exec(run.stdout);
    expect(m, run.stdout.slice(0, 400)).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(report.env.firstTouchUs).toBeGreaterThan(0);
    expect(run.stdout).toMatch(/memory primed before each run, every allocator's/);
    expect(report.options.prime).toBe(true);
  });

  it('prints a row with numbers for each allocator, workload and thread count', () => {
    const rows = tableRows(run.stdout);
    const sab = rows.filter((r) => r[COL.allocator] === 'sabmalloc');
    // W1 at 1 thread; W2, W3 and LOCK at 1 and 2
    expect(sab.map((r) => `${r[COL.workload]}x${r[COL.threads]}`).sort()).toEqual(['LOCKx1', 'LOCKx2', 'W1x1', 'W2x1', 'W2x2', 'W3x1', 'W3x2']);
    for (const r of rows) {
      expect(r.length).toBeGreaterThanOrEqual(9);
      expect(r[COL.threads]).toMatch(/^\d+$/);
      expect(r[COL.cold]).toMatch(new RegExp(`^${OPS}$`));
      expect(r[COL.warm]).toMatch(new RegExp(`^${OPS} \\(${OPS}-${OPS}\\)$`)); // median (min-max)
      expect(r[COL.footprint]).toMatch(/^\d+(\.\d+)? (B|KiB|MiB|GiB)$/);
      expect(r[COL.peakLive]).toMatch(/^\d+(\.\d+)? (B|KiB|MiB|GiB)$/);
      expect(r[COL.fpLive]).toMatch(/^\d+(\.\d+)?$/);
    }
  });

  it(`prints a table no wider than ${TABLE_MAX_WIDTH} columns`, () => {
    const lines = tableLines(run.stdout);
    expect(lines.length).toBeGreaterThan(2);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(TABLE_MAX_WIDTH);
  });

  it('keeps the lock and stage counters for --wide (and the JSON)', () => {
    const wide = renderWideTable(report.cases).split('\n');
    for (const col of WIDE_TABLE_HEADER) expect(wide[0]).toContain(col);
    const sab = wide.slice(2).map((l) => l.trim().split(/\s{2,}/)).filter((r) => r[0] === 'sabmalloc');
    expect(sab.length).toBe(7);
    const n = String.raw`\d+(\.\d+)?(e-\d+)?`;
    for (const r of sab) {
      expect(r[11]).toMatch(/^[\d,]+$/); // page faults
      expect(r[12]).toMatch(new RegExp(`^${n}/${n}/${n}/${n}$`)); // lock counters per Mops
      expect(r[13]).toMatch(/^[\d,]+\/[\d,]+\/[\d,]+$/); // S1/S2/S3
      expect(r[14]).toMatch(/^[\d,]+$/); // remote frees
    }
  });

  it('writes JSON with the environment and every run', () => {
    const env = report.env;
    expect(typeof env.date).toBe('string');
    expect(Number.isNaN(Date.parse(env.date))).toBe(false);
    expect(env.node).toBe(process.version);
    expect(env.v8).toBe(process.versions.v8);
    expect(typeof env.cpuModel).toBe('string');
    expect(env.cores).toBeGreaterThan(0);
    expect(env.availableParallelism).toBeGreaterThan(0);
    expect('gitCommit' in env).toBe(true);
    expect(report.cases.length).toBeGreaterThanOrEqual(7);
    for (const c of report.cases) {
      expect(c.error).toBeUndefined();
      expect(c.runs.length).toBe(1);
      expect(c.warmup).toBeDefined();
      for (const r of c.runs) {
        expect(r.opsPerSec).toBeGreaterThan(0);
        expect(r.mallocs).toBeGreaterThan(0);
        expect(Number.isInteger(r.minorFaults) && r.minorFaults! >= 0, `${c.spec.allocator} ${c.spec.workload}: ${r.minorFaults}`).toBe(true);
      }
      expect(c.summary?.opsPerSec.median).toBeGreaterThan(0);
    }
    const lock = report.cases.find((c) => c.spec.allocator === 'sabmalloc' && c.spec.workload === 'LOCK');
    expect(lock?.runs[0]?.lock?.acquisitions).toBeGreaterThan(0);
  });

  it('writes an SVG with a panel per workload', () => {
    const svg = readFileSync(join(dir, 'out.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const t of ['W1 random_mixed', 'W2 mid_large', 'W3 larson', 'LOCK lock storm']) expect(svg).toContain(t);
  });
});

describe('sabmalloc bench arguments', () => {
  const quiet = (): CliIO & { text: string } => {
    const io = { text: '', isTTY: false, out: (s: string) => void (io.text += s), err: (s: string) => void (io.text += s) };
    return io;
  };

  it('parses the options', () => {
    const o = parseBenchArgs(['W1', 'w3', 'MICRO', '--threads', '4,1,2', '--runs', '3', '--cycles', '1000', '--allocators', 'sabmalloc,native']);
    expect(o).not.toBe('help');
    if (o === 'help') return;
    expect(o.workloads).toEqual(['W1', 'W3']);
    expect(o.micro).toBe(true);
    expect(o.threads).toEqual([1, 2, 4]);
    expect(o.runs).toBe(3);
    expect(o.cycles).toBe(1000);
    expect(o.allocators).toContain('glibc');
    expect(o.allocators).toContain('mimalloc');
    expect(o.allocators).not.toContain('thi.ng');
  });

  it('--warmup: untimed runs between the cold run and the timed ones, for allocators in V8 only; timed runs taken in turn', async () => {
    const o = parseBenchArgs(['W1']);
    if (o === 'help') throw new Error('help');
    expect(o.warmups).toBe(2);
    const s = parseBenchArgs(['--smoke']);
    if (s === 'help') throw new Error('help');
    expect(s.warmups).toBe(0);
    const z = parseBenchArgs(['W1', '--warmup', '0']);
    if (z === 'help') throw new Error('help');
    expect(z.warmups).toBe(0);
    for (const bad of ['-1', 'x', '101']) {
      const io = quiet();
      expect(await main(['bench', 'W1', '--warmup', bad], io)).toBe(2);
      expect(io.text).toMatch(/--warmup/);
    }
    const tmp = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-warmup-'));
    const json = join(tmp, 'warmup.json');
    const io = quiet();
    expect(await main(['bench', 'W1', '--threads', '1', '--cycles', '2000', '--runs', '2', '--warmup', '3', '--allocators', 'sabmalloc,glibc', '--json', json], io)).toBe(0);
    expect(io.text).toContain('sabmalloc W1 threads=1 warm-up 3/3 (untimed)');
    expect(io.text).toContain('sabmalloc W1 threads=1 run 2/2');
    const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
    expect(r.options.warmups).toBe(3);
    const sab = r.cases.find((c) => c.spec.allocator === 'sabmalloc')!;
    expect(sab.warmups).toBe(3);
    expect(sab.runs.length).toBe(2);
    expect(sab.warmup?.warmup).toBe(true);
    expect(sab.runs.every((run) => !run.warmup)).toBe(true);
    const native = r.cases.find((c) => c.spec.allocator === 'glibc');
    expect(native?.warmups).toBe(0); // a native run is a fresh process
    expect(native?.runs.length).toBe(2);
    expect(io.text).not.toMatch(/glibc W1 threads=1 warm-up 1\//);
    // The timed runs of the comparison are taken in turn (BenchRunner.runGroup).
    const at = (label: string): number => io.text.indexOf(`${label} W1 threads=1 `);
    const order = ['sabmalloc warm-up 3/3', 'glibc warm-up (cold)', 'sabmalloc run 1/2', 'glibc run 1/2', 'sabmalloc run 2/2', 'glibc run 2/2'].map((l) => {
      const [who, ...what] = l.split(' ');
      return io.text.indexOf(`${who} W1 threads=1 ${what.join(' ')}`);
    });
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(at('sabmalloc')).toBeLessThan(at('glibc'));
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it('MICRO runs each task for sabmalloc, the batch of mallocs then frees included, and reports a figure for each', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-micro-'));
    const json = join(tmp, 'micro.json');
    const io = quiet();
    expect(await main(['bench', 'MICRO', '--smoke', '--allocators', 'sabmalloc', '--json', json], io)).toBe(0);
    const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
    const tasks = r.micro.map((m) => m.task);
    expect(tasks).toContain('10,000 x malloc 128 B, then their frees (per block)');
    expect(tasks).toContain('malloc+free 16 B');
    expect(tasks).toContain('cross-thread free 64 B');
    for (const m of r.micro) {
      expect(m.error, m.task).toBeUndefined();
      expect(m.allocator).toBe('sabmalloc');
      expect(m.opsPerSec, m.task).toBeGreaterThan(0);
      expect(m.samples, m.task).toBeGreaterThan(0);
    }
    expect(io.text).toContain('10,000 x malloc 128 B, then their frees (per block)');
    rmSync(tmp, { recursive: true, force: true });
  }, 120_000);

  it('the reference floor runs W2 and W3 at one thread only, on the same operations as sabmalloc', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-reference-'));
    const json = join(tmp, 'reference.json');
    const io = quiet();
    try {
      expect(await main(['bench', 'W2', 'W3', '--threads', '1,2', '--cycles', '2000', '--runs', '1', '--warmup', '0', '--allocators', 'sabmalloc,reference', '--json', json], io)).toBe(0);
      const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
      const refs = r.cases.filter((c) => c.spec.allocator === 'reference');
      expect(refs.map((c) => `${c.spec.workload}@${c.spec.threads}`).sort()).toEqual(['W2@1', 'W3@1']);
      for (const ref of refs) {
        expect(ref.error).toBeUndefined();
        const sab = r.cases.find((c) => c.spec.allocator === 'sabmalloc' && c.spec.workload === ref.spec.workload && c.spec.threads === 1)!;
        expect(ref.runs[0]!.checksum).toBe(sab.runs[0]!.checksum);
        expect(ref.runs[0]!.mallocs).toBe(sab.runs[0]!.mallocs);
        expect(ref.runs[0]!.footprintBytes).toBeGreaterThan(0);
      }
      expect(io.text).toContain('floor, 1 thread');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('--heap NAME=VALUE: create() options for sabmalloc\'s heaps, checked by create() itself, shown in the table', async () => {
    const o = parseBenchArgs(['W1', '--heap', 'trimInterval=16', '--heap', 'stage1Keep=0']);
    if (o === 'help') throw new Error('help');
    expect(o.heapOptions).toEqual({ trimInterval: 16, stage1Keep: 0 });
    const bad: [string, RegExp][] = [
      ['initialBytes=5', /--heap: "initialBytes" is not one of magazineCapacity, refillCount, drainInterval, stage1Keep, trimInterval/],
      ['trimInterval=-1', /--heap: SharedHeap\.create\(options\.trimInterval\): expected an integer from 0 to 1048576, got -1/],
      ['magazineCapacity=0', /--heap: SharedHeap\.create\(options\.magazineCapacity\): expected an integer from 1/],
      ['trimInterval', /--heap: expected NAME=INTEGER, got "trimInterval"/],
    ];
    for (const [arg, message] of bad) {
      const io = quiet();
      expect(await main(['bench', 'W1', '--heap', arg], io), arg).toBe(2);
      expect(io.text).toMatch(message);
    }
    const tmp = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-heap-'));
    const json = join(tmp, 'heap.json');
    const io = quiet();
    expect(await main(['bench', 'W1', 'LOCK', '--threads', '1', '--cycles', '2000', '--runs', '1', '--allocators', 'sabmalloc', '--heap', 'trimInterval=4', '--json', json], io)).toBe(0);
    expect(io.text).toContain("sabmalloc's heaps: trimInterval=4");
    const r = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
    expect(r.options.heapOptions).toEqual({ trimInterval: 4 });
    const w1 = r.cases.find((c) => c.spec.workload === 'W1')!;
    const lock = r.cases.find((c) => c.spec.workload === 'LOCK')!;
    expect(w1.spec.heapOptions).toEqual({ trimInterval: 4 });
    expect(lock.spec.heapOptions).toMatchObject({ magazineCapacity: 1, trimInterval: 4 }); // on top of LOCK's own
    expect(w1.spec.heapNote).toBe('trimInterval=4');
    expect(io.text).toMatch(/^W1 .*sabmalloc.*trimInterval=4/m);
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it('--no-prime: no memory prime before the runs, said in the header and the JSON', async () => {
    const o = parseBenchArgs(['W1', '--no-prime']);
    if (o === 'help') throw new Error('help');
    expect(o.prime).toBe(false);
    const d = parseBenchArgs(['W1']);
    if (d === 'help') throw new Error('help');
    expect(d.prime).toBe(true);
    const tmp = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-noprime-'));
    const json = join(tmp, 'noprime.json');
    const io = quiet();
    expect(await main(['bench', 'W1', '--threads', '1', '--cycles', '2000', '--runs', '1', '--allocators', 'sabmalloc', '--no-prime', '--json', json], io)).toBe(0);
    expect(io.text).toMatch(/memory not primed \(--no-prime\)/);
    expect(io.text).not.toMatch(/memory primed before each run/);
    expect((JSON.parse(readFileSync(json, 'utf8')) as BenchReport).options.prime).toBe(false);
    rmSync(tmp, { recursive: true, force: true });
  }, 60_000);

  it('W5 without a trace is an error that says what to pass (exit 2), not an empty table', async () => {
    for (const args of [['bench', 'W5'], ['bench', 'W1', 'W5', '--allocators', 'sabmalloc']]) {
      const io = quiet();
      expect(await main(args, io)).toBe(2);
      expect(io.text).toMatch(/W5 replays the traces given with --trace/);
      expect(io.text).not.toMatch(/^workload  /m); // no table
    }
    const io = quiet();
    expect(await main(['bench', 'W5', '--trace', join(tmpdir(), 'no-such-trace-folder-of-sabmalloc')], io)).toBe(2);
    expect(io.text).toMatch(/no such file or folder/);
  });

  it('the help names no file that is not shipped', async () => {
    const io = quiet();
    expect(await main(['bench', '--help'], io)).toBe(0);
    expect(io.text).toContain('Usage: node dist/bench/cli.js bench');
    expect(io.text).not.toMatch(/shared\/|workloads\.md/);
  });

  it('rejects unknown workloads, options and bad numbers with exit code 2', async () => {
    for (const args of [['bench', 'W9'], ['bench', '--threads', '0'], ['bench', '--runs', 'x'], ['bench', '--frobnicate'], ['frob']]) {
      const io = quiet();
      expect(await main(args, io)).toBe(2);
      expect(io.text).toContain('Usage: node dist/bench/cli.js bench');
    }
  });

  it('names the option and the value: a negative number, an empty allocator list, an output path that cannot be written (before the run)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-args-'));
    writeFileSync(join(tmp, 'file'), '');
    const cases: [string[], string][] = [
      [['--runs', '-3'], '--runs: expected a positive integer, got "-3"'],
      [['--threads', '-1'], '--threads: expected a positive integer, got "-1"'],
      [['--allocators', ','], '--allocators: no allocator named in ","'],
      [['--json', join(tmp, 'file', 'x.json')], `--json: cannot write ${JSON.stringify(join(tmp, 'file', 'x.json'))}`],
      [['--svg', tmp], `--svg: cannot write ${JSON.stringify(tmp)}: it is a folder`],
    ];
    for (const [args, message] of cases) {
      const io = quiet();
      expect(await main(['bench', 'W1', '--cycles', '1000', '--runs', '1', ...args], io)).toBe(2);
      expect(io.text).toContain(message);
      expect(io.text).not.toContain('threads=1 run'); // refused before any run
    }
  });
});

describe('ratios to glibc', () => {
  const rec = (opsPerSec: number): RunRecord =>
    ({ warmup: false, seconds: 1, opsPerSec, ops: opsPerSec, mallocs: 0, bytesRequested: 0, checksum: 0, peakLiveBytes: 0 });
  const result = (allocator: string, family: 'js' | 'native', ops: number[]): CaseResult => {
    const c: CaseResult = {
      spec: { allocator, family, workload: 'W5', trace: 't', threads: 1, params: {}, cycles: 1, notes: [] },
      runs: ops.map(rec),
    };
    summarizeCase(c);
    return c;
  };

  it('pairs each timed run with glibc\'s run of the same round, besides the ratio of the medians', () => {
    // The machine got twice as fast after the first round: glibc's median is 20, sabmalloc's 18,
    // a ratio of 0.9, while round by round sabmalloc ran at 1.2, 0.9 and 0.9 times glibc's speed.
    const sab = result('sabmalloc', 'js', [12, 18, 18]);
    const glibc = result('glibc', 'native', [10, 20, 20]);
    const floor = result('reference', 'js', [11, 30, 16]);
    const other = result('sabmalloc', 'js', [30]);
    other.spec = { ...other.spec, trace: 'u' }; // another trace: no glibc case for it
    addRatios([sab, glibc, floor, other]);
    expect(sab.summary!.ratioToGlibc).toBeCloseTo(0.9);
    expect(sab.summary!.pairedRatio).toEqual({ median: 0.9, min: 0.9, max: 1.2, atLeastOne: 1, rounds: 3 });
    expect(glibc.summary!.ratioToGlibc).toBe(1);
    expect(glibc.summary!.pairedRatio).toBeUndefined();
    expect(other.summary!.pairedRatio).toBeUndefined();
    expect(floor.summary!.pairedRatio).toEqual({ median: 1.1, min: 0.8, max: 1.5, atLeastOne: 2, rounds: 3 });
    expect(renderPairedRatios([sab, glibc, floor, other])).toBe(
      "sabmalloc x glibc round by round (each timed run over glibc's timed run of the same round, run just before or after it):\n" +
        '  W5 t, 1 thread: 0.90 (0.90-1.20), at least 1.0 in 1 of 3 rounds; the floor 1.10 (0.80-1.50), at least 1.0 in 2 of 3',
    );
    expect(renderPairedRatios([sab, glibc])).toBe(
      "sabmalloc x glibc round by round (each timed run over glibc's timed run of the same round, run just before or after it):\n" +
        '  W5 t, 1 thread: 0.90 (0.90-1.20), at least 1.0 in 1 of 3 rounds',
    );
  });

  it('pairs only the rounds both have', () => {
    expect(pairedRatio([rec(5), rec(8)], [rec(10)])).toEqual({ median: 0.5, min: 0.5, max: 0.5, atLeastOne: 0, rounds: 1 });
    expect(pairedRatio([], [rec(10)])).toBeUndefined();
  });
});

describe('bench/ modules', () => {
  /** bench/**\/*.ts (generated and build folders aside) -> the bench/ files each one imports. */
  function importGraph(): Map<string, string[]> {
    const benchDir = join(ROOT, 'bench');
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory() && e.name !== 'build' && e.name !== 'results') walk(p);
        else if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.tmp.ts')) files.push(p);
      }
    };
    walk(benchDir);
    const graph = new Map<string, string[]>();
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      const deps: string[] = [];
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)\.js'/g)) {
        const target = resolve(dirname(f), m[1]! + '.ts');
        if (target.startsWith(benchDir + '/')) deps.push(relative(benchDir, target));
      }
      graph.set(relative(benchDir, f), deps);
    }
    return graph;
  }

  it('import each other without a cycle (type-only imports included)', () => {
    const graph = importGraph();
    expect(graph.size).toBeGreaterThan(10);
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('keep the layers: case <- plan <- run <- check <- summarize, each importing only from below', () => {
    const layers = ['case.ts', 'plan.ts', 'run.ts', 'check.ts', 'summarize.ts'];
    const graph = importGraph();
    for (const [i, f] of layers.entries()) {
      expect(graph.has(f), f).toBe(true);
      for (const d of graph.get(f)!) {
        const j = layers.indexOf(d);
        if (j >= 0) expect(j, `${f} imports ${d}`).toBeLessThan(i);
      }
    }
  });
});

describe('the memory prime (bench/prime.ts)', () => {
  it('a worker thread writes the region and ends, its memory given back before it resolves', async () => {
    const rss = process.memoryUsage.rss();
    expect(await primeMemory(96 << 20)).toBe(true);
    // Still held, the region would count here whole (each of its pages written).
    expect(process.memoryUsage.rss() - rss).toBeLessThan(48 << 20);
    expect(await primeMemory(0)).toBe(true);
  });

  it('covers what a W5 run touches: as much as sabmalloc\'s heap for the trace, every allocator alike', () => {
    for (const live of [1 << 20, 3_700_000, 312_812_218]) {
      const p = { traceLiveBytes: live };
      expect(primeBytesFor('W5', 1, p)).toBeGreaterThanOrEqual(w5HeapBytes(live).initialBytes);
      expect(primeBytesFor('W5', 1, p)).toBeGreaterThanOrEqual(2 * live);
    }
    expect(primeBytesFor('W2', 4, {})).toBeGreaterThanOrEqual(4 * 2048 * 32768);
    expect(primeBytesFor('W1', 1, {})).toBeGreaterThan(0);
  });
});

describe('sabmalloc bench W5 over a folder of traces', () => {
  let dir: string;
  let run: Run;
  let report: BenchReport;
  const natives = nativeSkipReason() === undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-w5-'));
    const traces = join(dir, 'traces');
    mkdirSync(traces);
    writeFileSync(join(traces, 'alpha.trace'), makeSampleTrace(400, 7));
    writeFileSync(join(traces, 'beta.trace.gz'), gzipSync(makeSampleTrace(500, 11)));
    writeFileSync(join(traces, 'notes.txt'), 'not a trace\n');
    run = await runCli(['bench', 'W5', '--trace', traces, '--runs', '2', '--cycles', '2000', '--allocators', 'sabmalloc,glibc,dlmalloc-wasm,reference', '--json', join(dir, 'w5.json')]);
    if (run.code === 0) report = JSON.parse(readFileSync(join(dir, 'w5.json'), 'utf8')) as BenchReport;
  }, 120_000);

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('replays each *.trace and *.trace.gz of the folder, with glibc, dlmalloc-wasm and the reference floor in the same run', () => {
    expect(run.stderr + run.stdout).not.toMatch(/FAILED|ERROR/);
    expect(run.code).toBe(0);
    const rows = tableRows(run.stdout);
    const peers = natives ? ['dlmalloc-wasm', 'glibc', 'reference', 'sabmalloc'] : ['dlmalloc-wasm', 'reference', 'sabmalloc'];
    const expected = ['alpha', 'beta'].flatMap((t) => peers.map((a) => `W5 ${t}|${a}`));
    expect(rows.map((r) => `${r[COL.workload]}|${r[COL.allocator]}`).sort()).toEqual(expected);
    for (const r of rows) {
      expect(r[COL.cold]).toMatch(new RegExp(`^${OPS}$`));
      expect(r[COL.warm]).toMatch(new RegExp(`^${OPS} \\(${OPS}-${OPS}\\)$`));
      expect(r[COL.fpLive]).toMatch(/^\d+(\.\d+)?$/);
      if (natives) expect(r[COL.xGlibc]).toMatch(/^\d+(\.\d+)?$/);
    }
    for (const l of tableLines(run.stdout)) expect(l.length, l).toBeLessThanOrEqual(TABLE_MAX_WIDTH);
    if (natives) {
      // sabmalloc's ratio to glibc round by round, under the table: one line per trace.
      for (const t of ['alpha', 'beta']) {
        const r = String.raw`[\d.]+ \([\d.]+-[\d.]+\), at least 1\.0 in [0-2] of 2`;
        expect(run.stdout).toMatch(new RegExp(`W5 ${t}, 1 thread: ${r} rounds; the floor ${r}\n`));
      }
    }
  });

  it('records each trace, its operations and both runs in the JSON', () => {
    expect(report.options.traces.map((t) => t.split('/').pop())).toEqual(['alpha.trace', 'beta.trace.gz']);
    for (const c of report.cases) {
      expect(c.error).toBeUndefined();
      expect(c.runs.length).toBe(2);
      expect(c.warmup).toBeDefined();
      // --cycles 2000: each trace is replayed back to back until 2000 operations are reached
      expect(c.spec.cycles).toBeGreaterThanOrEqual(2000);
      expect(c.runs[0]!.ops).toBe(c.spec.cycles);
    }
    const sab = report.cases.find((c) => c.spec.allocator === 'sabmalloc' && c.spec.trace === 'beta')!;
    expect(sab.runs[0]!.footprintBytes).toBeGreaterThan(0);
    // Each run replays on fresh memory (a new heap; a new process for glibc): its first touches are counted.
    expect(sab.runs[0]!.minorFaults).toBeGreaterThan(0);
    if (natives) expect(report.cases.find((c) => c.spec.allocator === 'glibc' && c.spec.trace === 'beta')!.runs[0]!.minorFaults).toBeGreaterThan(0);
    expect(sab.summary!.coldOpsPerSec).toBeGreaterThan(0);
    // The reference floor replays the same operations (same checksum) in a buffer of its own.
    const ref = report.cases.find((c) => c.spec.allocator === 'reference' && c.spec.trace === 'beta')!;
    expect(ref.spec.threads).toBe(1);
    expect(ref.runs[0]!.checksum).toBe(sab.runs[0]!.checksum);
    expect(ref.runs[0]!.footprintBytes).toBeGreaterThanOrEqual(ref.runs[0]!.peakLiveBytes);
  });
});

describe('fmtOps', () => {
  it('fits ops/s in five characters, choosing the unit on the rounded figure', () => {
    expect(fmtOps(9_996_000)).toBe('10.0M'); // was 10.00M
    expect(fmtOps(99_960_000)).toBe('100M'); // was 100.0M
    expect(fmtOps(999_700)).toBe('1.00M'); // was 1000k
    expect(fmtOps(99_970)).toBe('100k'); // was 100.0k
    expect(fmtOps(999.7)).toBe('1.0k'); // was 1000
    expect(fmtOps(9_994_000)).toBe('9.99M');
    expect(fmtOps(45_678)).toBe('45.7k');
    expect(fmtOps(123)).toBe('123');
    const unit: Record<string, number> = { M: 1e6, k: 1e3 };
    for (let x = 1; x < 1e9; x *= 1.0007) {
      const f = fmtOps(x);
      expect(f.length, `${x} -> ${f}`).toBeLessThanOrEqual(5);
      const back = parseFloat(f) * (unit[f.slice(-1)] ?? 1);
      if (x >= 100) expect(Math.abs(back - x) / x, `${x} -> ${f}`).toBeLessThan(0.051); // two or three digits
    }
  });
});

describe('fmtBytes', () => {
  it('fits byte counts in nine characters, the next unit from 999.95 of one', () => {
    expect(fmtBytes(1_044_480)).toBe('1.0 MiB'); // 1020 KiB: was 1020.0 KiB
    expect(fmtBytes(2_039_742_464)).toBe('1.90 GiB'); // was 1945.3 MiB
    expect(fmtBytes(999)).toBe('999 B');
    expect(fmtBytes(1000)).toBe('1.0 KiB');
    expect(fmtBytes(535_449)).toBe('522.9 KiB');
    expect(fmtBytes(286_261_248)).toBe('273.0 MiB');
    expect(fmtBytes(undefined)).toBe('-');
    for (let x = 1; x < 2 ** 31; x = Math.ceil(x * 1.0007)) expect(fmtBytes(x).length, `${x}`).toBeLessThanOrEqual(9);
  });
});

