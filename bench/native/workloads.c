/*
 * The reference workloads W1 random_mixed, W2 mid_large and W3 larson of
 * shared/workloads.md on plain malloc/free, so that they can be measured with
 * the system allocator or with jemalloc, tcmalloc or mimalloc via LD_PRELOAD.
 * A line-for-line port of bench/workloads.ts: same generator, same seeding,
 * same marker bytes and checks, same counts and checksum, so that the JS and
 * native figures describe the same operation sequence.
 *
 *   cc -O2 -pthread -o workloads workloads.c
 *   workloads W1 [--cycles N] [--ws N] [--seed S]
 *   workloads W2 [--threads T] [--cycles N] [--ws N] [--seed S]
 *   workloads W3 [--threads T] [--chunks N] [--rounds N] [--ops N] [--seed S]
 *   workloads W5 --trace-ops FILE [--threads T] [--repeats N] [--split K]
 *
 * W5 replays a trace that bench/replay.ts parsed and wrote in its binary
 * form (writeTraceOps): the file is mapped (not read through malloc), the
 * replay's own tables are mmap'd, and only the replay loop is timed. Like
 * bench/replay.ts it writes the tag (i % 255 + 1) at the first and last byte
 * of every block, checks both before each free and realloc, checks the bytes
 * a realloc keeps and a calloc's zeros, and sums the bytes read back into the
 * same checksum. With --threads T, T threads replay it at once, each on its
 * own tables (seconds: the slowest thread's replays; counts summed; --split is
 * for one thread). minorFaults counts the process's minor page faults (first
 * touches of fresh pages) during the timed part (W5: the replays and their
 * cleanups).
 *
 * Prints one line of JSON on stdout: the workload and its parameters, ops,
 * mallocs (W3 counts its initial fill), bytesRequested, checksum, seconds,
 * opsPerSec, peakRssBytes (the growth of the process's peak resident set,
 * VmHWM of /proc/self/status, over the workload: the peak is reset with
 * /proc/self/clear_refs where the workload starts, after W1's slot tables and
 * W5's trace tables are made, before W2's and W3's threads start; so not the
 * program, its libraries or the tables, which a JavaScript allocator's heap
 * does not hold either; without /proc, getrusage ru_maxrss of the whole
 * process), ruMaxrssBytes (ru_maxrss
 * itself: on Linux it survives execve, so when the program is started by a
 * large parent such as node it may show the parent's forked image rather than
 * this program), peakLiveBytes (peak of live
 * requested bytes: exact for one thread, otherwise the sum of per-thread (W2)
 * or per-array (W3) peaks, an upper bound), and mallocLibrary (the shared
 * object that defines malloc, as dladdr sees it). Errors go to stderr with
 * exit status 1 (usage: 2).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* Random numbers */

static inline uint32_t xorshift32(uint32_t *state) {
  uint32_t x = *state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return *state = x;
}

/* seed + t * 0x9E3779B9 (mod 2^32), 0 replaced by 1 */
static uint32_t thread_seed(uint32_t seed, uint32_t t) {
  uint32_t s = seed + t * UINT32_C(0x9E3779B9);
  return s == 0 ? 1 : s;
}

/* ------------------------------------------------------------------------ */
/* Parameters and results */

enum { W1_MIN_SIZE = 16, W1_SIZE_SPAN = 1025 };
enum { W2_MIN_SIZE = 8192, W2_SIZE_SPAN = 24577 };
enum { W3_MIN_SIZE = 8, W3_SIZE_SPAN = 993 };

typedef struct {
  const char *workload;
  uint64_t threads, cycles, ws, chunks, rounds, ops_per_round;
  uint32_t seed;
} params_t;

typedef struct {
  uint64_t ops, mallocs, bytes_requested, peak_live;
  uint32_t checksum;
} tally_t;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("workloads: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n, size);
  if (p == NULL) die("calloc(%zu, %zu) failed", n, size);
  return p;
}

