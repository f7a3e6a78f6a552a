/*
 * trace-record.c: an LD_PRELOAD shim that writes the malloc-family calls of a program's main
 * thread as a W5 trace (shared/workloads.md "W5 replay"), for `sabmalloc record`.
 *
 *   cc -O2 -shared -fPIC -o trace-record.so trace-record.c
 *   SABMALLOC_TRACE_OUT=out.trace LD_PRELOAD=./trace-record.so program args...
 *
 * What it writes:
 * - malloc, realloc(NULL, n), posix_memalign, aligned_alloc, memalign, valloc, pvalloc -> `a ID n`
 *   (the alignment is not kept: W5 has no aligned line); calloc(k, s) -> `c ID k*s`;
 *   realloc(p, n) -> `r ID n` (glibc's reallocarray and the other calls inside libc reach these
 *   functions too); free(p) and realloc(p, 0) -> `f ID`; free(NULL) is not written.
 * - IDs are dense: the most recently freed ID is reused first, so the largest ID + 1 is the peak
 *   number of live blocks.
 * - Only the thread that loaded the shim (the process's main thread) is recorded. Calls of other
 *   threads, and frees or reallocs of pointers the trace never saw (made before the shim started,
 *   or by another thread), pass through and are counted; the counts are written as `#` lines at
 *   exit. A trace whose counters are not all 0 is still well formed but misses part of the traffic.
 *   A main-thread block another thread frees is written freed when the main thread gets its
 *   address again (freed_elsewhere). Sizes of 2^31 and more, which W5 cannot hold, are counted
 *   (too_large), not written.
 * - A child made by fork stops recording (its calls are not the parent's), and programs started
 *   from the recorded one do not record (SABMALLOC_TRACE_PID names the recording process); a program
 *   the recorded one execs in its place takes the trace over (a wrapper script exec'ing the real
 *   program). The trace then holds only the last image's calls.
 * - The trace is written through a 1 MiB buffer, flushed when full and at exit (exit from any
 *   thread, _exit, _Exit); a program killed by a signal loses what the buffer held (whole lines).
 *
 * The shim itself never calls malloc: its tables and its output buffer are mmap'ed, it calls
 * glibc's __libc_* entry points, and it formats numbers by hand.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static int out_fd = -1;
static char out_path[4096];
static dev_t out_dev;
static ino_t out_ino;
static pid_t main_tid, main_pid;
static int active;
static int busy; /* the main thread is inside the shim (no re-entry is recorded) */
static off_t out_off; /* the trace's bytes in the file: what flush() has written (pwrite at this offset) */

static char *buf;
static size_t buf_len;
#define BUF_BYTES (1 << 20)

/* Pointer -> id: open addressing over a power-of-two table of (pointer, id) pairs; deleted slots
 * hold TOMB. Grown (rehashed) at half full including tombstones. */
#define TOMB ((uintptr_t)1)
static uintptr_t *keys;
static uint32_t *vals;
static size_t cap, used, live;
static uint32_t *free_ids;
static size_t free_ids_n, free_ids_cap;
static uint32_t next_id;

static uint64_t n_other_threads, n_unknown, n_failed, n_too_large, n_freed_elsewhere;

/* W5 sizes are below 2^31 (replay.ts refuses a larger one, and with it the whole trace). */
#define SIZE_LIMIT ((uint64_t)1 << 31)

static void *map(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Moves a descriptor of the shim's out of the way of the low numbers a program takes for itself
 * (a shell's `exec 3>FILE`, a daemon's open of /dev/null after closing everything, which expects
 * 0): to 960, or 64 below a lower RLIMIT_NOFILE, and never below 3. A trace on 0, 1 or 2 (the
 * program closed stdout, then all its descriptors) would take the program's own output; when it
 * cannot move there, it is closed and -1 returned. */
static int move_up(int fd) {
  if (fd < 0) return -1;
  struct rlimit rl;
  int high = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1024 ? (int)rl.rlim_cur - 64 : 1024 - 64;
  if (high < 3) high = 3;
  if (fd >= high) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, high);
  if (moved < 0 && high > 3) moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (moved < 0 && fd > 2) return fd;
  close(fd);
  return moved;
}

