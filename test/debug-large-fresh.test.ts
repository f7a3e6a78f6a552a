/**
 * Debug mode's record of a large block (debug.ts debugRecordLarge) clears the marks of earlier
 * lives only where bytes were written before: a run on slots no block used keeps its pages
 * untouched, and its take, under the global lock, does no work in proportion to its size (it wrote
 * a word every 16 bytes of the run: a 1.9 GiB malloc held the lock for 1-9 s, and a main thread
 * waiting for the lock gave up on a healthy heap with a LockTimeoutError: an audit). In a child
 * process, the kernel's resident size of the buffer shows which pages were written.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { MiB } from './fixtures.js';

const child = fileURLToPath(new URL('./debug-large-resident.ts', import.meta.url));

it('a debug-mode malloc of a large block on fresh slots leaves its pages untouched', () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', child], { encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.startsWith('RESULT '));
  expect(line, out).toBeDefined();
  const r = JSON.parse(line!.slice(7)) as { size: number; p: number; q: number; before: number; afterFresh: number; kept: boolean };
  expect(r.p).toBeGreaterThan(0);
  // Its metas and the record and canary at its end: a few pages, not the 40 MiB a word every 16 bytes touched.
  expect(r.afterFresh - r.before).toBeLessThan(1 * MiB);
  expect(r.q).toBe(r.p); // freed and taken again at the same place: the marks cleared over written bytes
  expect(r.kept).toBe(true);
}, 60_000);