/* Minor page faults of the process so far (first touches of fresh pages, every thread). */
static long long minor_faults(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (long long)ru.ru_minflt;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static __attribute__((noinline, noreturn)) void out_of_memory(const char *w, uint64_t i, uint32_t size) {
  die("%s: malloc(%" PRIu32 ") returned NULL (out of memory) at op %" PRIu64, w, size, i);
}

static __attribute__((noinline, noreturn)) void corrupted(const char *w, uint64_t i, const void *p, uint32_t size,
                                                         unsigned tag, unsigned b0, unsigned b1) {
  die("%s: block %p (size %" PRIu32 ") was overwritten before free at op %" PRIu64
      ": expected marker %u, found %u at the start and %u at the end",
      w, p, size, i, tag, b0, b1);
}

/* ------------------------------------------------------------------------ */
/* W1 and W2: the slot loop (bench/workloads.ts slotLoop) */

typedef struct {
  unsigned char **slots;
  uint32_t *sizes;
  unsigned char *tags;
  uint64_t ws;
} slots_t;

static void slots_init(slots_t *s, uint64_t ws) {
  s->ws = ws;
  s->slots = xcalloc(ws, sizeof *s->slots);
  s->sizes = xcalloc(ws, sizeof *s->sizes);
  s->tags = xcalloc(ws, 1);
}

static void slot_loop(const char *w, slots_t *s, uint32_t *rng, uint64_t cycles, uint32_t min_size,
                      uint32_t size_span, tally_t *out) {
  unsigned char **slots = s->slots;
  uint32_t *sizes = s->sizes;
  unsigned char *tags = s->tags;
  const uint32_t ws = (uint32_t)s->ws;
  uint64_t mallocs = 0, bytes = 0, live = 0, peak = 0;
  uint32_t checksum = 0;
  for (uint64_t i = 0; i < cycles; i++) {
    uint32_t idx = xorshift32(rng) % ws;
    unsigned char *p = slots[idx];
    if (p != NULL) {
      uint32_t size = sizes[idx];
      unsigned tag = tags[idx], b0 = p[0], b1 = p[size - 1];
      if (b0 != tag || b1 != tag) corrupted(w, i, p, size, tag, b0, b1);
      checksum += b0 + b1;
      free(p);
      slots[idx] = NULL;
      live -= size;
    } else {
      uint32_t size = min_size + xorshift32(rng) % size_span;
      unsigned char *q = malloc(size);
      if (q == NULL) out_of_memory(w, i, size);
      unsigned char tag = (unsigned char)(i & 0xff);
      q[0] = tag;
      q[size - 1] = tag;
      slots[idx] = q;
      sizes[idx] = size;
      tags[idx] = tag;
      mallocs++;
      bytes += size;
      live += size;
      if (live > peak) peak = live;
    }
  }
  out->ops = cycles;
  out->mallocs = mallocs;
  out->bytes_requested = bytes;
  out->checksum = checksum;
  out->peak_live = peak;
}

static void slots_cleanup(const char *w, slots_t *s) {
  for (uint64_t idx = 0; idx < s->ws; idx++) {
    unsigned char *p = s->slots[idx];
    if (p == NULL) continue;
    uint32_t size = s->sizes[idx];
    unsigned tag = s->tags[idx];
    if (p[0] != tag || p[size - 1] != tag) corrupted(w, idx, p, size, tag, p[0], p[size - 1]);
    free(p);
    s->slots[idx] = NULL;
  }
  free(s->slots);
  free(s->sizes);
  free(s->tags);
}

/* ------------------------------------------------------------------------ */
/* Threads: start and end barriers shared by W2 and W3 */

static pthread_barrier_t start_barrier; /* threads + main: release all at once */
static pthread_barrier_t end_barrier;   /* threads + main: all threads are done */
static pthread_barrier_t round_barrier; /* threads only: W3 hand-off */
static const params_t *P;

typedef struct {
  pthread_t handle;
  uint32_t t;
  uint32_t rng;
  tally_t tally;
  /* Each thread reads the clock itself: main may be descheduled right after the start barrier
     and read it late (with one short-running thread, even after that thread has finished). */
  double start_s, end_s;
} worker_t;

static void barrier_init(pthread_barrier_t *b, unsigned n) {
  int e = pthread_barrier_init(b, NULL, n);
  if (e != 0) die("pthread_barrier_init: %s", strerror(e));
}

static void run_threads(worker_t *workers, uint64_t threads, void *(*fn)(void *), double *seconds, long long *faults) {
  barrier_init(&start_barrier, (unsigned)threads + 1);
  barrier_init(&end_barrier, (unsigned)threads + 1);
  barrier_init(&round_barrier, (unsigned)threads);
  for (uint64_t t = 0; t < threads; t++) {
    workers[t].t = (uint32_t)t;
    workers[t].rng = thread_seed(P->seed, (uint32_t)t);
    int e = pthread_create(&workers[t].handle, NULL, fn, &workers[t]);
    if (e != 0) die("pthread_create: %s", strerror(e));
  }
  pthread_barrier_wait(&start_barrier);
  long long f0 = minor_faults(); /* the threads are released: their setup is done */
  pthread_barrier_wait(&end_barrier);
  *faults = minor_faults() - f0;
  /* wall clock: from the first thread released to the last one done */
  double t0 = workers[0].start_s, t1 = workers[0].end_s;
  for (uint64_t t = 1; t < threads; t++) {
    if (workers[t].start_s < t0) t0 = workers[t].start_s;
    if (workers[t].end_s > t1) t1 = workers[t].end_s;
  }
  *seconds = t1 - t0;
  for (uint64_t t = 0; t < threads; t++) pthread_join(workers[t].handle, NULL);
  pthread_barrier_destroy(&start_barrier);
  pthread_barrier_destroy(&end_barrier);
  pthread_barrier_destroy(&round_barrier);
}

/* W2: each thread runs the slot loop on its own slots. */
static void *w2_thread(void *arg) {
  worker_t *me = arg;
  slots_t s;
  slots_init(&s, P->ws);
  pthread_barrier_wait(&start_barrier);
  me->start_s = now_seconds();
  slot_loop("W2", &s, &me->rng, P->cycles, W2_MIN_SIZE, W2_SIZE_SPAN, &me->tally);
  me->end_s = now_seconds();
  pthread_barrier_wait(&end_barrier);
  slots_cleanup("W2 cleanup", &s); /* not timed */
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* W3 larson (bench/workloads.ts larsonFill / larsonRound) */

typedef struct {
  unsigned char **blocks;
  uint32_t *sizes;
  uint64_t live, peak_live;
} larson_array_t;

static larson_array_t *arrays;

static void larson_fill(larson_array_t *a, uint32_t *rng, uint64_t chunks, tally_t *tally) {
  a->blocks = xcalloc(chunks, sizeof *a->blocks);
  a->sizes = xcalloc(chunks, sizeof *a->sizes);
  uint64_t bytes = 0;
  for (uint64_t k = 0; k < chunks; k++) {
    uint32_t size = W3_MIN_SIZE + xorshift32(rng) % W3_SIZE_SPAN;
    unsigned char *p = malloc(size);
    if (p == NULL) out_of_memory("W3 fill", k, size);
    p[0] = (unsigned char)(size & 0xff);
    a->blocks[k] = p;
    a->sizes[k] = size;
    bytes += size;
  }
  a->live = a->peak_live = bytes;
  tally->mallocs += chunks;
  tally->bytes_requested += bytes;
}

static void larson_round(larson_array_t *a, uint32_t *rng, uint64_t chunks, uint64_t ops, tally_t *tally) {
  unsigned char **blocks = a->blocks;
  uint32_t *sizes = a->sizes;
  const uint32_t n = (uint32_t)chunks;
  uint64_t live = a->live, peak = a->peak_live, bytes = 0;
  uint32_t checksum = tally->checksum;
  for (uint64_t i = 0; i < ops; i++) {
    uint32_t k = xorshift32(rng) % n;
    unsigned char *p = blocks[k];
    uint32_t old_size = sizes[k];
    unsigned b0 = p[0];
    if (b0 != (old_size & 0xff)) corrupted("W3", i, p, old_size, old_size & 0xff, b0, b0);
    checksum += b0;
    free(p);
    uint32_t size = W3_MIN_SIZE + xorshift32(rng) % W3_SIZE_SPAN;
    unsigned char *q = malloc(size);
    if (q == NULL) out_of_memory("W3", i, size);
    q[0] = (unsigned char)(size & 0xff);
    blocks[k] = q;
    sizes[k] = size;
    bytes += size;
    live = live + size - old_size;
    if (live > peak) peak = live;
  }
  a->live = live;
  a->peak_live = peak;
  tally->ops += 2 * ops;
  tally->mallocs += ops;
  tally->bytes_requested += bytes;
  tally->checksum = checksum;
}

static void larson_cleanup(larson_array_t *a, uint64_t chunks) {
  for (uint64_t k = 0; k < chunks; k++) {
    unsigned char *p = a->blocks[k];
    if (p[0] != (a->sizes[k] & 0xff)) corrupted("W3 cleanup", k, p, a->sizes[k], a->sizes[k] & 0xff, p[0], p[0]);
    free(p);
  }
  free(a->blocks);
  free(a->sizes);
}

static void *w3_thread(void *arg) {
  worker_t *me = arg;
  const uint32_t T = (uint32_t)P->threads;
  larson_fill(&arrays[me->t], &me->rng, P->chunks, &me->tally); /* before the timed part */
  pthread_barrier_wait(&start_barrier);
  me->start_s = now_seconds();
  for (uint64_t round = 0; round < P->rounds; round++) {
    /* thread t holds array (t + round) % T: the hand-off applied `round` times */
    larson_array_t *a = &arrays[(me->t + round) % T];
    larson_round(a, &me->rng, P->chunks, P->ops_per_round, &me->tally);
    pthread_barrier_wait(&round_barrier); /* all threads are done with their arrays */
    /* hand-off: thread t now takes the array thread (t + 1) % T held */
    pthread_barrier_wait(&round_barrier); /* all threads have taken theirs */
  }
  me->end_s = now_seconds();
  pthread_barrier_wait(&end_barrier);
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* W5 replay of a parsed trace (bench/replay.ts replayLoop) */

typedef struct {
  uint64_t ops, mallocs, reallocs, frees, bytes_requested, peak_live;
  uint32_t checksum;
  double seconds;
  long long rss_growth;
  long long minor_faults; /* during the replays and their cleanups, as bench/run.ts counts them */
  double split_seconds[2]; /* --split K: operations [0, K) and [K, count), summed over the repeats */
} w5_result_t;

static void *map_anon(size_t bytes) {
  void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap(%zu): %s", bytes, strerror(errno));
  memset(p, 0, bytes); /* resident before the timed part */
  return p;
}

/* VmRSS of /proc/self/status in bytes, or -1. */
static long long vm_rss_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  long long kib = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "VmRSS: %lld kB", &kib) == 1) break;
  }
  fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

