/**
 * `npm run demo`: serves the demo page on localhost with the COOP/COEP headers that
 * SharedArrayBuffer needs, and prints its URL. PORT (default 8080) and HOST (default 127.0.0.1)
 * choose where.
 */
import { readFileSync } from 'node:fs';
import { serve, type Served } from './server.js';

const here = new URL('.', import.meta.url).pathname;

/** Starts the demo server (port 0: any free port). */
export function serveDemo(port = 0, host = '127.0.0.1'): Promise<Served> {
  return serve({
    entries: { main: `${here}main.ts`, worker: `${here}worker.ts` },
    files: { '/index.html': readFileSync(`${here}index.html`, 'utf8') },
    port,
    host,
  });
}

if (process.argv[1] !== undefined && new URL(import.meta.url).pathname === process.argv[1]) {
  const s = await serveDemo(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1');
  console.log(`sabmalloc demo: ${s.origin}/  (Ctrl-C to stop)`);
}
