/**
 * The package's types as a user's project meets them: through package.json (`exports`, `types`,
 * `typesVersions`) and the declarations `npm pack` ships, not through paths to src/ (as
 * examples/tsconfig.json and the browser pages' tsconfig do). The declarations are emitted into a
 * scratch node_modules/sabmalloc beside a user file that calls every public API of the README's
 * API section, which is type-checked strict, without skipLibCheck, under each module resolution
 * a project may use. Before an audit of 2026-12-05, `moduleResolution: node10` (what TypeScript
 * uses for `module: commonjs`, where Node 20.19+ requires the package fine) found no types for
 * `sabmalloc/node` (TS2307: node10 reads no `exports`); `typesVersions` points it there. Until
 * 2026-12-05 a browser user's WebAssembly.Memory (the DOM library types its buffer as ArrayBuffer)
 * needed a cast to be given to attach, attachAsync or readHeapMap (TS2345).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';

const root = new URL('../', import.meta.url).pathname;
const tsc = join(root, 'node_modules/.bin/tsc');
let project: string;

/** What a Node user writes: every export of both entries, each call as the README's API table gives it. */
const NODE_USER = `
import { Worker } from 'node:worker_threads';
import {
  SharedHeap, type HeapOptions, type HeapStats, type LockStats, type StageStats, type ClassStats, type ThreadStats,
  type HeapMap, type SharedMemory, type SharedMemoryLike, type WatchableWorker, HeapError, InvalidPointerError, DoubleFreeError, HeapCorruptionError,
  ThreadSlotsExhaustedError, LockTimeoutError, HeapStateError, CLASS_SIZES, NUM_CLASSES, MAX_SMALL, readHeapMap,
  MAP_METADATA, MAP_UNCARVED, MAP_UNUSED, MAP_SLAB, MAP_POOLED, MAP_LARGE, MAP_NO_OWNER,
} from 'sabmalloc';
import { watchPool, type WorkerPoolLike } from 'sabmalloc/node';

const options: HeapOptions = {
  initialBytes: 8 << 20, maxBytes: 16 << 20, maxThreads: 4, magazineCapacity: 64, refillCount: 32,
  drainInterval: 1024, stage1Keep: 1024, trimInterval: 0, debug: false,
};
const heap: SharedHeap = SharedHeap.create(options);
const same: SharedHeap = SharedHeap.attach(heap.memory ?? heap.buffer);
const p: number = heap.malloc(100);
heap.free(p);
const r: number = heap.realloc(heap.calloc(2, 8), 64);
const sizes: number[] = [heap.usableSize(r), heap.alignedAlloc(4096, 10), heap.tryMalloc(1)];
const u8: Uint8Array = heap.u8;
const buffer: SharedArrayBuffer = heap.buffer;
const memory: SharedMemory | undefined = heap.memory;
const memoryArgument: SharedMemoryLike | SharedArrayBuffer = heap.memory ?? heap.buffer;
const stats: HeapStats = heap.stats();
const parts: [LockStats, StageStats, ClassStats[], ThreadStats[], number] = [stats.lock, stats.stages, stats.classes, stats.threads, stats.liveBytes];
heap.check();
heap.flush();
const worker = new Worker('./w.js');
heap.watch(worker);
const watchable: WatchableWorker = worker;
const reclaimed: boolean[] = [heap.reclaim(worker), heap.reclaim(worker.threadId)];
async function later(): Promise<void> {
  const a: number = await heap.mallocAsync(1);
  const b: number = await heap.callocAsync(1, 2);
  const c: number = await heap.reallocAsync(a, 3);
  const d: number = await heap.alignedAllocAsync(64, 3);
  await heap.freeAsync(b);
  const held: boolean = await heap.threadLockHeld();
  const gone: boolean = await heap.reclaimWhenGone(heap.threadId);
  const other: SharedHeap = await SharedHeap.attachAsync(heap.buffer, { threadId: heap.newThreadId() });
  void [c, d, held, gone, other];
}
const map: HeapMap = readHeapMap(heap.memory ?? heap.buffer);
const kinds: number[] = [MAP_METADATA, MAP_UNCARVED, MAP_UNUSED, MAP_SLAB, MAP_POOLED, MAP_LARGE, MAP_NO_OWNER, NUM_CLASSES, MAX_SMALL];
const classSizes: Int32Array = CLASS_SIZES;
try {
  heap.free(3);
} catch (e) {
  if (e instanceof HeapError) console.log(e.code);
  const known = e instanceof InvalidPointerError || e instanceof DoubleFreeError || e instanceof HeapCorruptionError
    || e instanceof ThreadSlotsExhaustedError || e instanceof LockTimeoutError || e instanceof HeapStateError;
  void known;
}
const pool: WorkerPoolLike = { threads: [worker], on: () => undefined };
watchPool(heap, pool);
same.detach();
void [sizes, u8, buffer, memory, memoryArgument, parts, reclaimed, later, map, kinds, classSizes];
`;

