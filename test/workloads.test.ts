import { spawnSync } from 'node:child_process';
/**
 * The benchmark workloads (bench/workloads.ts), the W5 replayer
 * (bench/replay.ts) and the native peer (bench/native.ts), checked against
 * the reference counts of shared/workloads.md, against a trivial reference
 * allocator, and against a deliberately broken allocator to prove that the
 * harness can fail.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { nativeAllocators, nativeSkipReason, nativeSourcePath, runNative } from '../bench/native.js';
import { ReferenceAllocator } from '../bench/reference-alloc.js';
import { copyFor } from '../bench/copies.js';
import {
  loadTrace,
  parseTrace,
  readTraceOps,
  replay,
  replayFile,
  replayLoop,
  TraceError,
  tracePeakLive,
  writeTraceOps,
  type ReplayAllocator,
} from '../bench/replay.js';
import { makeSampleTrace } from '../bench/traces/make-sample.js';
import {
  larsonCleanup,
  larsonFill,
  larsonHeld,
  larsonRound,
  larsonRoundLoop,
  emptyResult,
  slotCleanup,
  slotLoop,
  threadRng,
  threadSeed,
  w1,
  w2,
  w3Sequential,
  WorkloadCorruptionError,
  WorkloadOutOfMemoryError,
  XorShift32,
  W3_MIN_SIZE,
  W3_SIZE_SPAN,
  type Allocator,
  type LarsonBlocks,
} from '../bench/workloads.js';

const SAMPLE_TRACE = new URL('../bench/traces/sample.trace', import.meta.url);
const MiB = 1 << 20;

/** Hands out blocks only `spacing` bytes apart whatever the size: overlapping memory. */
class OverlappingAllocator implements ReplayAllocator {
  readonly u8 = new Uint8Array(4 * MiB);
  private top = 16;
  constructor(private readonly spacing = 8) {}
  malloc(): number {
    const p = this.top;
    this.top += this.spacing;
    return p;
  }
  free(): void {}
  calloc(n: number, size: number): number {
    const p = this.malloc();
    this.u8.fill(0, p, p + n * size);
    return p;
  }
  realloc(): number {
    return this.malloc();
  }
}

/** Wraps an allocator and records which simulated thread allocated each block. */
class OwnerTrackingAllocator implements Allocator {
  current = 0;
  crossThreadFrees = 0;
  readonly owner = new Map<number, number>();
  constructor(private readonly inner: Allocator) {}
  get u8(): Uint8Array {
    return this.inner.u8;
  }
  malloc(size: number): number {
    const p = this.inner.malloc(size);
    this.owner.set(p, this.current);
    return p;
  }
  free(ptr: number): void {
    if (this.owner.get(ptr) !== this.current) this.crossThreadFrees++;
    this.owner.delete(ptr);
    this.inner.free(ptr);
  }
}