static long long vm_hwm_bytes(void);

/* Resets the peak RSS to the current RSS (Linux >= 4.0) and returns the current RSS, so that
   vm_hwm_bytes() - the result is the growth of the peak from here on (-1: not known). */
static long long rss_reset(void) {
  int cr = open("/proc/self/clear_refs", O_WRONLY);
  if (cr >= 0) {
    if (write(cr, "5", 1) != 1) { /* older kernel: the peak so far is about the current RSS anyway */ }
    close(cr);
  }
  return vm_rss_bytes();
}

/* The growth of the peak RSS since rss_reset() returned rss0, in bytes (0 when not known). */
static long long rss_growth(long long rss0) {
  long long hwm = vm_hwm_bytes();
  return hwm >= 0 && rss0 >= 0 && hwm > rss0 ? hwm - rss0 : 0;
}

static __attribute__((noinline, noreturn)) void w5_corrupted(const int32_t *line, uint64_t i, uint64_t count,
                                                            const void *p, uint32_t size, const char *what,
                                                            unsigned expected, unsigned b0, unsigned b1) {
  if (i < count) die("W5: line %d: %s: block %p (size %" PRIu32 "): expected %u, found %u at the start and %u at the end",
                     (int)line[i], what, p, size, expected, b0, b1);
  die("W5: end of trace: %s: block %p (size %" PRIu32 "): expected %u, found %u at the start and %u at the end", what, p,
      size, expected, b0, b1);
}

