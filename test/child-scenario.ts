/**
 * Runs a scenario file under tsx in a child process, killed after `deadlineMs` (a hang fails the
 * test that asked, not the run): what it printed, and the JSON after its `RESULT ` line.
 */
import { spawn } from 'node:child_process';

export interface ScenarioRun {
  hung: boolean;
  ms: number;
  result: Record<string, unknown> | undefined;
  output: string;
}

export function runScenarioFile(file: string, args: string[], deadlineMs: number): Promise<ScenarioRun> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let hung = false;
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.on('exit', () => {
      clearTimeout(timer);
      const line = output.split('\n').find((l) => l.startsWith('RESULT '));
      const result = line === undefined ? undefined : (JSON.parse(line.slice(7)) as Record<string, unknown>);
      resolve({ hung, ms: performance.now() - t0, result, output });
    });
  });
}
