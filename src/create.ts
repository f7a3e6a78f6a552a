/**
 * SharedHeap.create(): the options, and a new buffer formatted as an empty heap (header,
 * SuperSlab table and slot metas; thread areas are set up by each thread's attach).
 */
import { createSharedMemory, type SharedMemory } from './wasm-copy.js';
import {
  CLASS_SLOTS, DETACHED_TOPS_W, DETACHED_W, G_BUFFER_SUPERS, G_CARVED, G_DRAIN_INTERVAL, G_HEAP_ID, G_HEAP_ID_HIGH, G_MAG_CAP, G_MAGIC,
  G_MAX_SUPERS, G_MAX_THREADS, G_META_SUPERS, G_NEXT_THREAD_ID, G_REFILL, G_S1_KEEP, G_TRIM_INTERVAL, G_DEBUG, G_VERSION, LAYOUT_VERSION, MAGIC,
  MAG_EMPTY_SENTINEL, MAX_HEAP_BYTES, MAX_MAGAZINE_CAPACITY, MAX_THREADS_OPTION, RECLAIM_SLOTS, SUPER_BYTES, geometry,
} from './layout.js';
import { NUM_CLASSES } from './size-classes.js';
import { HeapStateError, describe, isObjectArgument } from './errors.js';

/** First id handed to threads that have no Node threadId (browsers); Node ids stay far below. */
export const FIRST_HEAP_THREAD_ID = 1 << 30;
/** Last id the heap hands out: a slot holds id + 1 in an Int32 word (TH_THREAD_ID), and G_NEXT_THREAD_ID id + 1. */
export const LAST_HEAP_THREAD_ID = 2 ** 31 - 2;

/**
 * A fresh thread id of the heap (G_NEXT_THREAD_ID), for `fn` (newThreadId, or attach in a thread
 * with no Node threadId). By CAS, never past LAST_HEAP_THREAD_ID + 1: an Atomics.add there wrapped
 * the word to -2^31, after which every id handed out before read as "not handed out" (attachAsync
 * and reclaimWhenGone refused them all), and the last id's id + 1 was negative (an audit).
 */
export function takeHeapThreadId(i32: Int32Array, fn: string): number {
  for (;;) {
    const id = Atomics.load(i32, G_NEXT_THREAD_ID);
    if (id < FIRST_HEAP_THREAD_ID || id > LAST_HEAP_THREAD_ID) {
      throw new HeapStateError(`${fn}: this heap has handed out all its thread ids (${FIRST_HEAP_THREAD_ID} to ${LAST_HEAP_THREAD_ID})`);
    }
    if (Atomics.compareExchange(i32, G_NEXT_THREAD_ID, id, id + 1) === id) return id;
  }
}

/**
 * create()'s options. Each may be left out or given as `undefined` (the same: its default), which
 * the types say too, for projects with `exactOptionalPropertyTypes`.
 */
export interface HeapOptions {
  /** Bytes of the buffer at creation, rounded up to a multiple of 1 MiB; at least 2 MiB (more with many threads or a large maxBytes: the error says how much), at most MAX_HEAP_BYTES (2,146,435,072). Default 64 MiB. */
  initialBytes?: number | undefined;
  /** The most the buffer may grow to (a growable SharedArrayBuffer when above initialBytes), rounded up to 1 MiB, at most 2,146,435,072. Default initialBytes. */
  maxBytes?: number | undefined;
  /** Thread slots: threads attached at once. Default 64. */
  maxThreads?: number | undefined;
  /** Upper bound of blocks a thread caches per class (large classes cache fewer: 256 KiB per class, 512 KiB for the 5-16 KiB ones). Default 64. */
  magazineCapacity?: number | undefined;
  /** Blocks moved into an empty magazine at once (at most half its capacity). Default 32. */
  refillCount?: number | undefined;
  /**
   * After every this many frees into a magazine with room (a free that finds it full drains its
   * newer half instead and is not counted), a thread drains the magazine of the class it is
   * freeing and, in turn, one other class's that holds blocks. Default 1024.
   */
  drainInterval?: number | undefined;
  /**
   * EMPTY slabs a class keeps in its Stage-1 list before giving slots back to Stage 2 (they also
   * give them back before the pool carves a SuperSlab or the heap grows, so memory kept here
   * never makes the heap larger); also the most freed large runs each span's list keeps for
   * reuse (0 keeps none). Default 1024.
   */
  stage1Keep?: number | undefined;
  /**
   * Before every this many slabs a thread takes from the pool, it first drains its magazines of
   * the other classes and gives their empty slabs back, so that blocks cached for one size do not
   * make the heap touch new pages for another: a smaller footprint for programs with small live
   * sets, paid for in speed (see the README; the slabs go to Stage 2, any class's, whatever
   * stage1Keep is). 0: never. Default 0.
   */
  trimInterval?: number | undefined;
  /**
   * Debug mode, for every thread that attaches: a canary after each block's requested size
   * (checked by free, realloc and check()) and freed blocks filled with a pattern checked when
   * handed out again. Slower (see the README); the default mode does not pay for it. Default false.
   */
  debug?: boolean | undefined;
}

