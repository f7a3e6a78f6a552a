/**
 * W5's input path as a user meets it (bench/trace-prep.ts, bench/replay.ts readTraceBytes,
 * `sabmalloc bench W5 --trace ...`): traces that share a name, a trace file above 2 GiB, and a
 * trace with no operation, a file that is no trace.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type BenchReport, type CliIO } from '../bench/cli.js';
import { loadTrace, parseTrace, TraceError } from '../bench/replay.js';
import { ratioKey } from '../bench/summarize.js';
import { distinctTraceNames, expandTraceArgs, makeTraceDir, prepareTrace, removeTraceDir } from '../bench/trace-prep.js';
import { makeSampleTrace } from '../bench/traces/make-sample.js';

const quiet = (): CliIO & { text: string } => {
  const io = { text: '', isTTY: false, out: (s: string) => void (io.text += s), err: (s: string) => void (io.text += s) };
  return io;
};

describe('W5 traces that share a name', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sabmalloc-trace-names-'));
    for (const d of ['run1', 'run2']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'run1', 'app.trace'), makeSampleTrace(200, 1));
    writeFileSync(join(dir, 'run2', 'app.trace'), makeSampleTrace(300, 2));
    writeFileSync(join(dir, 'run2', 'app.trace.gz'), makeSampleTrace(100, 3)); // plain text, named .gz: refused if read
    writeFileSync(join(dir, 'run2', 'other.trace'), makeSampleTrace(100, 4));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('get names that tell them apart; a unique name stays as it was', () => {
    const paths = [join(dir, 'run1', 'app.trace'), join(dir, 'run2', 'app.trace'), join(dir, 'run2', 'app.trace.gz'), join(dir, 'run2', 'other.trace')];
    expect(distinctTraceNames(paths)).toEqual(['run1/app.trace', 'run2/app.trace', 'app.trace.gz', 'other']);
    expect(distinctTraceNames([join(dir, 'run1', 'app.trace')])).toEqual(['app']);
  });

  it('`bench W5` keeps two recordings of one program apart: their own rows, each compared with its own glibc run', async () => {
    // Two recordings of the same program, `--trace run1/app.trace --trace run2/app.trace`: the
    // cases were both named "app", so the table showed two "W5 app" rows and the ratios to glibc
    // (keyed by workload, trace name and threads) took the second trace's glibc run for both.
    const json = join(dir, 'out.json');
    const io = quiet();
    const code = await main(
      ['bench', 'W5', '--trace', join(dir, 'run1', 'app.trace'), '--trace', join(dir, 'run2', 'app.trace'), '--allocators', 'reference', '--cycles', '1000', '--runs', '1', '--no-prime', '--json', json],
      io,
    );
    expect(code, io.text).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as BenchReport;
    const names = report.cases.map((c) => c.spec.trace);
    expect(names).toHaveLength(2);
    expect(new Set(names).size, `trace names of the cases: ${names.join(', ')}`).toBe(2);
    expect(new Set(report.cases.map(ratioKey)).size).toBe(2);
  }, 120_000);
});

describe('a W5 trace file above 2 GiB', () => {
  it('is named in the error when it cannot be read whole', () => {
    // A plain trace above 2 GiB was refused with Node's "File size (N) is greater than 2 GiB",
    // naming no file: with a folder of traces, the user could not tell which one.
    const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-trace-big-'));
    try {
      const big = join(dir, 'huge.trace');
      const fd = openSync(big, 'w');
      writeSync(fd, 'x', 5 * 2 ** 30); // sparse: 5 GiB long, one block on disk
      closeSync(fd);
      expect(() => loadTrace(big)).toThrow(big);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a W5 trace with no operation', () => {
  it('is refused with its path named, not replayed a million times at 0 ops/s', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-trace-empty-'));
    const out = makeTraceDir();
    try {
      for (const [name, text] of [['empty.trace', ''], ['comments.trace', '# recorded by hand\n\n# nothing here\n']]) {
        const p = join(dir, name);
        writeFileSync(p, text);
        expect(expandTraceArgs([p])).toEqual([p]);
        expect(() => prepareTrace(p, out, 0)).toThrow(`${p}: the trace holds no operation`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      removeTraceDir(out);
    }
  });

  it('makes `bench W5` exit 1 with that message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-trace-empty-'));
    try {
      const p = join(dir, 'empty.trace');
      writeFileSync(p, '# only a comment\n');
      const io = quiet();
      expect(await main(['bench', 'W5', '--trace', p, '--allocators', 'reference', '--runs', '1'], io)).toBe(1);
      expect(io.text).toContain(`sabmalloc bench: W5: ${p}: the trace holds no operation`);
      expect(io.text).not.toMatch(/^workload  /m); // no table
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('a file that is no trace', () => {
  it.each([
    ['binary bytes without a newline', new Uint8Array(4_000_000).map((_, i) => 0x80 + (i % 100))],
    ['one line of 3 MB', new TextEncoder().encode('a'.repeat(3_000_000) + '\nf 1\n')],
    ['a good line, then a long bad one', new TextEncoder().encode('a 1 16\n' + 'a 2 16 '.repeat(500_000))],
  ])('%s: the error names the line and quotes the start of it, not megabytes', (_what, bytes) => {
    // Given a wrong file by mistake (a binary, a log), `bench W5` printed the whole first bad
    // "line" in its error: 11.6 MB of escaped bytes on the terminal for a 5 MB binary file.
    let err: unknown;
    try {
      parseTrace(bytes, 'wrong.bin');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TraceError);
    const message = (err as Error).message;
    expect(message).toMatch(/^wrong\.bin: line [12]: /);
    expect(message.length, message.slice(0, 300)).toBeLessThan(400);
  });

  it('a short bad line is still quoted whole', () => {
    expect(() => parseTrace('a 1 16\nf 1 2\n', 't')).toThrow(`t: line 2: unexpected field after 'f <id>': "f 1 2"`);
  });
});
