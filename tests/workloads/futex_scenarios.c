/* futex_scenarios RECORD MODE ARGS: futex traffic whose every call is known, for locktrace's tests.
 * Waits for a line on stdin before starting (so a tracer can attach first), then runs MODE and writes
 * what it did to RECORD as JSON. All futex calls are raw system calls, so counts are exact.
 *
 *   block ROUNDS HOLD_MS  thread "lt-holder" takes a futex word and holds it; thread "lt-waiter"
 *                         waits on it (block_on_word). The holder releases only once the waiter is
 *                         asleep in futex on that word (checked in /proc), HOLD_MS later, then wakes
 *                         it (wake_word). The waiter times each of its wait calls.
 *   eagain COUNT          thread "lt-eagain" waits COUNT times on a word whose value differs from the
 *                         expected one (fail_wait_on_word): every call fails at once with EAGAIN.
 *   futex2 COUNT          thread "lt-futex2" makes COUNT calls each of futex_waitv (the first address
 *                         mismatching: EAGAIN), futex_wait (EAGAIN), futex_wake and futex_requeue.
 *   spin SECONDS          thread "lt-spin" burns CPU and makes no futex call (a bystander). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#ifndef SYS_futex_wake
#define SYS_futex_wake 454
#endif
#ifndef SYS_futex_wait
#define SYS_futex_wait 455
#endif
#ifndef SYS_futex_requeue
#define SYS_futex_requeue 456
#endif
#define LT_FUTEX2_SIZE_U32 0x02
#define LT_FUTEX2_PRIVATE 128

struct lt_waitv {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

static void die(const char *what) {
  fprintf(stderr, "futex_scenarios: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* ---- the calls the tests look for in stacks (kept out of line so they are real frames) ---- */

