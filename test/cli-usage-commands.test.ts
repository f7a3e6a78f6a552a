/**
 * Found by an audit of the command line (2026-12-07), and fixed; before the fix, `node dist/bench/cli.js --help` ends with command lines to run, `sabmalloc record --out
 * FILE.trace.gz -- program args...`, `sabmalloc ceiling W1 --trace FILE`, `sabmalloc ab --base
 * OTHER/dist --trace FILE` and `sabmalloc phases --trace FILE`, and `record --help` says "Then
 * replay it: sabmalloc bench W5 --trace FILE". No `sabmalloc` command exists: package.json has no
 * "bin", and the README runs each as `node dist/bench/cli.js <command>`. (172c5b0 changed the
 * usage's first line for the same reason and left these.)
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { RECORD_USAGE, USAGE } from '../bench/cli.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { bin?: unknown };
const hasBin = typeof pkg.bin === 'string' || (typeof pkg.bin === 'object' && pkg.bin !== null && 'sabmalloc' in pkg.bin);

describe('the usage texts\' command lines (audit)', () => {
  it('name a command that exists', () => {
    // With a `bin` named sabmalloc the texts' command lines would be runnable, and this test moot:
    // it would have to check them against the bin instead.
    expect(hasBin, 'package.json has a bin').toBe(false);
    const runnable = /(^|:\s+|\n\s+)sabmalloc (bench|record|ceiling|ab|phases) (--|W\d)/;
    expect(USAGE.match(new RegExp(runnable.source, 'g')) ?? [], 'USAGE').toEqual([]);
    expect(RECORD_USAGE.match(new RegExp(runnable.source, 'g')) ?? [], 'RECORD_USAGE').toEqual([]);
  });
});
