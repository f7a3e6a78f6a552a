/**
 * In Chromium, with real Web Workers: a page terminates its workers and then awaits
 * reclaimWhenGone() for each in turn, and a worker reclaimed second died holding the global lock.
 * The first call needs the lock, which only a reclaim of that holder would break: it waited for
 * good (an audit). It now asks for the holder's Web Lock too once the holder has kept the global
 * lock for a while, and takes the holder as gone when granted (src/heap.ts reclaimWhenGone; the
 * same in Node against a stand-in, test/reclaim-when-gone-dead-lock-holder.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { pageFixture } from './chromium.js';

const here = new URL('.', import.meta.url).pathname;
const pages = pageFixture('reclaim-one-at-a-time', { 'reclaim-one-at-a-time': `${here}pages/reclaim-one-at-a-time.ts`, 'chaos-worker': `${here}pages/chaos-worker.ts` });

describe('reclaimWhenGone() awaited one worker at a time (Chromium)', () => {
  it('a worker reclaimed first while one reclaimed later died holding the global lock: both calls resolve true', async () => {
    const { value: r, errors } = await pages.evaluate<{ first: string; second: string; threadsAttached: number; checked: string; malloc: number }>('window.reclaimOneAtATime()');
    console.log(JSON.stringify(r));
    expect(r.first).toBe('true');
    expect(r.second).toBe('true');
    expect(r.threadsAttached).toBe(1);
    expect(r.checked).toBe('passed');
    expect(r.malloc).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  });
});
