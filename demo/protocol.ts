/** Messages and shared words between the demo page (main.ts) and its workers (worker.ts). */

/** Size mixes: name -> [smallest, largest] request in bytes, drawn log-uniformly. */
export const MIXES: Record<string, { label: string; min: number; max: number; window: number }> = {
  small: { label: 'small: 16 B - 256 B', min: 16, max: 256, window: 4096 },
  mixed: { label: 'mixed: 16 B - 16 KiB', min: 16, max: 16 << 10, window: 2048 },
  large: { label: 'large: 1 KiB - 128 KiB', min: 1 << 10, max: 128 << 10, window: 256 },
  huge: { label: 'with large runs: 16 B - 512 KiB', min: 16, max: 512 << 10, window: 128 },
};

export const CTL_STOP = 0; // 1: workers free what they hold, detach and answer 'done'
export const CTL_OPS = 8; // CTL_OPS + worker index: operations so far (Atomics.store every 1024)
export const CTL_WORDS = 64;
export const XFER_SLOTS = 256; // blocks handed between workers (freed by whoever takes them)

export interface StartMessage {
  buffer: SharedArrayBuffer;
  ctl: Int32Array;
  xfer: Int32Array;
  index: number;
  mix: string;
  seed: number;
  /** The id the page reserved for this worker (heap.newThreadId()): it attaches under it. */
  threadId: number;
}

export type WorkerMessage = { type: 'done'; ops: number } | { type: 'error'; message: string };