describe('xorshift32 and per-thread seeding', () => {
  it('follows xorshift32 (13, 17, 5)', () => {
    const rng = new XorShift32(1);
    expect(rng.next()).toBe(270369); // 1 ^ 1<<13 = 8193; ^ >>>17 = 8193; ^ <<5 = 270369
    let x = 0xdeadbeefn;
    const big = new XorShift32(0xdeadbeef);
    for (let i = 0; i < 1000; i++) {
      x ^= (x << 13n) & 0xffffffffn;
      x ^= x >> 17n;
      x ^= (x << 5n) & 0xffffffffn;
      expect(big.next()).toBe(Number(x));
    }
  });

  it('rejects a zero seed', () => {
    expect(() => new XorShift32(0)).toThrow(RangeError);
  });

  it('seeds thread t with seed + t * 0x9E3779B9 mod 2^32, 0 -> 1', () => {
    for (const seed of [1, 42, 4141, 1234567, 0xffffffff]) {
      for (let t = 0; t < 64; t++) {
        const want = Number((BigInt(seed) + BigInt(t) * 0x9e3779b9n) % 2n ** 32n);
        expect(threadSeed(seed, t), `seed ${seed} thread ${t}`).toBe(want === 0 ? 1 : want);
      }
    }
    expect(threadSeed(42, 0)).toBe(42);
    expect(threadSeed(0x61c88647, 1)).toBe(1); // 0x61C88647 + 0x9E3779B9 = 2^32
    expect(threadRng(42, 3).state).toBe(threadSeed(42, 3));
  });

  it('W2 thread t draws from threadSeed(seed, t)', () => {
    const a = new ReferenceAllocator(256 * MiB);
    const run = w2(a, { cycles: 20_000, thread: 1 });
    let mallocs = 0;
    let bytes = 0;
    const rng = new XorShift32(threadSeed(42, 1));
    const full = new Uint8Array(2048);
    for (let i = 0; i < 20_000; i++) {
      const idx = rng.next() % 2048;
      if (full[idx]) full[idx] = 0;
      else {
        full[idx] = 1;
        mallocs++;
        bytes += 8192 + (rng.next() % 24577);
      }
    }
    expect(run.result.mallocs).toBe(mallocs);
    expect(run.result.bytesRequested).toBe(bytes);
    slotCleanup(a, run);
    expect(a.liveBlocks).toBe(0);
  });
});

