/**
 * A bench worker lets each run's sabmalloc heap go: the process does not grow run after run.
 *
 * The heap a worker attaches is held by the WeakRef of its record (src/heap.ts), which V8 keeps
 * alive until the job that made it ends; piscina's worker ran task after task in one job (its
 * Atomics.wait loop), so no collection in the worker ever took a run's heap, and a long bench
 * grew without bound (W2 at 4 threads: about 47 MiB a run, past bench/gc.ts HEAVY_RSS_BYTES,
 * where every run collected to no effect). bench/gc.ts endOfJob.
 */
import { describe, expect, it } from 'vitest';
import { BenchRunner } from '../bench/run.js';
import { planCases } from '../bench/plan.js';
import { HEAVY_RSS_BYTES } from '../bench/gc.js';

const MiB = 1024 ** 2;

describe('bench workers and the runs heaps', () => {
  it('W2 at 4 threads, run after run: the process stays within HEAVY_RSS_BYTES and a margin', async () => {
    const specs = planCases({
      workloads: ['W2'],
      threads: [4],
      traces: [],
      allocators: new Set(['sabmalloc']),
      thingAvailable: false,
      natives: [],
    });
    expect(specs.length).toBe(1);
    // Enough runs for the heaps of every run, held, to pass the bound by far (W2 at 4 threads
    // leaves about 47 MiB resident a run; the bound is HEAVY_RSS_BYTES and 256 MiB).
    const runs = Math.ceil((HEAVY_RSS_BYTES + 640 * MiB) / (40 * MiB));
    const runner = new BenchRunner({ prime: false });
    let peak = 0;
    let growth = 0;
    let last = process.memoryUsage.rss();
    try {
      const [result] = await runner.runGroup(specs, runs, () => {
        const rss = process.memoryUsage.rss();
        peak = Math.max(peak, rss);
        growth = Math.max(growth, rss - last);
        last = rss;
      });
      expect(result!.error).toBeUndefined();
      expect(result!.runs.length).toBe(runs);
    } finally {
      await runner.close();
    }
    // The runs did hold memory (else this test proves nothing): each one grew the process.
    expect(growth).toBeGreaterThan(16 * MiB);
    expect(peak / MiB).toBeLessThan((HEAVY_RSS_BYTES + 256 * MiB) / MiB);
  }, 600_000);
});
