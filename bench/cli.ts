#!/usr/bin/env node
/**
 * `sabmalloc bench`: the benchmark suite's command line (dist/bench/cli.js
 * after `npm run build`; not part of the published package); `sabmalloc record` (record.ts)
 * records a program's allocation trace for W5; `sabmalloc ceiling` (ceiling.ts) measures how fast
 * the loops go at sabmalloc's own placement with no allocator work; `sabmalloc phases` (phases.ts)
 * times a trace's run and its exit apart, against the floor and glibc.
 *
 *   sabmalloc bench <workload...> [--threads 1,2,4,8] [--runs N] [--cycles N]
 *                   [--warmup N] [--trace FILE|FOLDER]... [--allocators LIST] [--heap NAME=VALUE]...
 *                   [--json FILE] [--svg FILE] [--wide] [--no-prime] [--smoke]
 *
 * From the sources: `node --import tsx bench/cli.ts bench W1 W3 --threads 1,2`.
 * The order of work: parse the arguments; expand and parse W5's traces
 * (trace-prep.ts); plan the cases (plan.ts); run each (run.ts), check it
 * (check.ts) and summarize it (summarize.ts); compare the cases (check.ts,
 * summarize.ts); print (report.ts). Files are written only for --json/--svg.
 * {@link main} is exported for tests; it returns the exit code.
 */
import { closeSync, existsSync, mkdirSync, openSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SharedHeap, type HeapOptions } from '../src/index.js';
import type { CaseResult, CaseSpec, RunRecord, Workload } from './case.js';
import { checkCase, checkCasesAgree } from './check.js';
import {
  cyclesFor,
  describeParams,
  fmtInt,
  heapOptionsNote,
  nativePeers,
  paramsFor,
  planCases,
  NATIVE_WORKLOADS,
  REFERENCE_WORKLOADS,
  WASM_WORKLOADS,
  SINGLE_THREAD_WORKLOADS,
  threadsFor,
  thingAvailable,
  THING_MAX_CYCLES,
  WORKLOADS,
} from './plan.js';
import { BenchRunner, warmupsFor } from './run.js';
import { addRatios, summarizeCase } from './summarize.js';
import { distinctTraceNames, expandTraceArgs, makeTraceDir, prepareTrace, removeTraceDir, type PreparedTrace } from './trace-prep.js';
import { wasmSkipReason } from './wasm-dlmalloc.js';
import { recordTrace, signalExitCode } from './record.js';
import { measureCeiling, measureW1Ceiling, measureW3Ceiling, renderCeiling } from './ceiling.js';
import { measurePhases, renderPhases, type PhasesOptions } from './phases.js';
import { measureAb, renderAb } from './ab.js';
import { readTraceOps } from './replay.js';
import { runMicro, type MicroRow } from './micro.js';
import { collectEnvironment, fmtOps, machineLine, renderMicroTable, renderPairedRatios, renderSvg, renderTable, renderWideTable, wrap, type Environment } from './report.js';

export const USAGE = `Usage: node dist/bench/cli.js bench <workload...> [options]

Workloads (default W1 W2 W3; each checks its own blocks; the README's Benchmarks section has the details):
  W1     random_mixed: one thread frees or allocates (16..1040 B) a random slot of 4096, 10M times
  W2     mid_large: each thread runs W1's loop on its own 2048 slots with 8..32 KiB blocks
  W3     larson: 8..1000 B blocks replaced at random; every round each thread hands its array
         to the next thread, so frees cross threads
  W5     replay of recorded allocation traces (a/c/r/f lines; text or .gz), one thread
         (--trace-threads: several, each replaying the whole trace at once); needs --trace
  LOCK   lock storm: magazines of 1 block, small/medium/large sizes, to make lock waits visible
  MICRO  tinybench micro-benchmarks (malloc+free per size class, calloc, realloc, large,
         10,000 mallocs then their frees, cross-thread free)

Options:
  --threads LIST      thread counts (default 1,2,4,8)
  --runs N            timed runs (default 5), after the cold run (the cold figure) and the warm-ups
  --warmup N          untimed warm-up runs before the timed ones (default 2; not for the natives,
                      whose every run is a fresh process): V8 still replaces the loop's code then
  --cycles N          cycles per thread for every workload (W3: operations per thread;
                      W5: operations replayed at least: a trace is replayed whole, and repeated
                      to reach them); default per workload
  --trace PATH        W5's trace: a file, or a folder (its *.trace and *.trace.gz); repeatable
  --trace-threads LIST  W5's thread counts (default 1): at T, T threads replay each trace at once
                      (sabmalloc's on one heap, a native allocator's in one process)
  --allocators LIST   any of sabmalloc, thi.ng, dlmalloc-wasm, reference, glibc, jemalloc, tcmalloc,
                      mimalloc; 'native' = every native one; default: all that are available.
                      reference (W1, W2, W3, W5 at one thread): bench/reference-alloc.ts, a free
                      list per size class, no sharing: the floor of the timed loop, not a contender
  --heap NAME=VALUE   a create() option for sabmalloc's heaps, repeatable: magazineCapacity,
                      refillCount, drainInterval, stage1Keep, trimInterval (e.g. trimInterval=16)
  --json FILE         write the environment and every run as JSON
  --svg FILE          write a chart of ops/s against threads
  --wide              print every figure (lock and stage counters, metadata) in a wider table
  --no-prime          no memory prime before each run (bench/prime.ts: a worker thread touches
                      as many pages as the run will, so that its first touches land on memory
                      just used; on a VM whose host takes back idle memory, runs without it
                      mostly measure which allocator met the host's page faults)
  --smoke             a seconds-long run for CI (W1 W2 W3 LOCK, threads 1,2, tiny cycles, 1 run)
  -h, --help          this text

Nothing is written to disk unless --json or --svg is given.
Record a program's own trace for W5: node dist/bench/cli.js record --out FILE.trace.gz -- program args...
How fast the loops go at sabmalloc's own placement with no allocator work: node dist/bench/cli.js ceiling W1 --trace FILE
This build against another one, alternated in one process: node dist/bench/cli.js ab --base OTHER/dist --trace FILE
A trace's run and its exit (its final frees) timed apart, against the floor and glibc: node dist/bench/cli.js phases --trace FILE
From a checkout: npm run build && node dist/bench/cli.js bench ..., or npx tsx bench/cli.ts bench ...
Quick look at sabmalloc alone on one trace:
  npx tsx bench/cli.ts bench W5 --trace FILE --allocators sabmalloc --runs 3
`;

