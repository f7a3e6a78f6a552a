/**
 * Found by an audit of the command line (2026-12-07), and fixed; before the fix, a `--trace` folder that holds a dangling symbolic link named `*.trace` (a trace linked
 * from a folder since moved) stops the bench with Node's own "ENOENT: no such file or directory,
 * stat '.../broken.trace'", which names neither --trace nor the folder given: bench/trace-prep.ts
 * expandTraceArgs filters the folder's names with statSync(f).isFile(), which throws for such a
 * link; the catch in bench/cli.ts main prints the message as it is. (A dangling link given to
 * --trace itself gets "--trace: PATH: no such file or folder".)
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../bench/cli.js';
import { quietIO } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-audit-link-'));
writeFileSync(join(dir, 'good.trace'), 'a 1 16\nf 1\n');
symlinkSync(join(dir, 'moved-away', 'old.trace'), join(dir, 'broken.trace'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('a folder with a dangling *.trace link (audit)', () => {
  it('bench W5 --trace FOLDER: a message naming --trace, not a bare ENOENT from stat', async () => {
    const io = quietIO();
    const code = await main(['bench', 'W5', '--trace', dir, '--runs', '1', '--warmup', '0', '--allocators', 'sabmalloc', '--no-prime'], io);
    const first = io.text.split('\n')[0]!;
    expect(code).not.toBe(0);
    expect(first).toMatch(/--trace: .*: broken\.trace is a link to a file that is not there/);
    expect(first).not.toMatch(/ENOENT: no such file or directory, stat/);
  }, 30_000);
});
