/**
 * workerEntry: the one place that decides how the repository's worker files (workers/) are started,
 * by the benchmark and the tests. Not in the package: its workers are not shipped.
 *
 * From the build (dist/bench/worker-entry.js) a worker is dist/workers/<name>.js, plain JavaScript.
 * From the TypeScript sources (tests under vitest, scripts under tsx) Node 20 cannot load a .ts
 * worker: loader hooks registered with `--import tsx` do not reach worker threads on Node 20
 * (they do from Node 22). So the worker's .ts entry is bundled once per process with esbuild
 * (a devDependency; ~20 ms) into node_modules/.cache/sabmalloc-workers/<name>.mjs, with npm
 * packages left external, and that file is started.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { mkdirSync, renameSync } from 'node:fs';

export interface WorkerEntry {
  /** Absolute path of the JavaScript file to start as a Worker (or as piscina's `filename`). */
  filename: string;
  /** execArgv for the Worker (none needed today; kept so callers pass it through). */
  execArgv: string[];
}

const bundled = new Map<string, string>();

/** Where `workers/<name>` is, whether this module runs from bench/ (TypeScript) or dist/bench/. */
export function workerEntry(name: string): WorkerEntry {
  if (!/^[\w-]+$/.test(name)) throw new TypeError(`workerEntry(name): expected a file name, got ${JSON.stringify(name)}`);
  const fromSource = import.meta.url.endsWith('.ts');
  if (!fromSource) {
    return { filename: fileURLToPath(new URL(`../workers/${name}.js`, import.meta.url)), execArgv: [] };
  }
  let out = bundled.get(name);
  if (out === undefined) {
    out = bundleWorker(name);
    bundled.set(name, out);
  }
  return { filename: out, execArgv: [] };
}

function bundleWorker(name: string): string {
  const source = fileURLToPath(new URL(`../workers/${name}.ts`, import.meta.url));
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const outDir = join(root, 'node_modules', '.cache', 'sabmalloc-workers');
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `${name}.mjs`);
  const tmp = `${out}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const require = createRequire(import.meta.url);
  const esbuild = require('esbuild') as {
    buildSync(o: Record<string, unknown>): unknown;
  };
  esbuild.buildSync({
    entryPoints: [source],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outfile: tmp,
    packages: 'external',
    sourcemap: 'inline',
    logLevel: 'error',
  });
  renameSync(tmp, out); // atomic: concurrent test processes never see a half-written file
  return out;
}

