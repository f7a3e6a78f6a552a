/**
 * The package's .d.ts files as a user's TypeScript reads them (it checks them unless the project
 * sets skipLibCheck). TypeScript 5.7 made the typed arrays generic (`Int32Array<ArrayBuffer>`) and
 * writes that form into declarations whose types it infers; TypeScript before 5.7 rejects it
 * ("Type 'Int32Array' is not generic"): before an audit of 2026-12-05, 13 such errors in
 * size-classes.d.ts, reached from the main entry, failed every TypeScript 4.9-5.6 project that
 * imported the package (checked with 4.9.5, 5.0.4 and 5.6.3). This emits the package's declarations
 * as `npm pack` does and looks for the generic forms.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url).pathname;

/** A type argument on a typed array, DataView or Buffer: TypeScript 5.7+ only. */
const GENERIC_BINARY = /\b(?:(?:Int8|Uint8|Uint8Clamped|Int16|Uint16|Int32|Uint32|Float16|Float32|Float64|BigInt64|BigUint64)Array|DataView|Buffer)</;

describe('the shipped declarations', () => {
  it('name no typed array with a type argument (TypeScript before 5.7 rejects them)', () => {
    const out = mkdtempSync(join(tmpdir(), 'sabmalloc-dts-'));
    try {
      // tsconfig.pack.json is what prepack and prepare build dist/src with.
      execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.pack.json'), '--emitDeclarationOnly', '--outDir', out], {
        stdio: 'pipe',
      });
      const dir = join(out, 'src');
      const files = readdirSync(dir).filter((f) => f.endsWith('.d.ts'));
      expect(files).toEqual(expect.arrayContaining(['index.d.ts', 'node.d.ts', 'size-classes.d.ts', 'heap.d.ts']));
      const offending: string[] = [];
      for (const f of files) {
        readFileSync(join(dir, f), 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (GENERIC_BINARY.test(line)) offending.push(`${f}:${i + 1}: ${line.trim()}`);
          });
      }
      expect(offending).toEqual([]);
      // The pattern finds the form it is for: the check can fail.
      expect(GENERIC_BINARY.test('export declare const SIZE: Int32Array<ArrayBuffer>;')).toBe(true);
      expect(GENERIC_BINARY.test('export declare const SIZE: Int32Array;')).toBe(false);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
