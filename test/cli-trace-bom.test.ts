/**
 * Found by an audit of the command line (2026-12-07), and fixed; before the fix, a trace saved with a UTF-8 byte order mark (an editor on Windows; the format already
 * takes CRLF line ends) is refused with `line 1: unknown operation (expected a, c, r, f or #):
 * "a 1 16"`: the line shown reads as a valid operation. bench/replay.ts parseTrace sees the mark's
 * bytes (EF BB BF) where the operation letter goes, and fail() quotes the line through
 * `new TextDecoder().decode(...)`, which drops a leading mark, so the message never shows it.
 * Either the mark should be skipped, or the message should name it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../bench/cli.js';
import { quietIO } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-audit-mark-'));
const BOM = join(dir, 'saved.trace');
writeFileSync(BOM, '\ufeffa 1 16\r\nf 1\r\n');
afterAll(() => rmSync(dir, { recursive: true, force: true }));


describe('a trace with a byte order mark (audit)', () => {
  it('is replayed, or refused with a message that shows the mark', async () => {
    const io = quietIO();
    const code = await main(['bench', 'W5', '--trace', BOM, '--runs', '1', '--warmup', '0', '--cycles', '10', '--allocators', 'sabmalloc', '--no-prime'], io);
    expect(code, io.text).toBe(0); // the mark skipped, as CRLF line ends are taken
    expect(io.text).toMatch(/saved: saved\.trace: 2 ops/);
  }, 30_000);
});
