/**
 * `sabmalloc record` (bench/record.ts, bench/native/trace-record.c): a small C program with a known
 * sequence of calls is recorded, and the trace must hold exactly that sequence, with the ids the
 * shim promises (dense, the most recently freed reused first, kept across a realloc that moves),
 * nothing of other threads or of a forked child, and the counters at the end. The trace must then
 * replay on sabmalloc. Needs Linux, glibc and a C compiler (as the native peers of the benchmark).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { main, type CliIO } from '../bench/cli.js';
import { findCompiler } from '../bench/native.js';
import { readCounters, recordSkipReason, recordTrace } from '../bench/record.js';
import { replayFile } from '../bench/replay.js';

const PROGRAM = String.raw`
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *worker(void *arg) {
  for (int i = 0; i < 10; i++) free(malloc(64));
  return arg;
}

int main(void) {
  void *mark = malloc(12345);
  char *p = malloc(100);
  char *q = calloc(3, 10);
  p = realloc(p, 200);
  free(q);
  char *r = malloc(7);
  p = realloc(p, 1 << 22);   /* moves (glibc maps it): keeps its id */
  void *al = 0;
  if (posix_memalign(&al, 64, 50) != 0) return 3;
  free(p);
  free(r);
  free(0);                   /* not written */
  free(al);
  void *leak = malloc(33);   /* live at exit */
  (void)leak;
  void *arr = reallocarray(0, 7, 11);
  arr = reallocarray(arr, 13, 11);
  free(arr);
  char *dup = strdup("hello");  /* malloc called inside libc */
  free(dup);
  free(mark);
  void *end = malloc(54321);
  free(end);
  pthread_t th;              /* its calls are counted, not written */
  if (pthread_create(&th, 0, worker, 0) != 0) return 4;
  pthread_join(th, 0);
  pid_t child = fork();      /* the child's calls are not the parent's */
  if (child == 0) { free(malloc(99)); _exit(0); }
  waitpid(child, 0, 0);
  return 0;
}
`;

let dir = '';
let prog = '';

beforeAll(() => {
  expect(recordSkipReason()).toBeUndefined(); // Linux, glibc and a C compiler, as CI has
  dir = mkdtempSync(join(tmpdir(), 'sabmalloc-record-'));
  writeFileSync(join(dir, 'prog.c'), PROGRAM);
  prog = join(dir, 'prog');
  const r = spawnSync(findCompiler()!, ['-O0', '-pthread', '-o', prog, join(dir, 'prog.c')], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** The trace's operation lines from the one allocating `from` bytes up to the free of the one allocating `to`. */
function between(text: string, from: number, to: number): string[] {
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const start = lines.findIndex((l) => l.startsWith('a ') && l.endsWith(` ${from}`));
  expect(start).toBeGreaterThanOrEqual(0);
  const endLine = lines.slice(start).find((l) => l.startsWith('a ') && l.endsWith(` ${to}`));
  expect(endLine).toBeDefined();
  const endId = endLine!.split(' ')[1];
  const end = lines.indexOf(`f ${endId}`, lines.indexOf(endLine!, start));
  return lines.slice(start, end + 1);
}

describe('sabmalloc record', () => {
  it('writes the main thread calls in order, with dense ids reused most recent first, kept across a moving realloc', async () => {
    const out = join(dir, 'prog.trace');
    const s = await recordTrace({ out, command: [prog], stdio: 'ignore' });
    expect(s.status).toBe(0);
    const ops = between(readFileSync(out, 'utf8'), 12345, 54321);
    const ids = new Map<string, string>();
    const shape = ops.map((l) => {
      const [op, id, size] = l.split(' ');
      if (!ids.has(id!)) ids.set(id!, String.fromCharCode(65 + ids.size)); // A, B, C... by first use
      return `${op} ${ids.get(id!)}${size !== undefined ? ` ${size}` : ''}`;
    });
    expect(shape).toEqual([
      'a A 12345',
      'a B 100',
      'c C 30',
      'r B 200',
      'f C',
      'a C 7', // the id freed last comes back first
      'r B 4194304',
      'a D 50', // posix_memalign, its alignment dropped
      'f B',
      'f C',
      'f D',
      'a D 33',
      'a C 77', // reallocarray(NULL, 7, 11); C was freed before D, so it comes back after D
      'r C 143',
      'f C',
      'a C 6', // strdup("hello")
      'f C',
      'f A',
      'a A 54321',
      'f A',
    ]);
    expect(readFileSync(out, 'utf8')).not.toMatch(/^a \d+ 99$/m); // the forked child's malloc
    expect(s.counters['other_threads']).toBeGreaterThanOrEqual(20); // the worker's 10 mallocs and 10 frees
    expect(s.counters['unknown_pointers']).toBe(0);
    expect(s.counters['live_at_exit']).toBeGreaterThanOrEqual(1); // the 33 bytes
    expect(readCounters(out)).toEqual(s.counters);
    expect(s.ops).toBe(s.mallocs + s.callocs + s.reallocs + s.frees);
  });

  it('a wrapper that execs the program hands the trace on; a program it merely starts does not record', async () => {
    const viaExec = join(dir, 'exec.trace');
    await recordTrace({ out: viaExec, command: ['/bin/sh', '-c', `exec ${prog}`], stdio: 'ignore' });
    expect(readFileSync(viaExec, 'utf8')).toMatch(/^a \d+ 12345$/m);
    const viaChild = join(dir, 'child.trace');
    await recordTrace({ out: viaChild, command: ['/bin/sh', '-c', `${prog}; exit 0`], stdio: 'ignore' }).catch(() => undefined);
    expect(readFileSync(viaChild, 'utf8')).not.toMatch(/^a \d+ 12345$/m);
  });

  it.each([
    ['_exit', '_exit(0);'],
    ['exit from another thread', 'pthread_t th; pthread_create(&th, 0, exiter, 0); pthread_join(th, 0);'],
  ])('a program that ends with %s still gets its whole trace and the counters', async (name, ending) => {
    const src = join(dir, 'ending.c');
    writeFileSync(
      src,
      `#include <pthread.h>\n#include <stdlib.h>\n#include <unistd.h>\n` +
        `static void *exiter(void *a) { exit(0); return a; }\n` +
        `int main(void) { void *p = malloc(4321); (void)p; void *q = malloc(1234); free(q); ${ending} return 1; }\n`,
    );
    const bin = join(dir, 'ending');
    const cc = spawnSync(findCompiler()!, ['-O0', '-pthread', '-o', bin, src], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    const out = join(dir, `ending-${name.length}.trace`);
    const s = await recordTrace({ out, command: [bin], stdio: 'ignore' });
    expect(s.status).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/^a (\d+) 4321\na (\d+) 1234\nf \2$/m);
    expect(s.counters['live_at_exit']).toBeGreaterThanOrEqual(1);
  });

  it('the recorded trace replays on sabmalloc', async () => {
    const out = join(dir, 'replay.trace');
    await recordTrace({ out, command: [prog], stdio: 'ignore' });
    const heap = SharedHeap.create({ initialBytes: 32 << 20, maxBytes: 64 << 20 });
    const r = replayFile(heap, out);
    expect(r.ops).toBeGreaterThan(15);
    expect(r.peakLiveBytes).toBeGreaterThanOrEqual(4194304);
    heap.check();
    expect(heap.stats().liveBlocks).toBe(0);
  });

  it('the command line writes gzip for a .gz name, and says what is missing', async () => {
    const errs: string[] = [];
    const io: CliIO = { out: (s) => errs.push(s), err: (s) => errs.push(s), isTTY: false };
    const out = join(dir, 'cli.trace.gz');
    expect(await main(['record', '--out', out, '--', prog], io)).toBe(0);
    const text = gunzipSync(readFileSync(out)).toString('utf8');
    expect(text).toMatch(/^# command: .*prog$/m);
    expect(text).toMatch(/^a \d+ 12345$/m);
    expect(errs.join('')).toMatch(/ops \(a \d+, c \d+, r \d+, f \d+\), peak live [\d,]+ B/);
    expect(errs.join('')).toMatch(/not recorded: other_threads \d+/);

    errs.length = 0;
    const killed = join(dir, 'killed.c');
    writeFileSync(
      killed,
      '#include <signal.h>\n#include <stdlib.h>\n' +
        'int main(int argc, char **argv) { for (int i = 0; i < atoi(argv[1]); i++) free(malloc(5)); raise(SIGKILL); return 0; }\n',
    );
    expect(spawnSync(findCompiler()!, ['-o', join(dir, 'killed'), killed]).status).toBe(0);
    // 200,000 pairs: more than the shim's 1 MiB buffer, so most of it reached the file.
    expect(await main(['record', '--out', join(dir, 'killed.trace'), '--', join(dir, 'killed'), '200000'], io)).toBe(0);
    expect(errs.join('')).toMatch(/no closing counters line/);
    expect(errs.join('')).toMatch(/the program was ended by SIGKILL/);
    errs.length = 0;
    expect(await main(['record', '--out', join(dir, 'killed.trace'), '--', join(dir, 'killed'), '1'], io)).toBe(1);
    expect(errs.join('')).toMatch(/was ended by SIGKILL before the shim wrote any of its calls/);

    errs.length = 0;
    expect(await main(['record', '--out', out], io)).toBe(2);
    expect(errs.join('')).toMatch(/expected the program after --, got no --/);
    errs.length = 0;
    expect(await main(['record', '--', prog], io)).toBe(2);
    expect(errs.join('')).toMatch(/--out FILE is required/);
    errs.length = 0;
    expect(await main(['record', '--out', join(dir, 'x.trace'), '--', join(dir, 'no-such-program')], io)).toBe(1);
    expect(errs.join('')).toMatch(/could not run .*no-such-program/);
  });
});
