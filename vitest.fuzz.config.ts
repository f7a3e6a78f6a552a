import { defineConfig } from 'vitest/config';

/** `npm run fuzz`: the randomized fuzzer (test/fuzz), minutes long, not part of `npm test`. */
export default defineConfig({
  test: {
    include: ['test/fuzz/**/*.fuzz.ts'],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
