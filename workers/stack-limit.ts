/**
 * Meeting the stack's limit at every point of a call (test helpers: workers/overflow-worker.ts,
 * test/refresh-views-cut-off.test.ts): V8's RangeError cuts the call off wherever the stack left
 * runs out, so a call made at each of the last depths of a recursion, through frames of 0 to 15
 * more 8-byte arguments, meets it at every 8-byte step of its frames.
 */

type Pad = ((op: () => void, ...a: number[]) => void) & { go: (f: Pad, op: () => void) => void };
const pads: Pad[] = [];
for (let k = 0; k < 16; k++) {
  const args = Array.from({ length: k }, (_, j) => `a${j}`);
  const pad = new Function('op', ...args, 'return op();') as Pad;
  pad.go = new Function('f', 'op', `return f(op${',0'.repeat(k)});`) as Pad['go'];
  pads.push(pad);
}

/**
 * Runs op through every pad; what it throws goes to `onError` (no RegExp there: V8 compiling one
 * at the stack's limit ends the process), else is dropped (the overflow).
 */
export function throughPads(op: () => void, onError?: (e: unknown) => void): void {
  for (const pad of pads) {
    try {
      pad.go(pad, op);
    } catch (e) {
      onError?.(e);
    }
  }
}

/** Recurses to the stack's limit, then runs op through every pad at each of the last `depths` depths on the way back. */
export function nearTheStackLimit(depths: number, op: () => void, onError?: (e: unknown) => void): void {
  let max = 0;
  const probe = (n: number): void => {
    if (n > max) max = n;
    try {
      probe(n + 1);
    } catch {
      // the limit
    }
    if (n > max - depths) throughPads(op, onError);
  };
  probe(0);
}
