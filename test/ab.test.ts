/**
 * bench/ab.ts (`sabmalloc ab`): this build against another, alternated in one process. Here the
 * other build is this checkout's own sources (the same code on both sides: a ratio near 1), and
 * the command's usage errors.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { measureAb, renderAb } from '../bench/ab.js';
import { main, type CliIO } from '../bench/cli.js';

const SAMPLE = fileURLToPath(new URL('../bench/traces/sample.trace', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

function capture(): CliIO & { outText: () => string; errText: () => string } {
  let out = '';
  let err = '';
  return { out: (s) => void (out += s), err: (s) => void (err += s), isTTY: false, outText: () => out, errText: () => err };
}

describe('sabmalloc ab', () => {
  it('replays a trace on both sides, alternated, and reports each side and the ratio', async () => {
    const o = { base: ROOT, traces: [SAMPLE], repeat: 2, rounds: 3, warmups: 1, prime: false };
    const rows = await measureAb(o);
    expect(rows).toHaveLength(1);
    const r = rows[0]!;
    expect(r.ops).toBeGreaterThan(0);
    expect(r.baseNs).toHaveLength(3);
    expect(r.newNs).toHaveLength(3);
    for (const v of [...r.baseNs, ...r.newNs]) expect(v).toBeGreaterThan(0);
    expect(r.speedup).toBeCloseTo(r.baseMedian / r.newMedian, 10);
    // Round by round: the median of the three rounds' own ratios, each base run over the new run
    // of its round (not the ratio of the medians).
    const ratios = r.baseNs.map((b, k) => b / r.newNs[k]!).sort((a, b) => a - b);
    expect(r.pairedSpeedup).toBeCloseTo(ratios[1]!, 10);
    const text = renderAb(rows, o);
    expect(text).toMatch(/sample\.trace\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+/);
    expect(text).toContain(r.pairedSpeedup.toFixed(3));
  });

  it('--steady: one heap a side for every round, replayed untimed first; each round times its replays on it', async () => {
    const SharedHeapMod = await import('../src/index.js');
    const made: number[] = [];
    const create = SharedHeapMod.SharedHeap.create;
    // Counts the heaps either side makes (both sides load this checkout's src/index.js here).
    SharedHeapMod.SharedHeap.create = ((o) => {
      made.push(1);
      return create.call(SharedHeapMod.SharedHeap, o);
    }) as typeof create;
    try {
      const o = { base: ROOT, traces: [SAMPLE], repeat: 2, rounds: 3, warmups: 1, prime: false, steady: 4 };
      const rows = await measureAb(o);
      expect(made).toHaveLength(2); // one a side, not one a round (8)
      expect(rows[0]!.baseNs).toHaveLength(3);
      expect(rows[0]!.newNs).toHaveLength(3);
      for (const v of [...rows[0]!.baseNs, ...rows[0]!.newNs]) expect(v).toBeGreaterThan(0);
      expect(renderAb(rows, o)).toMatch(/on one heap a side for every round, after 4 untimed replays on it/);
      made.length = 0;
      await measureAb({ ...o, steady: 0 });
      expect(made).toHaveLength(8); // (1 untimed + 3 timed rounds) x 2 sides
    } finally {
      SharedHeapMod.SharedHeap.create = create;
    }
    const io = capture();
    expect(await main(['ab', '--base', ROOT, '--trace', SAMPLE, '--steady', 'x'], io)).toBe(2);
    expect(io.errText()).toMatch(/--steady: expected an integer in \[0, 100000\], got "x"/);
  });

  it('names what is wrong with its arguments (exit 2) and a base that is not a build (exit 1)', async () => {
    const io = capture();
    expect(await main(['ab', '--trace', SAMPLE], io)).toBe(2);
    expect(io.errText()).toMatch(/^sabmalloc ab: --base DIR is needed/);
    const io2 = capture();
    expect(await main(['ab', '--base', ROOT, '--trace', SAMPLE, '--rounds', '0'], io2)).toBe(2);
    expect(io2.errText()).toMatch(/--rounds: expected an integer in \[1, 1000\], got "0"/);
    const io3 = capture();
    expect(await main(['ab', '--base', '/nonexistent-dir', '--trace', SAMPLE, '--no-prime'], io3)).toBe(1);
    expect(io3.errText()).toMatch(/--base \/nonexistent-dir: not a build directory/);
  });
});
