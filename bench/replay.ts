/**
 * W5: replay a recorded allocation trace (shared/workloads.md, "W5 replay").
 *
 * A trace is text, optionally gzip-compressed (by a `.gz` name or by the gzip
 * magic bytes), one operation a line:
 *
 *   a <id> <size>   malloc(size); the block is known as <id> from now on
 *   c <id> <size>   calloc(1, size); its bytes must read as zero
 *   r <id> <size>   realloc the block <id> to size bytes; it keeps the name <id>
 *   f <id>          free the block <id>
 *   # ...           a comment; blank lines are ignored too
 *
 * Fields are separated by spaces or tabs; a line may end in CRLF, and the file may start with a
 * UTF-8 byte order mark. Ids are
 * decimal below 2^31 and may be reused once their block is freed; sizes are
 * decimal below 2^31.
 *
 * Two phases:
 * 1. {@link parseTrace} (untimed) reads the whole trace into typed arrays and
 *    checks it: a malformed line, an `a`/`c` of an id that is still live, or
 *    an `r`/`f` of an id that is not live throws a {@link TraceError} naming
 *    the line number, so the replay stops there before any operation runs.
 *    Ids are renamed to dense slots, so the replay needs no Map.
 * 2. {@link replay} (timed, with `performance.now()`) runs the operations.
 *    Each block gets a marker byte (`i % 255 + 1` for the i-th operation) at
 *    its first and last byte; before each free and realloc both are checked,
 *    after a realloc the preserved ones are checked too, and a calloc's first
 *    and last bytes must read as zero. Blocks still live at the end are
 *    checked and freed afterwards, untimed.
 */
