/**
 * The memory prime: before each timed run, of every allocator alike (the bench, `sabmalloc ab`,
 * `sabmalloc ceiling`), a worker thread writes one byte in each page of a region as large as the
 * run will touch, and ends, so that the pages the run then faults in are pages this machine has
 * just handed out and taken back.
 *
 * Why: on a virtual machine a page the guest has not used lately may no longer be backed by the
 * host (this one, a Firecracker VM with free page reporting and DAMON reclaiming cold memory,
 * takes such pages back), and the first touch of one costs a fault in the host as well as in
 * the guest. Measured here, xmllint_format's replay took 1.5 s instead of 0.35-0.5 s in such a
 * spell, all of it in the kernel (perf stat: 1.33 s of system time against 0.44 s; the same
 * 83,687 faults), glibc's and sabmalloc's alike, and which run met a spell depended on when the
 * runs before it had let their memory go: with sabmalloc in the comparison glibc's five replays
 * all ran in it (3.5-3.8 M ops/s against 12-17 M on its own). With a prime of twice the trace's
 * peak live bytes (plan.ts primeBytesFor) no replay of the two largest traces met one (0 of 24:
 * glibc's xmllint_format 10.4-15.2 M ops/s, sabmalloc's 9.2-13.8, dlmalloc-wasm's 8.8-12.0).
 * A machine without a host under it faults at the guest's price only, which is what the prime
 * leaves. Untimed; skipped where no worker can be started.
 */
import { Worker } from 'node:worker_threads';
import { freemem } from 'node:os';

const MiB = 1 << 20;
/** The largest region primed (the largest heap sabmalloc takes). */
const MAX_PRIME = 2048 * MiB;

/** How much to prime for `bytes`: at most half the memory the system has free (a prime is a courtesy to the runs, not a reason for the machine to swap), in whole MiB. */
function primeBytes(bytes: number): number {
  return Math.min(MAX_PRIME, Math.floor(freemem() / 2 / MiB) * MiB, Math.ceil(bytes / MiB) * MiB);
}

/** The worker's program: a region of workerData bytes, one byte written in each page; its memory goes back when the worker ends. */
const PROGRAM = 'const n=require("node:worker_threads").workerData;const u=new Uint8Array(n);for(let i=0;i<n;i+=4096)u[i]=1;';

/**
 * Writes a page at a time into `bytes` of fresh memory in a worker thread of this process, which
 * then ends: its region is freed (its pages back on the system free lists, from where the next
 * allocations take them) before this resolves. A worker, not a child process: starting a child
 * forks this process, and a fork leaves every page the process had written copy-on-write, so the
 * next write to each faults again, in whatever runs next. Measured on an AMD EPYC VM (2 cores),
 * `bench W1` with every allocator, at 91b4e53 (the child's prime): sabmalloc's W1 run took 1,872
 * page faults with the prime and 561 without one (its memory 2.1 MiB), 40.6 against 44.5 M ops/s;
 * the reference floor's 2,748 against 1,035, and 572-576 with the worker's prime; the natives,
 * each run a process of its own, the same. sabmalloc's stayed at about 1,830 with the worker's
 * prime until the W1 loop stopped making garbage (bench/workloads.ts slotLoop: the native runs'
 * forks still leave the young generation copy-on-write): 522-624 since. Resolves false where the
 * worker could not run.
 */
export function primeMemory(bytes: number): Promise<boolean> {
  const n = primeBytes(bytes);
  if (!(n > 0)) return Promise.resolve(true);
  return new Promise((resolve) => {
    let ok = true;
    const w = new Worker(PROGRAM, { eval: true, workerData: n });
    w.once('error', () => {
      ok = false;
    });
    w.once('exit', (code) => resolve(ok && code === 0));
  });
}
