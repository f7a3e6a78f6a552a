/**
 * W5's traces, made ready before anything is timed: `--trace` arguments
 * expanded (a folder gives its `*.trace` and `*.trace.gz` files), each trace
 * parsed and checked once in the main thread, and written in the binary form
 * of bench/replay.ts (writeTraceOps) to a temporary folder, from which the
 * workers and the native replayer load it without parsing text again.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve, sep } from 'node:path';
import { loadTrace, tracePeakLive, writeTraceOps, type Trace } from './replay.js';

/** A trace parsed and written in binary form. */
export interface PreparedTrace {
  /** The trace file as given (resolved). */
  path: string;
  /** Its name without the folder and the .trace/.gz suffixes (the table shows it). */
  name: string;
  /** Operations (a, c, r and f lines). */
  ops: number;
  /** Peak of live requested bytes. */
  peakLiveBytes: number;
  /** Most blocks live at once. */
  slots: number;
  /** The binary form (bench/replay.ts readTraceOps). */
  opsFile: string;
}

/** The name a trace goes by: `x/lua_inventory.trace.gz` -> `lua_inventory`. */
export function traceName(path: string): string {
  return basename(path).replace(/\.gz$/, '').replace(/\.trace$/, '');
}

/**
 * The names of the traces `paths` (as {@link expandTraceArgs} gives them: resolved, each once):
 * {@link traceName}, unless two share it (`run1/app.trace` and `run2/app.trace`, or `app.trace`
 * beside `app.trace.gz`); those get their file name, then as many of their folders as tell them
 * apart. The bench keys its rows and its ratios to glibc by the name: two traces of one name
 * showed as two rows of that name, both compared with the glibc run of the last one.
 */
export function distinctTraceNames(paths: readonly string[]): string[] {
  const names = paths.map(traceName);
  for (let folders = 0; ; folders++) {
    const seen = new Map<string, number>();
    for (const n of names) seen.set(n, (seen.get(n) ?? 0) + 1);
    const clash = names.map((n) => seen.get(n)! > 1);
    if (!clash.includes(true)) return names;
    // Ends: the paths are distinct, and with all their folders so are the names.
    paths.forEach((p, i) => {
      if (clash[i]) names[i] = p.split(sep).slice(-1 - folders).join('/');
    });
  }
}

/**
 * The trace files of `--trace` arguments: a file as it is; a folder's
 * `*.trace` and `*.trace.gz` files in name order. Throws (with a message for
 * the user) on a path that does not exist or a folder without traces.
 */
export function expandTraceArgs(args: readonly string[]): string[] {
  const files: string[] = [];
  for (const a of args) {
    const p = resolve(a);
    if (!existsSync(p)) throw new Error(`--trace: ${a}: no such file or folder`);
    if (statSync(p).isDirectory()) {
      const found = readdirSync(p)
        .filter((f) => /\.trace(\.gz)?$/.test(f))
        .sort()
        .map((f) => join(p, f))
        .filter((f) => {
          // A link to a file moved away threw Node's bare "ENOENT ..., stat" (an audit): named here.
          const st = statSync(f, { throwIfNoEntry: false });
          if (st === undefined) throw new Error(`--trace: ${a}: ${basename(f)} is a link to a file that is not there`);
          return st.isFile();
        });
      if (found.length === 0) throw new Error(`--trace: ${a}: the folder holds no *.trace or *.trace.gz file`);
      files.push(...found);
    } else {
      files.push(p);
    }
  }
  return [...new Set(files)];
}

/** A temporary folder for the binary traces; remove it with {@link removeTraceDir}. */
export function makeTraceDir(): string {
  return mkdtempSync(join(tmpdir(), 'sabmalloc-w5-'));
}

export function removeTraceDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Reads and parses `path` (a TraceError names a malformed line); a trace of no operation is refused. */
export function loadCheckedTrace(path: string): Trace {
  const trace = loadTrace(path);
  if (trace.count === 0) throw new Error(`${path}: the trace holds no operation (only blank lines and comments): nothing to replay`);
  return trace;
}

/**
 * Checks every trace of `paths` before anything is measured, so that a bad one named after a good
 * one stops the command at once rather than after the good one's minutes (`ab`, `phases` and
 * `ceiling` read each trace as they came to it; an audit). Each is parsed and let go.
 */
export function checkTraces(paths: readonly string[]): void {
  for (const p of paths) loadCheckedTrace(p);
}

/**
 * Parses and checks `path` (a TraceError names a malformed line) and writes its binary form into
 * `dir`; `name` is what the tables call it ({@link distinctTraceNames}). A trace of no operation
 * (empty, or comments only) is refused: it was replayed a million times and reported at 0 ops/s.
 */
export function prepareTrace(path: string, dir: string, index: number, name = traceName(path)): PreparedTrace {
  const trace = loadCheckedTrace(path);
  const opsFile = join(dir, `${index}-${traceName(path).replace(/[^\w.-]/g, '_')}.w5ops`);
  writeTraceOps(trace, opsFile);
  return { path, name, ops: trace.count, peakLiveBytes: tracePeakLive(trace), slots: trace.slots, opsFile };
}
