/**
 * A comlink Endpoint over a Node MessagePort or Worker (whose events come through
 * on/off rather than addEventListener): comlink calls addEventListener('message', fn) and
 * expects fn({ data }).
 */
import type { Endpoint } from 'comlink';

export interface NodePort {
  postMessage(message: unknown, transfer: Transferable[]): void;
  on(event: 'message', fn: (data: unknown) => void): unknown;
  off(event: 'message', fn: (data: unknown) => void): unknown;
  start?: () => void;
}

type Transferable = ArrayBuffer | import('node:worker_threads').MessagePort;
type Listener = Parameters<Endpoint['addEventListener']>[1];

export function nodeEndpoint(port: NodePort): Endpoint {
  const wrapped = new WeakMap<object, (data: unknown) => void>();
  return {
    postMessage: (message: unknown, transfer?: unknown[]) => port.postMessage(message, (transfer ?? []) as Transferable[]),
    addEventListener: (_type: string, listener: Listener) => {
      const fn = (data: unknown): void => {
        const event = { data } as MessageEvent;
        if (typeof listener === 'function') listener(event);
        else listener.handleEvent(event);
      };
      wrapped.set(listener, fn);
      port.on('message', fn);
    },
    removeEventListener: (_type: string, listener: Listener) => {
      const fn = wrapped.get(listener);
      if (fn === undefined) return;
      port.off('message', fn);
      wrapped.delete(listener);
    },
    start: port.start?.bind(port),
  } as Endpoint;
}
