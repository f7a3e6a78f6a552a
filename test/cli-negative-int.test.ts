/**
 * Found by an audit of the command line (2026-12-07), and fixed; before the fix, `ab`, `phases` and `ceiling` given a negative number (`--runs -1`, `--rounds -1`) answer
 * with node:util parseArgs' "Option '--runs' argument is ambiguous. Did you forget to specify the
 * option argument for '--runs'?" (three lines, the value not named, and the user did give one).
 * `bench` joins such a value to its option (bench/cli.ts parseBenchArgs, `joined`), so that the
 * option's own check names it ("--runs: expected a positive integer, got "-1""); the three other
 * commands call parseArgs on the raw arguments.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { main } from '../bench/cli.js';
import { quietIO } from './fixtures.js';

const SAMPLE = fileURLToPath(new URL('../bench/traces/sample.trace', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));


describe('a negative integer option (audit)', () => {
  it('bench names the option and the value (as it does now)', async () => {
    const io = quietIO();
    expect(await main(['bench', 'W1', '--runs', '-1'], io)).toBe(2);
    expect(io.text.split('\n')[0]).toMatch(/--runs: .*"-1"/);
  });

  for (const args of [
    ['ceiling', 'W1', '--runs', '-1'],
    ['phases', '--trace', SAMPLE, '--rounds', '-1'],
    ['ab', '--base', ROOT, '--trace', SAMPLE, '--warmup', '-1'],
  ]) {
    it(`${args.join(' ')}: names the option and the value`, async () => {
      const io = quietIO();
      expect(await main(args, io)).toBe(2);
      const first = io.text.split('\n')[0]!;
      expect(first).toContain(args.at(-2)!);
      expect(first).toContain('-1');
      expect(first).not.toMatch(/ambiguous/);
    });
  }
});
