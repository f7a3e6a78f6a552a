/**
 * Validation of `sabmalloc bench` results: every run of a case did the same
 * operations, and cases of the same parameters did the same operations
 * whatever the allocator. (Each workload also checks its own blocks while it
 * runs; see bench/workloads.ts.)
 */
import type { CaseResult } from './case.js';

const COUNT_FIELDS = ['ops', 'mallocs', 'bytesRequested', 'checksum', 'peakLiveBytes'] as const;

/** Marks a case as failed (its `error`) if its runs disagree (see {@link checkRunsAgree}). */
export function checkCase(c: CaseResult): void {
  if (c.error !== undefined) return;
  try {
    checkRunsAgree(c);
  } catch (err) {
    c.error = err instanceof Error ? err.message : String(err);
  }
}

/** Every run of a case (the warm-up too) must have done the same operations. */
export function checkRunsAgree(c: CaseResult): void {
  const all = [...(c.warmup ? [c.warmup] : []), ...c.runs];
  const first = all[0];
  if (first === undefined) return;
  for (const [i, r] of all.entries()) {
    for (const f of COUNT_FIELDS) {
      if (r[f] !== first[f]) {
        throw new Error(`${f} differs between runs of ${c.spec.allocator} ${c.spec.workload}: ${first[f]} in the first, ${r[f]} in run ${i}`);
      }
    }
  }
}

/**
 * Cases of the same workload, threads and parameters must have done the same
 * operations whatever the allocator (sabmalloc, native, thi.ng): a mismatch
 * marks the later case as failed.
 */
export function checkCasesAgree(cases: CaseResult[]): void {
  const seen = new Map<string, CaseResult>();
  for (const c of cases) {
    const r = c.runs[0];
    if (c.error !== undefined || r === undefined) continue;
    const key = `${c.spec.workload}|${c.spec.threads}|${JSON.stringify(c.spec.params)}`;
    const ref = seen.get(key);
    if (ref === undefined) {
      seen.set(key, c);
      continue;
    }
    const r0 = ref.runs[0]!;
    for (const f of ['mallocs', 'bytesRequested', 'checksum'] as const) {
      if (r[f] !== r0[f]) {
        c.error = `${f} ${r[f]} differs from ${ref.spec.allocator}'s ${r0[f]} on the same ${c.spec.workload} parameters`;
        c.summary = undefined;
        break;
      }
    }
  }
}
