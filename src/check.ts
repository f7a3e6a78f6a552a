/**
 * check(): walks every invariant of the header, the SuperSlab masks, the slot metas, every slab's
 * lists and state bytes, the Stage-1, abandoned and notice lists, the magazines and the large runs.
 * Every walk is bounded, so corrupted links cannot make it hang. Meant for a quiescent heap
 * (no other thread inside malloc or free); throws HeapCorruptionError naming what and where.
 */
import {
  ABANDONED_W, F_LARGE_HELD_BYTES, FULL_MASK, G_BUFFER_SUPERS, G_CARVED, G_LOCK, G_MAG_CAP, G_MAGIC, G_MAX_SUPERS, G_MAX_THREADS,
  G_META_SUPERS, G_VERSION, K_FREE, K_LARGE, LAYOUT_VERSION, MAGIC,
  K_NONE, K_SLAB, LARGE_CLAIMED, LARGE_LIVE, LARGE_POOLED, LARGE_RESIZING, LARGE_POOL_SPANS, LARGE_POOL_W, MAG_ENTRY_WORDS, MAG_FULL_SENTINEL, OWNER_NONE, OWNER_POOL, S1_HEAD_W,
  S1_SLOT_MASK, SLOTS_PER_SUPER, SLOT_BYTES, SLOT_SHIFT, SM_ABANDON_LISTED, SM_ABANDON_NEXT, SM_BUMP, SM_CLS1, SM_DATA, SM_TOUCHED,
  SM_FREE_REGIONS, SM_HEAD, SM_INUSE, SM_KIND, SM_LARGE, SM_NFREE, SM_OWNER, SM_POOL_DEPTH, SM_POOL_NEXT, SM_REMOTE, SM_SHIFT, SM_SPAN,
  SM_STATE, SS_TABLE_W, ST_ALLOCATED, ST_CACHED, ST_CLEAN, ST_FREE, ST_PENDING, SUPER_SHIFT, TH_STATE, TH_TOP, TS_ATTACHED, TS_DEAD,
  TS_RECLAIMING, G_ORPHANS, UD_ENTRIES, UD_N, UD_SLAB, UD_W, UD_WORDS, MAG_STATE, LOCK_STATE_MASK, LOCK_WAITERS, TH_LOCK_GEN, isCached, lockHolder, lockWord, magazineWords, usedSlots, G_SLOTS_USED, TH_THREAD_ID,
  LISTED_CURRENT, LISTED_PARTIAL, SM_LISTED, SM_PART_NEXT, SM_PART_PREV, TH_CUR, TH_PARTIAL, TH_PARTIAL_TAIL,
  NOTICE_CLOSED, SM_NOTICE_NEXT, SM_NOTIFIED, TH_NOTICE,
  ST_DEEP, deepMagazineCap, deepMagazineBlock, isDeepTop, deepMagazineBase, MAG_EMPTY_SENTINEL,
} from './layout.js';
import { COUNT, HDR, NUM_CLASSES, REGION_SHIFT, SIZE, SPAN } from './size-classes.js';
import type { ThreadContext } from './context.js';
import { HeapCorruptionError, hex } from './errors.js';
import { slabStateBase } from './slots.js';
import { unansweredAsks } from './flush-ask.js';
import { linkOf } from './remote.js';
import { DEEP_CLS, FEW_BLOCKS_MAX } from './magazine.js';

/** How many of a CLEAN block's first bytes check() reads (layout.ts ST_CLEAN). */
const CLEAN_CHECK_BYTES = 64;

function fail(msg: string): never {
  throw new HeapCorruptionError(`check(): ${msg}`);
}

/**
 * check(): walks the heap (walkHeap). An idle thread answers an ask to flush (flush-ask.ts, made
 * by a thread that ran out of memory) from its event loop, at a moment of its own: a walk made
 * while it drains its magazines reads them half drained and reports blocks that are in none (a
 * fuzzer: 26 of about 4,000 calls on quiet heaps, all after an out-of-memory 0). Where a walk
 * fails while another thread's ask is unanswered (before or after the walk), the error says so
 * and names those threads, so that the caller can tell that case and call check() again once
 * they answered. It is still thrown: a walk made again after the flush could miss a real fault
 * that the flush wrote over (an audit: a magazine entry whose state said ALLOCATED, drained to
 * FREE), and a thread that never answers (killed, not reclaimed) would make every call wait.
 */