/* A parsed trace, mapped read-only: shared by every replaying thread. */
typedef struct {
  uint64_t count, nslots;
  const unsigned char *kind;
  const int32_t *slot, *size, *line;
} w5_trace_t;

static void w5_load(const char *path, w5_trace_t *tr) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) die("W5: cannot open %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) die("W5: cannot stat %s: %s", path, strerror(errno));
  size_t file_bytes = (size_t)st.st_size;
  if (file_bytes < 24) die("W5: %s: not a parsed W5 trace (too short)", path);
  const unsigned char *file = mmap(NULL, file_bytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (file == MAP_FAILED) die("W5: mmap %s: %s", path, strerror(errno));
  close(fd);
  uint32_t hdr[4];
  memcpy(hdr, file + 8, sizeof hdr);
  if (memcmp(file, "SABW5OPS", 8) != 0 || hdr[0] != 1) die("W5: %s: not a parsed W5 trace (magic or version)", path);
  const uint64_t count = hdr[1], nslots = hdr[2] ? hdr[2] : 1;
  const uint64_t kind_bytes = (count + 3) & ~(uint64_t)3;
  if (file_bytes != 24 + kind_bytes + 12 * count) die("W5: %s: not a parsed W5 trace (wrong length)", path);
  tr->count = count;
  tr->nslots = nslots;
  tr->kind = file + 24;
  tr->slot = (const int32_t *)(file + 24 + kind_bytes);
  tr->size = tr->slot + count;
  tr->line = tr->size + count;
  for (uint64_t i = 0; i < count; i++) { /* untimed: a corrupt file must not crash the loop */
    if (tr->kind[i] > 3 || tr->slot[i] < 0 || (uint64_t)tr->slot[i] >= nslots || tr->size[i] < 0) die("W5: %s: bad operation %" PRIu64, path, i);
  }
}

/* One replaying thread: its own tables (resident before the timed part), its counts and clock. */
typedef struct {
  pthread_t handle;
  const w5_trace_t *tr;
  uint64_t repeats, split;
  unsigned char **ptrs;
  uint32_t *sizes;
  unsigned char *tags, *used;
  w5_result_t r;
} w5_worker_t;

static void w5_tables(w5_worker_t *me) {
  const uint64_t nslots = me->tr->nslots;
  me->ptrs = map_anon(nslots * sizeof *me->ptrs);
  me->sizes = map_anon(nslots * sizeof *me->sizes);
  me->tags = map_anon(nslots);
  me->used = map_anon(nslots);
}

/* The replays (bench/replay.ts replayLoop), `repeats` times, each followed by its untimed cleanup. */
static void w5_replay(w5_worker_t *me) {
  const w5_trace_t *tr = me->tr;
  const uint64_t count = tr->count, nslots = tr->nslots;
  const unsigned char *kind = tr->kind;
  const int32_t *slot = tr->slot, *size = tr->size, *line = tr->line;
  unsigned char **ptrs = me->ptrs;
  uint32_t *sizes = me->sizes;
  unsigned char *tags = me->tags, *used = me->used;
  w5_result_t *r = &me->r;
  uint64_t split = me->split;

  uint64_t mallocs = 0, reallocs = 0, frees = 0, bytes = 0, peak = 0;
  uint32_t checksum = 0;
  double seconds = 0;
  if (split > count) split = count;
  for (uint64_t rep = 0; rep < me->repeats; rep++) {
    uint64_t live = 0;
    double t0 = now_seconds();
    /* Two parts, [0, split) and [split, count), timed apart (bench/phases.ts); the body is one. */
    uint64_t i = 0;
    for (int part = 0; part < 2; part++) {
      const uint64_t part_end = part == 0 ? split : count;
      const double tp = now_seconds();
      for (; i < part_end; i++) {
        const unsigned k = kind[i];
        const int32_t s = slot[i];
        const unsigned char tag = (unsigned char)(i % 255 + 1);
        if (k <= 1) { /* malloc, calloc */
          const uint32_t sz = (uint32_t)size[i];
          unsigned char *p = k == 0 ? malloc(sz) : calloc(1, sz);
          mallocs++;
          if (sz > 0) {
            if (p == NULL) die("W5: line %d: %s(%" PRIu32 ") returned NULL (out of memory)", (int)line[i], k == 0 ? "malloc" : "calloc", sz);
            if (k == 1 && (p[0] | p[sz - 1]) != 0) w5_corrupted(line, i, count, p, sz, "calloc returned bytes that are not zero", 0, p[0], p[sz - 1]);
            p[0] = tag;
            p[sz - 1] = tag;
          }
          ptrs[s] = p;
          sizes[s] = sz;
          tags[s] = tag;
          used[s] = 1;
          bytes += sz;
          live += sz;
          if (live > peak) peak = live;
        } else {
          unsigned char *p = ptrs[s];
          const uint32_t old = sizes[s];
          const unsigned old_tag = tags[s];
          if (old > 0) {
            const unsigned b0 = p[0], b1 = p[old - 1];
            if (b0 != old_tag || b1 != old_tag) w5_corrupted(line, i, count, p, old, "block was overwritten", old_tag, b0, b1);
            checksum += b0 + b1;
          }
          if (k == 3) { /* free */
            free(p);
            ptrs[s] = NULL;
            sizes[s] = 0;
            used[s] = 0;
            live -= old;
            frees++;
          } else { /* realloc */
            const uint32_t sz = (uint32_t)size[i];
            unsigned char *q = realloc(p, sz);
            if (sz > 0) {
              if (q == NULL) die("W5: line %d: realloc(%" PRIu32 ") returned NULL (out of memory)", (int)line[i], sz);
              const uint32_t kept = old < sz ? old : sz;
              if (kept > 0) {
                const unsigned c0 = q[0], c1 = q[kept - 1];
                const unsigned want1 = kept == old ? old_tag : c1;
                if (c0 != old_tag || c1 != want1) w5_corrupted(line, i, count, q, sz, "realloc did not preserve the contents", old_tag, c0, c1);
              }
              q[0] = tag;
              q[sz - 1] = tag;
            }
            ptrs[s] = q;
            sizes[s] = sz;
            tags[s] = tag;
            bytes += sz;
            live = live + sz - old;
            if (live > peak) peak = live;
            reallocs++;
          }
        }
      }
      r->split_seconds[part] += now_seconds() - tp;
    }
    seconds += now_seconds() - t0;

    /* untimed: check and free what the trace left live */
    for (uint64_t s = 0; s < nslots; s++) {
      if (!used[s]) continue;
      unsigned char *p = ptrs[s];
      if (sizes[s] > 0 && (p[0] != tags[s] || p[sizes[s] - 1] != tags[s]))
        w5_corrupted(line, count, count, p, sizes[s], "block was overwritten (found at the end)", tags[s], p[0], p[sizes[s] - 1]);
      free(p);
      ptrs[s] = NULL;
      sizes[s] = 0;
      used[s] = 0;
    }
  }
  r->seconds = seconds;
  r->ops = count * me->repeats;
  r->mallocs = mallocs;
  r->reallocs = reallocs;
  r->frees = frees;
  r->bytes_requested = bytes;
  r->peak_live = peak;
  r->checksum = checksum;
}

static pthread_barrier_t ready_barrier; /* W5's threads + main: every thread's tables are made */

static void *w5_thread(void *arg) {
  w5_worker_t *me = arg;
  w5_tables(me);
  pthread_barrier_wait(&ready_barrier);
  pthread_barrier_wait(&start_barrier);
  w5_replay(me);
  pthread_barrier_wait(&end_barrier);
  return NULL;
}

/*
 * W5 at T threads: each thread replays the whole trace at once, on its own tables, all released
 * together (the JavaScript side: every worker replays it on the one shared heap). The seconds are
 * the slowest thread's, of its replays alone (each replay's cleanup is untimed, as with one
 * thread: bench/run.ts takes the same); counts summed; peak live the sum of the threads' peaks (an
 * upper bound, as W2's). With one thread, no thread is started (as before).
 */
static void w5_run(const w5_trace_t *tr, uint64_t threads, uint64_t repeats, uint64_t split, w5_result_t *total) {
  w5_worker_t *workers = xcalloc(threads, sizeof *workers);
  for (uint64_t t = 0; t < threads; t++) {
    workers[t].tr = tr;
    workers[t].repeats = repeats;
    workers[t].split = split;
  }
  long long rss0, faults0;
  double wall;
  if (threads == 1) {
    w5_tables(&workers[0]);
    rss0 = rss_reset(); /* so that the growth is the replay's */
    faults0 = minor_faults();
    w5_replay(&workers[0]);
    wall = workers[0].r.seconds;
  } else {
    barrier_init(&ready_barrier, (unsigned)threads + 1);
    barrier_init(&start_barrier, (unsigned)threads + 1);
    barrier_init(&end_barrier, (unsigned)threads + 1);
    for (uint64_t t = 0; t < threads; t++) {
      int e = pthread_create(&workers[t].handle, NULL, w5_thread, &workers[t]);
      if (e != 0) die("pthread_create: %s", strerror(e));
    }
    pthread_barrier_wait(&ready_barrier); /* the threads' tables (and stacks) are resident */
    rss0 = rss_reset();
    pthread_barrier_wait(&start_barrier);
    faults0 = minor_faults();
    pthread_barrier_wait(&end_barrier);
    wall = 0;
    for (uint64_t t = 0; t < threads; t++) if (workers[t].r.seconds > wall) wall = workers[t].r.seconds;
    for (uint64_t t = 0; t < threads; t++) pthread_join(workers[t].handle, NULL);
    pthread_barrier_destroy(&ready_barrier);
    pthread_barrier_destroy(&start_barrier);
    pthread_barrier_destroy(&end_barrier);
  }
  total->minor_faults = minor_faults() - faults0;
  total->rss_growth = rss_growth(rss0);
  total->seconds = wall;
  for (uint64_t t = 0; t < threads; t++) {
    const w5_result_t *r = &workers[t].r;
    total->ops += r->ops;
    total->mallocs += r->mallocs;
    total->reallocs += r->reallocs;
    total->frees += r->frees;
    total->bytes_requested += r->bytes_requested;
    total->peak_live += r->peak_live;
    total->checksum += r->checksum;
    total->split_seconds[0] += r->split_seconds[0];
    total->split_seconds[1] += r->split_seconds[1];
  }
  free(workers);
}

/* ------------------------------------------------------------------------ */
/* Command line and report */

static uint64_t parse_u64(const char *name, const char *s, uint64_t min, uint64_t max) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *s == '\0' || *s == '-' || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "workloads: %s expects an integer in [%" PRIu64 ", %" PRIu64 "], got '%s'\n", name, min, max, s);
    exit(2);
  }
  return v;
}

