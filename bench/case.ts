/**
 * The records of `sabmalloc bench`, shared by its layers: what a case runs
 * ({@link CaseSpec}), what one run of it measured ({@link RunRecord}), and
 * its result and summary. Types only.
 *
 * The layers, each importing only from those below it (and from the
 * workload modules: bench-task, workloads, replay, native, lock-storm):
 *
 *   case.ts       these records
 *   plan.ts       what to run: workloads, parameters, heap sizes, the cases
 *   run.ts        running the cases: worker pools, heaps, native programs
 *   check.ts      validation: the runs of a case agree; cases agree
 *   summarize.ts  statistics: medians, ratios to glibc
 *
 * bench/cli.ts drives them in that order and prints with bench/report.ts.
 */
import type { HeapOptions, LockStats } from '../src/index.js';
import type { JsWorkload, WorkloadParams } from './bench-task.js';

export type Workload = JsWorkload;

/** What one case runs: an allocator on a workload at a thread count. */
export interface CaseSpec {
  /** 'sabmalloc', 'thi.ng', 'dlmalloc-wasm', 'reference', or a native allocator's name ('glibc', 'jemalloc', ...). */
  allocator: string;
  family: 'js' | 'native';
  workload: Workload;
  /** W5: the trace's name (bench/trace-prep.ts traceName). */
  trace?: string;
  threads: number;
  params: WorkloadParams;
  /** Cycles per thread this case stands for (W3: ops per thread). */
  cycles: number;
  /** sabmalloc: bytes of the heap (its initial size when heapMaxBytes is larger). */
  heapBytes?: number;
  /** sabmalloc: the most the heap may grow to (a growable buffer); absent = heapBytes. */
  heapMaxBytes?: number;
  /** sabmalloc: extra heap options (LOCK's magazines of one). */
  heapOptions?: Partial<HeapOptions>;
  /** sabmalloc: the --heap options, as the table's notes show them (`trimInterval=16`). */
  heapNote?: string;
  /** thi.ng: bytes of its pool. */
  poolBytes?: number;
  /** Native: the library preloaded (absent for the system allocator). */
  preload?: string;
  /** Shown in the table's notes column. */
  notes: string[];
}

/** The lock counters of src/stats.ts, as a difference over the timed part (recoveries left out). */
export type LockDelta = Omit<LockStats, 'recoveries'>;

/** One run of a case. */
export interface RunRecord {
  warmup: boolean;
  seconds: number;
  opsPerSec: number;
  ops: number;
  mallocs: number;
  bytesRequested: number;
  checksum: number;
  peakLiveBytes: number;
  /** sabmalloc: stats().peakFootprintBytes; thi.ng: pool top; dlmalloc-wasm: memory size; reference: bump top; native: peak RSS. */
  footprintBytes?: number;
  /** sabmalloc: the heap's metadata (its footprint before the first allocation). */
  metaBytes?: number;
  /** sabmalloc: stats().peakCarvedBytes, the address space of the carved SuperSlabs (metadata included). */
  carvedBytes?: number;
  /** sabmalloc: counters of the timed part. */
  lock?: LockDelta;
  stages?: { stage1: number; stage2: number; stage3: number; stage1Pushes: number };
  remoteFrees?: number;
  /** JS: latest thread start minus the release, in microseconds (how together the threads started). */
  releaseSkewUs?: number;
  /** JS: each thread's own timed loop, in seconds. */
  threadSeconds?: number[];
  /** Native: the shared object malloc came from. */
  mallocLibrary?: string;
  /**
   * Minor page faults of the process during the timed part (first touches of fresh pages, every
   * thread; W5: the replays and their untimed cleanups). Where a first touch is slow (10-22 us a
   * page on the machine of run 16 in docs/performance.md, "Round by round, every run") they are much of a large trace's time.
   */
  minorFaults?: number;
}

export interface PairedRatio {
  median: number;
  min: number;
  max: number;
  /** Rounds whose ratio is at least 1.0. */
  atLeastOne: number;
  rounds: number;
}

export interface CaseSummary {
  /** Of the timed (warm) runs. */
  opsPerSec: { median: number; min: number; max: number };
  /** The warm-up run: the first call of the timed loop in fresh workers (JS: partly on-stack-replaced code). */
  coldOpsPerSec?: number;
  /** ops/s median over glibc native's median for the same workload (W5: trace) and threads. */
  ratioToGlibc?: number;
  /**
   * Each timed run over glibc native's timed run of the same round (the runs of a group take
   * turns, so the two ran one after the other on the machine as it was then): their median, min
   * and max, and in how many of the rounds the ratio reached 1.0.
   */
  pairedRatio?: PairedRatio;
  footprintBytes?: number;
  carvedBytes?: number;
  metaBytes?: number;
  peakLiveBytes: number;
  footprintRatio?: number;
  /** Lock counters per million timed operations, over all timed runs. */
  lockPerMops?: { acquisitions: number; contended: number; waits: number; waitMs: number };
  /** Median per run. */
  stages?: { stage1: number; stage2: number; stage3: number };
  remoteFrees?: number;
  /** Median per timed run (RunRecord.minorFaults). */
  minorFaults?: number;
}

export interface CaseResult {
  spec: CaseSpec;
  /** The first run: the cold figure. */
  warmup?: RunRecord;
  /** Untimed runs between the cold run and the timed ones (allocators in V8 only: bench/run.ts warmupsFor). */
  warmups?: number;
  runs: RunRecord[];
  summary?: CaseSummary;
  error?: string;
}
