/**
 * A second copy of the package for the tests of a thread that loads two (two installs, or a bundle
 * that inlines it beside an import of it): the build's dist/src copied into a folder of its own, a
 * module graph of its own. useBuiltCopy() registers the copy's making and removal with the calling
 * test file's beforeAll/afterAll and returns a getter of the copy's file URL (valid inside tests).
 */
import { afterAll, beforeAll } from 'vitest';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export function useBuiltCopy(): () => string {
  const built = fileURLToPath(new URL('../dist/src', import.meta.url));
  let dir = '';
  let copy = '';
  beforeAll(() => {
    if (!existsSync(join(built, 'index.js'))) throw new Error(`${built}/index.js is missing: run npm run build first`);
    dir = mkdtempSync(join(tmpdir(), 'sabmalloc-copy-'));
    cpSync(built, join(dir, 'src'), { recursive: true });
    copy = pathToFileURL(join(dir, 'src')).href;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return () => copy;
}