/* Whether out_fd is still the trace file: the program may close descriptors it did not open, or
 * open its own on the same number (a shell's `exec 3>FILE`), and the trace must not go into its
 * file. When it is not, the trace file is opened again by name and written where the trace ends. */
static int out_is_trace(void) {
  struct stat st;
  if (fstat(out_fd, &st) == 0 && st.st_dev == out_dev && st.st_ino == out_ino) return 1;
  int fd = move_up(open(out_path, O_WRONLY | O_CLOEXEC)); /* written at out_off, by pwrite */
  if (fd < 0) return 0;
  out_fd = fd;
  return 1;
}

/* Writes the buffer at out_off. The buffer is emptied before out_off moves on: a signal handler
 * that calls _exit in between (finish) finds the file longer than out_off and the buffer empty,
 * and writes after the file's end; before that, the buffer's bytes the file already has are
 * skipped (finish: a flush the handler cut short is neither lost nor written twice). */
static void flush(void) {
  size_t done = 0, len = buf_len;
  if (len > 0 && !out_is_trace()) { active = 0; buf_len = 0; out_fd = -1; return; } /* not theirs to close */
  while (done < len) {
    ssize_t w = pwrite(out_fd, buf + done, len - done, out_off + (off_t)done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) { active = 0; break; } /* cannot write: stop recording rather than lose lines silently */
    done += (size_t)w;
  }
  __atomic_store_n(&buf_len, 0, __ATOMIC_RELEASE);
  __atomic_store_n(&out_off, out_off + (off_t)done, __ATOMIC_RELEASE);
}

static void put_str(const char *s) {
  size_t n = strlen(s);
  if (buf_len + n > BUF_BYTES) flush();
  memcpy(buf + buf_len, s, n);
  buf_len += n;
}

static void put_u64(uint64_t v) {
  char tmp[24];
  int i = 0;
  do { tmp[i++] = (char)('0' + v % 10); v /= 10; } while (v != 0);
  if (buf_len + (size_t)i > BUF_BYTES) flush();
  while (i > 0) buf[buf_len++] = tmp[--i];
}

/* The digits of `v` at buf[n], which has room; returns the index after them. */
static size_t put_digits(size_t n, uint64_t v) {
  char tmp[24];
  int i = 0;
  do { tmp[i++] = (char)('0' + v % 10); v /= 10; } while (v != 0);
  while (i > 0) buf[n++] = tmp[--i];
  return n;
}

/* A line counts once it is whole, by one store of buf_len: a signal handler that calls _exit in
 * the middle of this (finish) writes whole lines only (an audit: it wrote a torn one). */
static void put_line(char op, uint32_t id, int has_size, uint64_t size) {
  if (buf_len + 48 > BUF_BYTES) flush();
  size_t n = buf_len;
  buf[n++] = op;
  buf[n++] = ' ';
  n = put_digits(n, id);
  if (has_size) { buf[n++] = ' '; n = put_digits(n, size); }
  buf[n++] = '\n';
  __atomic_store_n(&buf_len, n, __ATOMIC_RELEASE);
}

static inline size_t hash(uintptr_t p) {
  uint64_t h = (uint64_t)p * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 20);
}

static int grow_table(void) {
  size_t ncap = cap ? cap * 2 : (1u << 20);
  uintptr_t *nk = map(ncap * sizeof(uintptr_t));
  uint32_t *nv = map(ncap * sizeof(uint32_t));
  if (!nk || !nv) return 0;
  for (size_t i = 0; i < cap; i++) {
    uintptr_t k = keys[i];
    if (k == 0 || k == TOMB) continue;
    size_t j = hash(k) & (ncap - 1);
    while (nk[j] != 0) j = (j + 1) & (ncap - 1);
    nk[j] = k;
    nv[j] = vals[i];
  }
  if (keys) { munmap(keys, cap * sizeof(uintptr_t)); munmap(vals, cap * sizeof(uint32_t)); }
  keys = nk; vals = nv; cap = ncap; used = live;
  return 1;
}

