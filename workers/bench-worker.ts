/**
 * The piscina task file of `sabmalloc bench`: one task is one thread of one
 * timed run (or a MICRO helper). The logic is in bench/bench-task.ts.
 */
import { runBenchTask, type BenchTask, type ThreadResult } from '../bench/bench-task.js';

export default function benchWorker(task: BenchTask): Promise<ThreadResult | number> {
  return runBenchTask(task);
}