export function checkHeap(h: ThreadContext): void {
  const before = unansweredAsks(h);
  try {
    walkHeap(h);
  } catch (e) {
    if (!(e instanceof HeapCorruptionError)) throw e;
    const asked = [...new Set([...before, ...unansweredAsks(h)])];
    if (asked.length === 0) throw e;
    throw new HeapCorruptionError(
      `${e.message} (while thread${asked.length > 1 ? 's' : ''} ${asked.join(', ')} had an ask to flush unanswered or a flush under way: an idle ` +
        'thread answers it from its event loop at a moment of its own, and a walk made meanwhile can read its magazines half ' +
        'drained; if so, check() passes once it has answered)',
    );
  }
}

function walkHeap(h: ThreadContext): void {
  h.ensureViews();
  const i32 = h.i32;
  const bytes = h.bytes;
  const geo = h.geo;
  // The words create() wrote once: a write through offset 0 (a malloc's 0 used as a block, say) went
  // unnoticed here, while every attach after it refused the buffer as "not a sabmalloc heap" (an audit).
  const fixed: [string, number, number][] = [
    ['magic number', G_MAGIC, MAGIC], ['layout version', G_VERSION, LAYOUT_VERSION], ['maxBytes in SuperSlabs', G_MAX_SUPERS, geo.maxSupers],
    ['thread slots', G_MAX_THREADS, geo.maxThreads], ['metadata SuperSlabs', G_META_SUPERS, geo.metaSupers], ['magazineCapacity', G_MAG_CAP, geo.magCap],
  ];
  for (const [what, w, want] of fixed) {
    if (i32[w] !== want) fail(`header: word ${w} (the ${what}) is ${i32[w]}, expected ${want}: overwritten (a write through offset ${w * 4}?)`);
  }
  const carved = Atomics.load(i32, G_CARVED);
  const bufSupers = Atomics.load(i32, G_BUFFER_SUPERS);
  if (!(geo.metaSupers <= carved && carved <= bufSupers && bufSupers <= i32[G_MAX_SUPERS])) {
    fail(`header: carved ${carved}, buffer ${bufSupers}, max ${i32[G_MAX_SUPERS]} SuperSlabs are out of order`);
  }
  if (bufSupers * (1 << SUPER_SHIFT) > h.viewBytes) fail(`header: buffer length ${bufSupers} MiB exceeds the buffer`);
  const lock = Atomics.load(i32, G_LOCK);
  if (lock !== 0) {
    const holder = lockHolder(lock);
    const state = lock & LOCK_STATE_MASK;
    if (state === 0 || state > LOCK_WAITERS || holder < 0 || holder >= geo.maxThreads) {
      fail(`lock word is ${lock} (${hex(lock >>> 0)}): neither free nor held by a thread slot in state 1 or 2`);
    }
    // The generation bits too: a holder writes its slot's TH_LOCK_GEN, which the slot keeps until it
    // is attached again, after a release or a reclaim that broke the lock. Other bits there are a
    // word no thread wrote (with the slot alone in the word, nearly every such word named a slot
    // out of range), naming an attachment that never lets the lock go and whose lock no one breaks.
    // (Unless the word moved meanwhile: its holder let it go and the slot was attached again.)
    const gen = i32[h.threadW(holder) + TH_LOCK_GEN];
    if ((lock & ~LOCK_STATE_MASK) !== lockWord(holder, 0, gen) && Atomics.load(i32, G_LOCK) === lock) {
      fail(`lock word is ${lock} (${hex(lock >>> 0)}): held by thread slot ${holder} in an attachment it is not in (its TH_LOCK_GEN is ${gen})`);
    }
  }
  const slotsUsed = Atomics.load(i32, G_SLOTS_USED);
  if (!(h.runner.slot < slotsUsed && slotsUsed <= geo.maxThreads)) {
    fail(`header: ${slotsUsed} thread slots ever used, with ${geo.maxThreads} slots and slot ${h.runner.slot} attached`);
  }
  const slotsPerSuperShift = SUPER_SHIFT - SLOT_SHIFT;
  const firstSlot = geo.metaSupers << slotsPerSuperShift;
  const endSlot = carved << slotsPerSuperShift;
  const meta = (s: number): number => h.metaW(s);

  // SuperSlab masks against slot kinds; metadata and uncarved slots have kind NONE.
  for (let s = 0; s < firstSlot; s++) if (i32[meta(s) + SM_KIND] !== K_NONE) fail(`metadata slot ${s} has a kind`);
  for (let sup = geo.metaSupers; sup < carved; sup++) {
    const mask = i32[SS_TABLE_W + sup];
    if ((mask & ~FULL_MASK) !== 0) fail(`SuperSlab ${sup}: free mask ${hex(mask)} has stray bits`);
    for (let k = 0; k < SLOTS_PER_SUPER; k++) {
      const s = (sup << slotsPerSuperShift) + k;
      const isFree = i32[meta(s) + SM_KIND] === K_FREE;
      if (isFree !== ((mask >>> k) & 1) > 0) fail(`slot ${s}: kind ${i32[meta(s) + SM_KIND]} disagrees with its SuperSlab's free mask`);
    }
  }

  // Slabs and large runs.
  const poolSlabs = new Set<number>();
  const inFlight = { cached: 0, pending: 0, remote: 0, deep: new Map<number, number>() };
  let largeBytes = 0;
  const pooledRuns = new Set<number>();
  for (let s = firstSlot; s < endSlot; ) {
    const mW = meta(s);
    const kind = i32[mW + SM_KIND];
    if (kind === K_FREE) {
      if ((i32[mW + SM_CLS1] - 1) !== -1) fail(`UNUSED slot ${s} has class ${(i32[mW + SM_CLS1] - 1)}`);
      s++;
      continue;
    }
    if (kind !== K_SLAB && kind !== K_LARGE) fail(`slot ${s}: unknown kind ${kind}`);
    const span = i32[mW + SM_SPAN];
    if (i32[mW + SM_HEAD] !== s) fail(`slot ${s}: a run starts here but its head says ${i32[mW + SM_HEAD]}`);
    if (span < 1 || s + span > endSlot) fail(`slot ${s}: span ${span} runs past the carved heap`);
    if (span <= SLOTS_PER_SUPER && (s >>> slotsPerSuperShift) !== ((s + span - 1) >>> slotsPerSuperShift)) {
      fail(`slot ${s}: a run of ${span} slots crosses a SuperSlab boundary`);
    }
    for (let k = s + 1; k < s + span; k++) {
      const kW = meta(k);
      if (i32[kW + SM_KIND] !== kind || i32[kW + SM_HEAD] !== s || (i32[kW + SM_CLS1] - 1) !== (i32[mW + SM_CLS1] - 1)) {
        fail(`slot ${k}: disagrees with the head of its run at slot ${s}`);
      }
    }
    if (kind === K_LARGE) {
      if ((i32[mW + SM_CLS1] - 1) !== -1) fail(`large run at slot ${s} has a class`);
      const mark = i32[mW + SM_LARGE];
      if (mark === LARGE_POOLED) {
        if (span > LARGE_POOL_SPANS || Atomics.load(i32, mW + SM_OWNER) !== OWNER_POOL) fail(`large run at slot ${s} is pooled but not owned by the pool`);
        pooledRuns.add(s);
      } else if (mark === LARGE_RESIZING) {
        fail(`large run at slot ${s} is being resized in place (a realloc under the lock; where a thread stopped there, reclaim it before check())`);
      } else if (mark >= LARGE_CLAIMED) {
        fail(`large run at slot ${s} is being freed by thread slot ${mark - LARGE_CLAIMED} (claimed; where a thread stopped there, reclaim it before check())`);
      } else if (mark !== LARGE_LIVE) fail(`large run at slot ${s} is neither live nor pooled`);
      largeBytes += span * SLOT_BYTES;
    } else {
      checkSlab(h, s, span, poolSlabs, inFlight);
    }
    // The footprint counts every byte handed out: SM_TOUCHED covers the run, or the slab up to BUMP.
    const cls = i32[mW + SM_CLS1] - 1;
    const end = kind === K_LARGE ? (s + span) << SLOT_SHIFT : i32[mW + SM_DATA] + Math.min(i32[mW + SM_BUMP], COUNT[cls]!) * SIZE[cls]!;
    for (let k = s; k < s + span && k << SLOT_SHIFT < end; k++) {
      const touched = i32[meta(k) + SM_TOUCHED];
      if (touched < Math.min(end - (k << SLOT_SHIFT), SLOT_BYTES)) fail(`slot ${k}: SM_TOUCHED ${touched} does not cover the bytes handed out (up to ${hex(end)})`);
    }
    s += span;
  }
  if (largeBytes !== h.f64[F_LARGE_HELD_BYTES]) fail(`large runs hold ${largeBytes} bytes but the header counts ${h.f64[F_LARGE_HELD_BYTES]}`);

  // Stage-1 lists and large-run lists: acyclic, bounded, each member a pooled slab of the class
  // (a pooled run of the span), found once, each one's depth the length of the list from it.
  const seen = new Set<number>();
  const list: number[] = [];
  const walkList = (headW: number, name: string, fits: (mW: number) => boolean): void => {
    let slot = Atomics.load(i32, headW) & S1_SLOT_MASK;
    while (slot !== 0) {
      if (slot < firstSlot || slot >= endSlot) fail(`${name}: slot ${slot} is outside the carved heap`);
      if (seen.has(slot)) fail(`${name}: slot ${slot} appears twice (a cycle or a double push)`);
      seen.add(slot);
      const mW = meta(slot);
      if (i32[mW + SM_HEAD] !== slot || !fits(mW)) fail(`${name}: slot ${slot} does not belong on it`);
      if (Atomics.load(i32, mW + SM_OWNER) !== OWNER_POOL) fail(`${name}: slab ${slot} has an owner`);
      list.push(slot);
      slot = Atomics.load(i32, mW + SM_POOL_NEXT);
    }
    for (let k = 0; k < list.length; k++) {
      const depth = Atomics.load(i32, meta(list[k]!) + SM_POOL_DEPTH);
      if (depth !== list.length - k) fail(`${name}: slab ${list[k]} says ${depth} slabs from it to the end, there are ${list.length - k}`);
    }
    list.length = 0;
  };
  for (let c = 0; c < NUM_CLASSES; c++) {
    walkList(S1_HEAD_W + c, `Stage-1 list of class ${c}`, (mW) => i32[mW + SM_KIND] === K_SLAB && (i32[mW + SM_CLS1] - 1) === c);
  }
  for (const s of poolSlabs) if (!seen.has(s)) fail(`slab ${s} is pooled but on no Stage-1 list`);
  for (let span = 1; span <= LARGE_POOL_SPANS; span++) {
    walkList(LARGE_POOL_W + span, `large-run list of span ${span}`, (mW) => i32[mW + SM_KIND] === K_LARGE && i32[mW + SM_SPAN] === span && i32[mW + SM_LARGE] === LARGE_POOLED);
  }
  if (Atomics.load(i32, LARGE_POOL_W) !== 0) fail(`large-run list word 0 (no span) is ${Atomics.load(i32, LARGE_POOL_W)}`);
  for (const s of pooledRuns) if (!seen.has(s)) fail(`large run ${s} is pooled but on no large-run list`);

  // Abandoned lists.
  const abandoned = new Set<number>();
  for (let c = 0; c < NUM_CLASSES; c++) {
    let slot = i32[ABANDONED_W + c];
    while (slot !== 0) {
      if (slot < firstSlot || slot >= endSlot || abandoned.has(slot)) fail(`abandoned list of class ${c}: bad or repeated slot ${slot}`);
      abandoned.add(slot);
      const mW = meta(slot);
      if (i32[mW + SM_ABANDON_LISTED] !== 1 || i32[mW + SM_KIND] !== K_SLAB || (i32[mW + SM_CLS1] - 1) !== c) {
        fail(`abandoned list of class ${c}: slot ${slot} is not a listed slab of that class`);
      }
      slot = i32[mW + SM_ABANDON_NEXT];
    }
  }

  // Notice lists (layout.ts TH_NOTICE): acyclic, each slot in the carved heap, on one list only
  // (its link is one word), its flag on (a flag stays on while the slab is listed: only the
  // list's walker clears it). The slab itself may have changed hands since its notice.
  const noticed = new Set<number>();
  for (let t = 0, used = usedSlots(i32, geo.maxThreads); t < used; t++) {
    for (let slot = Atomics.load(i32, geo.threadsW + t * geo.threadWords + TH_NOTICE); slot !== 0 && slot !== NOTICE_CLOSED; ) {
      const where = `thread ${t}'s notice list`;
      if (slot < firstSlot || slot >= endSlot) fail(`${where} holds slot ${slot}, outside the carved heap`);
      if (noticed.has(slot)) fail(`${where} holds slot ${slot} a second time (a cycle, or on two lists)`);
      noticed.add(slot);
      const mW = meta(slot);
      if (Atomics.load(i32, mW + SM_NOTIFIED) === 0) fail(`${where} holds slot ${slot}, whose notice flag is 0`);
      slot = Atomics.load(i32, mW + SM_NOTICE_NEXT);
    }
  }

  // Each attached thread's current slabs and partial lists: owned, flagged, doubly linked to
  // the tail, the empty slabs (INUSE == 0) after all the others (layout.ts).
  for (let t = 0, used = usedSlots(i32, geo.maxThreads); t < used; t++) {
    const w = geo.threadsW + t * geo.threadWords;
    if (Atomics.load(i32, w + TH_STATE) !== TS_ATTACHED) continue;
    for (let c = 0; c < NUM_CLASSES; c++) {
      const where = `thread ${t}, class ${c}`;
      const cur = i32[w + TH_CUR + c];
      if (cur !== 0) {
        const mW = meta(cur);
        if (cur < firstSlot || cur >= endSlot || i32[mW + SM_KIND] !== K_SLAB || i32[mW + SM_HEAD] !== cur || i32[mW + SM_CLS1] - 1 !== c) {
          fail(`${where}: current slab ${cur} is not a slab head of the class`);
        }
        if (Atomics.load(i32, mW + SM_OWNER) !== t || i32[mW + SM_LISTED] !== LISTED_CURRENT) fail(`${where}: current slab ${cur} is not owned and flagged current`);
      }
      let prev = 0;
      let seenEmpty = false;
      let n = 0;
      for (let s = i32[w + TH_PARTIAL + c]; s !== 0; s = i32[meta(s) + SM_PART_NEXT]) {
        const mW = meta(s);
        if (s < firstSlot || s >= endSlot || n++ > endSlot) fail(`${where}: partial list holds slot ${s} (outside the heap, or a cycle)`);
        if (i32[mW + SM_KIND] !== K_SLAB || i32[mW + SM_HEAD] !== s || i32[mW + SM_CLS1] - 1 !== c) fail(`${where}: partial list holds ${s}, not a slab head of the class`);
        if (Atomics.load(i32, mW + SM_OWNER) !== t || i32[mW + SM_LISTED] !== LISTED_PARTIAL) fail(`${where}: slab ${s} on the partial list is not owned and flagged partial`);
        if (i32[mW + SM_PART_PREV] !== prev) fail(`${where}: slab ${s} on the partial list links back to ${i32[mW + SM_PART_PREV]}, not ${prev}`);
        const empty = i32[mW + SM_INUSE] === 0;
        if (seenEmpty && !empty) fail(`${where}: slab ${s} in use comes after an empty one on the partial list`);
        seenEmpty ||= empty;
        prev = s;
      }
      if (i32[w + TH_PARTIAL_TAIL + c] !== prev) fail(`${where}: partial list ends at ${prev}, its tail word says ${i32[w + TH_PARTIAL_TAIL + c]}`);
    }
  }

  // Magazines: every entry a block start with state CACHED, none in two places.
  const cached = new Set<number>();
  for (let t = 0, used = usedSlots(i32, geo.maxThreads); t < used; t++) {
    const w = geo.threadsW + t * geo.threadWords;
    const state = Atomics.load(i32, w + TH_STATE);
    if (state !== TS_ATTACHED && state !== TS_RECLAIMING && state !== TS_DEAD) continue;
    // attach writes the id before the state, detach clears it after: only a reclaim runs without one.
    if (state !== TS_RECLAIMING && Atomics.load(i32, w + TH_THREAD_ID) === 0) fail(`thread ${t}: in use (state ${state}) with no threadId`);
    const thW = w;
    for (let c = 0; c < NUM_CLASSES; c++) {
      const top = i32[thW + TH_TOP + c];
      const deep = isDeepTop(top, geo.metaSupers);
      const base = deep ? deepMagazineBase(top) : thW + geo.magW + c * magazineWords(geo.magCap) + MAG_ENTRY_WORDS;
      const cap = deep ? deepMagazineCap(i32, base) : h.magCapCls[c];
      if (deep && cap === 0) fail(`thread ${t}: deep magazine of class ${c} in block ${hex(deepMagazineBlock(base))}: its capacity word (the empty sentinel's second) is overwritten: ${i32[base - MAG_ENTRY_WORDS + MAG_STATE]}`);
      // base <= top <= base + MAG_ENTRY_WORDS * capacity (layout.ts)
      if (top < base || top > base + MAG_ENTRY_WORDS * cap || (top - base) % MAG_ENTRY_WORDS !== 0) {
        fail(`thread ${t}: magazine of class ${c} has top ${top} outside ${base} .. ${base + MAG_ENTRY_WORDS * cap}`);
      }
      const where = deep ? `thread ${t}: deep magazine of class ${c} in block ${hex(deepMagazineBlock(base))}` : `thread ${t}: magazine of class ${c}`;
      if (deep) {
        // Its block: of the 64 KiB class, held for this thread (DEEP).
        const block = deepMagazineBlock(base);
        if (c >= DEEP_CLS || COUNT[c]! > FEW_BLOCKS_MAX) fail(`${where}: class ${c} never has one`);
        if (block >= h.viewBytes) fail(`${where} is outside the heap`);
        if (inFlight.deep.get(block) !== t) fail(`${where} is not a block that says DEEP in a slab of that thread's`);
        inFlight.deep.delete(block);
      }
      // Its sentinels as attach (or deepen) wrote them: one overwritten in the thread area let malloc
      // hand out the sentinel's word and the class below's entries, and a free's drain run on for
      // good, while check() passed (an audit). (A deep magazine's empty sentinel holds its capacity
      // in its second word.)
      const emptyW = base - MAG_ENTRY_WORDS;
      if (i32[emptyW] !== MAG_EMPTY_SENTINEL || (!deep && i32[emptyW + MAG_STATE] !== MAG_EMPTY_SENTINEL)) fail(`${where}: its empty sentinel is overwritten (${i32[emptyW]}, ${i32[emptyW + MAG_STATE]})`);
      const fullW = base + cap * MAG_ENTRY_WORDS;
      if (i32[fullW] !== MAG_FULL_SENTINEL || i32[fullW + MAG_STATE] !== MAG_FULL_SENTINEL) fail(`${where}: its full sentinel is overwritten (${i32[fullW]}, ${i32[fullW + MAG_STATE]})`);
      for (let e = base; e < top; e += MAG_ENTRY_WORDS) {
        if (i32[e] === MAG_FULL_SENTINEL) fail(`thread ${t}: magazine of class ${c} runs past its end`);
        const b = i32[e];
        const st = i32[e + MAG_STATE];
        const where = `thread ${t}, magazine of class ${c}: block ${hex(b)}`;
        if (b <= 0 || b >= h.viewBytes || (b & 15) !== 0) fail(`${where} is not a block`);
        const mW = meta(b >>> SLOT_SHIFT);
        if (i32[mW + SM_KIND] !== K_SLAB || (i32[mW + SM_CLS1] - 1) !== c) fail(`${where} is not in a slab of class ${c}`);
        const off = b - i32[mW + SM_DATA];
        if (off < 0 || off % SIZE[c] !== 0) fail(`${where} is not a block start`);
        if (i32[mW + SM_STATE] + off / SIZE[c] !== st) fail(`${where} has the wrong state byte address`);
        if (!isCached(bytes[st])) fail(`${where} has state ${bytes[st]}, expected CACHED or CLEAN`);
        if (bytes[st] === ST_CLEAN) {
          // Never handed out, so zero (calloc returns it unwritten): a write that ran on past the
          // end of the block before it lands first in its first bytes, which are all this reads
          // (a line, not the block's pages).
          for (let k = b, end = b + Math.min(SIZE[c], CLEAN_CHECK_BYTES); k < end; k++) {
            if (bytes[k] !== 0) fail(`${where} was never handed out (CLEAN), but its byte at ${hex(k)} is ${bytes[k]}, not 0: written by the program (past the end of another block?), and calloc would return it so`);
          }
        }
        if (cached.has(b)) fail(`${where} is cached twice`);
        cached.add(b);
      }
    }
  }

  for (const [block, owner] of inFlight.deep) fail(`block ${hex(block)} says DEEP (a deep magazine of thread slot ${owner}'s) but no magazine top is in it`);

  // Every CACHED block is in a magazine and every PENDING one on a remote list, but for the
  // blocks that threads which died inside a refill or drain may have left in flight.
  const stray = inFlight.cached - cached.size + (inFlight.pending - inFlight.remote);
  let allowed = Atomics.load(i32, G_ORPHANS);
  // And the blocks of chains not decided yet (layout.ts UD_W): PENDING, on no list.
  for (let k = 0; k < UD_ENTRIES; k++) if (i32[UD_W + k * UD_WORDS + UD_SLAB] !== 0) allowed += i32[UD_W + k * UD_WORDS + UD_N];
  if (stray > allowed) {
    fail(
      `${inFlight.cached - cached.size} blocks say CACHED but are in no magazine and ` +
        `${inFlight.pending - inFlight.remote} say PENDING but are on no remote list (dead threads account for ${allowed}); ` +
        `the first: ${firstStray(h, cached)}`,
    );
  }
}

