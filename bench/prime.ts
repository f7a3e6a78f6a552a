/**
 * The memory prime: before each timed run, of every allocator alike, a child process writes one
 * byte in each page of a region as large as the run will touch, and exits, so that the pages
 * the run then faults in are pages this machine has just handed out and taken back.
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
 * leaves. Untimed; skipped where no child process can be started.
 */
import { spawnSync } from 'node:child_process';
import { freemem } from 'node:os';

const MiB = 1 << 20;
/** The largest region primed (the largest heap sabmalloc takes). */
const MAX_PRIME = 2048 * MiB;

/** The child's program: a region of `bytes`, one byte written in each page, then exit. */
const PROGRAM = 'const n=+process.argv[1];const u=new Uint8Array(n);for(let i=0;i<n;i+=4096)u[i]=1;';

/**
 * Writes a page at a time into `bytes` of fresh memory in a child process, which then exits
 * (its pages go back to the system free lists, from where the next allocations take them).
 * Returns false where the child could not run.
 */
export function primeMemory(bytes: number): boolean {
  // At most half the memory the system has free: a prime is a courtesy to the runs, not a
  // reason for the machine to swap.
  const n = Math.min(MAX_PRIME, Math.floor(freemem() / 2 / MiB) * MiB, Math.ceil(bytes / MiB) * MiB);
  if (!(n > 0)) return true;
  const r = spawnSync(process.execPath, ['-e', PROGRAM, String(n)], { stdio: 'ignore' });
  return r.status === 0;
}
