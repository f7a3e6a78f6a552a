/**
 * Found by an audit of the command line (2026-12-07), and fixed; before the fix, `ab`, `phases` and `ceiling` parse each trace only when its turn to be measured comes
 * (bench/ab.ts measureAb, bench/phases.ts measurePhases: loadTrace in the loop over the traces;
 * bench/cli.ts runCeiling: prepareTrace in the loop, after W1 and W3). A malformed trace given
 * after a good one so fails after the good one was measured (minutes, for a real trace), with
 * exit 1, and the good one's table is never printed (ab and phases render only after the last
 * trace). `bench W5` parses and checks every trace before anything is timed.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../bench/cli.js';
import { quietIO } from './fixtures.js';

const SAMPLE = fileURLToPath(new URL('../bench/traces/sample.trace', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-audit-late-'));
const BAD = join(dir, 'bad.trace');
writeFileSync(BAD, 'a 1 16\nx 2 3\nf 1\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('a malformed trace after a good one (audit)', () => {
  it('ab refuses it before measuring anything', async () => {
    const io = quietIO();
    const code = await main(['ab', '--base', ROOT, '--trace', SAMPLE, '--trace', BAD, '--rounds', '1', '--warmup', '0', '--no-prime'], io);
    expect(code).not.toBe(0);
    expect(io.text).toMatch(/bad\.trace: line 2/);
    expect(io.text, 'sample.trace was measured before bad.trace was read').not.toMatch(/sample\.trace: base .* ns an operation/);
  });

  it('phases refuses it before measuring anything', async () => {
    const io = quietIO();
    const code = await main(['phases', '--trace', SAMPLE, '--trace', BAD, '--rounds', '1', '--warmup', '0', '--no-native', '--no-prime'], io);
    expect(code).not.toBe(0);
    expect(io.text).toMatch(/bad\.trace: line 2/);
    expect(io.text, 'sample.trace was measured before bad.trace was read').not.toMatch(/sample\.trace: sabmalloc [\d.]+ \+ [\d.]+ ms/);
  });

  it('ceiling refuses it before measuring anything', async () => {
    const io = quietIO();
    const code = await main(['ceiling', '--trace', SAMPLE, '--trace', BAD, '--runs', '1', '--no-prime'], io);
    expect(code).not.toBe(0);
    expect(io.text).toMatch(/bad\.trace: line 2/);
    expect(io.text, 'sample was measured before bad.trace was read').not.toMatch(/ops\/s/);
  });
});
