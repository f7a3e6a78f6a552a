/**
 * Test helper: a stand-in for the Web Locks API (`navigator.locks`) within one thread, so that the
 * browser-only paths (attachAsync, reclaimWhenGone) run in Node: exclusive locks, granted in the
 * order asked, asynchronously, and held until the callback's promise settles. It cannot see other
 * threads' locks; the tests that use it run every thread of theirs in one.
 */
interface Waiter {
  callback: (lock: { name: string }) => unknown;
  done: (value: unknown) => void;
  failed: (error: unknown) => void;
}

export interface WebLocksStandIn {
  /** Names of the locks held now. */
  held(): string[];
  /** Holds `name` until the returned function is called (as another thread would). */
  hold(name: string): Promise<() => void>;
  /** Puts back what `navigator` was. */
  uninstall(): void;
}

export function installWebLocks(): WebLocksStandIn {
  // Shared holders may be many at once (a reclaimer's gone mark: src/liveness.ts); exclusive ones one.
  const queues = new Map<string, { busy: number; shared: boolean; waiting: (Waiter & { mode: string })[] }>();
  const grant = (name: string): void => {
    const q = queues.get(name)!;
    for (;;) {
      const w = q.waiting[0];
      if (w === undefined) return;
      if (q.busy > 0 && !(q.shared && w.mode === 'shared')) return;
      q.waiting.shift();
      q.busy++;
      q.shared = w.mode === 'shared';
      Promise.resolve()
        .then(() => w.callback({ name }))
        .then(
          (v) => {
            q.busy--;
            w.done(v);
            grant(name);
          },
          (e) => {
            q.busy--;
            w.failed(e);
            grant(name);
          },
        );
    }
  };
  const locks = {
    request(name: string, options: { mode: 'exclusive' | 'shared'; ifAvailable?: boolean }, callback: Waiter['callback']): Promise<unknown> {
      return new Promise((done, failed) => {
        let q = queues.get(name);
        if (q === undefined) queues.set(name, (q = { busy: 0, shared: false, waiting: [] }));
        if (options.ifAvailable === true && (q.busy > 0 || q.waiting.length > 0)) {
          Promise.resolve()
            .then(() => callback(null as unknown as { name: string }))
            .then(done, failed);
          return;
        }
        q.waiting.push({ callback, done, failed, mode: options.mode });
        queueMicrotask(() => grant(name));
      });
    },
  };
  const g = globalThis as { navigator?: unknown };
  const had = Object.getOwnPropertyDescriptor(g, 'navigator');
  Object.defineProperty(g, 'navigator', { value: { locks }, configurable: true, writable: true });
  return {
    held: () => [...queues].filter(([, q]) => q.busy > 0).map(([n]) => n),
    hold: (name) =>
      new Promise((granted) => {
        void locks.request(name, { mode: 'exclusive' }, () => new Promise<void>((release) => granted(release)));
      }),
    uninstall: () => {
      if (had !== undefined) Object.defineProperty(g, 'navigator', had);
      else delete g.navigator;
    },
  };
}

/** `p`'s value, or 'pending' when it has not settled within `ms`. */
export function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((resolve) => setTimeout(() => resolve('pending'), ms))]);
}
