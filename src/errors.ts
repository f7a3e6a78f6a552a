/** Every error sabmalloc throws, with its stable `code`, and the messages, in one file. */

/**
 * Each error's `name`, written out: a minifier renames classes, so `new.target.name` read
 * `Br` in a minified bundle.
 */
const NAMES: Readonly<Record<HeapErrorCode, string>> = {
  ERR_INVALID_POINTER: 'InvalidPointerError',
  ERR_DOUBLE_FREE: 'DoubleFreeError',
  ERR_HEAP_CORRUPTION: 'HeapCorruptionError',
  ERR_THREAD_SLOTS_EXHAUSTED: 'ThreadSlotsExhaustedError',
  ERR_LOCK_TIMEOUT: 'LockTimeoutError',
  ERR_HEAP_STATE: 'HeapStateError',
};

/** The `code` of each error sabmalloc throws (one per class below), for a `switch` that the compiler checks. */
export type HeapErrorCode =
  | 'ERR_INVALID_POINTER'
  | 'ERR_DOUBLE_FREE'
  | 'ERR_HEAP_CORRUPTION'
  | 'ERR_THREAD_SLOTS_EXHAUSTED'
  | 'ERR_LOCK_TIMEOUT'
  | 'ERR_HEAP_STATE';

export class HeapError extends Error {
  readonly code: HeapErrorCode;
  constructor(code: HeapErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = NAMES[code] ?? 'HeapError'; // (a code from JavaScript outside the union)
    this.code = code;
  }
}

/** An offset that is not the start of a live block: outside the heap, in metadata, interior, never allocated. */
export class InvalidPointerError extends HeapError {
  constructor(message: string) {
    super('ERR_INVALID_POINTER', message);
  }
}

/** A block freed (or reallocated) a second time. */
export class DoubleFreeError extends HeapError {
  constructor(message: string) {
    super('ERR_DOUBLE_FREE', message);
  }
}

/** check() found an invariant broken. */
export class HeapCorruptionError extends HeapError {
  constructor(message: string) {
    super('ERR_HEAP_CORRUPTION', message);
  }
}

/** attach() found every thread slot taken. */
export class ThreadSlotsExhaustedError extends HeapError {
  constructor(message: string) {
    super('ERR_THREAD_SLOTS_EXHAUSTED', message);
  }
}

/**
 * The main thread waited MAIN_THREAD_WAIT_MS for the global lock (its holder is most likely a
 * worker that died holding it and whose exit the blocked event loop cannot deliver).
 */
export class LockTimeoutError extends HeapError {
  constructor(message: string) {
    super('ERR_LOCK_TIMEOUT', message);
  }
}

/** A call on a heap this thread detached from, or a buffer that is not a sabmalloc heap. */
export class HeapStateError extends HeapError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_HEAP_STATE', message, options);
  }
}

export function hex(n: number): string {
  return '0x' + n.toString(16);
}

/**
 * Whether `v` is a revoked Proxy, on which every operation (instanceof, a property read,
 * Object.keys) throws V8's own TypeError, naming neither the call nor the argument: the calls that
 * take an object refuse one first, with their own error (an audit; describe() shows it as such).
 */
export function isRevokedProxy(v: unknown): boolean {
  if (v === null || (typeof v !== 'object' && typeof v !== 'function')) return false;
  try {
    Array.isArray(v); // throws for a revoked Proxy only
    return false;
  } catch {
    return true;
  }
}

/** Whether `v` is an object a call can read: not null, not a primitive, not a revoked Proxy. */
export function isObjectArgument(v: unknown): v is object {
  return v !== null && typeof v === 'object' && !isRevokedProxy(v);
}

/** How a value is shown in a message; never calls valueOf or toString of user objects. */
export function describe(v: unknown): string {
  switch (typeof v) {
    case 'number':
      if (Object.is(v, -0)) return '-0';
      return Number.isSafeInteger(v) && v >= 0 ? `${v} (${hex(v)})` : String(v); // no 256-digit hex of 1e308
    case 'bigint':
      return `${v}n (a bigint)`;
    case 'string':
      return `${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v)} (a string)`;
    case 'undefined':
      return 'undefined';
    case 'boolean':
      return `${v} (a boolean)`;
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      if (v === null) return 'null';
      try {
        return Array.isArray(v) ? 'an array' : 'an object';
      } catch {
        return 'a revoked proxy'; // Array.isArray throws for one (an audit): the message is still the call's
      }
  }
}

/**
 * Validates an integer argument: TypeError for a non-number, RangeError for NaN, Infinity,
 * negatives, fractions and unsafe integers. Returns the value.
 */
export function checkInteger(fn: string, arg: string, v: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number') {
    throw new TypeError(`${fn}(${arg}): expected a number, got ${describe(v)}`);
  }
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${fn}(${arg}): expected a non-negative safe integer, got ${describe(v)}`);
  }
  if (v > max) {
    throw new RangeError(`${fn}(${arg}): ${describe(v)} is above the limit ${max}`);
  }
  return v;
}

/**
 * `e` with its message naming the call `name` where it named `sync` (its prefix `sync(`): the
 * asynchronous calls run the synchronous ones (heap.ts), whose errors name themselves. The stack's
 * copy of the message follows.
 */
export function renamedCall(e: unknown, sync: string, name: string): unknown {
  if (e instanceof Error && e.message.startsWith(`${sync}(`)) {
    const old = e.message;
    e.message = name + old.slice(sync.length);
    if (typeof e.stack === 'string') e.stack = e.stack.replace(old, e.message);
  }
  return e;
}
