/**
 * The WebAssembly peer ('dlmalloc-wasm'): dlmalloc, as wasi-libc ships it, compiled to
 * WebAssembly over a shared WebAssembly.Memory and called from JavaScript, what a JavaScript
 * developer would pick instead of sabmalloc for a C-style heap in shared memory.
 *
 * - bench/wasm/dlmalloc.c is compiled on first use with clang for wasm32-wasi (Debian:
 *   `apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32`) into bench/wasm/build/
 *   (gitignored; a temporary directory if that is not writable), named by a hash of the source
 *   and the command. wasi-libc is built without the atomics feature; its malloc is used by one
 *   thread only, so the linker is told not to check features to put it on a shared memory.
 * - Without clang or the wasm32-wasi libc, {@link wasmSkipReason} says why, and the benchmark
 *   skips the peer with that message.
 * - One instance is one heap, used by one thread (dlmalloc here has no locks): the benchmark
 *   runs it single-threaded (W1, W2 at 1 thread, W5).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedBuild, run } from './build-dir.js';
import type { ReplayAllocator } from './replay.js';

const SOURCE_NAME = 'dlmalloc.c';
const WASM_PAGE = 65536;
/** The memory may grow to 2 GiB (as sabmalloc's largest heap); offsets stay below 2^31. */
const MAX_PAGES = 32768;
const CFLAGS = [
  '--target=wasm32-wasi',
  '-O2',
  '-matomics',
  '-mbulk-memory',
  '-nostartfiles',
  '-Wl,--no-entry',
  '-Wl,--import-memory',
  '-Wl,--shared-memory',
  `-Wl,--max-memory=${MAX_PAGES * WASM_PAGE}`,
  '-Wl,--no-check-features',
];

function sourceCandidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  return [
    join(here, 'wasm', SOURCE_NAME), // bench/wasm-dlmalloc.ts -> bench/wasm/dlmalloc.c
    join(here, '..', '..', 'bench', 'wasm', SOURCE_NAME), // dist/bench/wasm-dlmalloc.js -> bench/wasm/dlmalloc.c
  ].map((p) => resolve(p));
}

/** The wasm32-wasi sysroot (Debian puts wasi-libc's headers and libc.a under /usr), or null. */
function findSysroot(): string | null {
  for (const root of [process.env['WASI_SYSROOT'], '/usr', '/usr/share/wasi-sysroot', '/opt/wasi-sdk/share/wasi-sysroot']) {
    if (root && existsSync(join(root, 'lib', 'wasm32-wasi', 'libc.a'))) return root;
  }
  return null;
}

let skipCache: string | null | undefined;

/** Why the WebAssembly peer cannot be built here, or undefined if it can. */
export function wasmSkipReason(): string | undefined {
  if (skipCache === undefined) {
    skipCache = null;
    if (spawnSync('clang', ['--version'], { stdio: 'ignore' }).status !== 0) skipCache = 'skipped: no clang';
    else if (findSysroot() === null) skipCache = 'skipped: no wasm32-wasi libc (Debian: apt-get install wasi-libc)';
    else {
      try {
        wasmBinaryPath();
      } catch (err) {
        skipCache = `skipped: ${(err as Error).message.split('\n')[0]} (Debian: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32)`;
      }
    }
  }
  return skipCache ?? undefined;
}

let binaryCache: string | undefined;

/** Compiles bench/wasm/dlmalloc.c if needed and returns the path of the module. */
export function wasmBinaryPath(): string {
  if (binaryCache !== undefined && existsSync(binaryCache)) return binaryCache;
  const source = sourceCandidates().find((p) => existsSync(p));
  if (source === undefined) throw new Error(`dlmalloc-wasm: ${SOURCE_NAME} not found; looked at ${sourceCandidates().join(', ')}`);
  const sysroot = findSysroot();
  if (sysroot === null) throw new Error('dlmalloc-wasm: no wasm32-wasi libc');
  const args = [...CFLAGS, `--sysroot=${sysroot}`];
  const binary = cachedBuild({
    source,
    command: ['clang', ...args],
    prefix: 'dlmalloc-',
    suffix: '.wasm',
    tmpName: 'sabmalloc-wasm',
    what: 'dlmalloc-wasm',
    compile: (out) => run('clang', [...args, '-o', out, source]),
  });
  binaryCache = binary;
  return binary;
}

// The few WebAssembly calls used here (the project compiles without the DOM's type library).
interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
}
interface WasmModule {
  readonly kind?: 'module';
}
interface WasmApi {
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (m: WasmModule, imports: object) => { exports: unknown };
}
const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface DlmallocExports {
  wasm_malloc(n: number): number;
  wasm_free(p: number): void;
  wasm_realloc(p: number, n: number): number;
  wasm_calloc(n: number, size: number): number;
}

/** One dlmalloc heap in its own shared WebAssembly.Memory, behind the workloads' allocator interface. */
export class WasmDlmallocAllocator implements ReplayAllocator {
  readonly memory: WasmMemory;
  readonly #x: DlmallocExports;
  #u8: Uint8Array;

  constructor(module: WasmModule) {
    this.memory = new Wasm.Memory({ initial: 2, maximum: MAX_PAGES, shared: true });
    const instance = new Wasm.Instance(module, { env: { memory: this.memory } });
    this.#x = instance.exports as unknown as DlmallocExports;
    this.#u8 = new Uint8Array(this.memory.buffer);
  }

  malloc(size: number): number {
    return this.#x.wasm_malloc(size);
  }
  free(ptr: number): void {
    this.#x.wasm_free(ptr);
  }
  realloc(ptr: number, size: number): number {
    return this.#x.wasm_realloc(ptr, size);
  }
  calloc(n: number, size: number): number {
    return this.#x.wasm_calloc(n, size);
  }
  /** A view of the whole memory, made again when the memory has grown. */
  get u8(): Uint8Array {
    if (this.#u8.length !== this.memory.buffer.byteLength) this.#u8 = new Uint8Array(this.memory.buffer);
    return this.#u8;
  }
  /** The memory's size: what dlmalloc took with sbrk (memory.grow), its high-water mark. */
  footprint(): number {
    return this.memory.buffer.byteLength;
  }
}

const moduleCache = new Map<string, WasmModule>();

/** A fresh dlmalloc heap from the module at `path` (compiled once per thread). */
export function createWasmDlmalloc(path: string): WasmDlmallocAllocator {
  let module = moduleCache.get(path);
  if (module === undefined) {
    module = new Wasm.Module(readFileSync(path));
    moduleCache.set(path, module);
  }
  return new WasmDlmallocAllocator(module);
}
