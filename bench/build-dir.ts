/**
 * The benchmark's compiled peers (bench/native.ts, bench/wasm-dlmalloc.ts) are built on first
 * use into `build/` beside their source (gitignored), or a folder of the system's temporary
 * directory when that is not writable (e.g. an installed package). Each output is named by a
 * hash of the source and the command, so an edited source is rebuilt, and concurrent builders do
 * not clash: each writes a private file and renames it into place.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** A writable build directory for sources in `sourceDir`; `tmpName` names the fallback, `what` the errors. */
export function buildDir(sourceDir: string, tmpName: string, what: string): string {
  for (const dir of [join(sourceDir, 'build'), join(tmpdir(), tmpName)]) {
    try {
      mkdirSync(dir, { recursive: true });
      accessSync(dir, constants.W_OK);
      return dir;
    } catch {
      // not writable: try the next place
    }
  }
  throw new Error(`${what}: no writable build directory`);
}

export interface CachedBuild {
  source: string;
  /** The compiler and its arguments, without the output and the source (they go into the hash). */
  command: string[];
  /** Output name: `${prefix}${hash}${suffix}`. */
  prefix: string;
  suffix: string;
  tmpName: string;
  what: string;
  /** Runs the compiler writing `out`; returns the last attempt's result. */
  compile(out: string): SpawnSyncReturns<string>;
}

/** The path of the built output, building it first if it is not there. */
export function cachedBuild(b: CachedBuild): string {
  const hash = createHash('sha256').update(readFileSync(b.source)).update('\0' + b.command.join(' ')).digest('hex').slice(0, 16);
  const dir = buildDir(dirname(b.source), b.tmpName, b.what);
  const out = join(dir, `${b.prefix}${hash}${b.suffix}`);
  if (!existsSync(out)) {
    const tmp = `${out}.${process.pid}.tmp`;
    const r = b.compile(tmp);
    if (r.status !== 0) {
      rmSync(tmp, { force: true });
      throw new Error(`${b.what}: ${b.command[0]} failed to compile ${b.source}:\n${r.stderr ?? r.error?.message}`);
    }
    renameSync(tmp, out);
    const stale = new RegExp(`^${b.prefix}[0-9a-f]{16}${b.suffix.replace('.', '\\.')}$`);
    for (const f of readdirSync(dir)) if (stale.test(f) && join(dir, f) !== out) rmSync(join(dir, f), { force: true });
  }
  return out;
}

/** spawnSync with text output, for {@link CachedBuild.compile}. */
export function run(cmd: string, args: string[]): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8' });
}
