/**
 * The recipes in examples/ run as a user runs them: they type-check under strict NodeNext
 * (examples/tsconfig.json maps `sabmalloc` to the sources), are compiled to JavaScript
 * (esbuild, `sabmalloc` resolved to src/) and started with plain `node` in a child process.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';

const root = new URL('../', import.meta.url).pathname;
const outDir = join(root, 'node_modules', '.cache', 'sabmalloc-examples', String(process.pid));
const run = promisify(execFile);

beforeAll(async () => {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: ['piscina/main.ts', 'piscina/task.ts', 'comlink/main.ts', 'comlink/worker.ts'].map((f) => join(root, 'examples', f)),
    outbase: join(root, 'examples'),
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    alias: { sabmalloc: join(root, 'src/index.ts'), 'sabmalloc/node': join(root, 'src/node.ts') },
    external: ['piscina', 'comlink'],
    logLevel: 'error',
  });
});

afterAll(() => rmSync(outDir, { recursive: true, force: true }));

/** Runs an example's main.js with node; returns its JSON line and how long the process took. */
async function runExample(name: string): Promise<{ out: Record<string, unknown>; ms: number }> {
  const t0 = performance.now();
  const { stdout } = await run(process.execPath, [join(outDir, name, 'main.js')], { timeout: 30_000 });
  return { out: JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>, ms: performance.now() - t0 };
}

describe('examples', () => {
  it('type-check in strict mode with NodeNext resolution', () => {
    const cfg = JSON.parse(readFileSync(join(root, 'examples/tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
    expect(cfg.compilerOptions).toMatchObject({ strict: true, module: 'NodeNext', moduleResolution: 'NodeNext' });
    // Throws (with tsc's messages) on any error.
    execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'examples/tsconfig.json')], { stdio: 'pipe' });
  });

  it('piscina: pool threads attach from workerData, their blocks are freed on the main thread, destroy() leaves none attached', async () => {
    const { out } = await runExample('piscina');
    expect(out).toEqual({ tasks: 200, wrong: 0, attachedWhileRunning: 5, refilledKiBBlocks: expect.any(Number), attachedAfterDestroy: 1, reclaims: 4, liveBytes: 0 });
    // While the pool idles, the main thread takes back the whole heap its tasks allocated in. The
    // tasks' blocks, freed here, wait on their pool threads' remote lists until those threads
    // flush, which they do when a thread out of memory asks them (src/flush-ask.ts), from their
    // event loops; between tasks piscina's threads wait in Atomics.wait by default (`atomics:
    // 'sync'`), where none runs: run so, the recipe's main thread could malloc 9,009 to 11,151 of
    // the 15,120 1 KiB blocks of its heap (an audit). The recipe's pool uses `atomics: 'async'`.
    const created = 'SharedHeap.create({ initialBytes: 16 << 20, maxThreads: 8 })';
    expect(readFileSync(join(root, 'examples/piscina/main.ts'), 'utf8')).toContain(created); // the heap compared with
    const fresh = SharedHeap.create({ initialBytes: 16 << 20, maxThreads: 8 });
    let whole = 0;
    while (fresh.malloc(1024) !== 0) whole++;
    fresh.detach();
    expect(out.refilledKiBBlocks, `of the ${whole} 1 KiB blocks a fresh heap gives`).toBeGreaterThanOrEqual(Math.floor(whole * 0.98));
  });

  it('comlink: a typed proxy to the worker, strings both ways through the heap, and the process exits promptly', async () => {
    const { out, ms } = await runExample('comlink');
    console.log(`comlink example: the process took ${ms.toFixed(0)} ms`);
    expect(out).toMatchObject({ text: 'made in the worker', echoed: 'made on the main thread', threadsAttached: 1, liveBytes: 0 });
    expect(out.workerThreadId).toBeGreaterThan(0);
    expect(ms).toBeLessThan(5000);
  });
});
