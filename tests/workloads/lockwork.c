/* lockwork: pthread lock scenarios with ground truth, for lockstat's integration tests.
 *
 *   lockwork RECORD_FILE [--wait-stdin] [--idle]
 *
 * Runs every scenario below one after the other and writes what it did (thread ids, lock
 * addresses, counts, and the wait and hold times it measured itself) to RECORD_FILE as JSON.
 * --wait-stdin: print the pid, then wait for a line on stdin before starting (for "-p" tracing).
 * --idle: instead of the scenarios, lock and unlock `idle_lock` every 10 ms until stdin closes.
 *
 * Scenarios:
 *   contend   3 threads x 150 acquisitions of a global mutex (orders_lock, statically
 *             initialised) and of a heap mutex initialised by make_account_lock(); each hold busy
 *             for ~300 us. Lock calls come from place_order() and update_account().
 *   trylock   main holds trylock_lock; a worker's 40 trylocks fail with EBUSY; then 10 succeed.
 *   condvar   a consumer holding cond_lock waits 20 times on a condition variable (~2 ms each)
 *             between 400 us holds; its hold time excludes those waits.
 *   rwlock    2 readers x 60 read locks and 1 writer x 30 write locks on table_lock.
 *   recursive a recursive mutex locked 3 deep, 50 times: 150 lock calls, 50 outermost holds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CONTEND_THREADS 3
#define CONTEND_ITERS 150
#define HOLD_NS 300000ULL

static pthread_mutex_t orders_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t *account_lock;
static pthread_mutex_t trylock_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cond_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t recursive_lock;
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void busy(uint64_t ns) {
  uint64_t end = now_ns() + ns;
  while (now_ns() < end) {
  }
}

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

struct contend_rec {
  pid_t tid;
  uint64_t orders_wait, orders_hold, account_wait, account_hold;
  int orders_acq, account_acq;
};

static __attribute__((noinline)) pthread_mutex_t *make_account_lock(void) {
  pthread_mutex_t *m = malloc(sizeof(*m));
  pthread_mutex_init(m, NULL);
  return m;
}

/* Locks `m`, holds it for HOLD_NS, unlocks; adds the measured wait and hold. */
static __attribute__((noinline)) void timed_section(pthread_mutex_t *m, uint64_t *wait, uint64_t *hold) {
  uint64_t t0 = now_ns();
  pthread_mutex_lock(m);
  uint64_t t1 = now_ns();
  busy(HOLD_NS);
  uint64_t t2 = now_ns();
  pthread_mutex_unlock(m);
  *wait += t1 - t0;
  *hold += t2 - t1;
}

static __attribute__((noinline)) void place_order(struct contend_rec *r) {
  uint64_t t0 = now_ns();
  pthread_mutex_lock(&orders_lock);
  uint64_t t1 = now_ns();
  busy(HOLD_NS);
  uint64_t t2 = now_ns();
  pthread_mutex_unlock(&orders_lock);
  r->orders_wait += t1 - t0;
  r->orders_hold += t2 - t1;
  r->orders_acq++;
}

static __attribute__((noinline)) void update_account(struct contend_rec *r) {
  timed_section(account_lock, &r->account_wait, &r->account_hold);
  r->account_acq++;
}

static void *contend_worker(void *arg) {
  struct contend_rec *r = arg;
  r->tid = gettid_();
  for (int i = 0; i < CONTEND_ITERS; i++) {
    place_order(r);
    update_account(r);
  }
  return NULL;
}

/* trylock: main holds the lock while the worker fails, then releases it. */
static pthread_barrier_t try_barrier;
static int try_failed, try_ok;
static pid_t try_tid;

static void *try_worker(void *arg) {
  (void)arg;
  try_tid = gettid_();
  pthread_barrier_wait(&try_barrier); /* main holds trylock_lock now */
  for (int i = 0; i < 40; i++)
    if (pthread_mutex_trylock(&trylock_lock) == EBUSY) try_failed++;
  pthread_barrier_wait(&try_barrier);
  pthread_barrier_wait(&try_barrier); /* main released it */
  for (int i = 0; i < 10; i++) {
    if (pthread_mutex_trylock(&trylock_lock) == 0) {
      try_ok++;
      pthread_mutex_unlock(&trylock_lock);
    }
  }
  return NULL;
}

