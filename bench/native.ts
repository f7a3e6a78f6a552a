/**
 * The native peers: bench/native/workloads.c (W1, W2, W3 and the W5 replay
 * on plain malloc/free/calloc/realloc) compiled with the machine's C compiler and run with the system
 * allocator or with jemalloc, tcmalloc or mimalloc through LD_PRELOAD.
 *
 * - The C source is found relative to this module, both as bench/native.ts
 *   (tsx, vitest) and as dist/bench/native.js (after tsc).
 * - It is compiled on first use with `$CC` (else cc, gcc, clang) and
 *   `-O2 -pthread` into bench/native/build/ (gitignored; a temporary
 *   directory if that is not writable), named by a hash of the source and the
 *   command, so an edited source is rebuilt and concurrent builders do not
 *   clash (each writes a private file and renames it into place).
 * - Without a C compiler, {@link nativeSkipReason} says why and
 *   {@link runNative} rejects with a {@link NativeSkipped} error whose
 *   message starts with "skipped: no C compiler".
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedBuild, run } from './build-dir.js';

/** A native allocator: the system's malloc, or a shared library to preload. */
export interface NativeAllocator {
  /** 'glibc' (or 'system' off glibc), 'jemalloc', 'tcmalloc', 'mimalloc'. */
  name: string;
  /** Absolute path of the library for LD_PRELOAD; absent for the system allocator. */
  preload?: string;
}

export type NativeWorkload = 'W1' | 'W2' | 'W3' | 'W5';

/** Parameters; anything omitted takes the default of shared/workloads.md. */
export interface NativeParams {
  threads?: number;
  cycles?: number;
  ws?: number;
  seed?: number;
  chunks?: number;
  rounds?: number;
  opsPerRound?: number;
  /** W5: the trace in the binary form of bench/replay.ts writeTraceOps, and how many times to replay it. */
  traceOps?: string;
  repeats?: number;
  /** W5: time operations [0, split) and [split, count) apart as well (splitSeconds; bench/phases.ts). */
  split?: number;
}

/** The program's one line of JSON. */
export interface NativeResult {
  workload: NativeWorkload;
  threads: number;
  cycles?: number;
  ws?: number;
  chunks?: number;
  rounds?: number;
  opsPerRound?: number;
  seed: number;
  ops: number;
  mallocs: number;
  bytesRequested: number;
  checksum: number;
  seconds: number;
  opsPerSec: number;
  /**
   * The growth of the program's peak resident set (VmHWM of /proc/self/status) over the
   * workload, in bytes (workloads.c: from where the workload starts, after its tables are
   * made; W5: the replay loop): what the allocator took, not the program's image. Without
   * /proc, ru_maxrss of the whole process.
   */
  peakRssBytes: number;
  /**
   * getrusage ru_maxrss, in bytes. On Linux it survives execve, so when node
   * starts the program it can show node's forked image: prefer peakRssBytes.
   */
  ruMaxrssBytes: number;
  /** Peak of live requested bytes (sum of per-thread/per-array peaks with several threads). */
  peakLiveBytes: number;
  /** Minor page faults of the process during the timed part (W5: the replays and their cleanups). */
  minorFaults: number;
  /** W5: seconds of operations [0, split) and of [split, count), summed over the repeats ([all, 0] without a split). */
  splitSeconds?: [number, number];
  /** The shared object that defined malloc in the run (checks that the preload took). */
  mallocLibrary: string;
  /** Added here: which allocator ran. */
  allocator: string;
}

/** Native runs are impossible on this machine (no C compiler). */
export class NativeSkipped extends Error {
  readonly code = 'NATIVE_SKIPPED';
  override name = 'NativeSkipped';
}

const SOURCE_NAME = 'workloads.c';
const CFLAGS = ['-O2', '-pthread'];
const LIBS = ['-ldl']; // dladdr; an empty stub since glibc 2.34, needed before

