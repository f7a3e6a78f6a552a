/**
 * `sabmalloc bench`, `ab` and `ceiling` arguments as a user meets them (an audit, its own clone):
 * options that were accepted and then ignored or misread, a report of nothing that exited 0, and
 * output files that overwrote each other or left folders behind. Each runs main() in this process
 * on tiny runs.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, USAGE } from '../bench/cli.js';
import { quietIO } from './fixtures.js';
import { SharedHeap } from '../src/index.js';

const SAMPLE = fileURLToPath(new URL('../bench/traces/sample.trace', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));


describe('sabmalloc bench arguments (audit)', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('--trace without W5 is a usage error naming it, not ignored (bench --trace FILE ran W1 W2 W3 and no trace)', async () => {
    for (const args of [['--trace', SAMPLE], ['W1', '--trace', SAMPLE], ['--smoke', '--trace', SAMPLE]]) {
      const io = quietIO();
      const small = ['--threads', '1', '--runs', '1', '--warmup', '0', '--cycles', '1000', '--allocators', 'sabmalloc', '--no-prime'];
      expect(await main(['bench', ...args, ...small], io), args.join(' ')).toBe(2);
      expect(io.text).toMatch(/--trace: only W5 replays traces/);
      expect(io.text).not.toMatch(/warm-up \(cold\)/);
    }
  });

  it('--json and --svg of one file is a usage error (the SVG overwrote the JSON, and both were reported written)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-same-'));
    try {
      const io = quietIO();
      const f = join(tmp, 'out');
      expect(await main(['bench', 'W1', '--runs', '1', '--cycles', '1000', '--allocators', 'sabmalloc', '--no-prime', '--json', f, '--svg', join(tmp, '.', 'out')], io)).toBe(2);
      expect(io.text).toMatch(/--json and --svg name one file/);
      expect(existsSync(f)).toBe(false);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a usage error leaves no folder behind that the check of --json or --svg made', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'sabmalloc-bench-dirs-'));
    try {
      const io = quietIO();
      writeFileSync(join(tmp, 'file'), '');
      // --json's folder is fine (and made for the check); --svg's cannot be made (under a file): exit 2.
      expect(await main(['bench', 'W1', '--json', join(tmp, 'new', 'deeper', 'x.json'), '--svg', join(tmp, 'file', 'x.svg')], io)).toBe(2);
      expect(io.text).toMatch(/--svg: cannot write/);
      expect(existsSync(join(tmp, 'new'))).toBe(false);
      // A good run still writes into a folder that did not exist.
      const io2 = quietIO();
      const json = join(tmp, 'made', 'x.json');
      expect(await main(['bench', 'W1', '--runs', '1', '--warmup', '0', '--cycles', '1000', '--allocators', 'sabmalloc', '--no-prime', '--json', json], io2)).toBe(0);
      expect(JSON.parse(readFileSync(json, 'utf8')).cases.length).toBe(1);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a run that plans no case exits 1 and says so (it printed an empty report and exited 0)', async () => {
    // reference runs at one thread only; MICRO runs sabmalloc and thi.ng only.
    for (const args of [['W2', '--threads', '2', '--allocators', 'reference'], ['MICRO', '--allocators', 'jemalloc']]) {
      const io = quietIO();
      expect(await main(['bench', ...args, '--runs', '1', '--warmup', '0', '--cycles', '1000', '--no-prime'], io), args.join(' ')).toBe(1);
      expect(io.text).toMatch(/sabmalloc bench: nothing to run/);
    }
  });

  it("MICRO's sabmalloc heap takes the --heap options, as every other sabmalloc heap of the run", async () => {
    const create = vi.spyOn(SharedHeap, 'create');
    const io = quietIO();
    expect(await main(['bench', 'MICRO', '--smoke', '--allocators', 'sabmalloc', '--heap', 'trimInterval=16', '--no-prime'], io)).toBe(0);
    const micro = create.mock.calls.filter(([o]) => o?.initialBytes === 256 << 20);
    expect(micro.length).toBe(1);
    expect(micro[0]![0]).toMatchObject({ trimInterval: 16 });
  }, 60_000);

  it('--cycles below a W5 trace\'s operations: the trace is replayed whole, and the header and --help say so', async () => {
    expect(USAGE).toMatch(/W5: operations replayed at least: a trace is replayed whole/);
    const io = quietIO();
    expect(await main(['bench', 'W5', '--trace', SAMPLE, '--cycles', '100', '--runs', '1', '--warmup', '0', '--allocators', 'sabmalloc', '--no-prime'], io)).toBe(0);
    expect(io.text).toMatch(/W5 sample: --cycles 100 is below its 300 operations: replayed whole/);
  });

  it('W5 runs at each --trace-threads count: every thread replays the trace at once (sabmalloc on one heap, the natives in one process)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-w5-threads-'));
    try {
      const io = quietIO();
      const json = join(dir, 'w5.json');
      const args = ['bench', 'W5', '--trace', SAMPLE, '--cycles', '100', '--trace-threads', '1,3', '--runs', '1', '--warmup', '0', '--allocators', 'sabmalloc,glibc', '--no-prime', '--json', json];
      expect(await main(args, io)).toBe(0);
      expect(io.text).toMatch(/W5: at --trace-threads 1,3/);
      expect(io.text).toMatch(/threads 1,3; a warm-up run/);
      const out = JSON.parse(readFileSync(json, 'utf8')) as { cases: { spec: { allocator: string; threads: number }; runs: { ops: number; peakLiveBytes: number; seconds: number; threadSeconds?: number[] }[] }[] };
      const timed = (allocator: string, threads: number) => out.cases.find((c) => c.spec.allocator === allocator && c.spec.threads === threads)?.runs[0];
      for (const allocator of ['sabmalloc', 'glibc']) {
        const one = timed(allocator, 1);
        const three = timed(allocator, 3);
        expect(one, `${allocator} at 1 thread`).toBeDefined();
        expect(three, `${allocator} at 3 threads`).toBeDefined();
        expect(one!.ops).toBe(300);
        expect(three!.ops, `${allocator}: three replays of the trace's 300 operations`).toBe(900);
        expect(three!.peakLiveBytes, `${allocator}: the threads' peaks summed`).toBe(3 * one!.peakLiveBytes);
      }
      // The time of a run is its slowest thread's replays (they run at once), not their sum.
      const { seconds, threadSeconds } = timed('sabmalloc', 3)!;
      expect(threadSeconds).toHaveLength(3);
      expect(seconds).toBe(Math.max(...threadSeconds!));
      // --threads is W2's and W3's: W5 alone with it stays at one thread; --trace-threads needs W5.
      const io2 = quietIO();
      expect(await main(['bench', 'W5', '--trace', SAMPLE, '--cycles', '100', '--threads', '1,2', '--runs', '1', '--warmup', '0', '--allocators', 'sabmalloc', '--no-prime'], io2)).toBe(0);
      expect(io2.text).toMatch(/threads 1; a warm-up run/);
      const io3 = quietIO();
      expect(await main(['bench', 'W1', '--trace-threads', '2'], io3)).toBe(2);
      expect(io3.text).toMatch(/--trace-threads: only W5 replays traces/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sabmalloc ab and ceiling integer options (audit)', () => {
  it('take digits only: an empty value, hex and exponents are usage errors naming the option', async () => {
    for (const [opt, value] of [['--warmup', ''], ['--rounds', '1e0'], ['--repeat', '0x2'], ['--rounds', ' 2']]) {
      const io = quietIO();
      expect(await main(['ab', '--base', ROOT, '--trace', SAMPLE, '--no-prime', `${opt}=${value}`], io), `${opt}=${value}`).toBe(2);
      expect(io.text).toContain(`${opt}: expected an integer in`);
      expect(io.text).toContain(JSON.stringify(value));
    }
    for (const value of ['0x1', '1e0', '']) {
      const io = quietIO();
      expect(await main(['ceiling', '--trace', SAMPLE, '--no-prime', `--runs=${value}`], io), value).toBe(2);
      expect(io.text).toContain(`--runs: expected an integer in [1, 1000], got ${JSON.stringify(value)}`);
    }
  });
});
