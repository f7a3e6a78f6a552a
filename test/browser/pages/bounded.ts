/**
 * Bounded waits for the test pages: every await of a page settles within its bound, or fails with
 * an error that names what hung, so that a page never waits for good on a worker or a lock.
 */

/** Every await of a page settles within this unless told otherwise (ms). */
export const BOUND_MS = 10_000;

/** `p`, or a rejection naming `label` once `ms` passed without it settling. */
export function within<T>(label: string, p: Promise<T>, ms = BOUND_MS): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`hang: ${label} not settled after ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));
