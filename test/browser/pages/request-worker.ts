/**
 * A module Web Worker of the browser pages with a promise per request: each request gets an id,
 * and the worker's reply with that id settles it; replies with id -1 (sent in the middle of a
 * command) queue for nextEarly(). Used by the suite's page (suite.ts) and the chaos page (chaos.ts).
 */
export interface WorkerReply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

export class RequestWorker<Req extends object> {
  readonly worker: Worker;
  private next = 1;
  private waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  /** Replies with id -1 (sent in the middle of a command). */
  readonly early: unknown[] = [];
  private earlyWaiters: ((v: unknown) => void)[] = [];

  constructor(url: string) {
    this.worker = new Worker(url, { type: 'module' });
    this.worker.onmessage = (e: MessageEvent<WorkerReply>) => {
      const r = e.data;
      if (r.id === -1) {
        const w = this.earlyWaiters.shift();
        if (w) w(r.value);
        else this.early.push(r.value);
        return;
      }
      const p = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if (r.ok) p?.resolve(r.value);
      else p?.reject(new Error(r.error));
    };
    this.worker.onerror = (e) => {
      for (const p of this.waiting.values()) p.reject(new Error(`worker error: ${e.message}`));
      this.waiting.clear();
    };
  }

  call<T>(req: Req): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...req, id });
    });
  }

  nextEarly<T>(): Promise<T> {
    if (this.early.length > 0) return Promise.resolve(this.early.shift() as T);
    return new Promise<T>((resolve) => this.earlyWaiters.push(resolve as (v: unknown) => void));
  }
}
