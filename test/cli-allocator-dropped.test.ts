/**
 * Found by an audit of the command line (2026-12-07), and fixed; before the fix, an allocator named with --allocators that runs no case of the workloads and threads asked
 * for is dropped without a word, and the run exits 0. dlmalloc-wasm runs W1, W2 and W5 only
 * (bench/cli.ts runBench adds it only for those, with no note otherwise; plan.ts WASM_WORKLOADS),
 * reference and thi.ng run at one thread only (plan.ts planCases), reference not LOCK, and the
 * natives not LOCK (NATIVE_WORKLOADS). The header even lists reference and thi.ng among the
 * "allocators:" of a run that has no case of theirs. Only when every named allocator is dropped
 * does the bench say so ("no allocator left to run", "nothing to run"). --help says nothing of
 * dlmalloc-wasm's or thi.ng's limits.
 */
import { describe, expect, it } from 'vitest';
import { main } from '../bench/cli.js';
import { quietIO } from './fixtures.js';


const SMALL = ['--runs', '1', '--warmup', '0', '--cycles', '1000', '--no-prime'];

describe('an allocator named with --allocators that runs no case (audit)', () => {
  for (const [args, dropped] of [
    [['W3', '--threads', '1', '--allocators', 'sabmalloc,dlmalloc-wasm'], 'dlmalloc-wasm'],
    [['W3', '--threads', '2', '--allocators', 'sabmalloc,reference'], 'reference'],
    [['W3', '--threads', '2', '--allocators', 'sabmalloc,thi.ng'], 'thi.ng'],
    [['LOCK', '--threads', '1', '--allocators', 'sabmalloc,reference'], 'reference'],
  ] as const) {
    it(`bench ${args.join(' ')}: says that ${dropped} is not run, or refuses`, async () => {
      const io = quietIO();
      const code = await main(['bench', ...args, ...SMALL], io);
      const table = io.text.split('\n').filter((l) => /^(W3|LOCK)\s+\d+\s+\S+/.test(l));
      expect(table.length, io.text).toBeGreaterThan(0); // sabmalloc ran
      const ranDropped = table.some((l) => l.split(/\s+/)[2] === dropped);
      expect(ranDropped).toBe(false); // the premise: it has no case here
      // What is wrong: nothing tells the user, and the run exits 0.
      const lines = io.text.split('\n').filter((l) => l.includes(dropped) && !/allocators:/.test(l) && !/^(cold|glibc|dlmalloc-wasm memory|stats)/.test(l));
      const told = lines.some((l) => /skip|not run|only|does not run/i.test(l));
      expect(told, `${dropped} dropped silently (exit ${code}):\n${io.text}`).toBe(true);
      expect(io.text).toMatch(new RegExp(`^${dropped.replace('.', '\\.')}: not run: it runs `, 'm'));
      expect(io.text.split('\n').find((l) => l.includes('allocators:'))).not.toContain(dropped); // the header lists what runs
    }, 30_000);
  }
});
