/**
 * Statistics of `sabmalloc bench` results: medians and ranges of the timed
 * runs, lock counters per million operations, and ratios to glibc.
 */
import type { CaseResult, CaseSummary, RunRecord } from './case.js';

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
    opsPerSec: { median: median(ops), min: Math.min(...ops), max: Math.max(...ops) },
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

function ratioKey(c: CaseResult): string {
  return `${c.spec.workload}|${c.spec.trace ?? ''}|${c.spec.threads}`;
}

/** Fills in each summary's ratio to glibc (or the system allocator) native on the same workload and threads. */
export function addRatios(cases: CaseResult[]): void {
  const ref = new Map<string, number>();
  for (const c of cases) {
    if (c.spec.family === 'native' && c.spec.preload === undefined && c.summary !== undefined) {
      ref.set(ratioKey(c), c.summary.opsPerSec.median);
    }
  }
  for (const c of cases) {
    const r = ref.get(ratioKey(c));
    if (c.summary !== undefined && r !== undefined && r > 0) c.summary.ratioToGlibc = c.summary.opsPerSec.median / r;
  }
}
