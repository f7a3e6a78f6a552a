/**
 * watch(worker) given a Worker-like object whose once() throws: the watch was recorded before
 * once() was called (the worker in the table of running watched workers, in the table of workers
 * ever watched, and counted in lock.ts's count of running watched workers, which bounds this
 * thread's lock waits), and the throw left all three behind, with the caller's own error instead
 * of watch()'s: reclaim(threadId) of that id was refused for good as "a watched worker that is
 * still running", a detach handed the phantom watch to the thread's next attachment, and a worker
 * thread's lock waits stayed bounded for good. Now watch() throws a TypeError naming itself, the
 * argument and the value, with the caller's error as its cause, and nothing is recorded. A once()
 * that registered the listener before it threw: its later call changed the count again and
 * reclaimed the id (a third audit of the change); now it does nothing.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { SharedHeap } from '../src/index.js';
import { MiB } from './fixtures.js';

// lock.ts keeps its count of running watched workers to itself: seen through a wrapper.
const counted = vi.hoisted(() => ({ net: 0 }));
vi.mock('../src/lock.js', async (importOriginal) => {
  const lock = await importOriginal<typeof import('../src/lock.js')>();
  return {
    ...lock,
    countWatched: (delta: 1 | -1): void => {
      counted.net += delta;
      lock.countWatched(delta);
    },
  };
});

const heaps: SharedHeap[] = [];
afterEach(() => {
  for (const h of heaps.splice(0)) h.detach();
});
function fresh(): SharedHeap {
  const heap = SharedHeap.create({ initialBytes: 6 * MiB, maxThreads: 2 });
  heaps.push(heap);
  return heap;
}

it("watch() of a Worker-like object whose once() throws: a TypeError naming watch, and the heap's watches as before", () => {
  const heap = fresh();
  const net = counted.net;
  const cause = new Error('no events here');
  const fake = { threadId: 12345, once: (): never => { throw cause; } };
  let thrown: unknown;
  try {
    heap.watch(fake);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(TypeError);
  expect((thrown as Error).message).toBe("watch(worker): expected a Worker, got an object whose once('exit', listener) threw Error: no events here");
  expect((thrown as Error).cause).toBe(cause);
  expect(() => heap.watch({ threadId: 12346, once: (): never => { throw 'nope'; } })).toThrow(
    /^watch\(worker\): expected a Worker, got an object whose once\('exit', listener\) threw "nope" \(a string\)$/,
  );
  // Nothing counted: a worker thread's lock waits are not bounded by a watch that never was.
  expect(counted.net).toBe(net);
  // Not a watched worker: reclaim(threadId) of its id is not refused (no slot has it: false).
  expect(heap.reclaim(12345)).toBe(false);
  // Not a worker ever watched: reclaim(worker) once it reads as exited does not know it.
  fake.threadId = -1;
  expect(() => heap.reclaim(fake)).toThrow(/this worker was not passed to watch\(worker\) while it ran/);
  // A detach hands no watch on: the next attachment refuses nothing either.
  const buffer = heap.buffer;
  heap.detach();
  const again = SharedHeap.attach(buffer);
  heaps.push(again);
  expect(again.reclaim(12345)).toBe(false);
  expect(counted.net).toBe(net);
  again.check();
});

it('a throwing once() leaves an earlier watch of the same threadId standing', () => {
  const heap = fresh();
  const net = counted.net;
  let exit: (() => void) | undefined;
  const first = { threadId: 777, once: (_: 'exit', fn: () => void): void => void (exit = fn) };
  heap.watch(first);
  expect(counted.net).toBe(net + 1);
  expect(() => heap.watch({ threadId: 777, once: (): never => { throw new Error('x'); } })).toThrow(TypeError);
  expect(counted.net).toBe(net + 1);
  expect(() => heap.reclaim(777)).toThrow(/777 is a watched worker that is still running/);
  first.threadId = -1; // its exit
  exit!();
  expect(counted.net).toBe(net);
  expect(heap.reclaim(first)).toBe(false); // known, its (empty) slot reclaimed already
  heap.check();
});

it('a once() that calls the listener at once and then throws: counted down once, the TypeError still watch()s', () => {
  const heap = fresh();
  const net = counted.net;
  const fake = {
    threadId: 4242,
    once: (_: 'exit', fn: () => void): never => {
      fake.threadId = -1; // it has exited
      fn();
      fn(); // and calls it again
      throw new Error('late');
    },
  };
  expect(() => heap.watch(fake)).toThrow(/^watch\(worker\): expected a Worker, got an object whose once\('exit', listener\) threw Error: late$/);
  expect(counted.net).toBe(net);
  heap.check();
});

it('a once() that registers the listener and then throws: its later call changes nothing', () => {
  const heap = fresh();
  const net = counted.net;
  let listener: (() => void) | undefined;
  const fake = {
    threadId: 5151,
    once: (_: 'exit', fn: () => void): never => {
      listener = fn; // registered...
      throw new Error('then thrown');
    },
  };
  expect(() => heap.watch(fake)).toThrow(/^watch\(worker\): expected a Worker, got an object whose once\('exit', listener\) threw Error: then thrown$/);
  expect(counted.net).toBe(net);
  // A later watch of a running worker: counted once.
  let exit2: (() => void) | undefined;
  const running = { threadId: 6161, once: (_: 'exit', fn: () => void): void => void (exit2 = fn) };
  heap.watch(running);
  expect(counted.net).toBe(net + 1);
  // The first object's "exit": the listener it kept runs.
  fake.threadId = -1;
  listener!();
  expect(counted.net).toBe(net + 1); // was net: the running watched worker no longer counted
  running.threadId = -1;
  exit2!();
  expect(counted.net).toBe(net);
  heap.check();
});