__attribute__((noinline)) long block_on_word(_Atomic uint32_t *word, uint32_t expected) {
  return syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

__attribute__((noinline)) long wake_word(_Atomic uint32_t *word) {
  return syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

__attribute__((noinline)) long fail_wait_on_word(_Atomic uint32_t *word, uint32_t expected) {
  return syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

/* ---- block ---- */

static _Atomic uint32_t lock_word;
static int start_pipe[2], done_pipe[2];
static int rounds, hold_ms;
static _Atomic pid_t waiter_tid;
static pid_t holder_tid;
static long waits, wait_errors, wait_eagain, woken_waits, wakes, woken;
static uint64_t wait_ns_total, wait_ns_max;

static void read_byte(int fd) {
  char c;
  while (read(fd, &c, 1) != 1)
    if (errno != EINTR) die("read");
}

static void write_byte(int fd) {
  char c = 'x';
  while (write(fd, &c, 1) != 1)
    if (errno != EINTR) die("write");
}

static void *waiter_main(void *arg) {
  (void)arg;
  prctl(PR_SET_NAME, "lt-waiter");
  atomic_store(&waiter_tid, gettid_());
  write_byte(done_pipe[1]);
  for (int r = 0; r < rounds; r++) {
    read_byte(start_pipe[0]);
    while (atomic_load(&lock_word) != 0) {
      uint64_t t0 = now_ns();
      long rc = block_on_word(&lock_word, 1);
      uint64_t dt = now_ns() - t0;
      waits++;
      wait_ns_total += dt;
      if (dt > wait_ns_max) wait_ns_max = dt;
      if (rc != 0) {
        wait_errors++;
        if (errno == EAGAIN) wait_eagain++;
      } else {
        woken_waits++;
      }
    }
    write_byte(done_pipe[1]);
  }
  return NULL;
}

/* True when thread `tid` sleeps inside futex(2) on `word`: state S in stat, and syscall 202 with the
 * word as first argument in /proc/self/task/TID/syscall. */
static int asleep_on(pid_t tid, void *word) {
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *paren = strrchr(buf, ')');
  if (!paren || paren[1] != ' ' || paren[2] != 'S') return 0;
  snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
  fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  long nr = -1;
  unsigned long a0 = 0;
  if (sscanf(buf, "%ld %lx", &nr, &a0) != 2) return 0;
  return nr == SYS_futex && a0 == (unsigned long)word;
}

static void *holder_main(void *arg) {
  (void)arg;
  prctl(PR_SET_NAME, "lt-holder");
  holder_tid = gettid_();
  read_byte(done_pipe[0]); /* the waiter runs and published its tid */
  pid_t wt = atomic_load(&waiter_tid);
  for (int r = 0; r < rounds; r++) {
    atomic_store(&lock_word, 1);
    write_byte(start_pipe[1]);
    uint64_t give_up = now_ns() + 10000000000ull;
    while (!asleep_on(wt, &lock_word)) {
      if (now_ns() > give_up) {
        fprintf(stderr, "futex_scenarios: the waiter never fell asleep\n");
        exit(1);
      }
      sleep_ns(100000);
    }
    sleep_ns((uint64_t)hold_ms * 1000000ull);
    atomic_store(&lock_word, 0);
    long n = wake_word(&lock_word);
    wakes++;
    if (n > 0) woken += n;
    read_byte(done_pipe[0]);
  }
  return NULL;
}

static void run_block(FILE *rec, int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: futex_scenarios RECORD block ROUNDS HOLD_MS\n");
    exit(2);
  }
  rounds = atoi(argv[0]);
  hold_ms = atoi(argv[1]);
  if (pipe(start_pipe) != 0 || pipe(done_pipe) != 0) die("pipe");
  pthread_t w, h;
  pthread_create(&w, NULL, waiter_main, NULL);
  pthread_create(&h, NULL, holder_main, NULL);
  pthread_join(h, NULL);
  pthread_join(w, NULL);
  fprintf(rec,
          "{\"mode\": \"block\", \"pid\": %d, \"addr\": \"%#lx\", \"waiter_tid\": %d, \"holder_tid\": %d,\n"
          " \"rounds\": %d, \"hold_ms\": %d, \"waits\": %ld, \"wait_errors\": %ld, \"wait_eagain\": %ld,\n"
          " \"woken_waits\": %ld, \"wait_ns\": %llu, \"max_wait_ns\": %llu, \"wakes\": %ld, \"woken\": %ld}\n",
          getpid(), (unsigned long)&lock_word, atomic_load(&waiter_tid), holder_tid, rounds, hold_ms,
          waits, wait_errors, wait_eagain, woken_waits, (unsigned long long)wait_ns_total,
          (unsigned long long)wait_ns_max, wakes, woken);
}

/* ---- eagain ---- */

static _Atomic uint32_t busy_word;
static int count;
static long calls, errors_eagain, errors_other, successes;
static pid_t worker_tid;

static void *eagain_main(void *arg) {
  (void)arg;
  prctl(PR_SET_NAME, "lt-eagain");
  worker_tid = gettid_();
  atomic_store(&busy_word, 0);
  for (int i = 0; i < count; i++) {
    long rc = fail_wait_on_word(&busy_word, 1);
    calls++;
    if (rc == 0) successes++;
    else if (errno == EAGAIN) errors_eagain++;
    else errors_other++;
  }
  return NULL;
}

static void run_eagain(FILE *rec, int argc, char **argv) {
  if (argc != 1) {
    fprintf(stderr, "usage: futex_scenarios RECORD eagain COUNT\n");
    exit(2);
  }
  count = atoi(argv[0]);
  pthread_t t;
  pthread_create(&t, NULL, eagain_main, NULL);
  pthread_join(t, NULL);
  fprintf(rec,
          "{\"mode\": \"eagain\", \"pid\": %d, \"tid\": %d, \"addr\": \"%#lx\", \"calls\": %ld,\n"
          " \"eagain\": %ld, \"other_errors\": %ld, \"successes\": %ld}\n",
          getpid(), worker_tid, (unsigned long)&busy_word, calls, errors_eagain, errors_other, successes);
}

/* ---- futex2 ---- */

static _Atomic uint32_t v_first, v_second, w_word, k_word, q_src, q_dst;
static long waitv_eagain, wait2_eagain, wake2_ok, requeue_ok, futex2_other;

static void *futex2_main(void *arg) {
  (void)arg;
  prctl(PR_SET_NAME, "lt-futex2");
  worker_tid = gettid_();
  for (int i = 0; i < count; i++) {
    struct lt_waitv wv[2] = {
        {1, (uint64_t)(uintptr_t)&v_first, LT_FUTEX2_SIZE_U32 | LT_FUTEX2_PRIVATE, 0}, /* mismatch */
        {0, (uint64_t)(uintptr_t)&v_second, LT_FUTEX2_SIZE_U32 | LT_FUTEX2_PRIVATE, 0},
    };
    if (syscall(SYS_futex_waitv, wv, 2, 0, NULL, CLOCK_MONOTONIC) == -1 && errno == EAGAIN) waitv_eagain++;
    else futex2_other++;
    if (syscall(SYS_futex_wait, &w_word, 1, (unsigned long)FUTEX_BITSET_MATCH_ANY,
                LT_FUTEX2_SIZE_U32 | LT_FUTEX2_PRIVATE, NULL, CLOCK_MONOTONIC) == -1 && errno == EAGAIN)
      wait2_eagain++;
    else futex2_other++;
    if (syscall(SYS_futex_wake, &k_word, (unsigned long)FUTEX_BITSET_MATCH_ANY, 1,
                LT_FUTEX2_SIZE_U32 | LT_FUTEX2_PRIVATE) == 0)
      wake2_ok++;
    else futex2_other++;
    struct lt_waitv rq[2] = {
        {0, (uint64_t)(uintptr_t)&q_src, LT_FUTEX2_SIZE_U32 | LT_FUTEX2_PRIVATE, 0},
        {0, (uint64_t)(uintptr_t)&q_dst, LT_FUTEX2_SIZE_U32 | LT_FUTEX2_PRIVATE, 0},
    };
    if (syscall(SYS_futex_requeue, rq, 0, 1, 1) == 0) requeue_ok++;
    else futex2_other++;
  }
  return NULL;
}

static void run_futex2(FILE *rec, int argc, char **argv) {
  if (argc != 1) {
    fprintf(stderr, "usage: futex_scenarios RECORD futex2 COUNT\n");
    exit(2);
  }
  count = atoi(argv[0]);
  pthread_t t;
  pthread_create(&t, NULL, futex2_main, NULL);
  pthread_join(t, NULL);
  fprintf(rec,
          "{\"mode\": \"futex2\", \"pid\": %d, \"tid\": %d, \"count\": %d,\n"
          " \"waitv_first\": \"%#lx\", \"waitv_second\": \"%#lx\", \"wait_addr\": \"%#lx\",\n"
          " \"wake_addr\": \"%#lx\", \"requeue_src\": \"%#lx\", \"requeue_dst\": \"%#lx\",\n"
          " \"waitv_eagain\": %ld, \"wait_eagain\": %ld, \"wake_ok\": %ld, \"requeue_ok\": %ld,"
          " \"unexpected\": %ld}\n",
          getpid(), worker_tid, count, (unsigned long)&v_first, (unsigned long)&v_second,
          (unsigned long)&w_word, (unsigned long)&k_word, (unsigned long)&q_src, (unsigned long)&q_dst,
          waitv_eagain, wait2_eagain, wake2_ok, requeue_ok, futex2_other);
}

/* ---- spin ---- */

static double spin_seconds;

static void *spin_main(void *arg) {
  (void)arg;
  prctl(PR_SET_NAME, "lt-spin");
  worker_tid = gettid_();
  uint64_t end = now_ns() + (uint64_t)(spin_seconds * 1e9);
  volatile uint64_t x = 0;
  while (now_ns() < end) x++;
  return NULL;
}

static void run_spin(FILE *rec, int argc, char **argv) {
  if (argc != 1) {
    fprintf(stderr, "usage: futex_scenarios RECORD spin SECONDS\n");
    exit(2);
  }
  spin_seconds = atof(argv[0]);
  pthread_t t;
  pthread_create(&t, NULL, spin_main, NULL);
  pthread_join(t, NULL);
  fprintf(rec, "{\"mode\": \"spin\", \"pid\": %d, \"tid\": %d}\n", getpid(), worker_tid);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: futex_scenarios RECORD block ROUNDS HOLD_MS | eagain COUNT | futex2 COUNT | spin SECONDS\n");
    return 2;
  }
  FILE *rec = fopen(argv[1], "w");
  if (!rec) die(argv[1]);
  /* Wait for the tracer. */
  char line[64];
  if (!fgets(line, sizeof(line), stdin)) {
    fprintf(stderr, "futex_scenarios: no start line on stdin\n");
    return 1;
  }
  const char *mode = argv[2];
  if (strcmp(mode, "block") == 0) run_block(rec, argc - 3, argv + 3);
  else if (strcmp(mode, "eagain") == 0) run_eagain(rec, argc - 3, argv + 3);
  else if (strcmp(mode, "futex2") == 0) run_futex2(rec, argc - 3, argv + 3);
  else if (strcmp(mode, "spin") == 0) run_spin(rec, argc - 3, argv + 3);
  else {
    fprintf(stderr, "futex_scenarios: unknown mode '%s'\n", mode);
    return 2;
  }
  if (fclose(rec) != 0) die("write record");
  return 0;
}
