/**
 * watchPool (sabmalloc/node) in Deno, where watch() throws (its Worker's 'exit' can come while a
 * terminated worker runs on: src/reclaim.ts EXIT_MEANS_STOPPED). A pool with no thread yet
 * (piscina with minThreads: 0) was accepted, and the refusal came later, out of the pool's
 * 'workerCreate' event: with piscina, an uncaught exception that ended the program at its first
 * pool.run(). watchPool now refuses at its own call, naming itself, and registers nothing.
 * test/runtimes/deno-watch-pool.mjs runs under Deno (its binary from npm, test/other-runtimes.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const DENO = fileURLToPath(new URL('../node_modules/.bin/deno', import.meta.url));

describe('watchPool in Deno', () => {
  it('refuses at its own call, for a pool with no thread yet, and registers no listener', () => {
    const r = spawnSync(DENO, ['run', '-A', 'test/runtimes/deno-watch-pool.mjs'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, NO_COLOR: '1' },
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as {
      atCall: { name: string; message: string } | null;
      atEvent: { name: string; message: string } | null;
      listeners: number;
    };
    expect(out.atCall, 'watchPool accepted the pool; watch() threw later, in its event').not.toBeNull();
    expect(out.atCall!.name).toBe('HeapStateError');
    expect(out.atCall!.message).toMatch(/^watchPool\(heap, pool\): in Deno a Worker's 'exit' event can come before the worker has stopped/);
    expect(out.atCall!.message).toMatch(/reclaimWhenGone\(threadId\)/);
    expect(out.listeners).toBe(0);
    expect(out.atEvent).toBeNull();
  });
});