/** The allocator libraries looked for, by name, most specific file first. */
const LIBRARY_CANDIDATES: ReadonlyArray<{ name: string; files: readonly string[] }> = [
  { name: 'jemalloc', files: ['libjemalloc.so.2', 'libjemalloc.so'] },
  { name: 'tcmalloc', files: ['libtcmalloc_minimal.so.4', 'libtcmalloc_minimal.so', 'libtcmalloc.so.4', 'libtcmalloc.so'] },
  { name: 'mimalloc', files: ['libmimalloc.so.2', 'libmimalloc.so.3', 'libmimalloc.so'] },
];

function libraryDirs(): string[] {
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : process.arch === 'x64' ? 'x86_64-linux-gnu' : '';
  const dirs = [`/usr/lib/${triplet}`, `/lib/${triplet}`, '/usr/lib', '/usr/lib64', '/usr/local/lib'];
  return [...new Set(dirs.filter((d) => !d.endsWith('/')))];
}

/** Candidate places of a C source of bench/native/, relative to this module (bench/ or dist/bench/). */
export function nativeSourceCandidates(name = SOURCE_NAME): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  return [
    join(here, 'native', name), // bench/native.ts -> bench/native/workloads.c
    join(here, '..', '..', 'bench', 'native', name), // dist/bench/native.js -> bench/native/workloads.c
  ].map((p) => resolve(p));
}

/** Path of bench/native/workloads.c (or of another C source there, `what` naming its user); throws if it cannot be found. */
export function nativeSourcePath(name = SOURCE_NAME, what = 'native workloads'): string {
  const candidates = nativeSourceCandidates(name);
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new Error(`${what}: ${name} not found; looked at ${candidates.join(', ')}`);
  return found;
}

let compilerCache: string | null | undefined;

/** The C compiler to use ($CC, cc, gcc or clang), or null if there is none. */
export function findCompiler(): string | null {
  if (compilerCache !== undefined) return compilerCache;
  const candidates = [process.env['CC'], 'cc', 'gcc', 'clang'].filter((c): c is string => !!c);
  compilerCache = null;
  for (const cc of candidates) {
    const r = spawnSync(cc, ['--version'], { stdio: 'ignore' });
    if (r.status === 0) {
      compilerCache = cc;
      break;
    }
  }
  return compilerCache;
}

/** Why native runs are impossible here, or undefined if they are possible. */
export function nativeSkipReason(): string | undefined {
  if (process.platform === 'win32') return 'skipped: the native workloads need a POSIX system';
  if (findCompiler() === null) return 'skipped: no C compiler (tried $CC, cc, gcc, clang)';
  return undefined;
}

let binaryCache: string | undefined;

/** Compiles the C program if needed and returns the path of the binary. */
export function ensureNativeBinary(): string {
  if (binaryCache !== undefined && existsSync(binaryCache)) return binaryCache;
  const reason = nativeSkipReason();
  if (reason !== undefined) throw new NativeSkipped(reason);
  const cc = findCompiler()!;
  const source = nativeSourcePath();
  const binary = cachedBuild({
    source,
    command: [cc, ...CFLAGS, ...LIBS],
    prefix: 'workloads-',
    suffix: '',
    tmpName: 'sabmalloc-native',
    what: 'native workloads',
    compile: (out) => {
      const r = run(cc, [...CFLAGS, '-o', out, source, ...LIBS]);
      return r.status === 0 ? r : run(cc, [...CFLAGS, '-o', out, source]); // no libdl
    },
  });
  binaryCache = binary;
  return binary;
}