export const RECORD_USAGE = `Usage: node dist/bench/cli.js record --out FILE -- program [args...]

Runs the program with a shim preloaded (bench/native/trace-record.c, built on first use with the
machine's C compiler) that writes the malloc, calloc, realloc, free and aligned-allocation calls
of its main thread as a W5 trace (gzip when FILE ends in .gz). Then replay it:
  node dist/bench/cli.js bench W5 --trace FILE
Linux with glibc only. Calls of other threads and of pointers made before the shim loaded are
not recorded; the summary counts them. Programs it starts do not record; one it execs in its
place (a wrapper script) takes the trace over. Ctrl-C and Ctrl-\\ are the program's: when they
end it, the trace is still written and summarized. The exit code is the program's (128 + the
signal's number where a signal ended it: 130 for Ctrl-C), so that a script running the recorder
stops when the program fails; 1 and 2 are also record's own (no trace, usage).
`;

export const AB_USAGE = `Usage: node dist/bench/cli.js ab --base DIR --trace FILE|FOLDER... [--repeat N] [--rounds N] [--warmup N] [--steady N] [--no-prime]

This build's sabmalloc against another build's (DIR: the dist folder of another checkout after
npm run build), replaying each trace in this thread, alternated round by round (the order flips
every round): each round replays the trace --repeat times (default 1) on one fresh heap, on
primed memory. Prints each side's median ns an operation over --rounds timed rounds (default
8) after --warmup untimed ones (default 2), and base / new (above 1: the new build is faster).
--steady N: one heap a side for every round instead, replayed N times untimed first (the
steady state of a program that does the same work again, without a fresh heap's first touches).
`;

export const PHASES_USAGE = `Usage: node dist/bench/cli.js phases --trace FILE|FOLDER... [--rounds N] [--warmup N] [--no-native] [--no-prime]

Where a trace's time goes: each trace is cut before its final frees (the run of frees that ends
it: the program's exit), and sabmalloc, placement (sabmalloc's addresses of a recorded replay
handed out with no other work: the loop and the pages at sabmalloc's placement), the reference
floor (the loop with almost no allocator) and glibc native (the same loop in C) replay it
whole, once a round on a fresh heap, timing the run and the exit apart, alternated round by
round on primed memory. Prints each side's median ms of each part over --rounds timed rounds
(default 5) after --warmup untimed ones (default 1; not for glibc), and x glibc for each part
(glibc's ms over the side's: above 1, faster; none for a part under 0.1 ms). --no-native:
without glibc (it needs a C compiler).
`;

export const CEILING_USAGE = `Usage: node dist/bench/cli.js ceiling [W1] [W3] [--trace FILE|FOLDER]... [--runs N] [--no-prime]

Replays each trace (and runs W1, and W3 at one thread, when named), in this thread, alternated round by round on
fresh primed memory: sabmalloc; "placement", an allocator that hands out the addresses sabmalloc
returned on a recorded run and does no other work; and glibc's native run of the same operations.
Prints median M ops/s, x glibc and ns per operation: how fast the timed loop goes at sabmalloc's
placement on this machine, and what sabmalloc's own work adds to it (bench/ceiling.ts). Default
5 timed rounds after an untimed one.
`;

export interface CliIO {
  /** The table and the summary lines. */
  out(text: string): void;
  /** Progress and messages. */
  err(text: string): void;
  /** Whether err goes to a terminal (a self-updating progress line) or not (one line per run). */
  isTTY: boolean;
}

const defaultIO: CliIO = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  isTTY: process.stderr.isTTY === true,
};

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CliOptions {
  workloads: Workload[];
  micro: boolean;
  threads: number[];
  /** W5's thread counts (--trace-threads, default [1]). */
  traceThreads: number[];
  runs: number;
  /** Untimed runs after the cold one, before the timed ones (allocators in V8 only). */
  warmups: number;
  cycles?: number;
  /** --trace arguments (files or folders), in order. */
  traces: string[];
  /** --heap options for sabmalloc's heaps. */
  heapOptions: Partial<HeapOptions>;
  allocators?: string[];
  json?: string;
  svg?: string;
  wide: boolean;
  /** The memory prime before each run (bench/prime.ts); false with --no-prime. */
  prime: boolean;
  smoke: boolean;
  /** A line for each one-value option given more than once (the last counts). */
  repeated?: string[];
}

const KNOWN_ALLOCATORS = ['sabmalloc', 'thi.ng', 'dlmalloc-wasm', 'reference', 'glibc', 'system', 'jemalloc', 'tcmalloc', 'mimalloc'];
const NATIVE_NAMES = ['glibc', 'system', 'jemalloc', 'tcmalloc', 'mimalloc'];

/** What an allocator that runs only some workloads or thread counts runs, by bench/plan.ts's own sets: the note for a named one with no case. */
function onlyRuns(a: string): string {
  const list = (w: ReadonlySet<Workload>): string => [...w].join(', ').replace(/, ([^,]*)$/, ' and $1');
  if (a === 'dlmalloc-wasm') return `it runs ${list(WASM_WORKLOADS)}, at one thread only`;
  if (a === 'reference') return `it runs ${list(REFERENCE_WORKLOADS)}, at one thread only`;
  if (a === 'thi.ng') return 'it runs at one thread only, and not LOCK';
  if (NATIVE_NAMES.includes(a)) return `the natives run ${list(NATIVE_WORKLOADS)}`;
  return 'it runs none of these workloads at these thread counts';
}

