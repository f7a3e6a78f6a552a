import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two test files at a time at least. Vitest's default for a run is one fewer than the cores,
    // which on a 2-core machine ran the 158 files one at a time (1040 s on an AMD EPYC VM), while
    // most of them spend their time waiting on workers they started: two at a time took 725 s
    // there. On larger machines this is vitest's own default.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
