/**
 * The shape of src/: files in layers, in the order a request flows down, each importing only
 * from layers below it (type-only imports included), so there is no import cycle. A new file
 * must be placed in LAYERS, and an import that points up or sideways fails here.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');

/** Bottom first. Files of one layer may not import each other. */
const LAYERS: string[][] = [
  ['layout', 'errors', 'liveness', 'crash', 'wasm-copy'], // the map of the buffer; every error and message helper; Web Locks (browser: liveness.ts imports nothing); test-only crash points; the WebAssembly.Memory, realloc's memory.copy and calloc's memory.fill
  ['size-classes'], //                classes, slab geometry, the division table
  ['context', 'create'], //           a thread's views and slot; the options and a new buffer
  ['slots'], //                       SuperSlab masks, slot metas, abandoned lists ([L])
  ['lock'], //                        the futex-like global lock (repairs the slot table)
  ['remote', 'fault', 'flush-ask'], // remote free lists, notices, adoption; a call cut off by a fault stops the thread; asking idle threads to flush
  ['pool'], //                        Stage 1/2/3
  ['large', 'slab'], //               large runs; a thread's own slabs
  ['magazine'], //                    refill, drain, journal, flush
  ['alloc', 'attach'], //             the public calls' slow halves; attach/detach
  ['reclaim', 'stats', 'check', 'heap-map', 'debug'], // dead threads; stats(); check(); readHeapMap() (browser demo); debug mode's checks
  ['heap'], //                        the SharedHeap facade and its fast paths
  ['index', 'node'], //               the package entries
];

/** Relative imports of a file (type-only and re-exports included), as module names. */
function importsOf(file: string): string[] {
  const src = readFileSync(join(SRC, `${file}.ts`), 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]\.\/([\w-]+)\.js['"]/g)) out.push(m[1]!);
  return out;
}

/** Finds a cycle in a graph given as adjacency lists; returns it, or null. */
export function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, number>();
  const stack: string[] = [];
  const visit = (u: string): string[] | null => {
    state.set(u, 1);
    stack.push(u);
    for (const v of graph.get(u) ?? []) {
      if (state.get(v) === 1) return [...stack.slice(stack.indexOf(v)), v];
      if (state.get(v) === undefined) {
        const c = visit(v);
        if (c !== null) return c;
      }
    }
    stack.pop();
    state.set(u, 2);
    return null;
  };
  for (const u of graph.keys()) {
    if (state.get(u) === undefined) {
      const c = visit(u);
      if (c !== null) return c;
    }
  }
  return null;
}

describe('src/ architecture', () => {
  const files = readdirSync(SRC)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3));
  const graph = new Map(files.map((f) => [f, importsOf(f)]));

  it('every file of src/ has a layer', () => {
    const placed = new Set(LAYERS.flat());
    expect(files.filter((f) => !placed.has(f))).toEqual([]);
    expect([...placed].filter((f) => !files.includes(f))).toEqual([]);
  });

  it('every import points to a lower layer', () => {
    const layerOf = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));
    const wrong: string[] = [];
    for (const [file, deps] of graph) {
      for (const dep of deps) {
        if (!(layerOf.get(dep)! < layerOf.get(file)!)) wrong.push(`${file} -> ${dep}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('there is no import cycle, type-only imports included', () => {
    expect(findCycle(graph)).toBeNull();
  });

  it('the cycle finder finds a cycle (so the test above can fail)', () => {
    const g = new Map([...graph].map(([k, v]) => [k, [...v]]));
    g.get('layout')!.push('heap'); // heap imports layout: now a cycle
    expect(findCycle(g)).toContain('layout');
  });

  it('the import reader sees type-only imports', () => {
    expect(importsOf('remote')).toContain('context'); // `import type { ThreadContext } from './context.js'`
  });
});