function positiveInt(name: string, s: string, max: number): number {
  if (!/^\d+$/.test(s.trim())) throw new UsageError(`${name}: expected a positive integer, got ${JSON.stringify(s)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new UsageError(`${name}: expected an integer from 1 to ${max}, got ${s}`);
  return n;
}

function nonNegativeInt(name: string, s: string, max: number): number {
  return s.trim() === '0' ? 0 : positiveInt(name, s, max);
}

/** Untimed runs after the cold one by default (bench/run.ts warmupsFor says why). */
export const DEFAULT_WARMUPS = 2;

/** The create() options --heap may set (the benchmark sizes the heap and its thread slots itself). */
export const HEAP_TUNING_OPTIONS = ['magazineCapacity', 'refillCount', 'drainInterval', 'stage1Keep', 'trimInterval'] as const;

/** --heap NAME=VALUE arguments: each name one of HEAP_TUNING_OPTIONS, each value one create() accepts. */
function parseHeapOptions(args: string[]): Partial<HeapOptions> {
  const out: Record<string, number> = {};
  for (const arg of args) {
    const m = /^([A-Za-z0-9]+)=(-?\d+)$/.exec(arg.trim());
    if (m === null) throw new UsageError(`--heap: expected NAME=INTEGER, got ${JSON.stringify(arg)}`);
    const [, name, value] = m as unknown as [string, string, string];
    if (!(HEAP_TUNING_OPTIONS as readonly string[]).includes(name)) {
      throw new UsageError(`--heap: ${JSON.stringify(name)} is not one of ${HEAP_TUNING_OPTIONS.join(', ')}`);
    }
    out[name] = Number(value);
  }
  try {
    SharedHeap.create({ initialBytes: 16 << 20, maxThreads: 1, ...out }).detach(); // create()'s own checks
  } catch (err) {
    throw new UsageError(`--heap: ${(err as Error).message}`);
  }
  return out;
}

/**
 * Checks before a run, not after it, that `path` can be written: its folder made if missing, and
 * the file itself opened for appending (created, then removed, if it did not exist). Throws UsageError.
 */
function checkOutputPath(option: string, path: string): void {
  const p = resolve(path);
  let made: string | undefined;
  try {
    made = mkdirSync(dirname(p), { recursive: true });
    const existed = existsSync(p);
    if (existed && statSync(p).isDirectory()) throw new Error('it is a folder');
    closeSync(openSync(p, 'a'));
    if (!existed) rmSync(p);
  } catch (err) {
    throw new UsageError(`${option}: cannot write ${JSON.stringify(path)}: ${(err as Error).message}`);
  } finally {
    // The folders made for the check go again (the run makes them when it writes): a usage error
    // later, or a run that fails before writing, left them behind.
    if (made !== undefined) rmSync(made, { recursive: true, force: true });
  }
}

/**
 * `--runs -1`: parseArgs takes a value that starts with a dash for an option ("ambiguous"); joined
 * as `--runs=-1`, the value reaches the option's own check, whose message names it. For the
 * number options `numeric` of every command (ab, phases and ceiling said "ambiguous"; an audit).
 */
function joinNegatives(args: readonly string[], numeric: readonly string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    if (numeric.includes(a) && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${a}=${next}`);
      i++;
    } else joined.push(a);
  }
  return joined;
}

/**
 * A one-value option given more than once: the last one counts (so that `npm run bench -- --threads
 * 8` overrides the script's own --threads), and the run says so, where parseArgs kept the last in
 * silence (`--allocators sabmalloc --allocators reference` ran reference alone; an audit). The
 * repeatable ones (--trace, --heap) are not in `single`. One line a repeated option.
 */
function repeatedNotes(args: readonly string[], single: readonly string[]): string[] {
  const notes: string[] = [];
  for (const flag of single) {
    const at = args.flatMap((a, i) => (a === flag || a.startsWith(`${flag}=`) ? [i] : []));
    if (at.length < 2) continue;
    const i = at.at(-1)!;
    const last = args[i] === flag ? args[i + 1] : args[i]!.slice(flag.length + 1);
    notes.push(`${flag} given ${at.length} times: the last, ${JSON.stringify(last)}, counts` +
      (flag === '--allocators' || flag === '--threads' ? ' (a comma-separated list names several)' : ''));
  }
  return notes;
}

/** The options of a command, as parseArgs takes them. */
type CommandOptions = Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;

/**
 * parseArgs for one of this CLI's commands (strict, positionals allowed), with what every command
 * needs around it: the values of its one-value options that start with a dash joined to them
 * (joinNegatives) and a line for each of those options given more than once (repeatedNotes);
 * parseArgs' refusals as UsageError.
 */
