/**
 * The benchmark's WebAssembly peer (bench/wasm-dlmalloc.ts): wasi-libc's dlmalloc, built with
 * clang for wasm32-wasi over a shared WebAssembly.Memory. CI installs what it needs (.ci/run:
 * clang, lld, wasi-libc, libclang-rt-14-dev-wasm32); here it must build, replay a trace with
 * every marker byte intact and the same checksum as sabmalloc, and follow its memory's growth.
 */
import { describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { parseTrace, replay } from '../bench/replay.js';
import { makeSampleTrace } from '../bench/traces/make-sample.js';
import { createWasmDlmalloc, wasmBinaryPath, wasmSkipReason } from '../bench/wasm-dlmalloc.js';
import { MiB } from './fixtures.js';

describe('dlmalloc-wasm', () => {
  it('builds on this machine', () => {
    expect(wasmSkipReason()).toBeUndefined();
  });

  it('replays a trace with every marker intact, as sabmalloc does', () => {
    const trace = parseTrace(makeSampleTrace(3000, 5), 'sample');
    const wasm = replay(createWasmDlmalloc(wasmBinaryPath()), trace);
    const heap = SharedHeap.create({ initialBytes: 64 * MiB });
    const sab = replay(heap, trace);
    expect(wasm.ops).toBe(trace.count);
    expect(wasm.checksum).toBe(sab.checksum);
    expect(wasm.peakLiveBytes).toBe(sab.peakLiveBytes);
    expect(wasm.footprintBytes).toBeGreaterThanOrEqual(wasm.peakLiveBytes);
  });

  it('grows its memory for large blocks, and its byte view follows', () => {
    const a = createWasmDlmalloc(wasmBinaryPath());
    const before = a.footprint();
    const ps: number[] = [];
    for (let i = 0; i < 8; i++) {
      const p = a.malloc(16 * MiB);
      expect(p).toBeGreaterThan(0);
      a.u8[p] = i + 1;
      a.u8[p + 16 * MiB - 1] = i + 1;
      ps.push(p);
    }
    expect(a.footprint()).toBeGreaterThanOrEqual(before + 128 * MiB);
    expect(a.u8.length).toBe(a.footprint());
    for (const [i, p] of ps.entries()) {
      expect(a.u8[p]).toBe(i + 1);
      expect(a.u8[p + 16 * MiB - 1]).toBe(i + 1);
      a.free(p);
    }
    const q = a.calloc(1000, 100);
    expect(a.u8.subarray(q, q + 100_000).every((b) => b === 0)).toBe(true);
    expect(a.realloc(q, 200_000)).toBeGreaterThan(0);
  });
});
