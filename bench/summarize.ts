/**
 * Statistics of `sabmalloc bench` results: medians and ranges of the timed
 * runs, lock counters per million operations, and ratios to glibc.
 */
import type { CaseResult, CaseSummary, PairedRatio, RunRecord } from './case.js';

/** Median, minimum and maximum of `xs`. */
export function spread(xs: number[]): { median: number; min: number; max: number } {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? s[n >>> 1]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/** Sets the summary of a case that did not fail. */
export function summarizeCase(c: CaseResult): void {
  if (c.error === undefined && (c.runs.length > 0 || c.warmup !== undefined)) c.summary = summarize(c);
}

export function summarize(c: CaseResult): CaseSummary {
  const runs = c.runs.length > 0 ? c.runs : c.warmup ? [c.warmup] : [];
  const ops = runs.map((r) => r.opsPerSec);
  const s: CaseSummary = {
    opsPerSec: spread(ops),
    coldOpsPerSec: c.warmup?.opsPerSec,
    peakLiveBytes: runs[0]?.peakLiveBytes ?? 0,
  };
  const fps = runs.map((r) => r.footprintBytes).filter((x): x is number => x !== undefined);
  if (fps.length > 0) {
    s.footprintBytes = median(fps);
    if (s.peakLiveBytes > 0) s.footprintRatio = s.footprintBytes / s.peakLiveBytes;
  }
  const carved = runs.map((r) => r.carvedBytes).filter((x): x is number => x !== undefined);
  if (carved.length > 0) s.carvedBytes = median(carved);
  if (runs[0]?.metaBytes !== undefined) s.metaBytes = runs[0].metaBytes;
  const faults = runs.map((r) => r.minorFaults).filter((x): x is number => x !== undefined);
  if (faults.length > 0) s.minorFaults = median(faults);
  if (runs.every((r) => r.lock !== undefined)) {
    const totalOps = runs.reduce((a, r) => a + r.ops, 0);
    const per = (f: (r: RunRecord) => number): number =>
      totalOps > 0 ? (runs.reduce((a, r) => a + f(r), 0) / totalOps) * 1e6 : 0;
    s.lockPerMops = {
      acquisitions: per((r) => r.lock!.acquisitions),
      contended: per((r) => r.lock!.contended),
      waits: per((r) => r.lock!.waits),
      waitMs: per((r) => r.lock!.waitMs),
    };
    s.stages = {
      stage1: median(runs.map((r) => r.stages!.stage1)),
      stage2: median(runs.map((r) => r.stages!.stage2)),
      stage3: median(runs.map((r) => r.stages!.stage3)),
    };
    s.remoteFrees = median(runs.map((r) => r.remoteFrees ?? 0));
  }
  return s;
}

/** What a ratio compares across allocators: the workload, trace and thread count. */
export function ratioKey(c: CaseResult): string {
  return `${c.spec.workload}|${c.spec.trace ?? ''}|${c.spec.threads}`;
}

/**
 * Fills in each summary's ratio to glibc (or the system allocator) native on the same workload
 * and threads: of the medians, and round by round (pairedRatio).
 */
export function addRatios(cases: CaseResult[]): void {
  const ref = new Map<string, CaseResult>();
  for (const c of cases) {
    if (c.spec.family === 'native' && c.spec.preload === undefined && c.summary !== undefined) ref.set(ratioKey(c), c);
  }
  for (const c of cases) {
    const g = ref.get(ratioKey(c));
    if (c.summary === undefined || g === undefined) continue;
    const r = g.summary!.opsPerSec.median;
    if (r > 0) c.summary.ratioToGlibc = c.summary.opsPerSec.median / r;
    if (c !== g) {
      const paired = pairedRatio(c.runs, g.runs);
      if (paired !== undefined) c.summary.pairedRatio = paired;
    }
  }
}

/** Run k of `runs` over run k of `ref`, for the rounds both have; undefined when there are none. */
export function pairedRatio(runs: RunRecord[], ref: RunRecord[]): PairedRatio | undefined {
  const ratios: number[] = [];
  for (let k = 0; k < runs.length && k < ref.length; k++) {
    if (ref[k]!.opsPerSec > 0) ratios.push(runs[k]!.opsPerSec / ref[k]!.opsPerSec);
  }
  if (ratios.length === 0) return undefined;
  return {
    ...spread(ratios),
    atLeastOne: ratios.filter((x) => x >= 1).length,
    rounds: ratios.length,
  };
}