static void usage(void) {
  fputs("usage: workloads W1|W2|W3 [--threads T] [--cycles N] [--ws N] [--seed S]\n"
        "                          [--chunks N] [--rounds N] [--ops N]\n"
        "       workloads W5 --trace-ops FILE [--threads T] [--repeats N] [--split K]\n",
        stderr);
  exit(2);
}

/* VmHWM of /proc/self/status in bytes (high-water RSS of this image), or -1. */
static long long vm_hwm_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  long long kib = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
  }
  fclose(f);
  return kib < 0 ? -1 : kib * 1024;
}

static const char *malloc_library(void) {
  Dl_info info;
  void *(*volatile fn)(size_t) = malloc;
  if (dladdr((void *)fn, &info) != 0 && info.dli_fname != NULL) return info.dli_fname;
  return "unknown";
}

static void json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') putchar('\\');
    if ((unsigned char)*s < 0x20) continue;
    putchar(*s);
  }
  putchar('"');
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  if (strcmp(argv[1], "W5") == 0) {
    const char *ops_file = NULL;
    uint64_t repeats = 1, split = UINT64_MAX, threads = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
      if (strcmp(argv[i], "--trace-ops") == 0) ops_file = argv[i + 1];
      else if (strcmp(argv[i], "--repeats") == 0) repeats = parse_u64(argv[i], argv[i + 1], 1, UINT32_MAX);
      else if (strcmp(argv[i], "--split") == 0) split = parse_u64(argv[i], argv[i + 1], 0, UINT32_MAX);
      else if (strcmp(argv[i], "--threads") == 0) threads = parse_u64(argv[i], argv[i + 1], 1, 4096);
      else usage();
    }
    if (ops_file == NULL || argc % 2 != 0) usage();
    if (threads > 1 && split != UINT64_MAX) {
      fputs("workloads: W5 --split is for one thread (--threads 1)\n", stderr);
      exit(2);
    }
    w5_trace_t tr;
    w5_load(ops_file, &tr);
    w5_result_t r = {0};
    w5_run(&tr, threads, repeats, split, &r);
    printf("{\"workload\":\"W5\",\"threads\":%" PRIu64 ",\"ops\":%" PRIu64 ",\"mallocs\":%" PRIu64 ",\"reallocs\":%" PRIu64
           ",\"frees\":%" PRIu64 ",\"bytesRequested\":%" PRIu64 ",\"checksum\":%" PRIu32
           ",\"seconds\":%.9f,\"opsPerSec\":%.1f,\"peakRssBytes\":%lld,\"ruMaxrssBytes\":0,\"peakLiveBytes\":%" PRIu64
           ",\"minorFaults\":%lld,\"splitSeconds\":[%.9f,%.9f],\"mallocLibrary\":",
           threads, r.ops, r.mallocs, r.reallocs, r.frees, r.bytes_requested, r.checksum, r.seconds,
           r.seconds > 0 ? (double)r.ops / r.seconds : 0.0, r.rss_growth, r.peak_live, r.minor_faults,
           r.split_seconds[0], r.split_seconds[1]);
    json_string(malloc_library());
    puts("}");
    return 0;
  }
  params_t p = {.workload = argv[1], .threads = 0, .cycles = 0, .ws = 0, .chunks = 1000, .rounds = 100,
                .ops_per_round = 10000, .seed = 0};
  int w = strcmp(argv[1], "W1") == 0 ? 1 : strcmp(argv[1], "W2") == 0 ? 2 : strcmp(argv[1], "W3") == 0 ? 3 : 0;
  if (w == 0) usage();
  /* defaults of shared/workloads.md */
  p.threads = w == 1 ? 1 : 2;
  p.cycles = w == 1 ? 10000000 : 1000000;
  p.ws = w == 1 ? 4096 : 2048;
  p.seed = w == 1 ? 1234567 : w == 2 ? 42 : 4141;
  for (int i = 2; i < argc; i++) {
    const char *opt = argv[i];
    if (i + 1 >= argc) usage();
    const char *val = argv[++i];
    if (strcmp(opt, "--threads") == 0) p.threads = parse_u64(opt, val, 1, 4096);
    else if (strcmp(opt, "--cycles") == 0) p.cycles = parse_u64(opt, val, 0, UINT64_MAX / 2);
    else if (strcmp(opt, "--ws") == 0) p.ws = parse_u64(opt, val, 1, UINT32_MAX);
    else if (strcmp(opt, "--seed") == 0) p.seed = (uint32_t)parse_u64(opt, val, 1, UINT32_MAX);
    else if (strcmp(opt, "--chunks") == 0) p.chunks = parse_u64(opt, val, 1, UINT32_MAX);
    else if (strcmp(opt, "--rounds") == 0) p.rounds = parse_u64(opt, val, 0, UINT32_MAX);
    else if (strcmp(opt, "--ops") == 0) p.ops_per_round = parse_u64(opt, val, 0, UINT32_MAX);
    else usage();
  }
  if (w == 1 && p.threads != 1) {
    fputs("workloads: W1 is single-threaded (--threads 1)\n", stderr);
    exit(2);
  }
  P = &p;

  tally_t total = {0};
  double seconds = 0;
  long long faults = 0; /* minor page faults during the timed part */
  long long rss0 = -1;  /* the RSS where the workload starts (rss_reset) */
  if (w == 1) {
    slots_t s;
    slots_init(&s, p.ws);
    rss0 = rss_reset();
    uint32_t rng = p.seed; /* threadSeed(seed, 0) == seed */
    double t0 = now_seconds();
    long long f0 = minor_faults();
    slot_loop("W1", &s, &rng, p.cycles, W1_MIN_SIZE, W1_SIZE_SPAN, &total);
    seconds = now_seconds() - t0;
    faults = minor_faults() - f0;
    slots_cleanup("W1 cleanup", &s); /* not timed (freed memory stays in the peak, as it was reached) */
  } else {
    worker_t *workers = xcalloc(p.threads, sizeof *workers);
    if (w == 3) arrays = xcalloc(p.threads, sizeof *arrays);
    /* Before the threads start: their set-up (slot tables, W3's first fill, their stacks' pages) counts. */
    rss0 = rss_reset();
    run_threads(workers, p.threads, w == 2 ? w2_thread : w3_thread, &seconds, &faults);
    for (uint64_t t = 0; t < p.threads; t++) {
      total.ops += workers[t].tally.ops;
      total.mallocs += workers[t].tally.mallocs;
      total.bytes_requested += workers[t].tally.bytes_requested;
      total.checksum += workers[t].tally.checksum;
      total.peak_live += w == 2 ? workers[t].tally.peak_live : arrays[t].peak_live;
    }
    if (w == 3) {
      for (uint64_t t = 0; t < p.threads; t++) larson_cleanup(&arrays[t], p.chunks); /* not timed */
      free(arrays);
    }
    free(workers);
  }

  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long long ru_maxrss = (long long)ru.ru_maxrss * 1024LL;
  long long hwm = vm_hwm_bytes();
  long long footprint = hwm >= 0 && rss0 >= 0 ? rss_growth(rss0) : ru_maxrss; /* no /proc: the whole process's */
  printf("{\"workload\":\"W%d\",\"threads\":%" PRIu64, w, p.threads);
  if (w == 3) {
    printf(",\"chunks\":%" PRIu64 ",\"rounds\":%" PRIu64 ",\"opsPerRound\":%" PRIu64, p.chunks, p.rounds,
           p.ops_per_round);
  } else {
    printf(",\"cycles\":%" PRIu64 ",\"ws\":%" PRIu64, p.cycles, p.ws);
  }
  printf(",\"seed\":%" PRIu32 ",\"ops\":%" PRIu64 ",\"mallocs\":%" PRIu64 ",\"bytesRequested\":%" PRIu64
         ",\"checksum\":%" PRIu32 ",\"seconds\":%.9f,\"opsPerSec\":%.1f,\"peakRssBytes\":%lld,\"ruMaxrssBytes\":%lld"
         ",\"peakLiveBytes\":%" PRIu64 ",\"minorFaults\":%lld,\"mallocLibrary\":",
         p.seed, total.ops, total.mallocs, total.bytes_requested, total.checksum, seconds,
         seconds > 0 ? (double)total.ops / seconds : 0.0, footprint, ru_maxrss, total.peak_live, faults);
  json_string(malloc_library());
  puts("}");
  return 0;
}
