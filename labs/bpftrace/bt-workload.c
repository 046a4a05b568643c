/* bt-workload MODE ARGS...: small programs whose behaviour the bpftrace lab's scripts observe.
 * Each mode does a known amount of work and, with BT_RECORD=FILE, writes what it did there when it
 * has finished (one "key value..." line per fact), so that a script's output can be checked.
 *
 *   syscalls N PHASES GAP_MS   PHASES times: N getppid() calls, then sleep GAP_MS ms
 *   threads N                  3 threads named bt-worker-1..3; thread i makes i*N getppid() calls
 *   sleeps MS...               one nanosleep per argument, each from the function nap()
 *   spin MS                    burn the CPU for MS ms
 *   mmap N                     N mmap/munmap pairs: sizes 4..32 KiB in turn, 3 of 4 MAP_SHARED
 *   open N FILE                open FILE N times (and close it)
 *   cond N M                   N timed condition waits through pthread_cond_timedwait's current
 *                              symbol version, M through its old one (GLIBC_2.2.5)
 *   create N                   start and join N threads
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static FILE *record;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int usage(void) {
  fprintf(stderr, "usage: bt-workload syscalls N PHASES GAP_MS | threads N | sleeps MS... | spin MS |\n"
                  "                   mmap N | open N FILE | cond N M | create N\n");
  return 2;
}

/* ---- syscalls, threads ---- */

static void getppid_n(long n) {
  for (long i = 0; i < n; i++) syscall(SYS_getppid);
}

static long per_thread;

static void *worker(void *arg) {
  long i = (long)arg;
  char name[16];
  snprintf(name, sizeof(name), "bt-worker-%ld", i);
  prctl(PR_SET_NAME, name);
  getppid_n(i * per_thread);
  if (record) fprintf(record, "thread %d %s %ld\n", gettid(), name, i * per_thread);
  return NULL;
}

/* ---- sleeps ---- */

/* Sleeps with the syscall made right here (not through libc's nanosleep, which keeps no frame
 * pointer): a user stack taken at the syscall then starts in nap() itself. */
static __attribute__((noinline)) void nap(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  long ret;
  long long t0 = now_ns();
  register long r10 __asm__("r10") = 0;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "0"((long)SYS_clock_nanosleep), "D"((long)CLOCK_MONOTONIC), "S"(0L), "d"(&ts), "r"(r10)
                   : "rcx", "r11", "memory");
  if (record) fprintf(record, "sleep %ld %lld\n", ms * 1000000L, now_ns() - t0);
}

/* ---- cond ---- */

extern int old_timedwait(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
__asm__(".symver old_timedwait, pthread_cond_timedwait@GLIBC_2.2.5");

static void timed_waits(int n, int old) {
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t c = PTHREAD_COND_INITIALIZER;
  pthread_mutex_lock(&m);
  for (int i = 0; i < n; i++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    if (old)
      old_timedwait(&c, &m, &ts);
    else
      pthread_cond_timedwait(&c, &m, &ts);
  }
  pthread_mutex_unlock(&m);
}

static void *idle_thread(void *arg) { return arg; }

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  const char *path = getenv("BT_RECORD");
  if (path && !(record = fopen(path, "w"))) {
    perror(path);
    return 1;
  }
  if (record) fprintf(record, "pid %d\n", getpid());
  const char *mode = argv[1];

  if (!strcmp(mode, "syscalls") && argc == 5) {
    long n = atol(argv[2]), phases = atol(argv[3]), gap = atol(argv[4]);
    for (long p = 0; p < phases; p++) {
      getppid_n(n);
      sleep_ms(gap);
    }
    if (record) fprintf(record, "getppid %ld\n", n * phases);
  } else if (!strcmp(mode, "threads") && argc == 3) {
    per_thread = atol(argv[2]);
    pthread_t t[3];
    for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  } else if (!strcmp(mode, "sleeps") && argc >= 3) {
    for (int i = 2; i < argc; i++) nap(atol(argv[i]));
    poll(NULL, 0, 200); /* stay alive while the last stack is named (not a clock_nanosleep) */
  } else if (!strcmp(mode, "spin") && argc == 3) {
    long long end = now_ns() + atol(argv[2]) * 1000000LL;
    volatile unsigned long x = 0;
    while (now_ns() < end) x++;
  } else if (!strcmp(mode, "mmap") && argc == 3) {
    long n = atol(argv[2]), shared = 0, priv = 0, size_count[9] = {0};
    for (long i = 0; i < n; i++) {
      size_t kib = 4 * (size_t)(i % 8 + 1);
      int flags = (i % 4 == 3 ? MAP_PRIVATE : MAP_SHARED) | MAP_ANONYMOUS;
      void *p = mmap(NULL, kib * 1024, PROT_READ | PROT_WRITE, flags, -1, 0);
      if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
      }
      munmap(p, kib * 1024);
      size_count[kib / 4]++;
      if (flags & MAP_SHARED)
        shared++;
      else
        priv++;
    }
    if (record) {
      fprintf(record, "shared %ld\nprivate %ld\n", shared, priv);
      for (int k = 1; k <= 8; k++) fprintf(record, "size %d %ld\n", 4 * k, size_count[k]);
    }
  } else if (!strcmp(mode, "open") && argc == 4) {
    long n = atol(argv[2]);
    for (long i = 0; i < n; i++) {
      int fd = open(argv[3], O_RDONLY | O_CREAT, 0644);
      if (fd < 0) {
        perror(argv[3]);
        return 1;
      }
      close(fd);
    }
    if (record) fprintf(record, "open %ld %s\n", n, argv[3]);
  } else if (!strcmp(mode, "cond") && argc == 4) {
    int n = atoi(argv[2]), m = atoi(argv[3]);
    timed_waits(n, 0);
    timed_waits(m, 1);
    if (record) fprintf(record, "timedwait %d %d\n", n, m);
  } else if (!strcmp(mode, "create") && argc == 3) {
    long n = atol(argv[2]);
    for (long i = 0; i < n; i++) {
      pthread_t t;
      pthread_create(&t, NULL, idle_thread, NULL);
      pthread_join(t, NULL);
    }
    if (record) fprintf(record, "create %ld\n", n);
  } else {
    return usage();
  }
  if (record) fclose(record);
  return 0;
}