/** Where the first CACHED block outside every magazine, or PENDING block off its remote list, is. */
function firstStray(h: ThreadContext, cached: Set<number>): string {
  const i32 = h.i32;
  const geo = h.geo;
  const shift = SUPER_SHIFT - SLOT_SHIFT;
  for (let s = geo.metaSupers << shift; s < Atomics.load(i32, G_CARVED) << shift; s++) {
    const mW = h.smW + (s << SM_SHIFT);
    if (i32[mW + SM_KIND] !== K_SLAB || i32[mW + SM_HEAD] !== s) continue;
    const cls = i32[mW + SM_CLS1] - 1;
    const remote = new Set<number>();
    for (let b = Atomics.load(i32, mW + SM_REMOTE), n = 0; b !== 0 && n < COUNT[cls]; n++, b = linkOf(h, mW, cls, b)) remote.add(b);
    for (let idx = 0; idx < i32[mW + SM_BUMP]; idx++) {
      const st = h.bytes[i32[mW + SM_STATE] + idx];
      const b = i32[mW + SM_DATA] + idx * SIZE[cls];
      if ((isCached(st) && !cached.has(b)) || (st === ST_PENDING && !remote.has(b))) {
        return `block ${hex(b)} (index ${idx}) of the slab at slot ${s} says ${st === ST_CACHED ? 'CACHED' : st === ST_CLEAN ? 'CLEAN' : 'PENDING'}`;
      }
    }
  }
  return 'not found on a second walk (the heap changed while check() ran)';
}

