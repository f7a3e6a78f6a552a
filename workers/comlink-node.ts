/**
 * comlink's node adapter (comlink/dist/esm/node-adapter.mjs), typed: comlink ships
 * node-adapter.d.ts beside the .mjs, which NodeNext does not pair, so the import is typed by hand.
 * For the workers here and the tests that drive them (test/remote-heap.ts).
 */
import type { Endpoint } from 'comlink';
// @ts-expect-error TS7016: no declaration file for the .mjs
import nodeEndpointUntyped from 'comlink/dist/esm/node-adapter.mjs';

/** What comlink's node adapter needs from a MessagePort or a Worker. */
export interface NodeEndpointLike {
  postMessage(message: unknown, transfer?: readonly unknown[]): void;
  on(type: 'message', listener: (value: unknown) => void): unknown;
  off(type: 'message', listener: (value: unknown) => void): unknown;
}

/** comlink's nodeEndpoint, typed. */
export const nodeEndpoint = nodeEndpointUntyped as (nep: NodeEndpointLike) => Endpoint;
