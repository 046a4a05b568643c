/* parprimes NTHREADS MAX: the demo workload. Threads count the primes in equal slices of
 * [0, MAX) and add each find to a shared counter under one global mutex, so the counter's lock is
 * contended. Each thread prints "thread N found M primes". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t primes_lock = PTHREAD_MUTEX_INITIALIZER;
static long total_primes;
static long max_value;
static int nthreads;

static int is_prime(long n) {
  if (n < 2) return 0;
  for (long d = 2; d * d <= n; d++)
    if (n % d == 0) return 0;
  return 1;
}

static void count_prime(void) {
  pthread_mutex_lock(&primes_lock);
  total_primes++;
  pthread_mutex_unlock(&primes_lock);
}

static void *worker(void *arg) {
  long id = (long)arg, found = 0;
  long lo = max_value / nthreads * id, hi = id == nthreads - 1 ? max_value : lo + max_value / nthreads;
  for (long n = lo; n < hi; n++) {
    if (is_prime(n)) {
      found++;
      count_prime();
    }
  }
  printf("thread %ld found %ld primes\n", id, found);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3 || (nthreads = atoi(argv[1])) <= 0 || (max_value = atol(argv[2])) <= 0) {
    fprintf(stderr, "usage: parprimes NTHREADS MAX\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t *t = calloc((size_t)nthreads, sizeof(*t));
  for (long i = 0; i < nthreads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("total %ld primes below %ld in %.3f s\n", total_primes, max_value,
         (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  free(t);
  return 0;
}
