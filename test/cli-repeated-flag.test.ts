/**
 * Found by an audit of the command line (2026-12-07), and fixed; before the fix, an option that takes one value, given twice, keeps the last value without a word
 * (node:util parseArgs, as bench/cli.ts parseBenchArgs calls it, lets a later value replace an
 * earlier one). --trace and --heap add up when repeated, so `--allocators sabmalloc
 * --allocators reference` reads as "both", but ran reference alone: sabmalloc, the allocator the
 * benchmark is about, dropped silently, exit 0. The same for `--threads 1 --threads 2` (ran 2
 * only) and `--runs 1 --runs 2`. The last still counts (so that `npm run bench -- --threads 8`
 * overrides the script's own --threads), and the run says which one and why.
 */
import { describe, expect, it } from 'vitest';
import { main } from '../bench/cli.js';
import { quietIO } from './fixtures.js';


describe('a one-value option given twice (audit)', () => {
  it('--allocators sabmalloc --allocators reference: both run, or a usage error naming --allocators; not reference alone', async () => {
    const io = quietIO();
    const code = await main(['bench', 'W1', '--allocators', 'sabmalloc', '--allocators', 'reference', '--runs', '1', '--warmup', '0', '--cycles', '1000', '--no-prime'], io);
    expect(code, io.text).toBe(0);
    expect(io.text).toContain('--allocators given 2 times: the last, "reference", counts (a comma-separated list names several)');
    const ran = io.text.split('\n').filter((l) => /^W1\s+1\s+\S+/.test(l)).map((l) => l.split(/\s+/)[2]);
    expect(ran).toEqual(['reference']);
  }, 30_000);

  it('--threads 1 --threads 2: a usage error naming --threads, or both thread counts run', async () => {
    const io = quietIO();
    const code = await main(['bench', 'W3', '--threads', '1', '--threads', '2', '--allocators', 'sabmalloc', '--runs', '1', '--warmup', '0', '--cycles', '1000', '--no-prime'], io);
    expect(code, io.text).toBe(0);
    expect(io.text).toContain('--threads given 2 times: the last, "2", counts (a comma-separated list names several)');
    const threads = io.text.split('\n').filter((l) => /^W3\s+\d+\s+sabmalloc/.test(l)).map((l) => Number(l.split(/\s+/)[1]));
    expect(threads).toEqual([2]);
  }, 30_000);
});