function parseCommand<const T extends CommandOptions>(args: readonly string[], options: T) {
  const single = Object.entries(options)
    .filter(([, o]) => o.type === 'string' && o.multiple !== true)
    .map(([name]) => `--${name}`);
  const joined = joinNegatives(args, single);
  try {
    return { ...parseArgs({ args: joined, options, strict: true, allowPositionals: true }), repeated: repeatedNotes(joined, single) };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A comma-separated list of thread counts (1-256), each once, in ascending order. */
function threadList(flag: string, value: string): number[] {
  return [...new Set(value.split(',').map((s) => positiveInt(flag, s, 256)))].sort((a, b) => a - b);
}

/** Parses the arguments after `bench`. Throws UsageError. */
export function parseBenchArgs(args: string[]): CliOptions | 'help' {
  const parsed = parseCommand(args, {
    threads: { type: 'string' },
    runs: { type: 'string' },
    warmup: { type: 'string' },
    cycles: { type: 'string' },
    trace: { type: 'string', multiple: true },
    'trace-threads': { type: 'string' },
    heap: { type: 'string', multiple: true },
    allocators: { type: 'string' },
    json: { type: 'string' },
    svg: { type: 'string' },
    wide: { type: 'boolean' },
    'no-prime': { type: 'boolean' },
    smoke: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  const v = parsed.values;
  if (v.help) return 'help';
  const smoke = v.smoke === true;
  const names = parsed.positionals.map((p) => p.toUpperCase());
  const workloads: Workload[] = [];
  let micro = false;
  for (const [i, n] of names.entries()) {
    if (n === 'MICRO') micro = true;
    else if ((WORKLOADS as readonly string[]).includes(n)) {
      if (!workloads.includes(n as Workload)) workloads.push(n as Workload);
    } else {
      // Named as typed; a path there is most often the second file of a shell glob after --trace
      // (`--trace traces/*.trace.gz`), which took the first one only (an audit).
      const typed = parsed.positionals[i]!;
      const path = existsSync(typed) ? `; it is a path: --trace takes one file or folder, repeat --trace for each (or give the folder)` : '';
      throw new UsageError(`unknown workload ${JSON.stringify(typed)} (expected ${[...WORKLOADS, 'MICRO'].join(', ')})${path}`);
    }
  }
  if (smoke && names.length === 0) workloads.push('W1', 'W2', 'W3', 'LOCK');
  if (names.length === 0 && !smoke) workloads.push('W1', 'W2', 'W3');
  const threads =
    v.threads !== undefined
      ? threadList('--threads', v.threads)
      : smoke
        ? [1, 2]
        : [1, 2, 4, 8];
  const runs = v.runs !== undefined ? positiveInt('--runs', v.runs, 1000) : smoke ? 1 : 5;
  const warmups = v.warmup !== undefined ? nonNegativeInt('--warmup', v.warmup, 100) : smoke ? 0 : DEFAULT_WARMUPS;
  const cycles = v.cycles !== undefined ? positiveInt('--cycles', v.cycles, 2 ** 40) : undefined;
  let allocators: string[] | undefined;
  if (v.allocators !== undefined) {
    allocators = [];
    for (const raw of v.allocators.split(',')) {
      const a = raw.trim().toLowerCase();
      if (a === '') continue;
      if (a === 'native') allocators.push('glibc', 'system', 'jemalloc', 'tcmalloc', 'mimalloc');
      else if (a === 'thing' || a === '@thi.ng/malloc') allocators.push('thi.ng');
      else if (a === 'dlmalloc' || a === 'wasm') allocators.push('dlmalloc-wasm');
      else if (a === 'glibc' || a === 'system') allocators.push('glibc', 'system'); // one name or the other, by platform
      else if (KNOWN_ALLOCATORS.includes(a)) allocators.push(a);
      else throw new UsageError(`--allocators: unknown allocator ${JSON.stringify(raw)} (expected ${KNOWN_ALLOCATORS.join(', ')} or native)`);
    }
    if (allocators.length === 0) throw new UsageError(`--allocators: no allocator named in ${JSON.stringify(v.allocators)}`);
  }
  const traces = v.trace ?? [];
  if (workloads.includes('W5') && traces.length === 0) {
    throw new UsageError('W5 replays the traces given with --trace FILE or --trace FOLDER (*.trace, *.trace.gz); none was given');
  }
  // --trace is W5's alone: without W5, `bench --trace FILE` ran W1 W2 W3 and never the trace.
  const w5Only = (flag: string): UsageError =>
    new UsageError(`${flag}: only W5 replays traces, and the workloads are ${[...workloads, ...(micro ? ['MICRO'] : [])].join(' ')}: name W5`);
  if (traces.length > 0 && !workloads.includes('W5')) throw w5Only('--trace');
  const traceThreads = v['trace-threads'] !== undefined ? threadList('--trace-threads', v['trace-threads']) : [1];
  if (v['trace-threads'] !== undefined && !workloads.includes('W5')) throw w5Only('--trace-threads');
  const heapOptions = parseHeapOptions(v.heap ?? []);
  // One file for both: the SVG overwrote the JSON, and both were reported written.
  if (v.json !== undefined && v.svg !== undefined && resolve(v.json) === resolve(v.svg)) {
    throw new UsageError(`--json and --svg name one file, ${JSON.stringify(v.svg)}: the SVG would overwrite the JSON`);
  }
  if (v.json !== undefined) checkOutputPath('--json', v.json);
  if (v.svg !== undefined) checkOutputPath('--svg', v.svg);
  return { workloads, micro, threads, traceThreads, runs, warmups, cycles, traces, heapOptions, allocators, json: v.json, svg: v.svg, wide: v.wide === true, prime: v['no-prime'] !== true, smoke, repeated: parsed.repeated };
}

/** The progress display: one self-updating line on a terminal, one plain line per run otherwise. */
class Progress {
  private done = 0;
  private active = false;
  constructor(
    private readonly io: CliIO,
    private total: number,
  ) {}

  addTotal(n: number): void {
    this.total += n;
  }

  step(label: string): void {
    this.done++;
    const head = `[${String(this.done).padStart(String(this.total).length)}/${this.total}]`;
    if (this.io.isTTY) {
      const width = 24;
      const filled = Math.round((this.done / Math.max(1, this.total)) * width);
      const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
      const cols = process.stderr.columns ?? 120;
      this.io.err(`\r\x1b[2K${`[${bar}] ${head} ${label}`.slice(0, cols - 1)}`);
      this.active = true;
    } else {
      this.io.err(`${head} ${label}\n`);
    }
  }

  message(text: string): void {
    this.end();
    this.io.err(text + '\n');
  }

  end(): void {
    if (this.active) this.io.err('\n');
    this.active = false;
  }
}

function runLabel(spec: CaseSpec, rec: RunRecord, index: number, runs: number, warmups: number): string {
  const which = index === 0 ? 'warm-up (cold)' : index <= warmups ? `warm-up ${index}/${warmups} (untimed)` : `run ${index - warmups}/${runs}`;
  return `${spec.allocator} ${spec.workload}${spec.trace !== undefined ? ` ${spec.trace}` : ''} threads=${spec.threads} ${which}: ${fmtOps(rec.opsPerSec)} ops/s (${rec.seconds.toFixed(3)} s)`;
}

export interface BenchReport {
  tool: string;
  command: string[];
  env: Environment;
  options: {
    workloads: string[];
    threads: number[];
    /** W5's thread counts (--trace-threads). */
    traceThreads: number[];
    runs: number;
    warmups: number;
    heapOptions: Partial<HeapOptions>;
    /** Whether each run was primed (bench/prime.ts). */
    prime: boolean;
    smoke: boolean;
    cycles: Record<string, string>;
    traces: string[];
  };
  messages: string[];
  cases: CaseResult[];
  micro: MicroRow[];
}

/** Runs `sabmalloc <args>`; returns the exit code (0 ok, 1 a run failed, 2 usage). */
export async function main(argv: string[], io: CliIO = defaultIO): Promise<number> {
  if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help' || argv[0] === 'help') {
    io.out(USAGE);
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === 'record') return runRecord(argv.slice(1), io);
  if (argv[0] === 'ceiling') return runCeiling(argv.slice(1), io);
  if (argv[0] === 'ab') return runAb(argv.slice(1), io);
  if (argv[0] === 'phases') return runPhases(argv.slice(1), io);
  if (argv[0] !== 'bench') {
    io.err(`sabmalloc: unknown command ${JSON.stringify(argv[0])}\n\n${USAGE}`);
    return 2;
  }
  let opts: CliOptions;
  try {
    const p = parseBenchArgs(argv.slice(1));
    if (p === 'help') {
      io.out(USAGE);
      return 0;
    }
    opts = p;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`sabmalloc bench: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }

  // W5's traces: expanded, parsed and checked, and written in binary form, before anything is timed.
  let traceFiles: string[] = [];
  if (opts.workloads.includes('W5')) {
    try {
      traceFiles = expandTraceArgs(opts.traces);
    } catch (err) {
      io.err(`sabmalloc bench: ${(err as Error).message}\n`);
      return 2;
    }
  }
  const traceDir = traceFiles.length > 0 ? makeTraceDir() : undefined;
  // The parsed traces can take hundreds of MB of the temporary folder: remove them on Ctrl-C and
  // on SIGTERM (`timeout`, a CI job's end) too; the exit code is 128 + the signal's number.
  const onSignal = (signal: NodeJS.Signals): void => {
    if (traceDir !== undefined) removeTraceDir(traceDir);
    process.exit(signal === 'SIGTERM' ? 143 : 130);
  };
  if (traceDir !== undefined) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  try {
    return await runBench(argv, opts, io, traceFiles, traceDir);
  } finally {
    if (traceDir !== undefined) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      removeTraceDir(traceDir);
    }
  }
}

/** An integer option in [min, max], or `dflt` when absent. */
function intOption(name: string, value: string | undefined, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  // Digits only: Number() took "" as 0, "0x2" as 2 and "1e1" as 10.
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name}: expected an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return n;
}

/** `sabmalloc ab --base DIR --trace ...` (ab.ts); returns the exit code (0, 1 failed, 2 usage). */
async function runAb(argv: string[], io: CliIO): Promise<number> {
  let o: Parameters<typeof measureAb>[0];
  try {
    const { values, positionals, repeated } = parseCommand(argv, {
      base: { type: 'string' }, trace: { type: 'string', multiple: true }, repeat: { type: 'string' }, rounds: { type: 'string' },
      warmup: { type: 'string' }, steady: { type: 'string' }, 'no-prime': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    });
    for (const line of repeated) io.err(`sabmalloc ab: ${line}\n`);
    if (values.help === true) {
      io.out(AB_USAGE);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    if (values.base === undefined) throw new UsageError('--base DIR is needed (the dist folder of the build to compare with)');
    const traces = expandTraceArgs(values.trace ?? []);
    if (traces.length === 0) throw new UsageError('give --trace FILE|FOLDER');
    o = {
      base: values.base,
      traces,
      repeat: intOption('repeat', values.repeat, 1, 1, 100_000),
      rounds: intOption('rounds', values.rounds, 8, 1, 1000),
      warmups: intOption('warmup', values.warmup, 2, 0, 1000),
      steady: intOption('steady', values.steady, 0, 0, 100_000),
      prime: values['no-prime'] !== true,
    };
  } catch (err) {
    io.err(`sabmalloc ab: ${(err as Error).message}\n\n${AB_USAGE}`);
    return 2;
  }
  return printMeasured('ab', io, async (progress) => renderAb(await measureAb(o, progress), o));
}

/**
 * The second half of `ab` and `phases`: a header naming the date and the machine, the measurement
 * (a progress line a trace on stderr), then its table; 0, or 1 with the error's message.
 */
async function printMeasured(name: string, io: CliIO, measure: (progress: (line: string) => void) => Promise<string>): Promise<number> {
  try {
    const env = collectEnvironment();
    io.out(`sabmalloc ${name}  ${env.date}\n${machineLine(env)}\n`);
    io.out(await measure((line) => io.err(`${line}\n`)));
    return 0;
  } catch (err) {
    io.err(`sabmalloc ${name}: ${(err as Error).message}\n`);
    return 1;
  }
}

/** `sabmalloc phases --trace ...` (phases.ts); returns the exit code (0, 1 failed, 2 usage). */
async function runPhases(argv: string[], io: CliIO): Promise<number> {
  let o: PhasesOptions;
  try {
    const { values, positionals, repeated } = parseCommand(argv, {
      trace: { type: 'string', multiple: true }, rounds: { type: 'string' }, warmup: { type: 'string' },
      'no-native': { type: 'boolean' }, 'no-prime': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    });
    for (const line of repeated) io.err(`sabmalloc phases: ${line}\n`);
    if (values.help === true) {
      io.out(PHASES_USAGE);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const traces = expandTraceArgs(values.trace ?? []);
    if (traces.length === 0) throw new UsageError('give --trace FILE|FOLDER');
    o = {
      traces,
      rounds: intOption('rounds', values.rounds, 5, 1, 1000),
      warmups: intOption('warmup', values.warmup, 1, 0, 1000),
      native: values['no-native'] !== true,
      prime: values['no-prime'] !== true,
    };
  } catch (err) {
    io.err(`sabmalloc phases: ${(err as Error).message}\n\n${PHASES_USAGE}`);
    return 2;
  }
  return printMeasured('phases', io, async (progress) => renderPhases(await measurePhases(o, progress), o));
}

/** `sabmalloc ceiling [W1] --trace ...` (ceiling.ts); returns the exit code (0, 1 failed, 2 usage). */
async function runCeiling(argv: string[], io: CliIO): Promise<number> {
  let traces: string[];
  let runs: number;
  let prime: boolean;
  let withW1: boolean;
  let withW3: boolean;
  try {
    const { values, positionals, repeated } = parseCommand(argv, {
      trace: { type: 'string', multiple: true }, runs: { type: 'string' }, 'no-prime': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    });
    for (const line of repeated) io.err(`sabmalloc ceiling: ${line}\n`);
    if (values.help === true) {
      io.out(CEILING_USAGE);
      return 0;
    }
    const unknown = positionals.filter((w) => w !== 'W1' && w !== 'W3');
    if (unknown.length > 0) throw new UsageError(`unknown workload ${JSON.stringify(unknown[0])} (W1, W3, or traces with --trace)`);
    withW1 = positionals.includes('W1');
    withW3 = positionals.includes('W3');
    if (positionals.length === 0 && (values.trace === undefined || values.trace.length === 0)) throw new UsageError('name W1 or W3, or give --trace FILE|FOLDER');
    runs = intOption('runs', values.runs, 5, 1, 1000);
    traces = expandTraceArgs(values.trace ?? []);
    prime = values['no-prime'] !== true;
  } catch (err) {
    io.err(`sabmalloc ceiling: ${(err as Error).message}\n\n${CEILING_USAGE}`);
    return 2;
  }
  const dir = makeTraceDir();
  try {
    const env = collectEnvironment();
    io.out(`sabmalloc ceiling  ${env.date}\n${machineLine(env)}\n` +
      `${prime ? 'memory primed before each run (bench/prime.ts)' : 'not primed (--no-prime)'}; one untimed round, then ${runs} timed\n`);
    const progress = (name: string) => (row: string, round: number, opsPerSec: number): void =>
      io.err(`${name} ${row} ${round === 0 ? 'untimed' : `round ${round}/${runs}`}: ${fmtOps(opsPerSec)} ops/s\n`);
    // Every trace parsed and checked before anything is measured (W1 and W3 first ran minutes
    // before a bad trace stopped the command; an audit).
    const names = distinctTraceNames(traces);
    const preparedAll = traces.map((t, i) => prepareTrace(t, dir, i, names[i]));
    if (withW1) io.out(`\n${renderCeiling(await measureW1Ceiling({ runs, prime, onRun: progress('W1') }))}\n`);
    if (withW3) io.out(`\n${renderCeiling(await measureW3Ceiling({ runs, prime, onRun: progress('W3') }))}\n`);
    for (const prepared of preparedAll) {
      const trace = readTraceOps(prepared.opsFile, prepared.name);
      const result = await measureCeiling(trace, { runs, prime, traceOps: prepared.opsFile, onRun: progress(prepared.name) });
      io.out(`\n${renderCeiling(result)}\n`);
    }
    return 0;
  } catch (err) {
    io.err(`sabmalloc ceiling: ${(err as Error).message}\n`);
    return 1;
  } finally {
    removeTraceDir(dir);
  }
}

/** `sabmalloc record --out FILE -- program args...`; returns the exit code (0, 1 failed, 2 usage). */
async function runRecord(argv: string[], io: CliIO): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash < 0 ? argv : argv.slice(0, dash);
  const command = dash < 0 ? [] : argv.slice(dash + 1);
  if (own.includes('-h') || own.includes('--help')) {
    io.out(RECORD_USAGE);
    return 0;
  }
  let out: string | undefined;
  try {
    const { values } = parseArgs({ args: own, options: { out: { type: 'string' } }, strict: true, allowPositionals: false });
    out = values.out;
  } catch (err) {
    io.err(`sabmalloc record: ${(err as Error).message}\n\n${RECORD_USAGE}`);
    return 2;
  }
  if (out === undefined || out === '') {
    io.err(`sabmalloc record: --out FILE is required\n\n${RECORD_USAGE}`);
    return 2;
  }
  if (command.length === 0) {
    io.err(`sabmalloc record: expected the program after --, got ${dash < 0 ? 'no --' : 'nothing after --'}\n\n${RECORD_USAGE}`);
    return 2;
  }
  try {
    const s = await recordTrace({ out, command });
    const c = s.counters;
    const missed = Object.entries(c).filter(([k, v]) => k !== 'live_at_exit' && v > 0);
    io.err(
      `sabmalloc record: ${s.out}: ${fmtInt(s.ops)} ops (a ${fmtInt(s.mallocs)}, c ${fmtInt(s.callocs)}, r ${fmtInt(s.reallocs)}, ` +
        `f ${fmtInt(s.frees)}), peak live ${fmtInt(s.peakLiveBytes)} B in ${fmtInt(s.peakLiveBlocks)} blocks, ` +
        `${c['live_at_exit'] !== undefined ? `${fmtInt(c['live_at_exit'])} blocks live at exit` : 'blocks live at exit unknown'}\n` +
        (missed.length > 0 ? `  not recorded: ${missed.map(([k, v]) => `${k} ${fmtInt(v)}`).join(', ')}\n` : '') +
        (Object.keys(c).length === 0
          ? '  the trace has no closing counters line: the program ended without exit or _exit (a signal), so its last calls may be missing\n'
          : '') +
        (s.status !== 0 ? `  the program ${s.signal !== null ? `was ended by ${s.signal}` : `exited with ${s.status}`}\n` : ''),
    );
    // The program's own exit code, as time(1) and strace give it: a script running the recorder
    // (record-all.sh under set -e, a loop over programs) must not go on as after a success when
    // the program failed, or when Ctrl-C (Ctrl-\) asked for the whole job to stop (130, 131).
    return s.signal !== null ? signalExitCode(s.signal) : (s.status ?? 0);
  } catch (err) {
    io.err(`${(err as Error).message}\n`);
    return (err as { exitCode?: number }).exitCode ?? 1;
  }
}

async function runBench(argv: string[], opts: CliOptions, io: CliIO, traceFiles: string[], traceDir: string | undefined): Promise<number> {
  const env = collectEnvironment();
  const messages: string[] = [];
  const note = (m: string): void => {
    messages.push(m);
    io.err(m + '\n');
  };
  for (const line of opts.repeated ?? []) note(line);
  const traces: PreparedTrace[] = [];
  const traceNames = distinctTraceNames(traceFiles);
  for (const [i, f] of traceFiles.entries()) {
    const t0 = performance.now();
    try {
      traces.push(prepareTrace(f, traceDir!, i, traceNames[i]));
    } catch (err) {
      io.err(`sabmalloc bench: W5: ${(err as Error).message}\n`);
      return 1;
    }
    const t = traces.at(-1)!;
    io.err(`W5: ${t.name}: ${fmtInt(t.ops)} operations, peak live ${fmtInt(t.peakLiveBytes)} B (parsed in ${((performance.now() - t0) / 1000).toFixed(1)} s, untimed)\n`);
  }

  // Allocators and peers
  const want = (a: string): boolean => opts.allocators === undefined || opts.allocators.includes(a);
  const allocators = new Set<string>();
  const skipped = new Set<string>(); // named, and skipped with a note already (not installed, no toolchain)
  if (want('sabmalloc')) allocators.add('sabmalloc');
  const hasThing = await thingAvailable();
  if (want('thi.ng')) {
    if (hasThing) allocators.add('thi.ng');
    else {
      skipped.add('thi.ng');
      note('thi.ng: skipped: @thi.ng/malloc is not installed (it is a devDependency: npm install -D @thi.ng/malloc)');
    }
  }
  let hasWasm = false;
  if (want('dlmalloc-wasm') && opts.workloads.some((w) => WASM_WORKLOADS.has(w))) {
    const skip = wasmSkipReason();
    if (skip === undefined) {
      hasWasm = true;
      allocators.add('dlmalloc-wasm');
    } else {
      skipped.add('dlmalloc-wasm');
      note(`dlmalloc-wasm: ${skip}`);
    }
  }
  if (want('reference') && opts.workloads.some((w) => REFERENCE_WORKLOADS.has(w))) allocators.add('reference');
  const wantsNative = ['glibc', 'system', 'jemalloc', 'tcmalloc', 'mimalloc'].some(want);
  const nativeWorkloads = opts.workloads.some((w) => NATIVE_WORKLOADS.has(w));
  const peers = wantsNative && nativeWorkloads ? nativePeers() : { natives: [] };
  if (peers.skip !== undefined) {
    skipped.add('native');
    note(`native: ${peers.skip}`);
  }
  for (const n of peers.natives) if (want(n.name)) allocators.add(n.name);
  if (wantsNative && nativeWorkloads && peers.skip === undefined) {
    const found = new Set(peers.natives.map((n) => n.name));
    for (const lib of ['jemalloc', 'tcmalloc', 'mimalloc']) {
      if (want(lib) && !found.has(lib)) {
        skipped.add(lib);
        note(`native: ${lib}: skipped: its shared library is not installed (Debian: ${lib === 'jemalloc' ? 'libjemalloc2' : lib === 'tcmalloc' ? 'libtcmalloc-minimal4' : 'libmimalloc2.0'})`);
      }
    }
  }

  if (allocators.size === 0 && opts.workloads.length > 0) {
    io.err(`sabmalloc bench: no allocator left to run${opts.allocators !== undefined ? ` of ${opts.allocators.join(', ')}` : ''} (each was skipped, or does not run these workloads)\n`);
    return 1;
  }

  // Header: machine, parameters
  io.out(
    `sabmalloc bench  ${env.date}\n` +
      `${machineLine(env)}\n` +
      `first touch of a fresh page: ${env.firstTouchUs?.toFixed(2) ?? '-'} us (each page fault of a run costs about this)\n` +
      (opts.prime
        ? `memory primed before each run, every allocator's: a worker thread touches as many pages as the run will, then exits (bench/prime.ts)\n`
        : `memory not primed (--no-prime): each run's first touches cost what this machine's memory costs at that moment\n`),
  );
  const cycleInfo: Record<string, string> = {};
  for (const w of opts.workloads) {
    const c = cyclesFor(w, opts);
    for (const t of w === 'W5' ? traces : [undefined]) {
      const p = paramsFor(w, c, t);
      let line = `${describeParams(w, p)}${w === 'W1' || w === 'W5' ? '' : ' per thread'}`;
      if (allocators.has('thi.ng') && w !== 'LOCK' && c > THING_MAX_CYCLES && (t === undefined || t.ops <= THING_MAX_CYCLES)) {
        line += `; thi.ng: ${describeParams(w, paramsFor(w, THING_MAX_CYCLES, t))}`;
      }
      const key = t === undefined ? w : `${w} ${t.name}`;
      cycleInfo[key] = line;
      io.out(`  ${key}: ${line}\n`);
      // A trace is not cut: --cycles below its operations replays it whole, more than asked.
      if (t !== undefined && opts.cycles !== undefined && opts.cycles < t.ops) {
        io.out(`  ${key}: --cycles ${fmtInt(opts.cycles)} is below its ${fmtInt(t.ops)} operations: replayed whole\n`);
      }
    }
  }
  const single = opts.workloads.filter((w) => SINGLE_THREAD_WORKLOADS.has(w));
  if (single.length > 0 && opts.threads.some((t) => t !== 1)) {
    io.out(`  ${single.join(', ')}: defined for one thread: run at 1 thread only\n`);
  }
  if (opts.workloads.includes('W5') && (opts.threads.some((t) => t !== 1) || opts.traceThreads.some((t) => t !== 1))) {
    io.out(`  W5: at --trace-threads ${opts.traceThreads.join(',')} (each thread replays the whole trace at once; --threads is W2's and W3's)\n`);
  }
  const plannedThreads = [...new Set(opts.workloads.flatMap((w) => threadsFor(w, opts.threads, opts.traceThreads)))].sort((a, b) => a - b);
  const cases = planCases({
    workloads: opts.workloads,
    threads: opts.threads,
    traceThreads: opts.traceThreads,
    cycles: opts.cycles,
    smoke: opts.smoke,
    traces,
    allocators,
    thingAvailable: hasThing,
    wasmAvailable: hasWasm,
    natives: peers.natives,
    heapOptions: opts.heapOptions,
    note: (m) => {
      if (m.startsWith('thi.ng:')) skipped.add('thi.ng'); // a trace too long for it, said here
      note(m);
    },
  });
  // MICRO runs sabmalloc and thi.ng only; reference, dlmalloc-wasm and thi.ng run at one thread only.
  const microRuns = opts.micro && (allocators.has('sabmalloc') || (allocators.has('thi.ng') && hasThing));
  if (opts.micro && !microRuns) note('MICRO: skipped: it runs sabmalloc and thi.ng only');
  // An allocator the user named that has no case here is said to be left out, with why (an audit:
  // `W3 --threads 2 --allocators sabmalloc,reference` ran sabmalloc alone, listed reference in the
  // header and exited 0); the header lists the allocators that run.
  const ran = new Set(cases.map((c) => c.allocator));
  if (opts.micro && microRuns) for (const a of ['sabmalloc', 'thi.ng']) if (allocators.has(a)) ran.add(a);
  // glibc and system are one allocator, named by platform: --allocators puts both in for either.
  if (ran.has('system')) ran.add('glibc');
  for (const a of new Set((opts.allocators ?? []).map((n) => (n === 'system' ? 'glibc' : n)))) {
    if (ran.has(a) || skipped.has(a) || (NATIVE_NAMES.includes(a) && skipped.has('native'))) continue;
    note(`${a}: not run: ${onlyRuns(a)}`);
  }
  io.out(
    (Object.keys(opts.heapOptions).length > 0 ? `  sabmalloc's heaps: ${heapOptionsNote(opts.heapOptions)}\n` : '') +
    `  threads ${plannedThreads.join(',')}; a warm-up run (cold)${opts.warmups > 0 ? `, ${opts.warmups} untimed warm-up run${opts.warmups === 1 ? '' : 's'} (not for natives)` : ''}, then ${opts.runs} timed run${opts.runs === 1 ? '' : 's'}; allocators: ${[...allocators].filter((a) => ran.has(a)).join(', ') || 'none'}\n`,
  );
  if (cases.length === 0 && !microRuns) {
    // An empty report that exited 0.
    io.err(`sabmalloc bench: nothing to run: no case of ${[...opts.workloads, ...(opts.micro ? ['MICRO'] : [])].join(' ')} for ${[...allocators].join(', ') || 'any allocator left'} at threads ${opts.threads.join(',')}\n`);
    return 1;
  }

  const runsOf = (spec: CaseSpec): number => 1 + warmupsFor(spec, opts.warmups) + opts.runs;
  const progress = new Progress(io, cases.reduce((n, spec) => n + runsOf(spec), 0));
  const runner = new BenchRunner({ prime: opts.prime });
  const results: CaseResult[] = [];
  let micro: MicroRow[] = [];
  try {
    // One comparison at a time (a workload, trace and thread count: its cases are consecutive),
    // its timed runs taken in turn (BenchRunner.runGroup).
    const sameComparison = (a: CaseSpec, b: CaseSpec): boolean => a.workload === b.workload && a.trace === b.trace && a.threads === b.threads;
    const reported = new Map<CaseSpec, number>();
    for (let g = 0; g < cases.length; ) {
      let end = g + 1;
      while (end < cases.length && sameComparison(cases[g]!, cases[end]!)) end++;
      const group = await runner.runGroup(
        cases.slice(g, end),
        opts.runs,
        (s, rec, i, n, w) => {
          reported.set(s, (reported.get(s) ?? 0) + 1);
          progress.step(runLabel(s, rec, i, n, w));
        },
        opts.warmups,
      );
      for (const r of group) {
        const spec = r.spec;
        checkCase(r);
        summarizeCase(r);
        if (r.error !== undefined) {
          progress.message(`${spec.allocator} ${spec.workload}${spec.trace !== undefined ? ` ${spec.trace}` : ''} threads=${spec.threads}: FAILED: ${r.error}`);
          // Count the runs it did not get to, so that the progress still ends at the total.
          progress.addTotal(-(runsOf(spec) - (reported.get(spec) ?? 0)));
        }
        results.push(r);
      }
      g = end;
    }
    if (opts.micro) {
      progress.end();
      io.err('MICRO: tinybench micro-benchmarks in the main thread\n');
      micro = await runMicro({
        allocators,
        thingAvailable: hasThing,
        timeMs: opts.smoke ? 20 : 150,
        heapOptions: opts.heapOptions,
        pool: () => runner.pool('micro:1', 1),
        onTask: (row, i, n) => {
          if (i === 1) progress.addTotal(n);
          progress.step(`MICRO ${row.allocator} ${row.task}: ${row.error ?? `${fmtOps(row.opsPerSec)} ops/s`}`);
        },
      });
    }
  } finally {
    progress.end();
    await runner.close();
  }
  checkCasesAgree(results);
  addRatios(results);
  env.loadAverageEnd = os.loadavg();

  // The table
  if (results.length > 0) io.out('\n' + (opts.wide ? renderWideTable(results) : renderTable(results)) + '\n');
  const paired = renderPairedRatios(results);
  if (paired !== '') io.out('\n' + paired + '\n');
  if (micro.length > 0) io.out('\nMICRO (tinybench, main thread; one op = the named operation)\n' + renderMicroTable(micro) + '\n');
  const la = (xs: number[] | undefined): string => (xs ?? []).map((x) => x.toFixed(2)).join(' ');
  const busy = Math.max(...env.loadAverageStart, ...(env.loadAverageEnd ?? [])) > env.availableParallelism + 0.5;
  io.out(
    '\n' +
      wrap(
        `${env.cpuModel}, os.availableParallelism() = ${env.availableParallelism}; load average ${la(env.loadAverageStart)} before, ` +
          `${la(env.loadAverageEnd)} after${busy ? ' (busy machine: figures are noisy)' : ''}`,
      ) +
      '\n',
  );
  const untimed = opts.warmups > 0 ? `, after ${opts.warmups} untimed warm-up run${opts.warmups === 1 ? '' : 's'} (JS and WebAssembly allocators)` : '';
  const legend = opts.wide
    ? `cold: the warm-up run (the first call of the timed loop in fresh workers); ops/s: median of the timed runs (min-max)${untimed}; ` +
      'x glibc: over glibc native on the same workload (W5: trace) and threads; footprint: sabmalloc peak footprint (pages ' +
      'of the buffer handed out or written, incl. metadata (meta)), thi.ng pool top, dlmalloc-wasm memory size, reference bump top, native growth of the peak RSS over the workload (the ' +
      'program and its libraries left out; pages touched only: W2 writes just the ends of its 8-32 KiB blocks, so a native figure there can be ' +
      'below peak live, and sabmalloc\'s, which counts pages handed out, above what it holds); carved: sabmalloc stats().peakCarvedBytes, the address space of its carved SuperSlabs; peak live: peak of live requested ' +
      'bytes (with threads, the sum of per-thread/per-array peaks); page faults: the process\'s minor page faults (first touches ' +
      'of fresh pages, every thread) during a timed run, median (W5: the replays with their untimed cleanups); lock and stage ' +
      'counters: timed part only (S1/S2/S3 and remote frees per run).'
    : `cold: the warm-up run (the first call of the timed loop in fresh workers); warm: median of the timed runs (min-max)${untimed}; ` +
      'x glibc: warm median over glibc native on the same workload (W5: trace) and threads; footprint: sabmalloc ' +
      'stats().peakFootprintBytes (pages of the buffer handed out or written, metadata included), thi.ng pool top, dlmalloc-wasm memory ' +
      'size, reference bump top, native growth of the peak RSS over the workload (the program and its libraries left out; pages touched ' +
      'only: W2 writes just the ends of its 8-32 KiB blocks, so a native figure there can be below peak live, and sabmalloc\'s, ' +
      'which counts pages handed out, above what it holds); ' +
      'peak live: peak of live requested bytes (with threads, the sum of per-thread/per-array peaks). ' +
      'Page faults, lock and stage counters: --wide, and in --json.';
  io.out(wrap(legend) + '\n');

  const report: BenchReport = {
    tool: 'sabmalloc bench',
    command: argv,
    env,
    options: {
      workloads: [...opts.workloads, ...(opts.micro ? ['MICRO'] : [])],
      threads: opts.threads,
      traceThreads: opts.traceThreads,
      runs: opts.runs,
      warmups: opts.warmups,
      heapOptions: opts.heapOptions,
      prime: opts.prime,
      smoke: opts.smoke,
      cycles: cycleInfo,
      traces: traces.map((t) => t.path),
    },
    messages,
    cases: results,
    micro,
  };
  if (opts.json !== undefined) {
    const p = resolve(opts.json);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, JSON.stringify(report, null, 2) + '\n');
    io.out(`JSON: ${p}\n`);
  }
  if (opts.svg !== undefined) {
    const p = resolve(opts.svg);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, renderSvg(results, env));
    io.out(`SVG: ${p}\n`);
  }
  const failed = results.filter((r) => r.error !== undefined).length + micro.filter((m) => m.error !== undefined).length;
  if (failed > 0) io.err(`sabmalloc bench: ${failed} case${failed === 1 ? '' : 's'} failed (see the table)\n`);
  return failed > 0 ? 1 : 0;
}

function invokedDirectly(): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return realpathSync(argv1) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`sabmalloc: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
