/**
 * In Chromium, with a real Web Worker: two attachAsync calls of one worker under its reserved id,
 * the second made before the first settled. The first holds the id's Web Lock from its grant until
 * the worker detaches, and the second, asking for that lock too, waited behind it for as long as
 * the worker stayed attached, then attached the worker again after its detach (an audit). Both now
 * answer the same instance (src/heap.ts attachAsync; in Node against a stand-in,
 * test/attach-async-twice.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { pageFixture } from './chromium.js';

const here = new URL('.', import.meta.url).pathname;
const pages = pageFixture('attach-twice', { 'attach-twice': `${here}pages/attach-twice.ts`, 'attach-twice-worker': `${here}pages/attach-twice-worker.ts` });

describe('attachAsync twice at once in one Web Worker (Chromium)', () => {
  it('both calls answer the same instance, and after its detach no attachment comes back', async () => {
    const { value: r, errors } = await pages.evaluate<Record<string, unknown>>('window.attachTwice()');
    console.log(JSON.stringify(r));
    expect(r.error).toBeUndefined();
    expect(r.first).toBe('heap');
    expect(r.second).toBe('heap');
    expect(r.same).toBe(true);
    expect(r.heldAfterDetach).toBe(0);
    expect(r.threadsAttached).toBe(1); // the page alone
    expect(errors).toEqual([]);
  });
});