static int64_t take_id(void) {
  if (free_ids_n > 0) return free_ids[--free_ids_n];
  return next_id++;
}

static void give_id(uint32_t id) {
  if (free_ids_n == free_ids_cap) {
    size_t ncap = free_ids_cap ? free_ids_cap * 2 : (1u << 16);
    uint32_t *n = map(ncap * sizeof(uint32_t));
    if (!n) return; /* the id is not reused: the trace stays correct */
    if (free_ids) { memcpy(n, free_ids, free_ids_n * sizeof(uint32_t)); munmap(free_ids, free_ids_cap * sizeof(uint32_t)); }
    free_ids = n; free_ids_cap = ncap;
  }
  free_ids[free_ids_n++] = id;
}

/* Enters `p` as block `id`. */
static void put_at(uintptr_t p, uint32_t id) {
  if ((used + 1) * 2 > cap && !grow_table()) { active = 0; return; }
  size_t j = hash(p) & (cap - 1);
  while (keys[j] != 0 && keys[j] != TOMB) j = (j + 1) & (cap - 1);
  if (keys[j] == 0) used++;
  keys[j] = p; vals[j] = id; live++;
}

static void put_line(char op, uint32_t id, int has_size, uint64_t size);
static int64_t lookup(uintptr_t p, int remove);

/* `p` is the address of a block just made. When the table still has it, the block it held was
 * freed where the trace does not see (by another thread, which is not recorded): it is written
 * freed here, late, rather than left live for good (and its stale entry would shadow the new). */
static void forget_stale(uintptr_t p) {
  int64_t old = lookup(p, 1);
  if (old < 0) return;
  n_freed_elsewhere++;
  put_line('f', (uint32_t)old, 0, 0);
  give_id((uint32_t)old);
}

/* Records `p` as a new block; returns its id. */
static uint32_t insert(uintptr_t p) {
  forget_stale(p);
  uint32_t id = (uint32_t)take_id();
  put_at(p, id);
  return id;
}

/* The id of `p` (removed from the table when `remove`), or -1 when the trace never saw it. */
static int64_t lookup(uintptr_t p, int remove) {
  if (cap == 0) return -1;
  size_t j = hash(p) & (cap - 1);
  while (keys[j] != 0) {
    if (keys[j] == p) {
      uint32_t id = vals[j];
      if (remove) { keys[j] = TOMB; live--; }
      return id;
    }
    j = (j + 1) & (cap - 1);
  }
  return -1;
}

/* Whether this call is recorded; if so the main thread is now `busy` (done_recording clears it). busy
 * is set before active is read again: finish() in another thread (an exit there) clears active
 * and then waits for busy to clear, so that one of the two sees the other's store and the trace's
 * buffer has one writer at a time (an audit: an exit from another thread tore lines). */
static int recording(void) {
  if (!active || busy) return 0;
  if ((pid_t)syscall(SYS_gettid) != main_tid) { __atomic_fetch_add(&n_other_threads, 1, __ATOMIC_RELAXED); return 0; }
  __atomic_store_n(&busy, 1, __ATOMIC_SEQ_CST);
  if (!__atomic_load_n(&active, __ATOMIC_SEQ_CST)) { __atomic_store_n(&busy, 0, __ATOMIC_SEQ_CST); return 0; }
  return 1;
}

/* The end of a call recording() let through: its lines are in the buffer before busy clears. */
static void done_recording(void) { __atomic_store_n(&busy, 0, __ATOMIC_RELEASE); }

static void stop_in_child(void) { active = 0; out_fd = -1; }