/** Every option create() takes: any other key is refused (a misspelt option would be ignored silently). */
const OPTION_NAMES = [
  'initialBytes', 'maxBytes', 'maxThreads', 'magazineCapacity', 'refillCount', 'drainInterval', 'stage1Keep', 'trimInterval', 'debug',
];

function option(opts: Record<string, unknown>, name: string, dflt: number, min: number, max: number): number {
  const v = opts[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw new TypeError(`SharedHeap.create(options.${name}): expected a number, got ${describe(v)}`);
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new RangeError(`SharedHeap.create(options.${name}): expected an integer from ${min} to ${max}, got ${describe(v)}`);
  }
  return v;
}

/**
 * A new heap's buffer, set up, and the shared WebAssembly.Memory it is the buffer of when the heap
 * has a fixed size and the platform makes one (wasm-copy.ts; else undefined).
 */
/** Two random 32-bit words: the platform's cryptographic source where there is one (Node, browsers). */
function randomWords(): Uint32Array {
  const words = new Uint32Array(2);
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint32Array) => Uint32Array } }).crypto;
  if (typeof c?.getRandomValues === 'function') c.getRandomValues(words);
  else for (let k = 0; k < 2; k++) words[k] = Math.random() * 0x100000000;
  return words;
}

export function createBuffer(options: HeapOptions): { buffer: SharedArrayBuffer; memory: SharedMemory | undefined } {
  if (typeof SharedArrayBuffer === 'undefined') {
    throw new HeapStateError(
      'SharedHeap.create(options): SharedArrayBuffer is not defined here. A browser page needs cross-origin isolation: ' +
        'serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp ' +
        '(self.crossOriginIsolated is then true)',
    );
  }
  if (!isObjectArgument(options)) {
    throw new TypeError(`SharedHeap.create(options): expected an object, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!OPTION_NAMES.includes(key)) {
      throw new TypeError(
        `SharedHeap.create(options): unknown option ${JSON.stringify(key.length > 40 ? key.slice(0, 40) + '...' : key)} ` +
          `(the options are ${OPTION_NAMES.join(', ')})`,
      );
    }
  }
  // At least two SuperSlabs: the metadata takes one or more, and blocks need one.
  const initialBytes = option(o, 'initialBytes', 64 << 20, 2 * SUPER_BYTES, MAX_HEAP_BYTES);
  const maxBytes = option(o, 'maxBytes', Math.max(initialBytes, 0), 2 * SUPER_BYTES, MAX_HEAP_BYTES);
  // The defaults named as such: a message must not present a value the caller never passed as theirs.
  const initialNamed = o.initialBytes === undefined ? `the default initialBytes ${initialBytes}` : `options.initialBytes ${initialBytes}`;
  if (maxBytes < initialBytes) {
    throw new RangeError(
      `SharedHeap.create(options.maxBytes): ${maxBytes} is below ${initialNamed}` + (o.initialBytes === undefined ? '; pass initialBytes too' : ''),
    );
  }
  const maxThreads = option(o, 'maxThreads', 64, 1, MAX_THREADS_OPTION);
  const magCap = option(o, 'magazineCapacity', 64, 1, MAX_MAGAZINE_CAPACITY);
  const refill = option(o, 'refillCount', 32, 1, 4096);
  const drainInterval = option(o, 'drainInterval', 1024, 1, 2 ** 30);
  const keep = option(o, 'stage1Keep', 1024, 0, 1 << 20);
  const trimInterval = option(o, 'trimInterval', 0, 0, 1 << 20);
  const debug = o.debug;
  if (debug !== undefined && typeof debug !== 'boolean') {
    throw new TypeError(`SharedHeap.create(options.debug): expected a boolean, got ${describe(debug)}`);
  }
  const maxSupers = Math.ceil(maxBytes / SUPER_BYTES);
  // The slots for reclaims too (layout.ts RECLAIM_SLOTS).
  const slots = maxThreads + RECLAIM_SLOTS;
  const geo = geometry(maxSupers, slots, magCap, NUM_CLASSES);
  const initialSupers = Math.ceil(initialBytes / SUPER_BYTES);
  if (initialSupers < geo.metaSupers + 1 || maxSupers < geo.metaSupers + 1) {
    // Named after what the caller passed: the metadata grows with maxThreads x magazineCapacity
    // (each slot's magazines) and with maxBytes (the slot table).
    const given = (['initialBytes', 'maxBytes', 'maxThreads', 'magazineCapacity'] as const).filter((k) => o[k] !== undefined);
    // The least size that works: where maxBytes has to grow to it, so does the slot table in the
    // metadata, so it is sought where it stops moving (an audit: the size named was refused).
    let least = geo.metaSupers + 1;
    for (let s = Math.max(maxSupers, least); ; s = least) {
      least = geometry(s, slots, magCap, NUM_CLASSES).metaSupers + 1;
      if (least <= s) break;
    }
    throw new RangeError(
      `SharedHeap.create(options${given.length > 0 ? '.' + given.join(', options.') : ''}): ${initialNamed} leaves no room for blocks; the metadata for ` +
        `maxBytes ${maxBytes}, maxThreads ${maxThreads} and magazineCapacity ${magCap} takes ${geo.metaSupers} MiB, so initialBytes and ` +
        `maxBytes of at least ${least * SUPER_BYTES} are needed (or fewer maxThreads, or a smaller magazineCapacity)`,
    );
  }
  const bytes = initialSupers * SUPER_BYTES;
  const growable = maxSupers > initialSupers;
  const memory = growable ? undefined : createSharedMemory(bytes);
  // The option whose value the platform refused, named as the caller gave it: maxBytes reserves
  // the address space of a growable buffer; initialBytes sizes one of a fixed size.
  const refused = growable ? `options.maxBytes): ${maxBytes}` : o.initialBytes === undefined ? `options): ${initialNamed}` : `options.initialBytes): ${initialBytes}`;
  let buffer: SharedArrayBuffer;
  try {
    buffer =
      growable
        ? new (SharedArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => SharedArrayBuffer)(bytes, {
            maxByteLength: maxSupers * SUPER_BYTES,
          })
        : (memory?.buffer ?? new SharedArrayBuffer(bytes));
  } catch (e) {
    // The engine's own "Array buffer allocation failed" (no memory or address space left: the
    // fourth heap of maxBytes 2047 MiB in a process under `ulimit -v 8000000`) named no call,
    // option or value (an audit of growable heaps).
    if (!(e instanceof RangeError)) throw e;
    throw new RangeError(
      `SharedHeap.create(${refused}: this platform could not allocate a SharedArrayBuffer of ${bytes} bytes` +
        (growable ? ` growable to ${maxSupers * SUPER_BYTES}` : '') + ` (RangeError: ${e.message}); a smaller ` +
        (growable ? 'maxBytes reserves less address space' : 'initialBytes needs less memory'),
      { cause: e },
    );
  }
  // A runtime whose SharedArrayBuffer takes no maxByteLength (an engine from before growable
  // SharedArrayBuffers, ES2024) made a buffer of a fixed size here, one that caps it a shorter
  // one, and the heap never grew past that (slots.ts growBuffer): malloc answered 0 where maxBytes
  // had room (an audit, test/create-buffer-refused.test.ts).
  const grows = buffer as SharedArrayBuffer & { growable?: boolean; maxByteLength?: number; grow?: unknown };
  if (growable && (grows.growable !== true || typeof grows.grow !== 'function' || (grows.maxByteLength ?? 0) < maxSupers * SUPER_BYTES)) {
    throw new RangeError(
      `SharedHeap.create(options.maxBytes): ${maxBytes} needs a growable SharedArrayBuffer, which this platform does not make ` +
        (grows.growable === true && typeof grows.grow === 'function'
          ? `to ${maxSupers * SUPER_BYTES} bytes (its buffer grows to ${grows.maxByteLength} at most)`
          : '(its buffers keep the size they are made with)') +
        `; pass maxBytes equal to initialBytes (${initialBytes}), or as initialBytes the most the heap may need`,
    );
  }
  const i32 = new Int32Array(buffer);
  i32[G_VERSION] = LAYOUT_VERSION;
  // 52 random bits (the low word odd): two heaps with one id would be one to attach() and to the Web Lock names (with
  // 31 bits from Math.random, a pair of heaps collided once in 2^30).
  const [low, high] = randomWords();
  i32[G_HEAP_ID] = (low! & 0x7fffffff) | 1;
  i32[G_HEAP_ID_HIGH] = high! >>> 10;
  i32[G_MAX_SUPERS] = maxSupers;
  i32[G_MAX_THREADS] = slots;
  i32[G_META_SUPERS] = geo.metaSupers;
  i32[G_MAG_CAP] = magCap;
  i32[G_REFILL] = refill;
  i32[G_DRAIN_INTERVAL] = drainInterval;
  i32[G_S1_KEEP] = keep;
  i32[G_TRIM_INTERVAL] = trimInterval;
  i32[G_DEBUG] = debug === true ? 1 : 0;
  i32[G_BUFFER_SUPERS] = initialSupers;
  i32[G_CARVED] = geo.metaSupers;
  i32[G_NEXT_THREAD_ID] = FIRST_HEAP_THREAD_ID;
  i32[DETACHED_W] = MAG_EMPTY_SENTINEL;
  for (let c = 0; c < CLASS_SLOTS; c++) i32[DETACHED_TOPS_W + c] = DETACHED_TOPS_W;
  Atomics.store(i32, G_MAGIC, MAGIC); // last: attach() checks it
  return { buffer, memory };
}

