/**
 * bench/ceiling.ts lets each run's heap go: without the native row its rounds made no await, so
 * they ran in one job, where create()'s WeakRef kept every heap alive whatever a collection found
 * (bench/gc.ts endOfJob); a trace's measurement then held a heap a run.
 */
import { describe, expect, it } from 'vitest';
import { measureCeiling } from '../bench/ceiling.js';
import { parseTrace } from '../bench/replay.js';

const MiB = 1024 ** 2;

/** `n` blocks of 4 KiB allocated, then freed: the replay's tags touch a page of each (n * 4 KiB). */
function pagesTrace(n: number): string {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(`a ${i} 4096`);
  for (let i = 0; i < n; i++) lines.push(`f ${i}`);
  return lines.join('\n') + '\n';
}

describe('ceiling: the runs heaps', () => {
  it('a trace touching 160 MiB a run, 3 rounds without the native row: the process holds at most a few heaps', async () => {
    const blocks = 40_960; // 160 MiB of pages, above bench/gc.ts HEAVY_RUN_BYTES
    const trace = parseTrace(pagesTrace(blocks), 'pages');
    const base = process.memoryUsage.rss();
    let peak = base;
    let rows = 0;
    const result = await measureCeiling(trace, {
      runs: 3,
      prime: false,
      onRun: () => {
        rows++;
        peak = Math.max(peak, process.memoryUsage.rss());
      },
    });
    expect(result.nativeSkipped).toBeDefined();
    expect(rows).toBe(8); // 4 rounds (the first untimed) of sabmalloc and placement
    expect(result.runs.sabmalloc.length).toBe(3);
    // The runs did touch their memory (else this proves nothing).
    expect(peak - base).toBeGreaterThan(128 * MiB);
    // Eight heaps of 160 MiB held (and the recording's): about 1.45 GB. Each let go: at most four
    // at a time (the recording's, and those the rule of bench/gc.ts collectGarbageIfHeavy leaves).
    expect((peak - base) / MiB).toBeLessThan(800);
  }, 300_000);
});