import { constants as bufferConstants } from 'node:buffer';
import { closeSync, fstatSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { WorkloadCorruptionError, WorkloadOutOfMemoryError, type Allocator } from './workloads.js';

/** The allocator interface the replayer needs. */
export interface ReplayAllocator extends Allocator {
  calloc(n: number, size: number): number;
  realloc(ptr: number, size: number): number;
  /** Optional: bytes taken from the OS or the buffer so far (high-water), reported as the footprint. */
  footprint?(): number;
}

/** Operation kinds of a parsed trace. */
export const OP_MALLOC = 0;
export const OP_CALLOC = 1;
export const OP_REALLOC = 2;
export const OP_FREE = 3;

/** A parsed, checked trace: operation `i` is `kind[i]` on slot `slot[i]` with `size[i]` (0 for frees). */
export interface Trace {
  readonly name: string;
  readonly count: number;
  readonly kind: Uint8Array;
  readonly slot: Int32Array;
  readonly size: Int32Array;
  /** 1-based line number of each operation, for error messages. */
  readonly line: Int32Array;
  /** Number of dense slots: the most blocks live at once. */
  readonly slots: number;
}

export interface ReplayResult extends Omit<ReplayCounts, 'liveBytes'> {
  name: string;
  /**
   * Sum of the sizes of the a, c and r operations: a property of the trace ({@link traceBytesRequested}),
   * not summed in the timed loop, where the sum passing 2^31 deoptimized the loop in the middle of the first run.
   */
  bytesRequested: number;
  /** Operations replayed (a, c, r and f lines). */
  ops: number;
  /** Blocks and bytes the trace left live (freed afterwards, untimed). */
  liveBlocksAtEnd: number;
  liveBytesAtEnd: number;
  /** `alloc.footprint()` after the replay, if the allocator has it. */
  footprintBytes: number | undefined;
  /** footprintBytes / peakLiveBytes, if both are known and non-zero. */
  footprintRatio: number | undefined;
  opsPerSec: number;
  /** With a split (replay's `split`): ns of operations [0, split) and of [split, ops); elapsedNs is their sum. */
  partNs?: [number, number];
}

/** A malformed or inconsistent trace line. */
export class TraceError extends Error {
  readonly code = 'TRACE_MALFORMED';
  override name = 'TraceError';
  constructor(
    readonly traceName: string,
    readonly lineNumber: number,
    reason: string,
    text: string,
  ) {
    super(`${traceName}: line ${lineNumber}: ${reason}: ${JSON.stringify(text)}`);
  }
}

const MAX_VALUE = 0x7fff_ffff; // ids and sizes are below 2^31
const CH_NL = 0x0a;
const CH_CR = 0x0d;
const CH_SPACE = 0x20;
const CH_TAB = 0x09;
const CH_HASH = 0x23;
const CH_0 = 0x30;
const CH_9 = 0x39;

/** Reads a trace file (gzip if the name ends in `.gz` or the data starts with the gzip magic). */
export function readTraceBytes(path: string): Uint8Array {
  const raw = readWhole(path);
  const gz = path.endsWith('.gz') || (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b);
  if (!gz) return raw;
  try {
    return gunzipSync(raw);
  } catch (err) {
    throw new Error(`${path}: not a whole gzip file (${(err as Error).message})`);
  }
}

/**
 * The bytes of a file. readFileSync refuses a file above 2 GiB with "File size (N) is greater
 * than 2 GiB", naming no file, though a plain trace of some 130 M operations is that long (and
 * the same trace gzipped was read); such a file is read in pieces, up to the largest Buffer.
 */
function readWhole(path: string): Uint8Array {
  try {
    return readFileSync(path); // also pipes (`--trace <(zcat t.gz)`), whose size fstat does not know
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_FS_FILE_TOO_LARGE') throw err;
  }
  const fd = openSync(path, 'r');
  try {
    const bytes = fstatSync(fd).size;
    if (bytes > bufferConstants.MAX_LENGTH) {
      throw new RangeError(`readTraceBytes(path): ${path}: ${bytes} bytes, more than a Buffer holds (${bufferConstants.MAX_LENGTH})`);
    }
    const buf = Buffer.allocUnsafe(bytes);
    let off = 0;
    while (off < bytes) {
      const n = readSync(fd, buf, off, Math.min(bytes - off, 1 << 30), off);
      if (n === 0) break; // the file shrank meanwhile
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** Reads and parses a trace file. */
export function loadTrace(path: string): Trace {
  return parseTrace(readTraceBytes(path), path);
}

// ---------------------------------------------------------------------------
// The parsed form on disk: what `sabmalloc bench` hands to its workers and to
// the native replayer (bench/native/workloads.c, `W5 --ops FILE`), so that
// the text is parsed once, untimed, in the main thread. Host byte order:
//
//   bytes 0-7    magic "SABW5OPS"
//   bytes 8-23   uint32 version (1), count, slots, reserved (0)
//   then         kind  uint8[count], zero-padded to a multiple of 4 bytes
//                slot  int32[count]
//                size  int32[count]
//                line  int32[count]   (line numbers, for error messages)

const OPS_MAGIC = 'SABW5OPS';
const OPS_VERSION = 1;
const OPS_HEADER_BYTES = 24;

/** Writes a parsed trace in the binary form above. */
export function writeTraceOps(trace: Trace, path: string): void {
  const n = trace.count;
  const kindBytes = (n + 3) & ~3;
  const header = new Uint8Array(OPS_HEADER_BYTES);
  header.set(new TextEncoder().encode(OPS_MAGIC), 0);
  const h32 = new Uint32Array(header.buffer, 8, 4);
  h32[0] = OPS_VERSION;
  h32[1] = n;
  h32[2] = trace.slots;
  h32[3] = 0;
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, header);
    writeSync(fd, trace.kind.subarray(0, n));
    if (kindBytes > n) writeSync(fd, new Uint8Array(kindBytes - n));
    for (const a of [trace.slot, trace.size, trace.line]) writeSync(fd, new Uint8Array(a.buffer, a.byteOffset, 4 * n));
  } finally {
    closeSync(fd);
  }
}

/** Reads a trace written by {@link writeTraceOps}; `name` names it in error messages. */
export function readTraceOps(path: string, name = path): Trace {
  const raw = readFileSync(path);
  const bad = (why: string): never => {
    throw new Error(`${path}: not a parsed W5 trace (${why})`);
  };
  if (raw.length < OPS_HEADER_BYTES || new TextDecoder().decode(raw.subarray(0, 8)) !== OPS_MAGIC) bad('no magic');
  // Copy into an aligned buffer (readFileSync's Buffer may start at any offset of its pool).
  const bytes = new Uint8Array(raw.length);
  bytes.set(raw);
  const h32 = new Uint32Array(bytes.buffer, 8, 4);
  if (h32[0] !== OPS_VERSION) bad(`version ${h32[0]}`);
  const count = h32[1]!;
  const slots = h32[2]!;
  const kindBytes = (count + 3) & ~3;
  if (bytes.length !== OPS_HEADER_BYTES + kindBytes + 12 * count) bad('wrong length');
  let off = OPS_HEADER_BYTES;
  const kind = bytes.subarray(off, off + count);
  off += kindBytes;
  const slot = new Int32Array(bytes.buffer, off, count);
  const size = new Int32Array(bytes.buffer, off + 4 * count, count);
  const line = new Int32Array(bytes.buffer, off + 8 * count, count);
  return { name, count, kind, slot, size, line, slots };
}

const bytesRequestedOf = new WeakMap<Trace, number>();

/** Sum of the sizes of a parsed trace's a, c and r operations (computed once per trace). */
export function traceBytesRequested(t: Trace): number {
  let sum = bytesRequestedOf.get(t);
  if (sum === undefined) {
    sum = 0;
    for (let i = 0; i < t.count; i++) if (t.kind[i] !== OP_FREE) sum += t.size[i]!;
    bytesRequestedOf.set(t, sum);
  }
  return sum;
}

/** Operations and peak live requested bytes of a parsed trace. */
export function tracePeakLive(t: Trace): number {
  const sizes = new Float64Array(Math.max(1, t.slots));
  let live = 0;
  let peak = 0;
  for (let i = 0; i < t.count; i++) {
    const s = t.slot[i]!;
    const k = t.kind[i]!;
    if (k === OP_FREE) {
      live -= sizes[s]!;
      sizes[s] = 0;
    } else {
      if (k === OP_REALLOC) live -= sizes[s]!;
      sizes[s] = t.size[i]!;
      live += t.size[i]!;
      if (live > peak) peak = live;
    }
  }
  return peak;
}

/**
 * Ids below this are mapped to their slots through a typed array indexed by id (at most 64 MiB),
 * larger ones through a Map. Recorders hand out small ids (trace-record.c the lowest free one),
 * and V8's Map, under a trace's churn of sets and deletes, took about 0.9 us an operation: 10.9 s
 * of perl_words' 11.0 s parse (5.9 M lines, ids below 48,278), now 0.37 s (docs/performance.md, "Parsing traces").
 */
const DENSE_IDS = 1 << 24;

/** Parses and checks a whole trace; throws a {@link TraceError} at the first bad line. */
export function parseTrace(data: Uint8Array | string, name = 'trace'): Trace {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const n = bytes.length;
  let lineCount = 1;
  for (let i = 0; i < n; i++) if (bytes[i] === CH_NL) lineCount++;

  const kind = new Uint8Array(lineCount);
  const slot = new Int32Array(lineCount);
  const size = new Int32Array(lineCount);
  const line = new Int32Array(lineCount);
  let slotOfId = new Int32Array(1024); // live id -> slot + 1 (0: not live), ids below DENSE_IDS
  const slotOf = new Map<number, number>(); // live id -> slot, ids from DENSE_IDS up
  const freeSlots: number[] = [];
  let slots = 0;
  let count = 0;

  // A byte order mark at the start (a trace saved by an editor that writes one) is skipped, as CRLF
  // line ends are taken: it made the first line "an unknown operation" that the message, decoded
  // without the mark, showed as a valid line (an audit).
  let pos = n >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  for (let lineNo = 1; pos <= n; lineNo++) {
    const start = pos;
    let end = pos;
    while (end < n && bytes[end] !== CH_NL) end++;
    pos = end + 1;
    if (end > start && bytes[end - 1] === CH_CR) end--;

    let i = skipBlanks(bytes, start, end);
    if (i === end || bytes[i] === CH_HASH) continue;

    const op = bytes[i]!;
    let k: number;
    if (op === 0x61 /* a */) k = OP_MALLOC;
    else if (op === 0x63 /* c */) k = OP_CALLOC;
    else if (op === 0x72 /* r */) k = OP_REALLOC;
    else if (op === 0x66 /* f */) k = OP_FREE;
    else fail(name, bytes, lineNo, start, end, `unknown operation (expected a, c, r, f or #)`);
    i++;
    if (i < end && !isBlank(bytes[i]!)) fail(name, bytes, lineNo, start, end, 'unknown operation (expected a, c, r, f or #)');

    i = skipBlanks(bytes, i, end);
    const idEnd = scanDigits(bytes, i, end);
    if (idEnd === i) fail(name, bytes, lineNo, start, end, 'expected a decimal id');
    const id = decimal(bytes, i, idEnd);
    if (id > MAX_VALUE) fail(name, bytes, lineNo, start, end, 'id must be below 2^31');
    i = idEnd;

    let sz = 0;
    if (k !== OP_FREE) {
      if (i < end && !isBlank(bytes[i]!)) fail(name, bytes, lineNo, start, end, 'expected a decimal id');
      i = skipBlanks(bytes, i, end);
      const sizeEnd = scanDigits(bytes, i, end);
      if (sizeEnd === i) fail(name, bytes, lineNo, start, end, 'expected a decimal size');
      sz = decimal(bytes, i, sizeEnd);
      if (sz > MAX_VALUE) fail(name, bytes, lineNo, start, end, 'size must be below 2^31');
      i = sizeEnd;
    }
    if (i < end && !isBlank(bytes[i]!)) fail(name, bytes, lineNo, start, end, k === OP_FREE ? 'expected a decimal id' : 'expected a decimal size');
    if (skipBlanks(bytes, i, end) !== end) fail(name, bytes, lineNo, start, end, k === OP_FREE ? "unexpected field after 'f <id>'" : 'unexpected field after the size');

    const dense = id < DENSE_IDS;
    if (dense && id >= slotOfId.length) {
      let len = slotOfId.length * 2;
      while (len <= id) len *= 2;
      const grown = new Int32Array(Math.min(len, DENSE_IDS));
      grown.set(slotOfId);
      slotOfId = grown;
    }
    let s = dense ? slotOfId[id]! - 1 : (slotOf.get(id) ?? -1);
    if (k === OP_MALLOC || k === OP_CALLOC) {
      if (s >= 0) fail(name, bytes, lineNo, start, end, `id ${id} is still live`);
      s = freeSlots.length > 0 ? freeSlots.pop()! : slots++;
      if (dense) slotOfId[id] = s + 1;
      else slotOf.set(id, s);
    } else {
      if (s < 0) fail(name, bytes, lineNo, start, end, `id ${id} is not live`);
      if (k === OP_FREE) {
        if (dense) slotOfId[id] = 0;
        else slotOf.delete(id);
        freeSlots.push(s);
      }
    }
    kind[count] = k;
    slot[count] = s;
    size[count] = sz;
    line[count] = lineNo;
    count++;
  }
  return { name, count, kind, slot, size, line, slots };
}

/** The slow paths of {@link replayLoop}, passed in so that the loop stays self-contained. */
export interface ReplayFailures {
  outOfMemory(trace: Trace, i: number, fn: string, size: number): never;
  corrupted(trace: Trace, i: number, p: number, size: number, what: string, expected: number, b0: number, b1: number): never;
}

const REPLAY_FAILURES: ReplayFailures = { outOfMemory: replayOutOfMemory, corrupted: replayCorrupted };

/** The blocks a replay holds, by dense slot. */
export interface ReplayState {
  readonly ptrs: Int32Array;
  readonly sizes: Int32Array;
  readonly tags: Uint8Array;
  /** 1 while the slot's block is live. */
  readonly used: Uint8Array;
}

/** What {@link replayLoop} counts. */
export interface ReplayCounts {
  mallocs: number;
  callocs: number;
  reallocs: number;
  frees: number;
  /** Peak of live requested bytes. */
  peakLiveBytes: number;
  /** Live requested bytes when the loop ended. */
  liveBytes: number;
  /** uint32 sum of the marker bytes read back. */
  checksum: number;
  elapsedNs: number;
}

/** The signature of {@link replayLoop} (and of its per-allocator copies). */
export type ReplayLoop = typeof replayLoop;

/**
 * Replays a parsed trace on `alloc`: the operations are timed; the blocks
 * the trace leaves live are then checked and freed (untimed). `loop` is
 * {@link replayLoop} or a copy of it compiled for this allocator. `split`:
 * the loop runs twice, over operations [0, split) and [split, count) (two
 * views of the trace, one state), timed apart in `partNs` (bench/phases.ts).
 */
export function replay(alloc: ReplayAllocator, trace: Trace, loop: ReplayLoop = replayLoop, split?: number): ReplayResult {
  const n = Math.max(1, trace.slots);
  const state: ReplayState = { ptrs: new Int32Array(n), sizes: new Int32Array(n), tags: new Uint8Array(n), used: new Uint8Array(n) };
  // Resident before the timer, as the native replayer's arrays are (bench/native/workloads.c
  // writes them before its clock starts): a typed array this large comes from fresh pages that
  // fault on first touch, and on a machine where a first touch costs 5-13 us a page (this one:
  // Firecracker, AMD EPYC) xmllint_format's 2.9 M slots took 7,000 of those in the timed loop,
  // about 90 ms of a 1.2 s replay charged to the allocator under test.
  state.ptrs.fill(0);
  state.sizes.fill(0);
  state.tags.fill(0);
  state.used.fill(0);
  let c: ReplayCounts;
  let partNs: [number, number] | undefined;
  if (split === undefined) {
    c = loop(alloc, trace, state, REPLAY_FAILURES);
  } else {
    const k = Math.max(0, Math.min(trace.count, split));
    const a = loop(alloc, traceSlice(trace, 0, k), state, REPLAY_FAILURES);
    const b = loop(alloc, traceSlice(trace, k, trace.count), state, REPLAY_FAILURES);
    partNs = [a.elapsedNs, b.elapsedNs];
    c = {
      mallocs: a.mallocs + b.mallocs,
      callocs: a.callocs + b.callocs,
      reallocs: a.reallocs + b.reallocs,
      frees: a.frees + b.frees,
      // The second part starts from no live bytes of its own: its peak is over the first part's end.
      peakLiveBytes: Math.max(a.peakLiveBytes, a.liveBytes + b.peakLiveBytes),
      liveBytes: a.liveBytes + b.liveBytes,
      checksum: (a.checksum + b.checksum) >>> 0,
      elapsedNs: a.elapsedNs + b.elapsedNs,
    };
  }
  const footprintBytes = alloc.footprint?.();

  // Untimed: check and free what the trace left live.
  const { ptrs, sizes, tags, used } = state;
  const u8 = alloc.u8;
  let liveBlocksAtEnd = 0;
  for (let s = 0; s < ptrs.length; s++) {
    const p = ptrs[s]!;
    const sz = sizes[s]!;
    if (used[s] === 0) continue;
    liveBlocksAtEnd++;
    if (sz > 0 && (u8[p] !== tags[s] || u8[p + sz - 1] !== tags[s])) {
      replayCorrupted(trace, trace.count, p, sz, 'block was overwritten (found at the end)', tags[s]!, u8[p]!, u8[p + sz - 1]!);
    }
    if (p !== 0) alloc.free(p);
  }

  const { liveBytes, ...counts } = c;
  return {
    name: trace.name,
    ops: trace.count,
    ...counts,
    bytesRequested: traceBytesRequested(trace),
    liveBlocksAtEnd,
    liveBytesAtEnd: liveBytes,
    footprintBytes,
    footprintRatio: footprintBytes !== undefined && c.peakLiveBytes > 0 ? footprintBytes / c.peakLiveBytes : undefined,
    opsPerSec: c.elapsedNs > 0 ? (trace.count * 1e9) / c.elapsedNs : 0,
    ...(partNs !== undefined ? { partNs } : {}),
  };
}

/** Operations [from, to) of `trace` as a trace of their own (views, no copy; line numbers kept). */
export function traceSlice(trace: Trace, from: number, to: number): Trace {
  return {
    ...trace,
    count: to - from,
    kind: trace.kind.subarray(from, to),
    slot: trace.slot.subarray(from, to),
    size: trace.size.subarray(from, to),
    line: trace.line.subarray(from, to),
  };
}

/**
 * Where the trace's final frees begin: the index after its last operation that is not a free
 * (the program's exit, as a C program that frees what it holds before it ends; `count` if the
 * trace ends with anything else).
 */
export function finalFreesStart(trace: Trace): number {
  let k = trace.count;
  while (k > 0 && trace.kind[k - 1] === OP_FREE) k--;
  return k;
}

/**
 * The timed replay loop. Self-contained: it refers to nothing but its
 * parameters and globals, so that bench/copies.ts can compile a copy per
 * allocator from its source text; hence the operation kinds as literals
 * (0 {@link OP_MALLOC}, 1 {@link OP_CALLOC}, 2 {@link OP_REALLOC},
 * 3 {@link OP_FREE}). `alloc.u8` is read again only when a block ends past
 * the view (a heap that grew during the replay).
 */
export function replayLoop(alloc: ReplayAllocator, trace: Trace, state: ReplayState, fail: ReplayFailures): ReplayCounts {
  const count = trace.count;
  const kind = trace.kind;
  const slot = trace.slot;
  const size = trace.size;
  const ptrs = state.ptrs;
  const sizes = state.sizes;
  const tags = state.tags;
  const used = state.used;
  let u8 = alloc.u8;
  let mallocs = 0;
  let callocs = 0;
  let reallocs = 0;
  let frees = 0;
  let live = 0;
  let peakLive = 0;
  let checksum = 0;

  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const k = kind[i]!;
    const s = slot[i]!;
    const tag = (i % 255) + 1;
    if (k <= 1 /* OP_MALLOC, OP_CALLOC */) {
      const sz = size[i]!;
      let p: number;
      if (k === 0) {
        p = alloc.malloc(sz);
        mallocs++;
      } else {
        p = alloc.calloc(1, sz);
        callocs++;
      }
      if (sz > 0) {
        if (p === 0) fail.outOfMemory(trace, i, k === 0 ? 'malloc' : 'calloc', sz);
        if (p + sz > u8.length) u8 = alloc.u8; // the heap grew
        if (k === 1) {
          const z0 = u8[p]!;
          const z1 = u8[p + sz - 1]!;
          if ((z0 | z1) !== 0) fail.corrupted(trace, i, p, sz, 'calloc returned bytes that are not zero', 0, z0, z1);
        }
        u8[p] = tag;
        u8[p + sz - 1] = tag;
      }
      ptrs[s] = p;
      sizes[s] = sz;
      tags[s] = tag;
      used[s] = 1;
      live += sz;
      if (live > peakLive) peakLive = live;
    } else {
      const p = ptrs[s]!;
      const old = sizes[s]!;
      const oldTag = tags[s]!;
      if (old > 0) {
        const b0 = u8[p]!;
        const b1 = u8[p + old - 1]!;
        if (b0 !== oldTag || b1 !== oldTag) fail.corrupted(trace, i, p, old, 'block was overwritten', oldTag, b0, b1);
        checksum = (checksum + b0 + b1) | 0; // int32 in the loop (a uint32 above 2^31 would deopt it), uint32 at the end
      }
      if (k === 3 /* OP_FREE */) {
        if (p !== 0) alloc.free(p);
        ptrs[s] = 0;
        sizes[s] = 0;
        used[s] = 0;
        live -= old;
        frees++;
      } else {
        const sz = size[i]!;
        const q = alloc.realloc(p, sz);
        if (sz > 0) {
          if (q === 0) fail.outOfMemory(trace, i, 'realloc', sz);
          if (q + sz > u8.length) u8 = alloc.u8; // the heap grew
          const kept = old < sz ? old : sz;
          if (kept > 0) {
            const c0 = u8[q]!;
            const c1 = u8[q + kept - 1]!;
            const want1 = kept === old ? oldTag : c1; // the old last byte survives only if nothing was cut
            if (c0 !== oldTag || c1 !== want1) fail.corrupted(trace, i, q, sz, 'realloc did not preserve the contents', oldTag, c0, c1);
          }
          u8[q] = tag;
          u8[q + sz - 1] = tag;
        }
        ptrs[s] = q;
        sizes[s] = sz;
        tags[s] = tag;
        live += sz - old;
        if (live > peakLive) peakLive = live;
        reallocs++;
      }
    }
  }
  const elapsedNs = Math.round((performance.now() - t0) * 1e6);
  return { mallocs, callocs, reallocs, frees, peakLiveBytes: peakLive, liveBytes: live, checksum: checksum >>> 0, elapsedNs };
}

/** Reads, parses and replays a trace file. */
export function replayFile(alloc: ReplayAllocator, path: string): ReplayResult {
  return replay(alloc, loadTrace(path));
}

// ---------------------------------------------------------------------------
// Helpers and slow paths

/**
 * The most bytes of a bad line an error quotes: a file given by mistake (a binary, a log) can be
 * one "line" of megabytes, all of which the error printed (11.6 MB for a 5 MB binary file).
 */
const QUOTE_MAX = 120;

function fail(name: string, bytes: Uint8Array, lineNo: number, start: number, end: number, reason: string): never {
  const long = end - start > QUOTE_MAX;
  const text = new TextDecoder().decode(bytes.subarray(start, long ? start + QUOTE_MAX : end));
  throw new TraceError(name, lineNo, long ? `${reason} (a line of ${end - start} bytes; its first ${QUOTE_MAX} quoted)` : reason, text);
}

function isBlank(c: number): boolean {
  return c === CH_SPACE || c === CH_TAB;
}

function skipBlanks(bytes: Uint8Array, i: number, end: number): number {
  while (i < end && isBlank(bytes[i]!)) i++;
  return i;
}

function scanDigits(bytes: Uint8Array, i: number, end: number): number {
  while (i < end && bytes[i]! >= CH_0 && bytes[i]! <= CH_9) i++;
  return i;
}

/** Value of the digits in [i, end); anything above 2^31 is returned as MAX_VALUE + 1. */
function decimal(bytes: Uint8Array, i: number, end: number): number {
  let v = 0;
  for (; i < end; i++) {
    v = v * 10 + (bytes[i]! - CH_0);
    if (v > MAX_VALUE) return MAX_VALUE + 1;
  }
  return v;
}

function replayOutOfMemory(trace: Trace, i: number, fn: string, size: number): never {
  throw new WorkloadOutOfMemoryError(`${trace.name}: line ${trace.line[i]}: ${fn}(${size}) returned 0 (out of memory)`);
}

function replayCorrupted(
  trace: Trace,
  i: number,
  p: number,
  size: number,
  what: string,
  expected: number,
  b0: number,
  b1: number,
): never {
  const where = i < trace.count ? `line ${trace.line[i]}` : 'end of trace';
  throw new WorkloadCorruptionError(
    `${trace.name}: ${where}: ${what}: block 0x${p.toString(16)} (size ${size}): ` +
      `expected ${expected}, found ${b0} at the start and ${b1} at the end`,
  );
}
