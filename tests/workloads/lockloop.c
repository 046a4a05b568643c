/* lockloop MODE NTHREADS [SECONDS]: a loop whose speed shows whether a tracer is still attached, for
 * the fault tests and the benchmark. Runs until stdin reaches end of file, or for SECONDS when given
 * (stdin is then not read).
 *
 *   mutex  each thread locks and unlocks one shared pthread mutex (uprobes slow this ~1000x)
 *   futex  each thread calls futex(FUTEX_WAKE) on a word nobody waits on (a cheap system call)
 *   mmap   each thread maps, touches and unmaps one page (kernel mmap_lock traffic)
 *   nested each thread locks one shared mutex and, inside it, a second one (always in that order:
 *          what lockstat --lock-order adds to a lock taken while another is held)
 *
 * Prints "pid P" first, then, every 100 ms, one line "ops N ns T": the loop iterations of all
 * threads in that window and its length in nanoseconds (CLOCK_MONOTONIC). At the end, "total ops N ns
 * T": every iteration of the run and the time from starting the threads to joining them. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16

static pthread_mutex_t loop_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t outer_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint32_t futex_word;
static _Atomic long ops;
static _Atomic int stop;
static int mode;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *worker(void *arg) {
  (void)arg;
  long page = sysconf(_SC_PAGESIZE);
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    for (int i = 0; i < 64; i++) {
      if (mode == 0) {
        pthread_mutex_lock(&loop_lock);
        pthread_mutex_unlock(&loop_lock);
      } else if (mode == 1) {
        syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
      } else if (mode == 2) {
        char *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
          perror("mmap");
          exit(1);
        }
        p[0] = 1;
        munmap(p, (size_t)page);
      } else {
        pthread_mutex_lock(&outer_lock);
        pthread_mutex_lock(&loop_lock);
        pthread_mutex_unlock(&loop_lock);
        pthread_mutex_unlock(&outer_lock);
      }
    }
    atomic_fetch_add_explicit(&ops, 64, memory_order_relaxed);
  }
  return NULL;
}

int main(int argc, char **argv) {
  int n = argc == 3 || argc == 4 ? atoi(argv[2]) : 0;
  double seconds = argc == 4 ? atof(argv[3]) : 0;
  if (n <= 0 || n > MAX_THREADS || (argc == 4 && !(seconds > 0 && seconds <= 3600))) goto usage;
  if (strcmp(argv[1], "mutex") == 0) mode = 0;
  else if (strcmp(argv[1], "futex") == 0) mode = 1;
  else if (strcmp(argv[1], "mmap") == 0) mode = 2;
  else if (strcmp(argv[1], "nested") == 0) mode = 3;
  else goto usage;
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("pid %d\n", (int)getpid());
  pthread_t t[MAX_THREADS];
  uint64_t run_start = now_ns();
  for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, worker, NULL);
  uint64_t window_start = now_ns();
  long last = 0;
  for (;;) {
    /* With SECONDS, fd -1 makes poll a plain 100 ms sleep. */
    struct pollfd pfd = {seconds > 0 ? -1 : 0, POLLIN, 0};
    if (seconds > 0 && now_ns() - run_start >= (uint64_t)(seconds * 1e9)) break;
    if (poll(&pfd, 1, 100) > 0) {
      char buf[256];
      if (read(0, buf, sizeof(buf)) <= 0) break;
    }
    uint64_t now = now_ns();
    if (now - window_start >= 100000000ull) {
      long cur = atomic_load(&ops);
      printf("ops %ld ns %llu\n", cur - last, (unsigned long long)(now - window_start));
      last = cur;
      window_start = now;
    }
  }
  atomic_store(&stop, 1);
  for (int i = 0; i < n; i++) pthread_join(t[i], NULL);
  printf("total ops %ld ns %llu\n", atomic_load(&ops), (unsigned long long)(now_ns() - run_start));
  return 0;
usage:
  fprintf(stderr, "usage: lockloop mutex|futex|mmap|nested NTHREADS(1-%d) [SECONDS (at most 3600)]\n", MAX_THREADS);
  return 2;
}
