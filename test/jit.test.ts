/**
 * The fast paths leave by one call each, through a proxy V8 does not inline (src/heap.ts, free):
 * a loop that calls malloc, calloc, realloc or free, optimized with the method inlined into it,
 * stays optimized when a rare way off the fast path (a large block, a full magazine) is taken for
 * the first time. Before, each such way had a call site of its own that V8 had never seen made,
 * compiled as a deoptimization: the first large block or full magazine threw the caller's
 * optimized loop away (four of these five cases failed). Each case runs in a child process of its
 * own (test/jit-probe.ts), with V8's natives syntax to read and force the optimization state.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const probe = fileURLToPath(new URL('./jit-probe.ts', import.meta.url));
const CASES = [
  'free of a large block', 'free into a full magazine', 'malloc of a large size', 'calloc of a large size', 'realloc to a large size',
  'free leaving its fast path for the first time',
];

describe('a rare way off a fast path leaves the caller optimized', () => {
  it.each(CASES)('%s', (name) => {
    const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', '--import', 'tsx', probe, name], {
      encoding: 'utf8',
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as { name: string; warm: boolean; after: boolean; liveBytes: number };
    expect(r.name).toBe(name);
    expect(r.warm, 'the loop was optimized after its warm-up (else the case shows nothing)').toBe(true);
    expect(r.after, 'the loop is still optimized after the rare call').toBe(true);
    expect(r.liveBytes).toBe(0);
  }, 30_000);
});