function checkSlab(
  h: ThreadContext,
  s: number,
  span: number,
  poolSlabs: Set<number>,
  inFlight: { cached: number; pending: number; remote: number; deep: Map<number, number> },
): void {
  const i32 = h.i32;
  const bytes = h.bytes;
  const mW = h.smW + (s << SM_SHIFT);
  const cls = i32[mW + SM_CLS1] - 1;
  const where = `slab at slot ${s} (${hex(s << SLOT_SHIFT)})`;
  if (cls < 0 || cls >= NUM_CLASSES) fail(`${where}: class ${cls}`);
  if (span !== SPAN[cls]) fail(`${where}: span ${span}, class ${cls} uses ${SPAN[cls]}`);
  if (s % span !== 0) fail(`${where}: not aligned to its span`);
  const start = s << SLOT_SHIFT;
  const stateBase = slabStateBase(h, s, cls);
  if (i32[mW + SM_STATE] !== stateBase || i32[mW + SM_DATA] !== start + HDR[cls]) fail(`${where}: header offsets are wrong`);
  const count = COUNT[cls];
  const size = SIZE[cls];
  const bump = i32[mW + SM_BUMP];
  if (bump < 0 || bump > count) fail(`${where}: BUMP ${bump} outside 0..${count}`);
  const owner = Atomics.load(i32, mW + SM_OWNER);
  if (owner === OWNER_POOL) poolSlabs.add(s);
  else if (owner !== OWNER_NONE && (owner < 0 || owner >= h.geo.maxThreads)) fail(`${where}: owner ${owner}`);
  // A slab with no owner is on its abandoned list (abandonAll lists it before the owner store;
  // adoptAbandoned adopts it before the unlink): else no thread could find its free blocks.
  if (owner === OWNER_NONE && i32[mW + SM_ABANDON_LISTED] !== 1) fail(`${where}: no owner and on no abandoned list`);
  const data = start + HDR[cls];
  const onList = new Uint8Array(count);
  const walk = (head: number, expect: number, name: string): number => {
    let b = head;
    let n = 0;
    while (b !== 0) {
      if (n >= count) fail(`${where}: ${name} list is longer than the slab (a cycle)`);
      const off = b - data;
      if (off < 0 || off % size !== 0 || off / size >= bump) fail(`${where}: ${name} list holds ${hex(b)}, not a carved block of the slab`);
      const idx = off / size;
      if (onList[idx] !== 0) fail(`${where}: block ${hex(b)} is on the ${name} list twice`);
      onList[idx] = 1;
      if (bytes[stateBase + idx] !== expect) fail(`${where}: block ${hex(b)} on the ${name} list has state ${bytes[stateBase + idx]}`);
      n++;
      b = linkOf(h, mW, cls, b); // the two words of a link: remote.ts linkOf
    }
    return n;
  };
  inFlight.remote += walk(Atomics.load(i32, mW + SM_REMOTE), ST_PENDING, 'remote free');
  const regions = i32[mW + SM_FREE_REGIONS];
  const rs = REGION_SHIFT[cls];
  let freeStates = 0;
  let allocated = 0;
  let cachedHere = 0;
  let pendingHere = 0;
  for (let idx = 0; idx < count; idx++) {
    const st = bytes[stateBase + idx];
    if (idx >= bump) {
      if (st !== ST_FREE) fail(`${where}: never-carved block ${idx} has state ${st}`);
    } else if (st === ST_FREE) {
      freeStates++;
      if ((regions & (1 << (idx >>> rs))) === 0) fail(`${where}: block ${hex(data + idx * size)} is FREE but its region ${idx >>> rs} is not marked in FREE_REGIONS (${hex(regions >>> 0)})`);
    } else if (isCached(st)) {
      cachedHere++;
    } else if (st === ST_PENDING) {
      pendingHere++;
    } else if (st === ST_ALLOCATED) {
      allocated++;
    } else if (st === ST_DEEP) {
      // A deep magazine's block (magazine.ts deepen): in use, and named by a top of its owner's (below).
      if (cls !== DEEP_CLS) fail(`${where}: block ${idx} says DEEP in a slab of class ${cls}`);
      allocated++;
      inFlight.deep.set(data + idx * size, owner);
    } else fail(`${where}: block ${idx} has unknown state ${st}`);
  }
  inFlight.cached += cachedHere;
  inFlight.pending += pendingHere;
  // INUSE == #ALLOCATED + #CACHED + #PENDING (layout.ts)
  if (i32[mW + SM_INUSE] !== allocated + cachedHere + pendingHere) {
    fail(`${where}: INUSE ${i32[mW + SM_INUSE]} != ALLOCATED ${allocated} + CACHED ${cachedHere} + PENDING ${pendingHere}`);
  }
  if (freeStates !== i32[mW + SM_NFREE]) fail(`${where}: ${freeStates} blocks below BUMP say FREE, NFREE says ${i32[mW + SM_NFREE]}`);
  if (i32[mW + SM_INUSE] + freeStates !== bump) fail(`${where}: INUSE ${i32[mW + SM_INUSE]} + free ${freeStates} != carved ${bump}`);
  if (owner === OWNER_POOL && i32[mW + SM_INUSE] !== 0) fail(`${where}: pooled with ${i32[mW + SM_INUSE]} blocks in use`);
}