/* condvar: the consumer holds cond_lock except inside pthread_cond_wait. */
static int cond_turn;  /* 1: producer may signal */
static int cond_waits;
static uint64_t cond_hold_ns, cond_wait_ns;
static pid_t cond_tid;

static void *cond_producer(void *arg) {
  (void)arg;
  for (int i = 0; i < 20; i++) {
    pthread_mutex_lock(&cond_lock);
    while (cond_turn != 1) {
      pthread_mutex_unlock(&cond_lock);
      usleep(200);
      pthread_mutex_lock(&cond_lock);
    }
    pthread_mutex_unlock(&cond_lock);
    usleep(2000); /* the consumer sits in pthread_cond_wait meanwhile, the mutex released */
    pthread_mutex_lock(&cond_lock);
    cond_turn = 0;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&cond_lock);
  }
  return NULL;
}

static void cond_consumer(void) {
  cond_tid = gettid_();
  pthread_t p;
  pthread_create(&p, NULL, cond_producer, NULL);
  pthread_mutex_lock(&cond_lock);
  uint64_t seg = now_ns();
  for (int i = 0; i < 20; i++) {
    busy(400000);
    cond_turn = 1;
    uint64_t w0 = now_ns();
    cond_hold_ns += w0 - seg;
    while (cond_turn == 1) pthread_cond_wait(&cond, &cond_lock);
    seg = now_ns();
    cond_wait_ns += seg - w0;
    cond_waits++;
  }
  busy(400000);
  cond_hold_ns += now_ns() - seg;
  pthread_mutex_unlock(&cond_lock);
  pthread_join(p, NULL);
}

/* rwlock */
static pid_t reader_tids[2], writer_tid;
static int reads[2], writes;

static void *reader(void *arg) {
  long i = (long)arg;
  reader_tids[i] = gettid_();
  for (int k = 0; k < 60; k++) {
    pthread_rwlock_rdlock(&table_lock);
    busy(50000);
    pthread_rwlock_unlock(&table_lock);
    reads[i]++;
  }
  return NULL;
}

static void *writer(void *arg) {
  (void)arg;
  writer_tid = gettid_();
  for (int k = 0; k < 30; k++) {
    pthread_rwlock_wrlock(&table_lock);
    busy(100000);
    pthread_rwlock_unlock(&table_lock);
    writes++;
  }
  return NULL;
}

/* recursive */
static int rec_calls, rec_holds;
static uint64_t rec_hold_ns;

static void recursive_scenario(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&recursive_lock, &a);
  for (int i = 0; i < 50; i++) {
    pthread_mutex_lock(&recursive_lock);
    uint64_t t0 = now_ns();
    pthread_mutex_lock(&recursive_lock);
    pthread_mutex_lock(&recursive_lock);
    busy(400000);
    pthread_mutex_unlock(&recursive_lock);
    pthread_mutex_unlock(&recursive_lock);
    busy(400000);
    uint64_t t1 = now_ns();
    pthread_mutex_unlock(&recursive_lock);
    rec_calls += 3;
    rec_holds++;
    rec_hold_ns += t1 - t0;
  }
}

