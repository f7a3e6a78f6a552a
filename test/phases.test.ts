/**
 * bench/phases.ts (`sabmalloc phases`): a trace timed in two parts, its run and its final frees,
 * for sabmalloc, the reference floor and glibc native; replay()'s split and the native replayer's
 * --split, which it is made of; the command's usage errors.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main, type CliIO } from '../bench/cli.js';
import { nativeAllocators, nativeSkipReason, runNative } from '../bench/native.js';
import { measurePhases, RATIO_MIN_MS, renderPhases } from '../bench/phases.js';
import { ReferenceAllocator } from '../bench/reference-alloc.js';
import { finalFreesStart, loadTrace, parseTrace, replay, writeTraceOps } from '../bench/replay.js';

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-phases-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A program's trace: 600 blocks made, some freed, some grown, then the final frees of the 400 still live. */
function traceText(): string {
  const lines: string[] = [];
  for (let id = 0; id < 600; id++) lines.push(`a ${id} ${16 + ((id * 37) % 700)}`);
  for (let id = 0; id < 600; id += 3) lines.push(`f ${id}`);
  for (let id = 1; id < 600; id += 3) lines.push(`r ${id} ${900 + id}`);
  lines.push('c 1000 64'); // the last operation before the final frees
  for (let id = 1; id < 600; id++) if (id % 3 !== 0) lines.push(`f ${id}`);
  lines.push('f 1000');
  return lines.join('\n') + '\n';
}
const TRACE_FILE = join(dir, 'program.trace');
writeFileSync(TRACE_FILE, traceText());
const FINAL_FREES = 400 + 1;

function capture(): CliIO & { outText: () => string; errText: () => string } {
  let out = '';
  let err = '';
  return { out: (s) => void (out += s), err: (s) => void (err += s), isTTY: false, outText: () => out, errText: () => err };
}

describe('a trace in two parts', () => {
  it('finalFreesStart finds the run of frees that ends a trace, and none where it ends otherwise', () => {
    const t = loadTrace(TRACE_FILE);
    expect(finalFreesStart(t)).toBe(t.count - FINAL_FREES);
    expect(t.kind[finalFreesStart(t) - 1]).toBe(1); // the calloc
    expect(finalFreesStart(parseTrace('a 1 10\nf 1\na 2 20\n'))).toBe(3);
    expect(finalFreesStart(parseTrace('a 1 10\nf 1\n'))).toBe(1);
  });

  it('replay with a split does the same operations as without, and times the two parts apart', () => {
    const t = loadTrace(TRACE_FILE);
    const whole = replay(new ReferenceAllocator(16 * MiB), t);
    const split = replay(new ReferenceAllocator(16 * MiB), t, undefined, finalFreesStart(t));
    expect([split.mallocs, split.callocs, split.reallocs, split.frees, split.peakLiveBytes, split.liveBlocksAtEnd, split.liveBytesAtEnd]).toEqual([
      whole.mallocs, whole.callocs, whole.reallocs, whole.frees, whole.peakLiveBytes, whole.liveBlocksAtEnd, whole.liveBytesAtEnd,
    ]);
    expect(whole.partNs).toBeUndefined();
    expect(split.partNs).toHaveLength(2);
    expect(split.partNs![0] + split.partNs![1]).toBe(split.elapsedNs);
    expect(split.frees).toBe(200 + FINAL_FREES);
  });

  it('the native replayer with --split does the same operations and times the two parts apart', async () => {
    expect(nativeSkipReason()).toBeUndefined(); // CI installs clang (.ci/run)
    const t = loadTrace(TRACE_FILE);
    const ops = join(dir, 'program.ops');
    writeTraceOps(t, ops);
    const sys = nativeAllocators()[0]!;
    const whole = await runNative(sys, 'W5', { traceOps: ops });
    const split = await runNative(sys, 'W5', { traceOps: ops, split: finalFreesStart(t), repeats: 2 });
    expect([split.ops, split.mallocs, split.checksum, split.peakLiveBytes]).toEqual([2 * whole.ops, 2 * whole.mallocs, (2 * whole.checksum) >>> 0, whole.peakLiveBytes]);
    const [a, b] = split.splitSeconds!;
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
    expect(a + b).toBeLessThanOrEqual(split.seconds * 1.0001 + 1e-6);
    expect(a + b).toBeGreaterThan(split.seconds * 0.5);
    // No split: everything in the first part (the second, an empty loop, takes two clock reads).
    // (A bound relative to the loop's time, not an absolute one: a preemption between the two reads.)
    expect(whole.splitSeconds![1]).toBeLessThan(whole.splitSeconds![0] * 0.01);
    expect(whole.splitSeconds![0]).toBeGreaterThan(whole.splitSeconds![1]);
  });
});

