/**
 * A tiny static server for pages that use a SharedArrayBuffer: it bundles TypeScript entry
 * points for the browser with esbuild (in memory, ESM, code splitting so a page and its module
 * workers share one copy of the allocator) and serves them on 127.0.0.1 with the two headers
 * that make a page cross-origin isolated (COOP same-origin, COEP require-corp), without which
 * browsers do not expose SharedArrayBuffer. Used by `npm run demo` and by the browser tests.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';

export interface ServeOptions {
  /** Bundle name (served as /<name>.js) -> TypeScript entry file. */
  entries: Record<string, string>;
  /** Other files: URL path (starting with /) -> contents. */
  files: Record<string, string | Uint8Array>;
  /** 0 (default): any free port. */
  port?: number;
  host?: string;
}

export interface Served {
  /** http://127.0.0.1:<port> (no trailing slash). */
  origin: string;
  server: Server;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.png': 'image/png',
};

/** Bundles `entries` for the browser: URL path -> contents. */
export async function bundleForBrowser(entries: Record<string, string>): Promise<Map<string, Uint8Array>> {
  const result = await build({
    entryPoints: entries,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outdir: '/out',
    write: false,
    sourcemap: 'inline',
    logLevel: 'error',
  });
  const out = new Map<string, Uint8Array>();
  for (const f of result.outputFiles) out.set(f.path.slice('/out'.length), f.contents);
  return out;
}

export async function serve(options: ServeOptions): Promise<Served> {
  const files = await bundleForBrowser(options.entries);
  for (const [path, body] of Object.entries(options.files)) {
    files.set(path, typeof body === 'string' ? new TextEncoder().encode(body) : body);
  }
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const body = files.get(path === '/' ? '/index.html' : path);
    const headers = {
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cache-Control': 'no-store',
    };
    if (body === undefined && path === '/favicon.ico') {
      res.writeHead(204, headers).end();
      return;
    }
    if (body === undefined) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end(`not found: ${path}`);
      return;
    }
    const ext = /\.[a-z]+$/.exec(path === '/' ? '.html' : path)?.[0] ?? '';
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[ext] ?? 'application/octet-stream' }).end(body);
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://${host}:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