static void idle(void) {
  /* Runs until stdin closes; a helper thread watches stdin. */
  for (;;) {
    pthread_mutex_lock(&idle_lock);
    pthread_mutex_unlock(&idle_lock);
    usleep(10000);
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(0, &fds);
    struct timeval tv = {0, 0};
    if (select(1, &fds, NULL, NULL, &tv) > 0) {
      char buf[64];
      if (read(0, buf, sizeof(buf)) <= 0) return;
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: lockwork RECORD_FILE [--wait-stdin] [--idle]\n");
    return 2;
  }
  int wait_stdin = 0, idle_mode = 0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--wait-stdin") == 0) wait_stdin = 1;
    else if (strcmp(argv[i], "--idle") == 0) idle_mode = 1;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (wait_stdin || idle_mode) {
    printf("pid %d\n", getpid());
    if (wait_stdin) {
      char line[64];
      if (!fgets(line, sizeof(line), stdin)) return 1;
    }
  }
  if (idle_mode) {
    idle();
    return 0;
  }

  account_lock = make_account_lock();
  struct contend_rec recs[CONTEND_THREADS];
  memset(recs, 0, sizeof(recs));
  pthread_t th[CONTEND_THREADS];
  for (int i = 0; i < CONTEND_THREADS; i++) pthread_create(&th[i], NULL, contend_worker, &recs[i]);
  for (int i = 0; i < CONTEND_THREADS; i++) pthread_join(th[i], NULL);

  pthread_barrier_init(&try_barrier, NULL, 2);
  pthread_t tw;
  pthread_create(&tw, NULL, try_worker, NULL);
  pthread_mutex_lock(&trylock_lock);
  pthread_barrier_wait(&try_barrier);
  pthread_barrier_wait(&try_barrier);
  pthread_mutex_unlock(&trylock_lock);
  pthread_barrier_wait(&try_barrier);
  pthread_join(tw, NULL);

  cond_consumer();

  pthread_t rd[2], wr;
  for (long i = 0; i < 2; i++) pthread_create(&rd[i], NULL, reader, (void *)i);
  pthread_create(&wr, NULL, writer, NULL);
  for (int i = 0; i < 2; i++) pthread_join(rd[i], NULL);
  pthread_join(wr, NULL);

  recursive_scenario();

  FILE *f = fopen(argv[1], "w");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  fprintf(f, "{\n \"pid\": %d,\n \"main_tid\": %d,\n", getpid(), gettid_());
  fprintf(f, " \"locks\": {\"orders_lock\": \"%p\", \"account_lock\": \"%p\", \"trylock_lock\": \"%p\","
             " \"cond_lock\": \"%p\", \"table_lock\": \"%p\", \"recursive_lock\": \"%p\"},\n",
          (void *)&orders_lock, (void *)account_lock, (void *)&trylock_lock, (void *)&cond_lock,
          (void *)&table_lock, (void *)&recursive_lock);
  fprintf(f, " \"contend\": [\n");
  for (int i = 0; i < CONTEND_THREADS; i++)
    fprintf(f,
            "  {\"tid\": %d, \"orders_acquisitions\": %d, \"orders_wait_ns\": %llu, \"orders_hold_ns\": %llu,"
            " \"account_acquisitions\": %d, \"account_wait_ns\": %llu, \"account_hold_ns\": %llu}%s\n",
            recs[i].tid, recs[i].orders_acq, (unsigned long long)recs[i].orders_wait,
            (unsigned long long)recs[i].orders_hold, recs[i].account_acq,
            (unsigned long long)recs[i].account_wait, (unsigned long long)recs[i].account_hold,
            i + 1 < CONTEND_THREADS ? "," : "");
  fprintf(f, " ],\n");
  fprintf(f, " \"trylock\": {\"tid\": %d, \"failed\": %d, \"succeeded\": %d},\n", try_tid, try_failed, try_ok);
  fprintf(f, " \"condvar\": {\"tid\": %d, \"waits\": %d, \"hold_ns\": %llu, \"wait_ns\": %llu},\n", cond_tid,
          cond_waits, (unsigned long long)cond_hold_ns, (unsigned long long)cond_wait_ns);
  fprintf(f, " \"rwlock\": {\"reader_tids\": [%d, %d], \"reads\": [%d, %d], \"writer_tid\": %d, \"writes\": %d},\n",
          reader_tids[0], reader_tids[1], reads[0], reads[1], writer_tid, writes);
  fprintf(f, " \"recursive\": {\"lock_calls\": %d, \"holds\": %d, \"hold_ns\": %llu}\n}\n", rec_calls, rec_holds,
          (unsigned long long)rec_hold_ns);
  fclose(f);
  return 0;
}