/** The version of the glibc this process runs on (process.report), or undefined off glibc. */
export function glibcVersion(): string | undefined {
  return (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
}

/**
 * The native allocators on this machine: the system allocator always, and
 * each of jemalloc, tcmalloc and mimalloc whose shared library is found.
 */
export function nativeAllocators(): NativeAllocator[] {
  const list: NativeAllocator[] = [{ name: glibcVersion() !== undefined ? 'glibc' : 'system' }];
  const dirs = libraryDirs();
  for (const { name, files } of LIBRARY_CANDIDATES) {
    const preload = findLibrary(dirs, files);
    if (preload !== undefined) list.push({ name, preload });
  }
  return list;
}

function findLibrary(dirs: readonly string[], files: readonly string[]): string | undefined {
  for (const file of files) {
    for (const dir of dirs) {
      const p = join(dir, file);
      if (existsSync(p)) return p;
    }
  }
  // e.g. libmimalloc.so.2.1 without the libmimalloc.so.2 link
  for (const file of files) {
    for (const dir of dirs) {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch {
        continue;
      }
      const hit = names.find((n) => n.startsWith(file + '.'));
      if (hit !== undefined) return join(dir, hit);
    }
  }
  return undefined;
}

/** Command-line arguments for the C program. */
export function nativeArgs(workload: NativeWorkload, params: NativeParams = {}): string[] {
  if (workload === 'W5') {
    if (params.traceOps === undefined) throw new RangeError('runNative(params): W5 needs traceOps');
    const args = ['W5', '--trace-ops', params.traceOps];
    if (params.threads !== undefined && params.threads !== 1) {
      if (!Number.isSafeInteger(params.threads) || params.threads < 1) throw new RangeError(`runNative(params): threads must be a positive integer, got ${params.threads}`);
      args.push('--threads', String(params.threads));
    }
    if (params.repeats !== undefined) args.push('--repeats', String(params.repeats));
    if (params.split !== undefined) {
      if (!Number.isSafeInteger(params.split) || params.split < 0) throw new RangeError(`runNative(params): split must be a non-negative integer, got ${params.split}`);
      args.push('--split', String(params.split));
    }
    return args;
  }
  const args: string[] = [workload];
  const opt = (flag: string, v: number | undefined): void => {
    if (v === undefined) return;
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`runNative(params): ${flag} must be a non-negative integer, got ${v}`);
    args.push(flag, String(v));
  };
  opt('--threads', params.threads);
  if (workload === 'W3') {
    opt('--chunks', params.chunks);
    opt('--rounds', params.rounds);
    opt('--ops', params.opsPerRound);
  } else {
    opt('--cycles', params.cycles);
    opt('--ws', params.ws);
  }
  opt('--seed', params.seed);
  return args;
}

/**
 * Runs one workload natively with `allocator` and returns its JSON report.
 * Rejects with {@link NativeSkipped} when there is no C compiler, and with an
 * Error when the program fails or the preload did not take.
 */
export async function runNative(
  allocator: NativeAllocator,
  workload: NativeWorkload,
  params: NativeParams = {},
): Promise<NativeResult> {
  const binary = ensureNativeBinary();
  const args = nativeArgs(workload, params);
  const env = { ...process.env };
  delete env['LD_PRELOAD'];
  if (allocator.preload !== undefined) env['LD_PRELOAD'] = allocator.preload;
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolveRun, reject) => {
    execFile(binary, args, { env, maxBuffer: 1 << 20 }, (err, out, errOut) => {
      if (err) reject(new Error(`native ${workload} with ${allocator.name} failed (${err.message.trim()}):\n${errOut}`));
      else resolveRun({ stdout: out, stderr: errOut });
    });
  });
  if (allocator.preload !== undefined && /ld\.so|cannot be preloaded/.test(stderr)) {
    throw new Error(`native ${workload}: LD_PRELOAD=${allocator.preload} did not load:\n${stderr}`);
  }
  const line = stdout.trim().split('\n').pop() ?? '';
  let result: NativeResult;
  try {
    result = JSON.parse(line) as NativeResult;
  } catch {
    throw new Error(`native ${workload} with ${allocator.name}: expected one line of JSON, got ${JSON.stringify(stdout)}`);
  }
  if (allocator.preload !== undefined && !sameLibrary(result.mallocLibrary, allocator.preload)) {
    throw new Error(`native ${workload}: malloc came from ${result.mallocLibrary}, not from the preloaded ${allocator.preload}`);
  }
  result.allocator = allocator.name;
  return result;
}

function sameLibrary(a: string, b: string): boolean {
  const base = (p: string): string => p.slice(p.lastIndexOf('/') + 1).replace(/\.so.*$/, '');
  return base(a) === base(b);
}
