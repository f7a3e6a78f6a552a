/**
 * `sabmalloc record` (bench/record.ts, bench/native/trace-record.c): a small C program with a known
 * sequence of calls is recorded, and the trace must hold exactly that sequence, with the ids the
 * shim promises (dense, the most recently freed reused first, kept across a realloc that moves),
 * nothing of other threads or of a forked child, and the counters at the end. The trace must then
 * replay on sabmalloc. Needs Linux, glibc and a C compiler (as the native peers of the benchmark).
 */
import { spawn, spawnSync } from 'node:child_process';
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

/**
 * Records `bin` with the CLI in a process group of its own (a terminal's foreground job), and once
 * the program printed "ready", sends SIGINT to the whole group, as Ctrl-C does.
 */
async function recordThenCtrlC(bin: string, out: string): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/cli.ts', 'record', '--out', out, '--', bin], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((res) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && res()));
  process.kill(-child.pid!, 'SIGINT');
  const [code, signal] = await new Promise<[number | null, string | null]>((res) => child.on('exit', (c, s) => res([c, s])));
  return { code, signal, stderr };
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
    expect(await main(['record', '--out', join(dir, 'killed.trace'), '--', join(dir, 'killed'), '200000'], io)).toBe(128 + 9); // the program's: SIGKILL
    expect(errs.join('')).toMatch(/no closing counters line/);
    expect(errs.join('')).toMatch(/the program was ended by SIGKILL/);
    errs.length = 0;
    // Killed before the shim wrote anything: no trace, and still the program's exit code (it was 1).
    expect(await main(['record', '--out', join(dir, 'killed.trace'), '--', join(dir, 'killed'), '1'], io)).toBe(128 + 9);
    expect(errs.join('')).toMatch(/was ended by SIGKILL before the shim wrote any of its calls/);

    // A program that fails: its trace and summary come, and its exit code is record's.
    errs.length = 0;
    const failing = compile('fails', '#include <stdlib.h>\nint main(void) { free(malloc(77)); return 3; }\n');
    expect(await main(['record', '--out', join(dir, 'fails.trace'), '--', failing], io)).toBe(3);
    expect(errs.join('')).toMatch(/fails\.trace: [\d,]+ ops/);
    expect(errs.join('')).toMatch(/the program exited with 3/);
    expect(readFileSync(join(dir, 'fails.trace'), 'utf8')).toMatch(/^a \d+ 77$/m);

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

/** Compiles a small C program into the test's folder; returns its path. */
function compile(name: string, source: string): string {
  const src = join(dir, `${name}.c`);
  writeFileSync(src, source);
  const bin = join(dir, name);
  const cc = spawnSync(findCompiler()!, ['-O0', '-pthread', '-o', bin, src], { encoding: 'utf8' });
  expect(cc.status, cc.stderr).toBe(0);
  return bin;
}

