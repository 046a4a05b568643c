/* mmap_contend NTHREADS SECONDS RECORD: kernel lock contention on one process's mmap_lock (an
 * rw_semaphore). Every thread maps a small anonymous region, touches its pages, changes its
 * protection and unmaps it, in a loop, for SECONDS: mmap, mprotect and munmap take mmap_lock for
 * writing, and mincore for reading, so the threads queue on it.
 *
 * RECORD is written when all threads run (then renamed into place, so a reader never sees half of
 * it) and rewritten at the end with the totals:
 *   pid P
 *   tid T        (one line per worker thread)
 *   start_ns S   (CLOCK_MONOTONIC when the workers were released)
 *   end_ns E     (when the last worker stopped; final record only)
 *   ops T N      (loop iterations of worker T; final record only) */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define REGION_PAGES 16

static int nthreads;
static double seconds;
static const char *record_path;
static pid_t tids[MAX_THREADS];
static long ops[MAX_THREADS];
static unsigned long long start_ns, end_ns;
static pthread_barrier_t ready, go;

static unsigned long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static void write_record(int final) {
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", record_path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    perror(tmp);
    exit(1);
  }
  fprintf(f, "pid %d\n", (int)getpid());
  for (int i = 0; i < nthreads; i++) fprintf(f, "tid %d\n", (int)tids[i]);
  fprintf(f, "start_ns %llu\n", start_ns);
  if (final) {
    fprintf(f, "end_ns %llu\n", end_ns);
    for (int i = 0; i < nthreads; i++) fprintf(f, "ops %d %ld\n", (int)tids[i], ops[i]);
  }
  if (fclose(f) != 0 || rename(tmp, record_path) != 0) {
    perror(record_path);
    exit(1);
  }
}

static void *worker(void *arg) {
  long id = (long)arg;
  long page = sysconf(_SC_PAGESIZE);
  size_t len = (size_t)page * REGION_PAGES;
  unsigned char vec[REGION_PAGES];
  tids[id] = gettid();
  pthread_barrier_wait(&ready);
  pthread_barrier_wait(&go);
  unsigned long long stop = start_ns + (unsigned long long)(seconds * 1e9);
  long n = 0;
  while (now_ns() < stop) {
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      exit(1);
    }
    for (size_t off = 0; off < len; off += (size_t)page) p[off] = (char)n;
    if (mprotect(p, len, PROT_READ) != 0 || mincore(p, len, vec) != 0 || munmap(p, len) != 0) {
      perror("mprotect/mincore/munmap");
      exit(1);
    }
    n++;
  }
  ops[id] = n;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4 || (nthreads = atoi(argv[1])) <= 0 || nthreads > MAX_THREADS || (seconds = atof(argv[2])) <= 0) {
    fprintf(stderr, "usage: mmap_contend NTHREADS(1-%d) SECONDS RECORD\n", MAX_THREADS);
    return 2;
  }
  record_path = argv[3];
  pthread_t t[MAX_THREADS];
  pthread_barrier_init(&ready, NULL, (unsigned)nthreads + 1);
  pthread_barrier_init(&go, NULL, (unsigned)nthreads + 1);
  for (long i = 0; i < nthreads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  pthread_barrier_wait(&ready);
  start_ns = now_ns();
  write_record(0);
  pthread_barrier_wait(&go);
  for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
  end_ns = now_ns();
  write_record(1);
  long total = 0;
  for (int i = 0; i < nthreads; i++) total += ops[i];
  printf("%d threads, %ld iterations in %.1f s\n", nthreads, total, seconds);
  return 0;
}
