/**
 * stats().footprintBytes against the operating system: the resident size Linux reports for the
 * heap's buffer (smaps Rss of its mapping, read in a child process that has no other heap) is
 * never above the footprint, and with every block written in full the two are close. The
 * footprint counts what the heap handed out (blocks carved into magazines included), so it may
 * be a little above.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { MiB } from './fixtures.js';

const child = fileURLToPath(new URL('./resident.ts', import.meta.url));

interface Resident {
  atStart: { resident: number; footprint: number };
  resident: number;
  footprint: number;
  peakFootprint: number;
  carved: number;
  live: number;
}

function run(mode: 'full' | 'ends'): Resident {
  const out = execFileSync(process.execPath, ['--import', 'tsx', child, mode], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  expect(line, out).toBeDefined();
  return JSON.parse(line!.slice(7)) as Resident;
}

describe('footprint', () => {
  it('is never below what Linux holds for the buffer, and close to it when blocks are written in full', () => {
    const r = run('full');
    expect(r.atStart.resident).toBeLessThanOrEqual(r.atStart.footprint);
    expect(r.resident).toBeGreaterThan(4 * MiB);
    expect(r.resident).toBeLessThanOrEqual(r.footprint);
    expect(r.footprint).toBeLessThan(r.resident * 1.1);
    expect(r.peakFootprint).toBe(r.footprint);
    expect(r.footprint).toBeLessThan(r.carved);
  });

  it('counts the pages of blocks the program wrote only at their ends', () => {
    const r = run('ends');
    expect(r.resident).toBeLessThanOrEqual(r.footprint);
    expect(r.resident).toBeLessThan(r.footprint * 0.9); // the middle pages of large blocks were never written
  });

  it('stays flat when the same memory is used again', () => {
    const heap = SharedHeap.create({ initialBytes: 64 * MiB });
    const round = (): void => {
      const ps: number[] = [];
      for (let i = 0; i < 2000; i++) ps.push(heap.malloc(16 + ((i * 37) % 6000)));
      for (const p of ps) heap.free(p);
    };
    for (let i = 0; i < 3; i++) round();
    const first = heap.stats().footprintBytes;
    for (let i = 0; i < 40; i++) round();
    // Blocks come back in another order each round, so a few more pages get carved at first.
    expect(heap.stats().footprintBytes).toBeLessThan(first * 1.05);
    expect(first).toBeLessThan(heap.stats().carvedBytes);
  });
});
