/**
 * Starts the system's Chromium (never a downloaded one) through playwright-core. CHROMIUM_PATH
 * overrides the executable; the default is Debian's /usr/bin/chromium, which `.ci/run` installs.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { serve, type Served } from '../../demo/server.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  // Playwright gives every launch a new empty profile directory.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Collects uncaught page errors and console errors, so a test can assert there were none. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return errors;
}

/**
 * For one test file (its beforeAll and afterAll): serves `entries` (name: source file, bundled to
 * `/<name>.js`) with an index.html that loads `/<main>.js`, and starts Chromium. `evaluate(expr)`
 * opens the page, waits for its title to read 'ready', evaluates `expr` there, and answers its
 * value with the page's errors meanwhile (watchErrors); the page is closed after.
 */
export function pageFixture(main: string, entries: Record<string, string>): { evaluate<T>(expr: string): Promise<{ value: T; errors: string[] }> } {
  const page = `<!doctype html><meta charset="utf-8"><title>loading</title><script type="module" src="/${main}.js"></script>`;
  let served: Served | undefined;
  let browser: Browser | undefined;
  beforeAll(async () => {
    served = await serve({ entries, files: { '/index.html': page } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await served?.close();
  });
  return {
    async evaluate<T>(expr: string): Promise<{ value: T; errors: string[] }> {
      const p = await browser!.newPage();
      const errors = watchErrors(p);
      try {
        await p.goto(`${served!.origin}/index.html`);
        await p.waitForFunction(() => document.title === 'ready');
        return { value: (await p.evaluate(expr)) as T, errors };
      } finally {
        await p.close();
      }
    },
  };
}