__attribute__((constructor)) static void start(void) {
  const char *path = getenv("SABMALLOC_TRACE_OUT");
  if (!path || !*path) return;
  /* Programs this process starts load the shim too, but only this process writes the trace: the
   * first image records its pid, and a later image records only in that process (a wrapper
   * such as a shell script that execs the real program hands the trace on to it). */
  char pid_text[24];
  int k = 0;
  pid_t pid = getpid();
  do { pid_text[k++] = (char)('0' + pid % 10); pid /= 10; } while (pid != 0);
  for (int a = 0, b = k - 1; a < b; a++, b--) { char c = pid_text[a]; pid_text[a] = pid_text[b]; pid_text[b] = c; }
  pid_text[k] = 0;
  const char *owner = getenv("SABMALLOC_TRACE_PID");
  if (owner && strcmp(owner, pid_text) != 0) return;
  /* The first image claims the trace only as the recorder's own child: where the program the
   * recorder started does not load the shim (static, or setuid), a child it starts did, and took
   * the trace as the program's (an audit). */
  const char *parent = getenv("SABMALLOC_TRACE_PARENT");
  if (!owner && parent && strtol(parent, NULL, 10) != (long)getppid()) return;
  /* Read before setenv: a program may bring its own getenv and setenv (bash does), and bash's
   * setenv before its main left its getenv seeing that one variable only. */
  const char *cmd = getenv("SABMALLOC_TRACE_COMMAND");
  size_t path_len = strlen(path);
  if (path_len >= sizeof out_path) return;
  memcpy(out_path, path, path_len + 1);
  if (!owner) setenv("SABMALLOC_TRACE_PID", pid_text, 1); /* before recording starts: not traced */
  int fd = move_up(open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) != 0) { close(fd); return; }
  out_fd = fd; out_dev = st.st_dev; out_ino = st.st_ino;
  buf = map(BUF_BYTES);
  if (!buf || !grow_table()) return;
  main_tid = (pid_t)syscall(SYS_gettid);
  main_pid = (pid_t)syscall(SYS_getpid);
  pthread_atfork(NULL, NULL, stop_in_child);
  put_str("# recorded by sabmalloc's bench/native/trace-record.c\n");
  if (cmd) { put_str("# command: "); put_str(cmd); put_str("\n"); }
  active = 1;
}

/* At exit (a destructor: exit() from any thread) or _exit: the counters, then the buffer. Another
 * thread's exit may race with a call the main thread is recording; the process is ending then. */
__attribute__((destructor)) static void finish(void) {
  /* Not in a child: a vfork child shares this memory (and pthread_atfork does not run for it), and
   * its _exit after a failed exec (Python's subprocess of a missing program) had written the
   * counters, spent the buffer and stopped the parent's recording. */
  if (!__atomic_load_n(&active, __ATOMIC_SEQ_CST) || (pid_t)syscall(SYS_getpid) != main_pid) return;
  __atomic_store_n(&active, 0, __ATOMIC_SEQ_CST);
  if ((pid_t)syscall(SYS_gettid) != main_tid) {
    /* An exit from another thread: the main thread may be inside the shim; its call ends in a few
     * microseconds (it records nothing more once active is clear). Not waited for beyond 2 s. */
    struct timespec t0, now, pause = {0, 100000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (__atomic_load_n(&busy, __ATOMIC_SEQ_CST)) {
      nanosleep(&pause, NULL);
      clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec - t0.tv_sec >= 2) return;
    }
  }
  /* On the main thread busy may be set: a signal handler that calls _exit interrupted a call being
   * recorded. The buffer then holds whole lines (put_line), and a flush it interrupted may have
   * written some or all of them already: those are skipped, found by the file's length. */
  busy = 1;
  struct stat st;
  if (out_is_trace() && fstat(out_fd, &st) == 0 && st.st_size > out_off) {
    size_t ahead = (size_t)(st.st_size - out_off);
    if (ahead >= buf_len) buf_len = 0; /* all written (or emptied, out_off not yet moved on) */
    else { memmove(buf, buf + ahead, buf_len - ahead); buf_len -= ahead; }
    out_off = st.st_size;
  }
  put_str("# counters: other_threads="); put_u64(n_other_threads);
  put_str(" unknown_pointers="); put_u64(n_unknown);
  put_str(" failed_calls="); put_u64(n_failed);
  put_str(" too_large="); put_u64(n_too_large);
  put_str(" freed_elsewhere="); put_u64(n_freed_elsewhere);
  put_str(" live_at_exit="); put_u64(live);
  put_str("\n");
  flush();
  active = 0;
  close(out_fd);
}

