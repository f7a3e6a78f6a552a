/**
 * Where the benchmark's compiled peers go (bench/native.ts, bench/wasm-dlmalloc.ts): `build/`
 * beside their source (gitignored), or a folder of the system's temporary directory when that
 * is not writable (e.g. an installed package).
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
