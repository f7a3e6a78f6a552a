/**
 * Found by an audit of the command line (2026-12-07), and fixed; before the fix, `ab` and `phases` take a trace that holds no operation (an empty file, or comments
 * only) and report it as measured, exit 0: ab printed "0 ops" with a base and a new figure in ns
 * an operation (the time of an empty replay, divided by max(1, 0)), phases a row of 0.0 ms.
 * `bench W5` and `ceiling` refuse such a trace (bench/trace-prep.ts prepareTrace: "the trace
 * holds no operation ... nothing to replay").
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../bench/cli.js';
import { quietIO } from './fixtures.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-audit-empty-'));
const EMPTY = join(dir, 'empty.trace');
writeFileSync(EMPTY, '# recorded, but no call\n\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('a trace of no operation (audit)', () => {
  it('ab refuses it as bench and ceiling do, rather than reporting 0 ops at some ns an operation and exiting 0', async () => {
    const io = quietIO();
    const code = await main(['ab', '--base', ROOT, '--trace', EMPTY, '--rounds', '1', '--warmup', '0', '--no-prime'], io);
    expect(io.text).toMatch(/holds no operation|nothing to replay/);
    expect(code, io.text).not.toBe(0);
  });

  it('phases refuses it, rather than a row of 0.0 ms and exit 0', async () => {
    const io = quietIO();
    const code = await main(['phases', '--trace', EMPTY, '--rounds', '1', '--warmup', '0', '--no-native', '--no-prime'], io);
    expect(io.text).toMatch(/holds no operation|nothing to replay/);
    expect(code, io.text).not.toBe(0);
  });
});