/** A browser user: the main entry only, with the DOM library and no Node types. */
const BROWSER_USER = `
import { SharedHeap, readHeapMap, CLASS_SIZES, HeapStateError, type HeapStats } from 'sabmalloc';
const heap = SharedHeap.create({ initialBytes: 8 << 20 });
const worker = new Worker('/worker.js', { type: 'module' });
const threadId: number = heap.newThreadId();
worker.postMessage({ buffer: heap.buffer, threadId });
onmessage = async (e: MessageEvent<{ buffer: SharedArrayBuffer; threadId: number }>) => {
  const attached: SharedHeap = await SharedHeap.attachAsync(e.data.buffer, { threadId: e.data.threadId });
  attached.free(attached.malloc(8));
};
worker.terminate();
// A heap's memory posted to a worker arrives as the DOM's WebAssembly.Memory, whose buffer the DOM
// library types as ArrayBuffer: attach, attachAsync and readHeapMap take it without a cast.
const memory = new WebAssembly.Memory({ initial: 128, maximum: 128, shared: true });
const fromMemory: SharedHeap = SharedHeap.attach(memory);
const fromMemoryAsync: Promise<SharedHeap> = SharedHeap.attachAsync(memory, { threadId });
const memoryMap = readHeapMap(memory);
const gone: Promise<boolean> = heap.reclaimWhenGone(threadId);
const stats: HeapStats = heap.stats();
void [gone, stats, readHeapMap(heap.buffer).supers, CLASS_SIZES[0], HeapStateError, fromMemory, fromMemoryAsync, memoryMap];
`;

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'sabmalloc-types-'));
  const pkg = join(project, 'node_modules', 'sabmalloc');
  mkdirSync(pkg, { recursive: true });
  copyFileSync(join(root, 'package.json'), join(pkg, 'package.json'));
  // The declarations as prepack and prepare build them (tsconfig.pack.json), where package.json names them.
  execFileSync(tsc, ['-p', join(root, 'tsconfig.pack.json'), '--emitDeclarationOnly', '--outDir', join(pkg, 'dist')], { stdio: 'pipe' });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user', private: true, type: 'module' }));
  writeFileSync(join(project, 'node-user.ts'), NODE_USER);
  writeFileSync(join(project, 'browser-user.ts'), BROWSER_USER);
});

afterAll(() => rmSync(project, { recursive: true, force: true }));

/** tsc's messages for `file` under these options (a tsconfig in the project), '' when it type-checks. */
function typeCheck(name: string, file: string, options: Record<string, unknown>): string {
  const config = join(project, `tsconfig.${name}.json`);
  const compilerOptions = { strict: true, noEmit: true, skipLibCheck: false, target: 'ES2022', typeRoots: [join(root, 'node_modules/@types')], ...options };
  writeFileSync(config, JSON.stringify({ compilerOptions, files: [file] }));
  try {
    execFileSync(tsc, ['-p', config], { stdio: 'pipe', encoding: 'utf8' });
    return '';
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? e);
  }
}

describe('types through package.json', () => {
  const node = { lib: ['ES2022'], types: ['node'] };
  it.each([
    ['node16', { module: 'Node16', moduleResolution: 'Node16' }],
    ['nodenext', { module: 'NodeNext', moduleResolution: 'NodeNext' }],
    ['bundler', { module: 'ESNext', moduleResolution: 'Bundler' }],
    ['node10', { module: 'CommonJS', moduleResolution: 'Node10' }],
  ])('a Node user calling every public API type-checks under %s resolution (strict, no skipLibCheck)', (name, resolution) => {
    expect(typeCheck(name, 'node-user.ts', { ...node, ...resolution })).toBe('');
  });

  it('a browser user (DOM library, no Node types) type-checks with the main entry, under node16 and bundler', () => {
    const browser = { lib: ['ES2022', 'DOM'], types: [] };
    expect(typeCheck('browser16', 'browser-user.ts', { ...browser, module: 'Node16', moduleResolution: 'Node16' })).toBe('');
    expect(typeCheck('browserbundler', 'browser-user.ts', { ...browser, module: 'ESNext', moduleResolution: 'Bundler' })).toBe('');
  });

  it('a strict user with exactOptionalPropertyTypes may give an option as undefined, which create() takes as left out, and switches over error codes', () => {
    // create() takes an option given as undefined as its default (an audit of the package's
    // consumers: the declarations said \`maxBytes?: number\`, which that setting reads as refusing
    // undefined: TS2379 and TS2375 here before).
    writeFileSync(
      join(project, 'exact-user.ts'),
      `import { SharedHeap, HeapStateError, type HeapError, type HeapErrorCode, type HeapOptions } from 'sabmalloc';
declare const growable: boolean;
declare const threads: string | undefined;
const heap: SharedHeap = SharedHeap.create({ initialBytes: 8 << 20, maxBytes: growable ? 16 << 20 : undefined });
const options: HeapOptions = { maxThreads: threads === undefined ? undefined : Number(threads), debug: undefined };
void [heap, options];
// Each error's code is a union the compiler checks a switch against.
function kind(e: HeapError): string {
  switch (e.code) {
    case 'ERR_INVALID_POINTER': case 'ERR_DOUBLE_FREE': case 'ERR_HEAP_CORRUPTION': return 'misuse or corruption';
    case 'ERR_THREAD_SLOTS_EXHAUSTED': case 'ERR_LOCK_TIMEOUT': case 'ERR_HEAP_STATE': return 'state';
  }
}
const code: HeapErrorCode = new HeapStateError('x').code;
void [kind, code];
`,
    );
    const strictest = { exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, isolatedModules: true, verbatimModuleSyntax: true };
    expect(typeCheck('exact', 'exact-user.ts', { ...node, module: 'NodeNext', moduleResolution: 'NodeNext', ...strictest })).toBe('');
    const heap = SharedHeap.create({ initialBytes: 8 << 20, maxBytes: undefined, maxThreads: undefined, debug: undefined });
    try {
      expect(heap.stats().maxBytes).toBe(8 << 20);
      expect(heap.buffer.byteLength).toBe(8 << 20);
    } finally {
      heap.detach();
    }
  });

  it('a wrong call is an error: the check can fail', () => {
    writeFileSync(join(project, 'wrong.ts'), `import { SharedHeap } from 'sabmalloc';\nSharedHeap.create({ initialBytes: '8' });\n`);
    expect(typeCheck('wrong', 'wrong.ts', { ...node, module: 'Node16', moduleResolution: 'Node16' })).toMatch(/wrong\.ts.*TS2322/);
  });
});