// The counts of the default parameters, pinned: the generator of shared/workloads.md (which gives
// the generator, not these counts) as bench/workloads.ts and its C twin run it; the C twin's
// agreement on the same parameters is checked below ('native workloads (C)'), and the loop above
// recounts W2's draws independently.
describe('reference counts of the default parameters', () => {
  it('W1, 10,000,000 cycles, ws 4096, seed 1234567: 5,001,016 mallocs, 2,640,836,101 bytes', () => {
    const a = new ReferenceAllocator(64 * MiB);
    const run = w1(a, { cycles: 10_000_000, ws: 4096, seed: 1234567 });
    expect(run.result.ops).toBe(10_000_000);
    expect(run.result.mallocs).toBe(5_001_016);
    expect(run.result.bytesRequested).toBe(2_640_836_101);
    expect(run.result.peakLiveBytes).toBeGreaterThan(0);
    expect(run.result.elapsedNs).toBeGreaterThan(0);
    slotCleanup(a, run);
    expect(a.liveBlocks).toBe(0);
    expect(w1(a, { cycles: 10_000 }).result.checksum, 'deterministic').toBe(w1(a, { cycles: 10_000 }).result.checksum);
  });

  it('the W1 loop makes no garbage while it requests 2.6 GB (no scavenge in its timed part)', async () => {
    // Its byte count passed 2^31, and V8 made a heap number at every malloc: a scavenge every
    // few milliseconds, charged to the JavaScript allocators only. The loop's own text runs in a
    // worker with a young generation of 1 MiB (where that garbage meant hundreds of scavenges a
    // run) over a fixed-size free list that makes none, its third run observed.
    const program = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { PerformanceObserver, constants } = require('node:perf_hooks');
      const slotLoop = new Function('return (' + workerData.loop + ')')();
      class FixedBlocks {
        constructor() {
          this.u8 = new Uint8Array(4097 * 1040 + 16);
          this.stack = new Int32Array(4097);
          this.n = 0;
          for (let i = 4096; i >= 0; i--) this.stack[this.n++] = 16 + i * 1040;
        }
        malloc(size) { return this.stack[--this.n]; }
        free(p) { this.stack[this.n++] = p; }
      }
      const fail = { corrupted() { throw new Error('corrupted'); }, outOfMemory() { throw new Error('out of memory'); } };
      const a = new FixedBlocks();
      const run = () => {
        const r = slotLoop(a, 'W1', { state: 1234567 }, 10000000, 4096, 16, 1025, fail);
        for (let i = 0; i < r.slots.length; i++) if (r.slots[i] !== 0) a.free(r.slots[i]);
        return r.result.bytesRequested;
      };
      run();
      run();
      const seen = [];
      const observer = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) if (e.detail && e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) seen.push(e.startTime);
      });
      observer.observe({ entryTypes: ['gc'] });
      const t0 = performance.now();
      const bytes = run();
      const t1 = performance.now();
      setTimeout(() => {
        observer.disconnect();
        parentPort.postMessage({ bytes, scavenges: seen.filter((t) => t >= t0 && t <= t1).length });
      }, 100);
    `;
    const w = new Worker(program, {
      eval: true,
      workerData: { loop: Function.prototype.toString.call(slotLoop) },
      resourceLimits: { maxYoungGenerationSizeMb: 1 },
    });
    const got = await new Promise<{ bytes: number; scavenges: number }>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    expect(got.bytes).toBe(2_640_836_101);
    expect(got.scavenges).toBeLessThanOrEqual(1);
  });

  it('W2, one thread, 1,000,000 cycles, ws 2048, seed 42: 500,498 mallocs, 10,258,079,116 bytes', () => {
    const a = new ReferenceAllocator(256 * MiB);
    const run = w2(a, { cycles: 1_000_000, ws: 2048, seed: 42, thread: 0 });
    expect(run.result.mallocs).toBe(500_498);
    expect(run.result.bytesRequested).toBe(10_258_079_116);
    slotCleanup(a, run);
    expect(a.liveBlocks).toBe(0);
  });

  it('W3, one thread, defaults: 1,001,000 mallocs, 504,197,316 bytes (fill included)', () => {
    const a = new ReferenceAllocator(64 * MiB);
    const { result, arrays } = w3Sequential(a, { threads: 1 });
    expect(result.ops).toBe(2 * 100 * 10_000);
    expect(result.mallocs).toBe(1_001_000);
    expect(result.bytesRequested).toBe(504_197_316);
    for (const blocks of arrays) larsonCleanup(a, blocks);
    expect(a.liveBlocks).toBe(0);
  });
});

describe('W3 hand-off', () => {
  it('with 2 threads simulated in turn, thread t takes the array thread (t+1)%T held after each round', () => {
    const opts = { threads: 2, chunks: 200, rounds: 6, opsPerRound: 500, seed: 4141 };
    const a = new OwnerTrackingAllocator(new ReferenceAllocator(64 * MiB));
    const rngs = [threadRng(opts.seed, 0), threadRng(opts.seed, 1)];
    const tallies = [emptyResult(), emptyResult()];
    const arrays: LarsonBlocks[] = [];
    for (let t = 0; t < 2; t++) {
      a.current = t;
      arrays.push(larsonFill(a, rngs[t]!, opts.chunks, undefined, tallies[t]));
    }
    let held = [0, 1];
    const crossPerRound: number[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      const before = a.crossThreadFrees;
      for (let t = 0; t < 2; t++) {
        expect(held[t]).toBe(larsonHeld(t, round, 2));
        a.current = t;
        larsonRound(a, rngs[t]!, arrays[held[t]!]!, opts.opsPerRound, tallies[t]);
      }
      crossPerRound.push(a.crossThreadFrees - before);
      held = held.map((_, t) => held[(t + 1) % 2]!); // the hand-off
    }
    expect(crossPerRound[0], 'round 0 frees only own blocks').toBe(0);
    for (let r = 1; r < opts.rounds; r++) expect(crossPerRound[r], `round ${r} frees the other's blocks`).toBeGreaterThan(0);

    // Counts: every op is a free and a malloc; the sizes depend only on each thread's draws.
    const mallocs = tallies[0]!.mallocs + tallies[1]!.mallocs;
    expect(mallocs).toBe(2 * opts.chunks + 2 * opts.rounds * opts.opsPerRound);
    expect(tallies[0]!.ops + tallies[1]!.ops).toBe(2 * 2 * opts.rounds * opts.opsPerRound);
    let bytes = 0;
    for (let t = 0; t < 2; t++) {
      const rng = threadRng(opts.seed, t);
      for (let k = 0; k < opts.chunks; k++) bytes += W3_MIN_SIZE + (rng.next() % W3_SIZE_SPAN);
      for (let i = 0; i < opts.rounds * opts.opsPerRound; i++) {
        rng.next();
        bytes += W3_MIN_SIZE + (rng.next() % W3_SIZE_SPAN);
      }
    }
    expect(tallies[0]!.bytesRequested + tallies[1]!.bytesRequested).toBe(bytes);

    // w3Sequential performs the same operations.
    const b = new ReferenceAllocator(64 * MiB);
    const seq = w3Sequential(b, opts);
    expect(seq.result.mallocs).toBe(mallocs);
    expect(seq.result.bytesRequested).toBe(bytes);
    expect(seq.result.checksum).toBe((tallies[0]!.checksum + tallies[1]!.checksum) >>> 0);
    for (const blocks of seq.arrays) larsonCleanup(b, blocks);
    for (const blocks of arrays) larsonCleanup(a, blocks);
    expect(b.liveBlocks).toBe(0);
    expect(a.owner.size).toBe(0);
  });
});

