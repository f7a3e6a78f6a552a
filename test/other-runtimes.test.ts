/**
 * sabmalloc under Bun and Deno (devDependencies, their binaries from npm): the built package
 * (dist/src) in each, with the scripts of test/runtimes/ run in a child process of that runtime.
 *
 * - A heap shared by the main thread and two node:worker_threads workers, small and large blocks
 *   handed both ways as numbers and freed by the other side: contents kept, check() passes, only
 *   the main thread attached at the end (Bun, Deno, and Node as the reference).
 * - Bun: workers terminated in the middle of a malloc/free loop, each reclaimed by watch() at its
 *   'exit' (Bun emits it once the thread has stopped, as Node does): check() after each.
 * - Deno emits a node:worker_threads Worker's 'exit' right after terminate() while a worker busy in
 *   a loop runs on (seconds, measured): watch() there reclaimed running workers (check() found a
 *   block CACHED in no magazine, in 2 of 3 runs of 20 rounds). It now refuses, with a HeapStateError
 *   that says what to do instead; and that course, Web Workers attached with attachAsync under
 *   reserved ids and reclaimed with reclaimWhenGone (Deno lets a Web Worker's Web Lock go once it
 *   stopped), reclaims terminated workers with check() passing.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = (name: string): string => fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
const BUN = bin('bun');
const DENO = bin('deno');

/** Runs `cmd args` from the repository's root; returns the JSON its last line of output holds. */
function run(cmd: string, args: string[], timeoutMs = 120_000): Record<string, unknown> {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, NO_COLOR: '1' } });
  const out = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !out.startsWith('{')) {
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`);
  }
  return JSON.parse(out) as Record<string, unknown>;
}

describe('other runtimes', () => {
  it('has the built package and the two runtimes to run it in', () => {
    expect(existsSync(new URL('../dist/src/index.js', import.meta.url)), 'npm run build first').toBe(true);
    expect(existsSync(BUN)).toBe(true);
    expect(existsSync(DENO)).toBe(true);
  });

  for (const [name, cmd, pre] of [
    ['Node', process.execPath, []],
    ['Bun', BUN, []],
    ['Deno', DENO, ['run', '-A']],
  ] as const) {
    it(`${name}: blocks made in one thread and freed in another, both ways, keep their contents`, () => {
      const r = run(cmd, [...pre, 'test/runtimes/share.mjs']);
      expect(r).toEqual({ blocks: 8000, wrong: 0, attached: 1 });
    });
  }

  for (const [name, cmd] of [
    ['Node', process.execPath],
    ['Bun', BUN],
  ] as const) {
    it(`${name}: workers terminated in a malloc/free loop are reclaimed by watch() at their exit`, () => {
      const r = run(cmd, ['test/runtimes/watch-terminated.mjs', '10']);
      expect(r).toEqual({ rounds: 10, alone: 10 });
    });
  }

  it('Deno: watch() and reclaim(worker) refuse, saying why and what to use instead, and change nothing', () => {
    const r = run(DENO, ['run', '-A', 'test/runtimes/deno-watch.mjs']);
    const e = r.error as { name: string; code: string; message: string } | null;
    expect(e).not.toBeNull();
    expect(e!.name).toBe('HeapStateError');
    expect(e!.code).toBe('ERR_HEAP_STATE');
    expect(e!.message).toMatch(/^watch\(worker\): in Deno a Worker's 'exit' event can come before the worker has stopped/);
    expect(e!.message).toMatch(/reclaimWhenGone\(threadId\)/);
    // reclaim(worker) of that worker after its exit: the same reason, not watch()'s advice.
    const re = r.reclaimError as { name: string; message: string } | null;
    expect(re?.name).toBe('HeapStateError');
    expect(re!.message).toMatch(/^reclaim\(worker\): in Deno a Worker's 'exit' event can come before the worker has stopped/);
  });

  it('Deno: Web Workers attached with attach() get ids of their own, hold their Web Locks and are reclaimed by reclaimWhenGone', () => {
    // Deno answers Node's threadId 0 in every Web Worker: each took it (the main thread's) as its
    // id, its Web Lock waited behind the main thread's for good, and reclaimWhenGone(0) was refused.
    const r = run(DENO, ['run', '-A', 'test/runtimes/deno-web-attach.mjs']);
    expect(r).toEqual({ distinct: 3, held: [true, true], wrong: 0, reclaimed: true, attached: 2, end: 1 });
  });

  it('Deno: Web Workers terminated in a malloc/free loop are reclaimed by reclaimWhenGone', () => {
    const r = run(DENO, ['run', '-A', 'test/runtimes/deno-web-workers.mjs', '3']);
    expect(r).toEqual({ rounds: 3, reclaimed: 3, alone: 3 });
  });
});
