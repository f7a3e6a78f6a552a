/**
 * malloc, calloc and free are inlined into the loops of a user's code that call them: V8 inlines a
 * function of at most 460 bytes of bytecode (--max-inlined-bytecode-size), and free's is 458 at
 * 9eda8aa. A few more statements on free's fast path would leave every caller with a call a free
 * instead (and the replay loops of the bench with it). Each loop runs in a child process
 * (test/inlining-probe.ts) that prints V8's inlining decisions.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const probe = fileURLToPath(new URL('./inlining-probe.ts', import.meta.url));

describe('the fast paths are inlined into their callers', () => {
  it('malloc, calloc and free, each into a loop that calls it, optimized by TurboFan', () => {
    const out = execFileSync(
      process.execPath,
      ['--allow-natives-syntax', '--no-concurrent-recompilation', '--trace-turbo-inlining', '--import', 'tsx', probe],
      { encoding: 'utf8', maxBuffer: 64 << 20 },
    );
    const inlined = (fn: string, into: string): boolean =>
      new RegExp(`^Inlining .*<SharedFunctionInfo ${fn}>.* into .*<SharedFunctionInfo ${into}>`, 'm').test(out);
    // The probe's report line; V8 may print more decisions after it (a compile at exit).
    const report = out.split('\n').filter((line) => line.startsWith('{'));
    expect(report.length).toBe(1);
    expect(JSON.parse(report[0]!)).toEqual({ done: true, liveBytes: 0 });
    expect(inlined('malloc', 'userMallocLoop'), 'malloc inlined into a loop that calls it').toBe(true);
    expect(inlined('free', 'userMallocLoop'), 'free inlined into a loop that calls it').toBe(true);
    expect(inlined('calloc', 'userCallocLoop'), 'calloc inlined into a loop that calls it').toBe(true);
    expect(inlined('free', 'userCallocLoop')).toBe(true);
  }, 60_000);
});
