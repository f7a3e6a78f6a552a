/**
 * bench/ceiling.ts (`sabmalloc ceiling`): the placement recorded from sabmalloc replays the trace
 * through the checked replay loop; a placement that does not hold fails the loop's checks; the
 * command prints its rows.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import {
  ceilingHeapOptions,
  measureCeiling,
  measureW1Ceiling,
  measureW3Ceiling,
  PlacementAllocator,
  recordPlacement,
  recordW1Placement,
  recordW3Placement,
  ownWorkNs,
  renderCeiling,
  W1_CEILING_HEAP,
  W3_CEILING_HEAP,
} from '../bench/ceiling.js';
import { emptyResult, larsonCleanup, larsonFill, larsonRound, slotCleanup, threadRng, w1, W3_DEFAULTS } from '../bench/workloads.js';
import { main, type CliIO } from '../bench/cli.js';
import { nativeSkipReason } from '../bench/native.js';
import { loadTrace, replay, OP_FREE, OP_REALLOC } from '../bench/replay.js';

const SAMPLE = fileURLToPath(new URL('../bench/traces/sample.trace', import.meta.url));

function scratchBuffer(options: ReturnType<typeof ceilingHeapOptions>): SharedArrayBuffer {
  const heap = SharedHeap.create(options);
  const buffer = heap.buffer;
  heap.detach();
  return buffer;
}

describe('sabmalloc ceiling', () => {
  const trace = loadTrace(SAMPLE);
  const options = ceilingHeapOptions(trace);

  it('records one address per malloc, calloc and realloc, and the bytes each moving realloc keeps', () => {
    const p = recordPlacement(trace, options);
    let outs = 0;
    let reallocs = 0;
    for (let i = 0; i < trace.count; i++) {
      if (trace.kind[i] !== OP_FREE) outs++;
      if (trace.kind[i] === OP_REALLOC) reallocs++;
    }
    expect(reallocs).toBeGreaterThan(0);
    expect(p.addresses.length).toBe(outs);
    expect(p.kept.length).toBe(reallocs);
    for (const a of p.addresses) expect(a % 16).toBe(0);
    expect(Math.min(...p.addresses)).toBeGreaterThan(0);
    // A realloc that moved kept min(old request, new size) bytes; one that stayed put kept none.
    let moved = 0;
    for (const k of p.kept) if (k > 0) moved++;
    expect(moved).toBeGreaterThan(0);
    expect(Math.max(...p.kept)).toBeLessThanOrEqual(Math.max(...trace.size));
  });

  it('replays the placement through the checked loop with the same checksum as sabmalloc', () => {
    const heap = SharedHeap.create(options);
    const own = replay(heap, trace);
    heap.detach();
    const r = replay(new PlacementAllocator(scratchBuffer(options), recordPlacement(trace, options)), trace);
    expect(r.checksum).toBe(own.checksum);
    expect(r.peakLiveBytes).toBe(own.peakLiveBytes);
    expect(r.reallocs).toBe(own.reallocs);
  });

  it("fails the replay when a moving realloc's kept bytes are not copied", () => {
    const p = recordPlacement(trace, options);
    const kept = new Int32Array(p.kept.length); // nothing copied
    expect(() => replay(new PlacementAllocator(scratchBuffer(options), { ...p, kept }), trace)).toThrow(/did not preserve/);
  });

  it('fails the replay when the placement does not hold (two live blocks at one address)', () => {
    const p = recordPlacement(trace, options);
    const addresses = Int32Array.from(p.addresses);
    addresses[1] = addresses[0]!; // the first two blocks of the sample trace are both live for a while
    expect(() => replay(new PlacementAllocator(scratchBuffer(options), { ...p, addresses }), trace)).toThrow(/overwritten|preserve/);
  });

  it("sabmalloc's own work is taken round by round: each round's ns over the placement's, their median and range", () => {
    // Round 1 runs both rows slower (a drift of the machine): the per-round differences stay 5 ns.
    const r = { trace: 'made up', ops: 1, runs: { sabmalloc: [40, 20, 40], placement: [50, 22.222222, 50], glibc: [] } };
    const own = ownWorkNs(r);
    expect(own.map((x) => Math.round(x * 10) / 10)).toEqual([5, 5, 5]);
    expect(renderCeiling(r)).toMatch(/\n  sabmalloc .* \+5\.0 ns \(\+5\.0 to \+5\.0\)\n/);
    // The difference of the medians (25 - 20 = 5 ns here too) would not show the range.
    const mixed = { ...r, runs: { sabmalloc: [40, 25, 50], placement: [50, 50, 50], glibc: [] } };
    expect(renderCeiling(mixed)).toMatch(/\+5\.0 ns \(\+0\.0 to \+20\.0\)/);
  });

  it('measures every row, round by round, and says why glibc is missing without a parsed trace file', async () => {
    const seen: string[] = [];
    const r = await measureCeiling(trace, { runs: 2, prime: false, onRun: (row, round) => seen.push(`${row}:${round}`) });
    expect(r.runs.sabmalloc).toHaveLength(2);
    expect(r.runs.placement).toHaveLength(2);
    expect(r.runs.glibc).toHaveLength(0);
    expect(r.nativeSkipped).toMatch(/no parsed trace file/);
    expect(seen.slice(0, 4)).toEqual(['sabmalloc:0', 'placement:0', 'sabmalloc:1', 'placement:1']);
    for (const v of [...r.runs.sabmalloc, ...r.runs.placement]) expect(v).toBeGreaterThan(0);
    const text = renderCeiling(r);
    expect(text).toMatch(/^\S*sample\.trace: 300 operations, 2 timed rounds/);
    expect(text).toMatch(/\n  sabmalloc .* [+-]\d+\.\d ns \([+-]\d+\.\d to [+-]\d+\.\d\)\n/);
    expect(text).toMatch(/glibc: not run \(no parsed trace file given\)/);
  });

  it('the command needs --trace and prints the rows with glibc beside them', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIO = { out: (s) => out.push(s), err: (s) => err.push(s), isTTY: false };
    expect(await main(['ceiling'], io)).toBe(2);
    expect(err.join('')).toMatch(/name W1 or W3, or give --trace FILE\|FOLDER/);
    expect(await main(['ceiling', 'W9'], io)).toBe(2);
    expect(err.join('')).toMatch(/unknown workload "W9"/);
    expect(await main(['ceiling', '--trace', SAMPLE, '--runs', '0'], io)).toBe(2);
    expect(err.join('')).toMatch(/--runs: expected an integer in \[1, 1000\], got "0"/);
    out.length = 0;
    expect(await main(['ceiling', '--trace', SAMPLE, '--runs', '1', '--no-prime'], io)).toBe(0);
    const text = out.join('');
    expect(text).toMatch(/os\.availableParallelism\(\) = \d+/);
    expect(text).toMatch(/not primed \(--no-prime\)/);
    for (const row of ['placement ', 'sabmalloc ', 'glibc ']) expect(text).toContain(`\n  ${row}`);
    // CI installs clang (.ci/run), so glibc's native replay runs beside them: a figure and 1.00 x itself.
    expect(nativeSkipReason()).toBeUndefined();
    expect(text).toMatch(/\n  glibc +\d+\.\d \(\d+\.\d-\d+\.\d\) +1\.00 /);
    expect(text).toMatch(/\n  sabmalloc +\d+\.\d \(\d+\.\d-\d+\.\d\) +\d+\.\d\d /);
  }, 60_000);

  it("W1: sabmalloc's placement runs W1 with its checksum, and every row is measured beside glibc's native W1", async () => {
    const cycles = 20_000;
    const heap = SharedHeap.create(W1_CEILING_HEAP);
    const own = w1(heap, { cycles });
    slotCleanup(heap, own);
    heap.detach();
    const p = recordW1Placement(cycles);
    expect(p.addresses.filter((a) => a !== 0).length).toBe(own.result.mallocs);
    const buffer = scratchBuffer(W1_CEILING_HEAP);
    const run = w1(new PlacementAllocator(buffer, p), { cycles });
    expect(run.result.checksum).toBe(own.result.checksum);
    expect(run.result.peakLiveBytes).toBe(own.result.peakLiveBytes);

    const r = await measureW1Ceiling({ runs: 1, prime: false, cycles });
    expect(r.trace).toBe('W1');
    expect(r.runs.sabmalloc).toHaveLength(1);
    expect(r.runs.placement).toHaveLength(1);
    expect(nativeSkipReason()).toBeUndefined(); // CI installs clang (.ci/run)
    expect(r.runs.glibc).toHaveLength(1);
    expect(renderCeiling(r)).toMatch(/^W1: 20,000 operations, 1 timed rounds/);
  }, 60_000);

  it("W3 at one thread: sabmalloc's placement runs the rounds with its checksum, and every row is measured beside glibc's", async () => {
    const rounds = 2;
    const larson = (alloc: PlacementAllocator | SharedHeap) => {
      const rng = threadRng(W3_DEFAULTS.seed, 0);
      const tally = emptyResult();
      const blocks = larsonFill(alloc, rng, W3_DEFAULTS.chunks, undefined, tally);
      for (let r = 0; r < rounds; r++) larsonRound(alloc, rng, blocks, W3_DEFAULTS.opsPerRound, tally);
      larsonCleanup(alloc, blocks);
      return tally;
    };
    const heap = SharedHeap.create(W3_CEILING_HEAP);
    const own = larson(heap);
    heap.detach();
    const p = recordW3Placement(rounds);
    expect(p.addresses.filter((a) => a !== 0).length).toBe(own.mallocs);
    const placed = larson(new PlacementAllocator(scratchBuffer(W3_CEILING_HEAP), p));
    expect(placed.checksum).toBe(own.checksum);
    expect(placed.ops).toBe(2 * rounds * W3_DEFAULTS.opsPerRound);

    const r = await measureW3Ceiling({ runs: 1, prime: false, rounds });
    expect(r.ops).toBe(placed.ops);
    expect(r.runs.sabmalloc).toHaveLength(1);
    expect(r.runs.placement).toHaveLength(1);
    expect(r.runs.glibc).toHaveLength(1);
    expect(renderCeiling(r)).toMatch(/^W3 at one thread: 40,000 operations, 1 timed rounds/);
  }, 60_000);
});
