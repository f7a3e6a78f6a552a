/**
 * The one place that decides how a worker file is started: from the TypeScript sources (tests,
 * `tsx`) with the tsx loader, or from the build (`dist/`) as plain JavaScript.
 */
import { fileURLToPath } from 'node:url';

export interface WorkerEntry {
  /** Absolute path of the worker file. */
  filename: string;
  /** execArgv for the Worker (or piscina): loads tsx when running from sources. */
  execArgv: string[];
}

/** Where `workers/<name>` is, relative to this module, whether running from src/ or dist/src/. */
export function workerEntry(name: string): WorkerEntry {
  const fromSource = import.meta.url.endsWith('.ts');
  const file = new URL(`../workers/${name}.${fromSource ? 'ts' : 'js'}`, import.meta.url);
  return { filename: fileURLToPath(file), execArgv: fromSource ? ['--import', 'tsx'] : [] };
}