/* _exit and _Exit skip the destructors: write the trace first. */
void _exit(int status) {
  finish();
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

void _Exit(int status) {
  _exit(status);
}

static void record_new(char op, void *p, uint64_t size) {
  if (!p) { n_failed++; return; }
  if (size >= SIZE_LIMIT) { n_too_large++; return; } /* not in W5: its later calls are unknown */
  uint32_t id = insert((uintptr_t)p);
  if (active) put_line(op, id, 1, size);
}

void *malloc(size_t n) {
  void *p = __libc_malloc(n);
  if (recording()) { record_new('a', p, n); done_recording(); }
  return p;
}

void *calloc(size_t k, size_t s) {
  void *p = __libc_calloc(k, s);
  if (recording()) { record_new('c', p, (uint64_t)k * s); done_recording(); }
  return p;
}

void free(void *p) {
  if (p && recording()) {
    int64_t id = lookup((uintptr_t)p, 1);
    if (id < 0) n_unknown++;
    else { put_line('f', (uint32_t)id, 0, 0); give_id((uint32_t)id); }
    done_recording();
  }
  __libc_free(p);
}

void *realloc(void *p, size_t n) {
  if (!recording()) return __libc_realloc(p, n);
  if (p == NULL) {
    void *q = __libc_realloc(NULL, n);
    record_new('a', q, n);
    done_recording();
    return q;
  }
  int64_t id = lookup((uintptr_t)p, 0);
  void *q = __libc_realloc(p, n);
  if (id < 0) { n_unknown++; done_recording(); return q; }
  if (n == 0) {
    /* glibc frees the block and returns NULL (or a minimal block for some builds) */
    lookup((uintptr_t)p, 1);
    put_line('f', (uint32_t)id, 0, 0);
    give_id((uint32_t)id);
    if (q) record_new('a', q, 0);
  } else if (q == NULL) {
    n_failed++; /* the old block is unchanged */
  } else if (n >= SIZE_LIMIT) {
    /* W5 cannot hold the new size: the block leaves the trace here (its later calls are unknown) */
    n_too_large++;
    lookup((uintptr_t)p, 1);
    put_line('f', (uint32_t)id, 0, 0);
    give_id((uint32_t)id);
  } else {
    if (q != p) {
      lookup((uintptr_t)p, 1); /* the id moves with the block */
      forget_stale((uintptr_t)q);
      put_at((uintptr_t)q, (uint32_t)id);
    }
    put_line('r', (uint32_t)id, 1, n);
  }
  done_recording();
  return q;
}

static void *aligned(size_t align, size_t n) {
  void *p = __libc_memalign(align, n);
  if (recording()) { record_new('a', p, n); done_recording(); }
  return p;
}

int posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || (align & (align - 1)) != 0) return EINVAL;
  void *p = aligned(align, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

void *aligned_alloc(size_t align, size_t n) { return aligned(align, n); }
void *memalign(size_t align, size_t n) { return aligned(align, n); }
void *valloc(size_t n) { return aligned((size_t)sysconf(_SC_PAGESIZE), n); }
void *pvalloc(size_t n) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  /* as glibc: a size that overflows when rounded up to a page fails (rounded, it would wrap to 0
   * and succeed) */
  if (n > SIZE_MAX - (page - 1)) { errno = ENOMEM; return NULL; }
  return aligned(page, (n + page - 1) & ~(page - 1));
}
