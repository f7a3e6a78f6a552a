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
  const queues = new Map<string, { busy: boolean; waiting: Waiter[] }>();
  const grant = (name: string): void => {
    const q = queues.get(name)!;
    if (q.busy || q.waiting.length === 0) return;
    const w = q.waiting.shift()!;
    q.busy = true;
    Promise.resolve()
      .then(() => w.callback({ name }))
      .then(
        (v) => {
          q.busy = false;
          w.done(v);
          grant(name);
        },
        (e) => {
          q.busy = false;
          w.failed(e);
          grant(name);
        },
      );
  };
  const locks = {
    request(name: string, _options: { mode: 'exclusive' }, callback: Waiter['callback']): Promise<unknown> {
      return new Promise((done, failed) => {
        let q = queues.get(name);
        if (q === undefined) queues.set(name, (q = { busy: false, waiting: [] }));
        q.waiting.push({ callback, done, failed });
        queueMicrotask(() => grant(name));
      });
    },
  };
  const g = globalThis as { navigator?: unknown };
  const had = Object.getOwnPropertyDescriptor(g, 'navigator');
  Object.defineProperty(g, 'navigator', { value: { locks }, configurable: true, writable: true });
  return {
    held: () => [...queues].filter(([, q]) => q.busy).map(([n]) => n),
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
