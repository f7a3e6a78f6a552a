/**
 * `sabmalloc record`: runs a program with bench/native/trace-record.c preloaded and writes the
 * malloc-family calls of its main thread as a W5 trace (text, or gzip when the name ends in
 * .gz), which `sabmalloc bench W5 --trace FILE` then replays against sabmalloc and the native
 * allocators. Linux with glibc only (LD_PRELOAD and glibc's __libc_malloc entry points).
 *
 * The shim is compiled on first use like the native workloads (build-dir.ts). After the run the
 * trace is parsed (replay.ts parseTrace checks every line and that each id is live where it is
 * used) and summarized: operations by kind, peak live bytes and blocks, and the shim's counters
 * (calls of other threads and of pointers the trace never saw, which it could not record).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, createReadStream, createWriteStream, existsSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { cachedBuild, run } from './build-dir.js';
import { findCompiler, glibcVersion, nativeSourcePath } from './native.js';
import { loadTrace, tracePeakLive, OP_CALLOC, OP_FREE, OP_MALLOC, OP_REALLOC } from './replay.js';

/** Why recording cannot work here, or undefined when it can. */
export function recordSkipReason(): string | undefined {
  if (process.platform !== 'linux') return `recording needs Linux with glibc (LD_PRELOAD), this is ${process.platform}`;
  if (glibcVersion() === undefined) return 'recording needs glibc (the shim calls __libc_malloc), and this Node does not run on glibc';
  if (findCompiler() === null) return 'recording needs a C compiler to build the shim (tried $CC, cc, gcc, clang)';
  return undefined;
}

/** Builds the shim if needed; returns the shared library's path. */
export function recorderLibrary(): string {
  const reason = recordSkipReason();
  if (reason !== undefined) throw new Error(`sabmalloc record: ${reason}`);
  const cc = findCompiler()!;
  const source = nativeSourcePath('trace-record.c', 'sabmalloc record');
  const flags = ['-O2', '-shared', '-fPIC', '-pthread'];
  return cachedBuild({
    source,
    command: [cc, ...flags],
    prefix: 'trace-record-',
    suffix: '.so',
    tmpName: 'sabmalloc-native',
    what: 'trace recorder',
    compile: (out) => run(cc, [...flags, '-o', out, source]),
  });
}

export interface RecordOptions {
  /** Where the trace goes; gzip-compressed when it ends in .gz. */
  out: string;
  /** The program and its arguments. */
  command: string[];
  /** The program's standard streams (default: inherited). */
  stdio?: 'inherit' | 'ignore';
}

export interface RecordSummary {
  out: string;
  /** The program's exit code, or null when a signal ended it. */
  status: number | null;
  signal: string | null;
  ops: number;
  mallocs: number;
  callocs: number;
  reallocs: number;
  frees: number;
  peakLiveBytes: number;
  /** Peak number of live blocks (the largest id + 1: freed ids are reused most recent first). */
  peakLiveBlocks: number;
  /** The shim's counters line (`other_threads=... unknown_pointers=... failed_calls=... live_at_exit=...`). */
  counters: Record<string, number>;
}

/** The shim's last `# counters:` line (written at exit, so within the file's last bytes); {} if absent. */
export function readCounters(path: string): Record<string, number> {
  const size = statSync(path).size;
  const n = Math.min(size, 4096);
  const buf = Buffer.alloc(n);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, n, size - n);
  } finally {
    closeSync(fd);
  }
  const counters: Record<string, number> = {};
  const m = /# counters: ([^\n]*)\n?$/.exec(buf.toString('latin1'));
  if (m === null) return counters;
  for (const kv of m[1]!.split(' ')) {
    const [k, v] = kv.split('=');
    if (k && v !== undefined) counters[k] = Number(v);
  }
  return counters;
}

/** The most of the command the trace's `# command:` line keeps, in bytes. */
const COMMAND_MAX = 4000;

/**
 * The command as the `# command:` line shows it: one line (a newline in an argument, as in
 * `python3 -c` or `sh -c` scripts, would start a line the trace cannot parse), and cut at
 * COMMAND_MAX bytes (it travels in one environment string, which Linux caps at 128 KiB: a longer
 * one failed to start the program with E2BIG).
 */
export function commandLine(command: string[]): string {
  const line = command.join(' ').replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
  const bytes = Buffer.from(line, 'utf8');
  if (bytes.length <= COMMAND_MAX) return line;
  const kept = bytes.subarray(0, COMMAND_MAX).toString('utf8').replace(/\uFFFD$/, '');
  return `${kept}... (${bytes.length - Buffer.byteLength(kept)} more bytes)`;
}

/**
 * Runs the program to its end as system(3) does: Ctrl-C and Ctrl-\ reach the whole foreground
 * process group and are the program's to handle. Had they ended this process too, a program that
 * exits on them (writing its trace) would have left a .part file and no summary.
 */