describe('sabmalloc phases', () => {
  it('measures each side in both parts, alternated, and prints each part against glibc', async () => {
    const o = { traces: [TRACE_FILE], rounds: 3, warmups: 1, prime: false, native: true };
    const rows = await measurePhases(o);
    expect(rows).toHaveLength(1);
    const r = rows[0]!;
    expect(r.ops - r.split).toBe(FINAL_FREES);
    expect(r.sides.map((s) => s.name)).toEqual(['sabmalloc', 'placement', 'reference', nativeAllocators()[0]!.name]);
    for (const s of r.sides) {
      expect(s.runMs).toHaveLength(3);
      expect(s.exitMs).toHaveLength(3);
      for (const v of [...s.runMs, ...s.exitMs]) expect(v).toBeGreaterThan(0);
      expect(s.runMedian).toBe([...s.runMs].sort((x, y) => x - y)[1]);
    }
    const text = renderPhases(rows, o);
    const g = r.sides[3]!;
    const sab = r.sides[0]!;
    const line = text.split('\n').find((l) => /program\.trace\s+sabmalloc/.test(l))!;
    const shown = (side: number, glibc: number): string =>
      side >= RATIO_MIN_MS && glibc >= RATIO_MIN_MS ? (glibc / side).toFixed(2) : '-';
    const cells = line.trim().split(/\s+/); // trace, side, final frees, run, x, exit, x, total, x
    expect(cells[4]).toBe(shown(sab.runMedian, g.runMedian));
    expect(cells[6]).toBe(shown(sab.exitMedian, g.exitMedian));
    expect(cells[8]).toBe(shown(sab.runMedian + sab.exitMedian, g.runMedian + g.exitMedian));
    expect(text).toMatch(/program\.trace\s+glibc\s+401\s+[\d.]+\s+(1\.00|-)\s+[\d.]+\s+(1\.00|-)/);
    // A part under RATIO_MIN_MS gets no ratio: clock noise.
    const tiny = renderPhases([{ ...r, sides: r.sides.map((s) => ({ ...s, runMedian: 5, exitMedian: 0.01 })) }], o);
    expect(tiny).toMatch(/program\.trace\s+sabmalloc\s+401\s+5\.0\s+1\.00\s+0\.0\s+-\s+5\.0\s+1\.00/);
  });

  it('--no-native: sabmalloc and the floor only, and the table says why glibc is missing', async () => {
    const o = { traces: [TRACE_FILE], rounds: 1, warmups: 0, prime: false, native: false };
    const rows = await measurePhases(o);
    expect(rows[0]!.sides.map((s) => s.name)).toEqual(['sabmalloc', 'placement', 'reference']);
    expect(renderPhases(rows, o)).toMatch(/glibc not asked for \(--no-native\)/);
  });

  it('names what is wrong with its arguments (exit 2)', async () => {
    const io = capture();
    expect(await main(['phases'], io)).toBe(2);
    expect(io.errText()).toMatch(/^sabmalloc phases: give --trace FILE\|FOLDER/);
    const io2 = capture();
    expect(await main(['phases', '--trace', TRACE_FILE, '--rounds', '0'], io2)).toBe(2);
    expect(io2.errText()).toMatch(/--rounds: expected an integer in \[1, 1000\], got "0"/);
    const io3 = capture();
    expect(await main(['phases', '--trace', TRACE_FILE, 'extra'], io3)).toBe(2);
    expect(io3.errText()).toMatch(/unexpected argument "extra"/);
  });
});
