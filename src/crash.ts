/**
 * Crash points, a test-only switch: every step of a slow path that changes shared state calls
 * crashPoint(path). Off (the default, and always outside tests), a call is one load of a
 * module-level number and one test, on slow paths only; the fast paths have none. The slow paths
 * that pass points for every block or run of blocks read crashArmed() once a call instead.
 *
 * A test arms a thread with armCrash(n): at the n-th crash point it passes, the thread stops as
 * worker.terminate() would stop it (onCrash: a worker ends its thread with process.exit(), which
 * runs no finally block, so a held lock stays held), and stays unreclaimed until the test
 * reclaims it. countCrashPoints() counts the steps a scenario passes through instead, per path,
 * so that the test enumerates every step itself: a step added to a slow path is tested without
 * anyone listing it.
 */

/** The slow paths that have crash points (the index is what crashPoint takes). */
export const CRASH_PATHS = [
  'stage1 pop', // 0
  'stage1 push', // 1
  'refill', // 2
  'drain', // 3
  'drain journal', // 4
  'remote publish', // 5
  'remote collect', // 6
  'slab give-back', // 7
  'growth', // 8
  'large runs', // 9
  'reclaim', // 10
  'slab take', // 11
  'notice walk', // 12
  'deep magazine', // 13
] as const;
export const CP_STAGE1_POP = 0;
export const CP_STAGE1_PUSH = 1;
export const CP_REFILL = 2;
export const CP_DRAIN = 3;
export const CP_JOURNAL = 4;
export const CP_PUBLISH = 5;
export const CP_COLLECT = 6;
export const CP_GIVE_BACK = 7;
export const CP_GROWTH = 8;
export const CP_LARGE = 9;
export const CP_RECLAIM = 10;
export const CP_TAKE = 11;
export const CP_NOTICES = 12;
export const CP_DEEP = 13;

/** 0: off. n > 0: stop at the n-th crash point from now. -1: count crash points. */
let countdown = 0;
const counts = new Array<number>(CRASH_PATHS.length).fill(0);
/** The paths of the crash points passed while counting, in order (crashOrder). */
const order: number[] = [];
let stop: (path: number) => never = (path) => {
  throw new Error(`crash point (${CRASH_PATHS[path]}) reached with no onCrash handler`);
};

/**
 * Whether crash points are armed or counting: read once by a slow path that passes many of them
 * for every block or run of blocks (a drain, a refill), which then passes each as
 * `if (cp) crashPoint(path)`. Measured under cachegrind, random-order frees of 2 M blocks (each
 * drained block its own run): 352-363 -> 306 instructions an operation when the drain's four
 * per-run points read this local instead of the module's countdown each.
 */
export function crashArmed(): boolean {
  return countdown !== 0;
}

/** A step of a slow path that changes shared state: where a test may stop the thread. */
export function crashPoint(path: number): void {
  if (countdown !== 0) crashStep(path);
}

function crashStep(path: number): void {
  if (countdown < 0) {
    counts[path]++;
    order.push(path);
    return;
  }
  if (--countdown === 0) stop(path);
}

/** Test hook: stop this thread at the n-th crash point from now (0: off). */
export function armCrash(n: number, onCrash: (path: number) => never): void {
  countdown = n;
  stop = onCrash;
}

/** Test hook: count crash points from now on, per path (see crashCounts). */
export function countCrashPoints(): void {
  counts.fill(0);
  order.length = 0;
  countdown = -1;
}

/** Test hook: the crash points passed since countCrashPoints(), per path; counting stops. */
export function crashCounts(): number[] {
  countdown = 0;
  return counts.slice();
}

/** Test hook: the path of each crash point passed while counting, in order (step n is entry n - 1), as of the last crashCounts(). */
export function crashOrder(): number[] {
  return order.slice();
}