function spawnIgnoringInterrupts(command: string[], env: NodeJS.ProcessEnv, stdio: 'inherit' | 'ignore'): SpawnSyncReturns<Buffer> {
  const ignore = (): void => {};
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  try {
    return spawnSync(command[0]!, command.slice(1), { env, stdio });
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGQUIT', ignore);
  }
}

/** 128 + the signal's number: the exit code a shell gives a program a signal ended (130 for SIGINT). */
export function signalExitCode(signal: string): number {
  return 128 + (os.constants.signals[signal as NodeJS.Signals] ?? 0);
}

/** Runs the program under the shim, writes the trace, and parses it back to summarize it. */
export async function recordTrace(o: RecordOptions): Promise<RecordSummary> {
  if (o.command.length === 0) throw new Error('recordTrace(command): expected a program to run, got none');
  const lib = recorderLibrary();
  const out = resolve(o.out);
  const gz = out.endsWith('.gz');
  // The shim writes a file of its own beside --out, which takes --out's name (or is gzipped into
  // it) only once the trace is whole: a recording that fails leaves an existing --out as it was
  // (an audit: a failed run had truncated or removed it).
  const text = `${out}.${process.pid}.part`;
  // The shim opens the trace file itself and, failing that, writes nothing: a path that cannot be
  // written is told here, not taken for a shim that did not load.
  try {
    mkdirSync(dirname(out), { recursive: true });
    if (existsSync(out)) {
      if (statSync(out).isDirectory()) throw new Error('it is a directory');
      accessSync(out, fsConstants.W_OK);
    }
    closeSync(openSync(text, 'w'));
    rmSync(text);
  } catch (err) {
    throw new Error(`sabmalloc record: --out: cannot write ${JSON.stringify(o.out)}: ${(err as Error).message}`);
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LD_PRELOAD: process.env['LD_PRELOAD'] ? `${lib} ${process.env['LD_PRELOAD']}` : lib,
    SABMALLOC_TRACE_OUT: text,
    SABMALLOC_TRACE_COMMAND: commandLine(o.command),
    SABMALLOC_TRACE_PARENT: String(process.pid), // the program is this process's child (trace-record.c start)
  };
  delete env['SABMALLOC_TRACE_PID']; // a recording started inside a recorded program starts afresh
  try {
    const r = spawnIgnoringInterrupts(o.command, env, o.stdio ?? 'inherit');
    if (r.error !== undefined) throw new Error(`sabmalloc record: could not run ${JSON.stringify(o.command[0])}: ${r.error.message}`);
    if (!existsSync(text)) {
      throw new Error(
        `sabmalloc record: ${o.command[0]} wrote no trace: the shim did not load (a static or setuid program ignores LD_PRELOAD)`,
      );
    }
    const trace = loadTrace(text);
    if (trace.count === 0) {
      if (r.signal !== null) {
        // The program's fate is still the exit code (130 for Ctrl-C), as when a trace was written:
        // a script running the recorder tells a stop asked for from a failure (an audit: it was 1).
        throw Object.assign(new Error(`sabmalloc record: ${o.command[0]} was ended by ${r.signal} before the shim wrote any of its calls`), {
          exitCode: signalExitCode(r.signal),
        });
      }
      // The file is there: the shim loaded. With its counters line the program made no call the
      // shim saw; without it the shim lost the file (an audit: it said "or it is statically
      // linked" of a program that made 400,000 calls and held every descriptor).
      if (Object.keys(readCounters(text)).length > 0) {
        throw new Error(`sabmalloc record: no malloc-family call of ${o.command[0]}'s main thread was recorded (the shim loaded: it made none, or it has an allocator of its own)`);
      }
      throw new Error(
        `sabmalloc record: ${o.command[0]}: the shim loaded but could not write the trace file: the program closed the descriptor the shim kept it on, and ` +
          'the shim could not open the file again (every descriptor taken, or the file gone), or the program ended without exit or _exit',
      );
    }
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < trace.count; i++) counts[trace.kind[i]!]!++;
    const counters = readCounters(text);
    if (gz) {
      const gzText = `${text}.gz`;
      try {
        await pipeline(createReadStream(text), createGzip({ level: 9 }), createWriteStream(gzText));
        renameSync(gzText, out);
      } finally {
        rmSync(gzText, { force: true });
      }
    } else {
      renameSync(text, out);
    }
    return {
      out,
      status: r.status,
      signal: r.signal,
      ops: trace.count,
      mallocs: counts[OP_MALLOC]!,
      callocs: counts[OP_CALLOC]!,
      reallocs: counts[OP_REALLOC]!,
      frees: counts[OP_FREE]!,
      peakLiveBytes: tracePeakLive(trace),
      peakLiveBlocks: trace.slots,
      counters,
    };
  } finally {
    rmSync(text, { force: true });
  }
}