describe('the harness can fail', () => {
  it('W1 detects overlapping blocks before free', () => {
    expect(() => w1(new OverlappingAllocator(), { cycles: 10_000 })).toThrow(WorkloadCorruptionError);
    expect(() => w1(new OverlappingAllocator(), { cycles: 10_000 })).toThrow(/W1: block 0x[0-9a-f]+ \(size \d+\) was overwritten/);
  });

  it('W3 and the replayer detect overlapping blocks', () => {
    // W3 writes only a block's first byte, so only blocks that share a start collide.
    expect(() => w3Sequential(new OverlappingAllocator(0), { threads: 1, chunks: 50, rounds: 1, opsPerRound: 100 })).toThrow(
      WorkloadCorruptionError,
    );
    // block 2 spans 24..115 and so overwrites block 1's last byte (115)
    expect(() => replay(new OverlappingAllocator(), parseTrace('a 1 100\na 2 92\nf 1\n'))).toThrow(/line 3: block was overwritten/);
  });

  it('out of memory is an error naming the workload', () => {
    expect(() => w1(new ReferenceAllocator(4096), { cycles: 1000 })).toThrow(WorkloadOutOfMemoryError);
    expect(() => w1(new ReferenceAllocator(4096), { cycles: 1000 })).toThrow(/^W1: malloc\(\d+\) returned 0/);
  });
});

