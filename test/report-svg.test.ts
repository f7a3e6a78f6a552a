/**
 * The benchmark's SVG chart (bench/report.ts renderSvg): one panel per workload (per trace for
 * W5), a point per allocator and thread count.
 */
import { describe, expect, it } from 'vitest';
import { renderSvg, type Environment } from '../bench/report.js';
import type { CaseResult } from '../bench/case.js';

const env = { date: '2026-12-04', node: '20.20.2', cpuModel: 'a CPU', cores: 2, availableParallelism: 2, gitCommit: null, gitDirty: null } as unknown as Environment;

function result(allocator: string, workload: 'W1' | 'W5', threads: number, median: number, trace?: string): CaseResult {
  return {
    spec: { allocator, family: 'js', workload, threads, trace } as unknown as CaseResult['spec'],
    runs: [],
    summary: { opsPerSec: { median, min: median * 0.9, max: median * 1.1 } } as unknown as CaseResult['summary'],
  };
}

/** The x of every point (circle) in the panel titled `title`. */
function pointXs(svg: string, title: string): number[] {
  const panel = svg.split('<g>').find((g) => g.includes(`>${title}</text>`))!;
  return [...panel.matchAll(/<circle cx="([\d.]+)"/g)].map((m) => Number(m[1]));
}

describe('renderSvg', () => {
  it('spreads the allocators of a one-thread panel (a W5 trace) along the x axis, each named under it', () => {
    // Every W5 trace runs at one thread: all allocators' points were drawn at one x, one over the other.
    const cases = ['sabmalloc', 'glibc', 'dlmalloc-wasm'].map((a, k) => result(a, 'W5', 1, 10e6 + k * 1e6, 'lua_inventory'));
    const svg = renderSvg(cases, env);
    const xs = pointXs(svg, 'W5 replay: lua_inventory');
    expect(xs).toHaveLength(3);
    expect(new Set(xs).size).toBe(3);
    for (const a of ['sabmalloc', 'glibc', 'dlmalloc-wasm']) expect(svg).toContain(`font-size="9">${a}</text>`);
    expect(svg).toContain('allocators, 1 thread</text>');
  });

  it('keeps one x per thread count, shared by the allocators, in a panel of several thread counts', () => {
    const cases = ['sabmalloc', 'glibc'].flatMap((a) => [1, 2, 4].map((t) => result(a, 'W1', t, t * 1e6)));
    const xs = pointXs(renderSvg(cases, env), 'W1 random_mixed');
    expect(xs).toHaveLength(6);
    expect(new Set(xs).size).toBe(3);
  });
});
