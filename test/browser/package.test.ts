/**
 * What the npm package ships and what its entries reach: the main entry bundles for a browser
 * with no `node:` import left; `npm pack` builds first and ships the build, its types and
 * nothing of the tests or the benchmark; in Node (no Web Locks API) the liveness calls are no-ops.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { SharedHeap, HeapStateError } from '../../src/index.js';
import { hasWebLocks, holdThreadLock } from '../../src/liveness.js';

const root = new URL('../../', import.meta.url).pathname;

/** The `node:` modules a browser bundle of `entry` still imports (they are left external). */
async function nodeImportsOfBrowserBundle(entry: string): Promise<{ imports: string[]; text: string }> {
  const r = await build({
    entryPoints: [`${root}${entry}`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    metafile: true,
    external: ['node:*'],
    logLevel: 'silent',
  });
  const imports = Object.values(r.metafile.outputs).flatMap((o) => o.imports.map((i) => i.path));
  return { imports: imports.filter((p) => p.startsWith('node:')), text: r.outputFiles[0]!.text };
}

describe('package', () => {
  it('the main entry (src/index.ts) bundles for the browser with no node: import; a module that imports node: modules is caught', async () => {
    const main = await nodeImportsOfBrowserBundle('src/index.ts');
    expect(main.imports).toEqual([]);
    expect(main.text).not.toMatch(/(?:from\s*|import\s*\(\s*|require\s*\(\s*)["']node:/);
    expect(main.text).toContain('reclaimWhenGone');
    // The same check on a module that does import node: modules (the repository's worker starter,
    // not in the package) finds them: the check can fail.
    const node = await nodeImportsOfBrowserBundle('bench/worker-entry.ts');
    expect(node.imports).toEqual(expect.arrayContaining(['node:module', 'node:url', 'node:path', 'node:fs']));
  });

  it('package.json: ESM, an exports map, no runtime dependencies, no side effects', () => {
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as Record<string, unknown>;
    expect(pkg.type).toBe('module');
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.dependencies ?? {}).toEqual({});
    expect(pkg.peerDependencies ?? {}).toEqual({});
    expect(pkg.bin).toBeUndefined(); // the benchmark CLI needs devDependencies: run it from a checkout
    const exp = pkg.exports as Record<string, Record<string, string>>;
    expect(exp['.']).toEqual({ types: './dist/src/index.d.ts', default: './dist/src/index.js' });
    expect(exp['./node']).toEqual({ types: './dist/src/node.d.ts', node: './dist/src/node.js' });
    expect(Object.keys(pkg.devDependencies as object)).toEqual(expect.arrayContaining(['piscina', 'tinybench', 'comlink', 'playwright-core']));
  });

  it('npm pack builds first and ships dist/src (JavaScript and .d.ts), and no tests or benchmark', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--no-audit', '--no-fund'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    });
    // prepack's build output comes before the JSON on stdout.
    const [report] = JSON.parse(out.slice(out.indexOf('\n[') + 1)) as { files: { path: string }[]; size: number; unpackedSize: number; entryCount: number }[];
    const files = report!.files.map((f) => f.path);
    console.log(`npm pack: ${report!.entryCount} files, ${report!.size} bytes packed, ${report!.unpackedSize} unpacked`);
    // The README's figures for the tarball ("57 files with README.md, package.json and LICENSE, about
    // 250 kB packed and 830 kB unpacked"): the count exact, the sizes within 5% (an audit of the
    // package's consumers found the unpacked figure stale).
    const readme = readFileSync(`${root}README.md`, 'utf8').replace(/\s+/g, ' ');
    const said = /(\d+) files with README\.md, package\.json and LICENSE, about (\d+) kB packed and (\d+) kB unpacked/.exec(readme);
    expect(said, 'the README states the tarball figures in these words').not.toBeNull();
    expect(report!.entryCount).toBe(Number(said![1]));
    expect(Math.abs(report!.size / 1000 / Number(said![2]) - 1)).toBeLessThan(0.05);
    expect(Math.abs(report!.unpackedSize / 1000 / Number(said![3]) - 1)).toBeLessThan(0.05);
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'LICENSE',
        'dist/src/index.js',
        'dist/src/index.d.ts',
        'dist/src/node.js',
        'dist/src/node.d.ts',
        'dist/src/liveness.js',
        'dist/src/heap.d.ts',
      ]),
    );
    // Nothing but the allocator: no tests, benchmark, demo, examples, sources, nor the repository's
    // worker files (they hold test hooks).
    expect(files.filter((f) => /^(test|bench|demo|examples|workers|src|dist\/bench|dist\/test|dist\/workers)\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    // and no shipped file names a source map it lacks (prepack builds dist/src again without them)
    for (const f of files.filter((x) => x.endsWith('.js'))) expect(readFileSync(`${root}${f}`, 'utf8'), f).not.toContain('sourceMappingURL');
  });
});

describe('types', () => {
  it('the browser pages, the demo and the browser tests type-check (test/browser/tsconfig.json: strict, DOM library)', () => {
    // Throws (with tsc's messages) on any error.
    execFileSync(`${root}node_modules/.bin/tsc`, ['-p', `${root}test/browser/tsconfig.json`], { stdio: 'pipe' });
  });
});

describe('liveness in Node (no Web Locks API)', () => {
  it('is a no-op: the lock is never held, and reclaimWhenGone rejects pointing at watch()', async () => {
    expect(hasWebLocks()).toBe(false);
    const lock = holdThreadLock('sabmalloc:1:2');
    expect(await lock.held).toBe(false);
    lock.release();
    const heap = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 2 });
    try {
      expect(await heap.threadLockHeld()).toBe(false);
      await expect(heap.reclaimWhenGone(12345)).rejects.toThrow(HeapStateError);
      await expect(heap.reclaimWhenGone(12345)).rejects.toThrow(/watch\(worker\)/);
      expect(() => heap.reclaimWhenGone(-1)).toThrow(RangeError);
      expect(() => heap.reclaimWhenGone(heap.threadId)).toThrow(/calling thread/); // would wait for itself
    } finally {
      heap.detach();
    }
  });

  it('newThreadId hands out fresh ids; attachAsync checks its arguments, then rejects pointing at attach() and watch()', async () => {
    const heap = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 2 });
    try {
      const a = heap.newThreadId();
      const b = heap.newThreadId();
      expect(a).toBeGreaterThanOrEqual(2 ** 30);
      expect(b).toBe(a + 1);
      const buf = heap.buffer;
      const call = (o: unknown, buffer: unknown = buf) => SharedHeap.attachAsync(buffer as SharedArrayBuffer, o as { threadId: number });
      await expect(call({ threadId: a }, new ArrayBuffer(8))).rejects.toThrow(/attachAsync\(buffer, options\): expected the heap's SharedArrayBuffer/);
      await expect(call(null)).rejects.toThrow(TypeError);
      await expect(call({ threadId: 'x' })).rejects.toThrow(/attachAsync.*options\.threadId.*"x"/);
      await expect(call({ threadId: 5 })).rejects.toThrow(/options\.threadId 5 was not handed out by this heap's newThreadId\(\)/);
      await expect(call({ threadId: b + 1 })).rejects.toThrow(RangeError);
      // This thread is attached already, under Node's threadId.
      await expect(call({ threadId: a })).rejects.toThrow(new RegExp(`attached to the heap already, as ${heap.threadId}`));
      heap.check();
      expect(heap.stats().threadsAttached).toBe(1);
    } finally {
      heap.detach();
    }
    const other = SharedHeap.create({ initialBytes: 8 << 20, maxThreads: 2 });
    const id = other.newThreadId();
    const buffer = other.buffer;
    other.detach();
    await expect(SharedHeap.attachAsync(buffer, { threadId: id })).rejects.toThrow(/no Web Locks API.*SharedHeap\.attach\(buffer\).*watch\(worker\)/);
    expect(() => other.newThreadId()).toThrow(/newThreadId\(\): this thread has detached/);
  });
});