describe('sabmalloc record, programs as users run them', () => {
  it('an argument with a newline (python3 -c, sh -c scripts) stays on the # command: line', async () => {
    const out = join(dir, 'newline.trace');
    const s = await recordTrace({ out, command: ['/bin/sh', '-c', `${prog}\nexit 0`], stdio: 'ignore' });
    expect(s.status).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/^# command: .*\\nexit 0$/m);
  });

  it('a command line longer than one environment string (128 KiB) still runs', async () => {
    const args = Array.from({ length: 30000 }, (_, i) => String(i)); // 168,889 bytes
    const out = join(dir, 'longcmd.trace');
    const s = await recordTrace({ out, command: ['/bin/sh', '-c', `${prog}; exit 0`, ...args], stdio: 'ignore' });
    expect(s.status).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/^# command: \/bin\/sh -c .{0,4000}\.\.\. \(\d+ more bytes\)$/m);
  });

  it("a program that opens its own file on descriptor 3 (a shell's exec 3>FILE) keeps its file, and the trace its lines", async () => {
    const own = join(dir, 'own-fd3.txt');
    const out = join(dir, 'fd3.trace');
    const s = await recordTrace({
      out,
      command: ['/bin/sh', '-c', `exec 3>${own}; echo mine >&3; ${prog}; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; echo end >&3`],
      stdio: 'ignore',
    });
    expect(s.status).toBe(0);
    expect(readFileSync(own, 'utf8')).toBe('mine\nend\n');
    expect(s.ops).toBeGreaterThan(0);
    expect(s.counters['live_at_exit']).toBeGreaterThanOrEqual(0); // the closing line reached the trace
    expect(Object.keys(s.counters).length).toBeGreaterThan(0);
  });

  it('a vfork child whose exec fails and calls _exit (Python subprocess of a missing program) leaves the trace to the parent', async () => {
    const bin = compile(
      'vfork',
      '#include <stdlib.h>\n#include <unistd.h>\n#include <sys/wait.h>\n' +
        'int main(void) { void *a = malloc(11111); pid_t c = vfork();\n' +
        '  if (c == 0) { execl("/nonexistent", "x", (char *)0); _exit(127); }\n' +
        '  waitpid(c, 0, 0); void *b = malloc(22222); free(b); free(a); return 0; }\n',
    );
    const out = join(dir, 'vfork.trace');
    const s = await recordTrace({ out, command: [bin], stdio: 'ignore' });
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/^a (\d+) 11111\na (\d+) 22222\nf \2\nf \1\n# counters: /m);
    expect(text.match(/^# counters: /gm)).toHaveLength(1);
    expect(s.counters['live_at_exit']).toBe(0);
  });

  it('blocks of 2 GiB and more (W5 sizes are below 2^31) are counted, not written, and the trace replays', async () => {
    const bin = compile(
      'huge',
      '#include <stdlib.h>\n' +
        'int main(void) { char *a = malloc(100); char *b = malloc((size_t)3 << 30); if (!b) return 2;\n' +
        '  b = realloc(b, (size_t)5 << 30); free(b); char *c = malloc(200); c = realloc(c, (size_t)1 << 31); free(c);\n' +
        '  free(a); return 0; }\n',
    );
    const out = join(dir, 'huge.trace');
    const s = await recordTrace({ out, command: [bin], stdio: 'ignore' });
    expect(s.status).toBe(0);
    expect(readFileSync(out, 'utf8')).not.toMatch(/ \d{10,}$/m);
    expect(s.counters['too_large']).toBe(2); // the malloc of 3 GiB and c's realloc to 2 GiB (its block leaves the trace)
    expect(s.counters['unknown_pointers']).toBe(3); // b's realloc and free, c's free
    expect(s.mallocs).toBeGreaterThanOrEqual(2);
    const heap = SharedHeap.create({ initialBytes: 4 << 20, maxBytes: 8 << 20 });
    expect(replayFile(heap, out).ops).toBe(s.ops);
  });

  it('pvalloc of a size that overflows when rounded to a page fails as in glibc', async () => {
    const bin = compile(
      'pvalloc',
      '#include <malloc.h>\n#include <stdint.h>\n#include <stdlib.h>\n' +
        'int main(void) { void *p = pvalloc(SIZE_MAX); if (p) return 5; p = pvalloc(100); if (!p) return 6; free(p); return 0; }\n',
    );
    const s = await recordTrace({ out: join(dir, 'pvalloc.trace'), command: [bin], stdio: 'ignore' });
    expect(s.status).toBe(0);
  });

  it('bash, which has its own getenv and setenv, still gets the # command: line', async () => {
    const out = join(dir, 'bash.trace');
    await recordTrace({ out, command: ['bash', '-c', 'x=1; echo $x'], stdio: 'ignore' });
    expect(readFileSync(out, 'utf8')).toMatch(/^# command: bash -c x=1; echo \$x$/m);
  });

  it('main-thread blocks that another thread frees are written freed when the main thread gets their address again', async () => {
    const bin = compile(
      'consumer',
      '#include <pthread.h>\n#include <stdlib.h>\n#define N 1000\nstatic void *blocks[N];\n' +
        'static void *consumer(void *arg) { for (int i = 0; i < N; i++) free(blocks[i]); return arg; }\n' +
        'int main(void) { for (int r = 0; r < 5; r++) { for (int i = 0; i < N; i++) blocks[i] = malloc(1000);\n' +
        '  pthread_t t; pthread_create(&t, 0, consumer, 0); pthread_join(t, 0); } return 0; }\n',
    );
    const s = await recordTrace({ out: join(dir, 'consumer.trace'), command: [bin], stdio: 'ignore' });
    expect(s.status).toBe(0);
    // 1,000 live at a time in the program; the trace had 5,000 (none of the thread's frees).
    expect(s.peakLiveBlocks).toBeLessThan(1500);
    expect(s.counters['freed_elsewhere']).toBeGreaterThan(3000);
  });

  it('Ctrl-C (SIGINT to the whole process group) ends the program, not the recorder: the trace and summary still come', async () => {
    const bin = compile(
      'sigint',
      '#include <signal.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n' +
        'static volatile sig_atomic_t stop;\nstatic void on_int(int s) { (void)s; stop = 1; }\n' +
        'int main(void) { signal(SIGINT, on_int); void *p = malloc(4444); free(p); puts("ready"); fflush(stdout);\n' +
        '  while (!stop) usleep(10000); free(malloc(5555)); return 0; }\n',
    );
    const out = join(dir, 'sigint.trace.gz');
    const { code, signal, stderr } = await recordThenCtrlC(bin, out);
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(stderr).toMatch(/sigint\.trace\.gz: \d+ ops/);
    expect(gunzipSync(readFileSync(out)).toString('utf8')).toMatch(/^a \d+ 5555$/m);
  }, 60_000);

  it('a program that closes stdout and then all its descriptors keeps its output out of the trace, and its /dev/null gets descriptor 0', async () => {
    const bin = compile(
      'closeall',
      '#include <fcntl.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n' +
        'static void churn(int n) { for (int i = 0; i < n; i++) free(malloc(16 + i % 7)); }\n' +
        'static void say(void) { for (int i = 0; i < 10; i++) if (write(1, "program output\\n", 15) < 0) break; }\n' +
        'int main(int argc, char **argv) { (void)argc; churn(1000); say();\n' +
        '  close(1); for (int fd = 3; fd < 4096; fd++) close(fd);  /* closefrom(3), stdout already closed */\n' +
        '  churn(150000); say();                                      /* a flush opens the trace again */\n' +
        '  for (int fd = 0; fd < 4096; fd++) close(fd);              /* a daemon: everything, then /dev/null as 0 */\n' +
        '  churn(150000); int fd = open("/dev/null", O_RDWR);\n' +
        '  int o = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644); dprintf(o, "%d", fd); return 0; }\n',
    );
    const got = join(dir, 'closeall.fd');
    for (const [name, command] of [
      ['closeall', [bin, got]],
      // RLIMIT_NOFILE 64 (no room at 960) and stdout closed from the start (prog >&-)
      ['closeall64', ['/bin/sh', '-c', `ulimit -n 64; exec ${bin} ${got} >&-`]],
    ] as const) {
      const out = join(dir, `${name}.trace`);
      const s = await recordTrace({ out, command: [...command], stdio: 'ignore' }); // parses the trace
      expect(s.status).toBe(0);
      expect(readFileSync(out, 'utf8')).not.toMatch(/program output/);
      expect(s.mallocs).toBeGreaterThanOrEqual(301000); // none lost after the reopen
      expect(s.frees).toBeGreaterThanOrEqual(301000);
      expect(readFileSync(got, 'utf8')).toBe('0');
    }
  }, 60_000);

  it('Ctrl-C that ends a program which does not handle it: the trace and summary come, and the exit code is 130', async () => {
    const bin = compile(
      'sigint-default',
      '#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n' +
        'int main(void) { for (int i = 0; i < 200000; i++) free(malloc(16)); puts("ready"); fflush(stdout);\n' +
        '  for (;;) { free(malloc(10)); usleep(1000); } }\n',
    );
    const out = join(dir, 'sigint-default.trace.gz');
    const { code, signal, stderr } = await recordThenCtrlC(bin, out);
    expect(stderr).toMatch(/sigint-default\.trace\.gz: [\d,]+ ops/);
    expect(stderr).toMatch(/the program was ended by SIGINT/);
    expect(signal).toBeNull();
    expect(code).toBe(130); // a script running the recorder stops too (bash goes on after a 0)
    expect(gunzipSync(readFileSync(out)).toString('utf8')).toMatch(/^a \d+ 16$/m);
  }, 60_000);
});
