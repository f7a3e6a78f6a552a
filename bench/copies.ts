/**
 * One copy of each timed loop per allocator, compiled from the loop's own
 * source text.
 *
 * Why: V8 keeps type feedback per function. When one loop function calls
 * `alloc.malloc` for several allocator classes (sabmalloc, @thi.ng/malloc,
 * the reference allocator), its call sites turn polymorphic or megamorphic
 * and every allocator measured after the first pays for it, so a figure
 * would depend on which peers ran before it in the same thread. A closure
 * returned by a factory does not help: every closure made from one function
 * literal shares that literal's feedback. A function compiled by
 * `new Function` from the loop's text is a new function with feedback of its
 * own, so each copy sees one receiver type (monomorphic call sites, which
 * TurboFan inlines).
 *
 * The loops (slotLoop, larsonRoundLoop, replayLoop) are written once, as
 * ordinary type-checked functions, and are self-contained: they refer to
 * nothing outside their parameters except globals (performance, Math), so
 * their text compiles alone. The text of each copy starts with a comment that
 * names the allocator, so that no two copies share a source string (V8 may
 * reuse the compiled function of an identical source from its compilation
 * cache, feedback included).
 */

const copies = new Map<string, Map<string, unknown>>();

/** The copy of `fn` for `allocator`, compiled on first use (one per thread, per function and allocator). */
export function copyFor<F extends (...args: never[]) => unknown>(fn: F, allocator: string): F {
  let byAllocator = copies.get(fn.name);
  if (byAllocator === undefined) {
    byAllocator = new Map();
    copies.set(fn.name, byAllocator);
  }
  let copy = byAllocator.get(allocator) as F | undefined;
  if (copy === undefined) {
    copy = compileCopy(fn, allocator);
    byAllocator.set(allocator, copy);
  }
  return copy;
}

/** A fresh function compiled from `fn`'s source text (no cache). */
export function compileCopy<F extends (...args: never[]) => unknown>(fn: F, allocator: string): F {
  const text = Function.prototype.toString.call(fn);
  if (!text.startsWith('function ')) {
    throw new TypeError(`copyFor(fn): expected a function declaration's text, got ${JSON.stringify(text.slice(0, 40))}`);
  }
  const label = `${fn.name} for ${allocator}`.replace(/\*\//g, '* /');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- the point of this module
  return new Function(`/* ${label} */\n'use strict';\nreturn (${text});`)() as F;
}
