/**
 * Found by an audit of the command line (2026-12-07), and fixed; before the fix, `npm run bench:w5 -- /traces/*.trace.gz` (the README's `npm run bench:w5 -- <folder>`
 * with a shell glob) makes the second file a positional argument. bench/cli.ts parseBenchArgs
 * upper-cases every positional before it checks it as a workload name, so the error names a path
 * the user never typed: `unknown workload "/TMP/.../B.TRACE"`, with no word that --trace takes
 * one path and is repeated.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../bench/cli.js';
import { quietIO } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-audit-stray-'));
const A = join(dir, 'a.trace');
const B = join(dir, 'b.trace');
writeFileSync(A, 'a 1 16\nf 1\n');
writeFileSync(B, 'a 1 16\nf 1\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('a second trace path without its --trace (audit)', () => {
  it('is named as typed, not upper-cased, in the usage error', async () => {
    const io = quietIO();
    expect(await main(['bench', 'W5', '--trace', A, B, '--runs', '1'], io)).toBe(2);
    const first = io.text.split('\n')[0]!;
    expect(first).not.toContain(B.toUpperCase());
    expect(first).toContain(JSON.stringify(B));
  });
});