describe('W5 replay', () => {
  it('the committed sample trace is what make-sample.ts generates', () => {
    expect(readFileSync(SAMPLE_TRACE, 'utf8')).toBe(makeSampleTrace());
  });

  it('a cut or corrupt gzipped trace is refused with its path named', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-gz-'));
    try {
      const whole = gzipSync(readFileSync(SAMPLE_TRACE));
      const cut = join(dir, 'cut.trace.gz');
      writeFileSync(cut, whole.subarray(0, whole.length >> 1));
      expect(() => loadTrace(cut)).toThrow(`${cut}: not a whole gzip file`);
      const junk = join(dir, 'junk.trace.gz');
      writeFileSync(junk, 'not gzip');
      expect(() => loadTrace(junk)).toThrow(`${junk}: not a whole gzip file`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replays the sample trace, plain and gzipped', () => {
    const a = new ReferenceAllocator(16 * MiB);
    const r = replayFile(a, fileURLToPath(SAMPLE_TRACE));
    expect(r.ops).toBe(300);
    expect(r.mallocs + r.callocs + r.reallocs + r.frees).toBe(300);
    expect(r.callocs).toBeGreaterThan(0);
    expect(r.reallocs).toBeGreaterThan(0);
    expect(r.liveBlocksAtEnd).toBe(r.mallocs + r.callocs - r.frees);
    expect(r.peakLiveBytes).toBeGreaterThan(r.liveBytesAtEnd);
    expect(r.footprintBytes).toBeGreaterThanOrEqual(r.peakLiveBytes);
    expect(r.opsPerSec).toBeGreaterThan(0);
    expect(a.liveBlocks, 'leftovers are freed').toBe(0);

    const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-trace-'));
    try {
      const gz = join(dir, 'sample.trace.gz');
      writeFileSync(gz, gzipSync(readFileSync(SAMPLE_TRACE)));
      const z = replayFile(new ReferenceAllocator(16 * MiB), gz);
      expect({ ...z, name: '', elapsedNs: 0, opsPerSec: 0 }).toEqual({ ...r, name: '', elapsedNs: 0, opsPerSec: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("makes its own arrays resident before the timed loop, as the native replayer does", () => {
    // A first touch of a page costs microseconds on some machines (5-13 us on the Firecracker VM
    // this was measured on); the replayer's arrays (ten bytes a slot) must not charge theirs to
    // the allocator under test. The loop below stands in for the timed loop and touches every page
    // of them, counting the process's page faults while it does.
    const slots = 4_000_000;
    const none = new Uint8Array(0);
    const trace = { name: 'wide', count: 0, kind: none, slot: new Int32Array(0), size: new Int32Array(0), line: new Int32Array(0), slots };
    let faults = -1;
    let pages = 0;
    const touching: typeof replayLoop = (_alloc, _trace, state) => {
      const f0 = process.resourceUsage().minorPageFault;
      for (const a of [state.ptrs, state.sizes, state.tags, state.used]) {
        for (let i = 0; i < a.length; i += 4096 / a.BYTES_PER_ELEMENT) {
          a[i] = 0; // a write faults a page in whatever it writes
          pages++;
        }
      }
      faults = process.resourceUsage().minorPageFault - f0;
      return { mallocs: 0, callocs: 0, reallocs: 0, frees: 0, peakLiveBytes: 0, liveBytes: 0, checksum: 0, elapsedNs: 1 };
    };
    replay(new ReferenceAllocator(MiB), trace, touching);
    expect(pages).toBeGreaterThan(9000);
    expect(faults, `${faults} page faults touching ${pages} pages of the replay state`).toBeGreaterThanOrEqual(0);
    expect(faults).toBeLessThan(pages / 10);
  });

  it('renames ids to the same slots whether they are small (a typed array) or large (a Map)', () => {
    // The same trace with small ids, and with each id moved up by 2^24 (and by 2^31 - 2^20):
    // the slots, and everything else, come out the same, and a freed id's slot is reused.
    const text = (base: number): string =>
      [`a ${base + 3} 16`, `c ${base + 900000} 32`, `f ${base + 3}`, `a ${base + 7} 48`, `r ${base + 7} 64`, `a ${base + 3} 8`, `f ${base + 900000}`].join('\n');
    const small = parseTrace(text(0), 't');
    expect(Array.from(small.slot)).toEqual([0, 1, 0, 0, 0, 2, 1]);
    expect(small.slots).toBe(3);
    for (const base of [1 << 24, 2 ** 31 - (1 << 20)]) {
      const large = parseTrace(text(base), 't');
      expect(Array.from(large.slot), `ids from ${base}`).toEqual(Array.from(small.slot));
      expect(Array.from(large.kind)).toEqual(Array.from(small.kind));
      expect(Array.from(large.size)).toEqual(Array.from(small.size));
      expect(large.slots).toBe(3);
    }
  });

  it('checks realloc contents and calloc zeroing', () => {
    const a = new ReferenceAllocator(MiB);
    const r = replay(a, parseTrace('# grow, shrink, zero\nc 7 40\nr 7 5000\nr 7 3\n\na 8 0\nf 7\nf 8\n', 't'));
    expect(r).toMatchObject({ ops: 6, callocs: 1, reallocs: 2, mallocs: 1, frees: 2, peakLiveBytes: 5000, liveBlocksAtEnd: 0 });

    const dirty: ReplayAllocator = Object.assign(new ReferenceAllocator(MiB), {
      calloc(this: ReferenceAllocator, _n: number, size: number) {
        const p = this.malloc(size);
        this.u8.fill(0xaa, p, p + size);
        return p;
      },
    });
    expect(() => replay(dirty, parseTrace('c 1 64\n', 't'))).toThrow(/t: line 1: calloc returned bytes that are not zero/);
  });

  it.each([
    ['a 1 16\nf 1\nx 2\n', 3, /unknown operation/],
    ['# c\n\na 1\n', 3, /expected a decimal size/],
    ['a 1 16\na 1 32\n', 2, /id 1 is still live/],
    ['a 1 16\nf 2\n', 2, /id 2 is not live/],
    ['a 1 16\nf 1\nr 1 8\n', 3, /id 1 is not live/],
    ['a 1 16 9\n', 1, /unexpected field/],
    ['a 1 -4\n', 1, /expected a decimal size/],
    ['a 2147483648 4\n', 1, /id must be below 2\^31/],
    ['a 1 16\r\nf 1\r\nf1\r\n', 3, /unknown operation/],
    ['a 1 16\nf 1x\n', 2, /expected a decimal id/],
    // ids from 2^24 up are looked up in a Map, the others in a typed array: both kinds checked
    ['a 16777216 16\na 16777216 32\n', 2, /id 16777216 is still live/],
    ['a 2147483647 16\nf 2147483646\n', 2, /id 2147483646 is not live/],
    ['a 16777215 16\nf 16777215\nf 16777215\n', 3, /id 16777215 is not live/],
    ['a 5000 16\nf 5000\nr 5000 8\n', 3, /id 5000 is not live/],
  ])('a malformed line is an error naming its number: %j', (text, lineNumber, reason) => {
    const a = new ReferenceAllocator(MiB);
    let err: unknown;
    try {
      replay(a, parseTrace(text, 'bad.trace'));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TraceError);
    expect((err as TraceError).lineNumber).toBe(lineNumber);
    expect((err as Error).message).toMatch(new RegExp(`^bad\\.trace: line ${lineNumber}: `));
    expect((err as Error).message).toMatch(reason);
    expect(a.liveBlocks, 'the replay stopped before running anything').toBe(0);
  });
});

describe('reference allocator', () => {
  it('hands out 16-byte aligned, disjoint blocks and rejects double frees', () => {
    const a = new ReferenceAllocator(MiB);
    const p = a.malloc(24);
    const q = a.malloc(24);
    expect(p % 16).toBe(0);
    expect(q - p).toBeGreaterThanOrEqual(24);
    a.free(p);
    expect(a.malloc(20), 'reuses its size class').toBe(p);
    a.free(q);
    expect(() => a.free(q)).toThrow(/already free/);
    expect(() => a.free(q + 16)).toThrow(/not/);
  });
});

const skip = nativeSkipReason();

describe.skipIf(skip !== undefined)('native workloads (C)', () => {
  it('finds its source and the system allocator', () => {
    expect(readFileSync(nativeSourcePath(), 'utf8')).toContain('xorshift32');
    expect(nativeAllocators()[0]!.preload).toBeUndefined();
  });

  it('W1 counts equal the JS port for the same parameters', async () => {
    const params = { cycles: 100_000, ws: 4096, seed: 1234567 };
    const js = w1(new ReferenceAllocator(64 * MiB), params).result;
    const c = await runNative(nativeAllocators()[0]!, 'W1', params);
    expect({ ops: c.ops, mallocs: c.mallocs, bytes: c.bytesRequested, checksum: c.checksum, peak: c.peakLiveBytes }).toEqual({
      ops: js.ops,
      mallocs: js.mallocs,
      bytes: js.bytesRequested,
      checksum: js.checksum,
      peak: js.peakLiveBytes,
    });
    expect(c.seconds).toBeGreaterThan(0);
    expect(c.peakRssBytes).toBeGreaterThan(0);
  });

  it('W2 and W3 with 2 threads equal the JS port for the same parameters', async () => {
    const sys = nativeAllocators()[0]!;
    const a = new ReferenceAllocator(256 * MiB);
    const t0 = w2(a, { cycles: 20_000, ws: 256, seed: 7, thread: 0 }).result;
    const t1 = w2(a, { cycles: 20_000, ws: 256, seed: 7, thread: 1 }).result;
    const c2 = await runNative(sys, 'W2', { threads: 2, cycles: 20_000, ws: 256, seed: 7 });
    expect([c2.ops, c2.mallocs, c2.bytesRequested, c2.checksum]).toEqual([
      t0.ops + t1.ops,
      t0.mallocs + t1.mallocs,
      t0.bytesRequested + t1.bytesRequested,
      (t0.checksum + t1.checksum) >>> 0,
    ]);

    const w3opts = { threads: 2, chunks: 100, rounds: 5, opsPerRound: 1000, seed: 99 };
    const js3 = w3Sequential(new ReferenceAllocator(64 * MiB), w3opts).result;
    const c3 = await runNative(sys, 'W3', w3opts);
    expect([c3.ops, c3.mallocs, c3.bytesRequested, c3.checksum, c3.peakLiveBytes]).toEqual([
      js3.ops,
      js3.mallocs,
      js3.bytesRequested,
      js3.checksum,
      js3.peakLiveBytes,
    ]);
  });
});

describe('W5 parsed once: the binary form of a trace', () => {
  it('reads back exactly what was written, and replays the same', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-ops-'));
    try {
      const trace = loadTrace(fileURLToPath(SAMPLE_TRACE));
      const file = join(dir, 'sample.w5ops');
      writeTraceOps(trace, file);
      const back = readTraceOps(file, 'sample');
      expect(back.count).toBe(trace.count);
      expect(back.slots).toBe(trace.slots);
      expect([...back.kind]).toEqual([...trace.kind.subarray(0, trace.count)]);
      expect([...back.slot]).toEqual([...trace.slot.subarray(0, trace.count)]);
      expect([...back.size]).toEqual([...trace.size.subarray(0, trace.count)]);
      expect([...back.line]).toEqual([...trace.line.subarray(0, trace.count)]);
      expect(tracePeakLive(back)).toBe(replay(new ReferenceAllocator(16 * MiB), trace).peakLiveBytes);
      const a = replay(new ReferenceAllocator(16 * MiB), trace);
      const b = replay(new ReferenceAllocator(16 * MiB), back);
      expect([b.checksum, b.bytesRequested, b.mallocs]).toEqual([a.checksum, a.bytesRequested, a.mallocs]);
      writeFileSync(file, 'a 1 10\n');
      expect(() => readTraceOps(file)).toThrow(/not a parsed W5 trace/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(skip !== undefined)('the native replayer (C) does the same operations and checks as the JS one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sabmalloc-ops-'));
    try {
      const trace = loadTrace(fileURLToPath(SAMPLE_TRACE));
      const file = join(dir, 'sample.w5ops');
      writeTraceOps(trace, file);
      const js = replay(new ReferenceAllocator(16 * MiB), trace);
      const sys = nativeAllocators()[0]!;
      const c = await runNative(sys, 'W5', { traceOps: file, repeats: 2 });
      expect([c.ops, c.mallocs, c.bytesRequested, c.checksum, c.peakLiveBytes]).toEqual([
        2 * js.ops,
        2 * (js.mallocs + js.callocs),
        2 * js.bytesRequested,
        (2 * js.checksum) >>> 0,
        js.peakLiveBytes,
      ]);
      expect(c.peakRssBytes).toBeGreaterThanOrEqual(0);
      // At T threads each replays the whole trace at once, on its own tables: T times the counts,
      // the peak live bytes the sum of the threads' peaks.
      const t3 = await runNative(sys, 'W5', { traceOps: file, repeats: 2, threads: 3 });
      expect([t3.threads, t3.ops, t3.mallocs, t3.bytesRequested, t3.checksum, t3.peakLiveBytes]).toEqual([
        3,
        6 * js.ops,
        6 * (js.mallocs + js.callocs),
        6 * js.bytesRequested,
        (6 * js.checksum) >>> 0,
        3 * js.peakLiveBytes,
      ]);
      await expect(runNative(sys, 'W5', { traceOps: file, threads: 2, split: 5 })).rejects.toThrow(/--split is for one thread/);
      writeFileSync(file, 'not a trace');
      await expect(runNative(sys, 'W5', { traceOps: file })).rejects.toThrow(/not a parsed W5 trace/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('native workloads availability', () => {
  it('runs the native peers exactly when a C compiler answers, and says why not otherwise', () => {
    const hasCc = spawnSync('cc', ['--version']).status === 0;
    if (hasCc) expect(skip).toBeUndefined();
    else expect(skip).toMatch(/^skipped: /);
  });
});

describe('per-allocator copies of the timed loops (bench/copies.ts)', () => {
  it('are new functions that do exactly what the originals do', () => {
    const copy = copyFor(slotLoop, 'reference');
    expect(copy).not.toBe(slotLoop);
    expect(copyFor(slotLoop, 'reference'), 'one copy per allocator').toBe(copy);
    expect(copyFor(slotLoop, 'other')).not.toBe(copy);

    const a = new ReferenceAllocator(64 * MiB);
    const b = new ReferenceAllocator(64 * MiB);
    const r1 = w1(a, { cycles: 50_000 });
    const r2 = w1(b, { cycles: 50_000 }, copy);
    const counts = (r: { result: { ops: number; mallocs: number; bytesRequested: number; checksum: number; peakLiveBytes: number } }) =>
      [r.result.ops, r.result.mallocs, r.result.bytesRequested, r.result.checksum, r.result.peakLiveBytes];
    expect(counts(r2)).toEqual(counts(r1));
    slotCleanup(a, r1);
    slotCleanup(b, r2);

    const rngA = threadRng(4141, 0);
    const rngB = threadRng(4141, 0);
    const blocksA = larsonFill(a, rngA, 100);
    const blocksB = larsonFill(b, rngB, 100);
    const tA = larsonRound(a, rngA, blocksA, 2000);
    const tB = larsonRound(b, rngB, blocksB, 2000, emptyResult(), copyFor(larsonRoundLoop, 'reference'));
    expect([tB.ops, tB.mallocs, tB.bytesRequested, tB.checksum, tB.peakLiveBytes]).toEqual([tA.ops, tA.mallocs, tA.bytesRequested, tA.checksum, tA.peakLiveBytes]);
    expect(rngB.state, 'the generator state is written back').toBe(rngA.state);

    const trace = loadTrace(fileURLToPath(SAMPLE_TRACE));
    const p1 = replay(new ReferenceAllocator(64 * MiB), trace);
    const p2 = replay(new ReferenceAllocator(64 * MiB), trace, copyFor(replayLoop, 'reference'));
    expect([p2.ops, p2.mallocs, p2.callocs, p2.reallocs, p2.frees, p2.bytesRequested, p2.checksum, p2.peakLiveBytes]).toEqual([
      p1.ops, p1.mallocs, p1.callocs, p1.reallocs, p1.frees, p1.bytesRequested, p1.checksum, p1.peakLiveBytes,
    ]);
  });

  it('report corruption through the same errors as the originals', () => {
    expect(() => w1(new OverlappingAllocator(), { cycles: 10_000 }, copyFor(slotLoop, 'overlapping'))).toThrow(WorkloadCorruptionError);
    expect(() => replay(new OverlappingAllocator(), parseTrace('a 1 100\na 2 92\nf 1\n'), copyFor(replayLoop, 'overlapping'))).toThrow(
      /line 3: block was overwritten/,
    );
  });
});
