/* semwork RECORD: POSIX semaphores used as locks and as signals, with a record of what was done,
 * for lockstat --kinds sem (and --mode contention).
 *
 *   pool_sem  global semaphore of value 1, used as a lock by WORKERS threads: ROUNDS rounds each of
 *             sem_trywait (when it finds no token: a failed trywait, then sem_wait), a hold of
 *             HOLD_US, and sem_post by the same thread. Each worker records its acquisitions, its
 *             failed trywaits, its wait (around the call that acquired) and its hold (from that
 *             call's return to the sem_post call).
 *   gate      heap semaphore (sem_init in make_gate) of value 0, used as a signal between the main
 *             thread and a consumer thread:
 *               - HANDOFFS rounds: the consumer blocks in sem_wait; the main thread waits until it is
 *                 asleep in the kernel on the semaphore, then posts it. The consumer never posts:
 *                 each of its acquisitions is closed by another thread's post (a handoff).
 *               - TIMEOUTS rounds of sem_timedwait (CLOCK_REALTIME) and TIMEOUTS of sem_clockwait
 *                 (CLOCK_MONOTONIC), each TIMEOUT_MS ahead: nobody posts, each ends in ETIMEDOUT.
 *               - INTERRUPTS rounds of sem_timedwait 60 s ahead, interrupted once the consumer is
 *                 asleep by a signal whose handler has no SA_RESTART: each ends in EINTR.
 *             Every such wait sleeps in the kernel exactly once (the post or the signal comes only
 *             once the consumer sleeps; a timed wait sleeps until its deadline).
 *
 * Coordination uses atomics and short sleeps only (no semaphore or futex of its own). RECORD gets
 * JSON: the pid, both addresses, each worker's counts and times, the consumer's and the main
 * thread's. Any unexpected result (a wait that does not time out, a wrong errno) exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 3
#define ROUNDS 60
#define HOLD_US 300
#define HANDOFFS 12
#define TIMEOUTS 4
#define TIMEOUT_MS 3
#define INTERRUPTS 2

sem_t pool_sem;
static sem_t *gate;

struct worker_rec {
  int tid;
  int acquisitions, failed_trywaits;
  uint64_t wait_ns, hold_ns;
};
static struct worker_rec workers[WORKERS];

static struct {
  int tid;
  _Atomic int acquisitions, interrupted; /* read by the main thread too */
  int timeouts;
  uint64_t acquire_wait_ns, timeout_wait_ns;
} consumer;

static _Atomic int consumer_tid;
static _Atomic int handoff_round = -1; /* the round the consumer is in (asleep or about to be) */
static _Atomic int interrupt_round = -1;

static uint64_t clock_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

static void die(const char *what) {
  fprintf(stderr, "semwork: %s\n", what);
  exit(1);
}

static struct timespec ahead(clockid_t c, uint64_t ns) {
  uint64_t t = clock_ns(c) + ns;
  struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
  return ts;
}

/* Whether thread `tid` sleeps in futex() on a word inside `obj`. */
static int asleep_on(int tid, const void *obj, size_t size) {
  char path[64], buf[256];
  uintptr_t lo = (uintptr_t)obj, hi = lo + size;
  snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
  FILE *f = fopen(path, "r");
  if (!f) die("cannot read /proc/self/task/TID/syscall");
  long nr = -1;
  unsigned long addr = 0;
  int n = fscanf(f, "%ld 0x%lx", &nr, &addr);
  fclose(f);
  if (n != 2 || nr != SYS_futex || addr < lo || addr >= hi) return 0;
  snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
  f = fopen(path, "r");
  if (!f) die("cannot read /proc/self/task/TID/stat");
  size_t len = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[len] = 0;
  char *p = strrchr(buf, ')');
  return p && p[1] == ' ' && p[2] == 'S';
}

static void wait_until_asleep(int tid, const void *obj, size_t size) {
  uint64_t deadline = now_ns() + 20ull * 1000000000ull;
  while (!asleep_on(tid, obj, size)) {
    if (now_ns() > deadline) die("the consumer never slept on the semaphore");
    sleep_us(100);
  }
}

__attribute__((noinline)) static sem_t *make_gate(void) {
  sem_t *s = malloc(sizeof(*s));
  if (!s || sem_init(s, 0, 0) != 0) die("cannot make the gate semaphore");
  return s;
}

/* ---- pool_sem: a semaphore used as a lock ---- */

__attribute__((noinline)) static void use_pool(struct worker_rec *w) {
  uint64_t t0 = now_ns();
  int rc = sem_trywait(&pool_sem);
  if (rc != 0) {
    if (errno != EAGAIN) die("sem_trywait failed without EAGAIN");
    w->failed_trywaits++;
    t0 = now_ns();
    while ((rc = sem_wait(&pool_sem)) != 0)
      if (errno != EINTR) die("sem_wait failed");
  }
  uint64_t t1 = now_ns();
  w->acquisitions++;
  w->wait_ns += t1 - t0;
  sleep_us(HOLD_US);
  uint64_t t2 = now_ns();
  w->hold_ns += t2 - t1;
  if (sem_post(&pool_sem) != 0) die("sem_post failed");
}

static void *worker_main(void *arg) {
  struct worker_rec *w = arg;
  w->tid = (int)syscall(SYS_gettid);
  for (int i = 0; i < ROUNDS; i++) {
    use_pool(w);
    sleep_us(50 + 37 * (i % 5)); /* let the others in */
  }
  return NULL;
}

/* ---- gate: a semaphore used as a signal ---- */

static void on_signal(int sig) { (void)sig; }

__attribute__((noinline)) static void take_handoff(int round) {
  atomic_store(&handoff_round, round);
  uint64_t t0 = now_ns();
  while (sem_wait(gate) != 0)
    if (errno != EINTR) die("sem_wait on the gate failed");
  consumer.acquire_wait_ns += now_ns() - t0;
  consumer.acquisitions++;
}

__attribute__((noinline)) static void time_out(int clockwait) {
  struct timespec dl = ahead(clockwait ? CLOCK_MONOTONIC : CLOCK_REALTIME, TIMEOUT_MS * 1000000ull);
  uint64_t t0 = now_ns();
  int rc = clockwait ? sem_clockwait(gate, CLOCK_MONOTONIC, &dl) : sem_timedwait(gate, &dl);
  uint64_t t1 = now_ns();
  if (rc == 0 || errno != ETIMEDOUT) die("a timed wait on the gate did not time out");
  consumer.timeouts++;
  consumer.timeout_wait_ns += t1 - t0;
}

__attribute__((noinline)) static void be_interrupted(int round) {
  struct timespec dl = ahead(CLOCK_REALTIME, 60ull * 1000000000ull);
  atomic_store(&interrupt_round, round);
  int rc = sem_timedwait(gate, &dl);
  if (rc == 0 || errno != EINTR) die("an interrupted wait on the gate did not fail with EINTR");
  consumer.interrupted++;
}

static void *consumer_main(void *arg) {
  (void)arg;
  consumer.tid = (int)syscall(SYS_gettid);
  atomic_store(&consumer_tid, consumer.tid);
  for (int i = 0; i < HANDOFFS; i++) {
    take_handoff(i);
    while (atomic_load(&handoff_round) == i) sleep_us(50); /* the main thread saw it through */
  }
  for (int i = 0; i < TIMEOUTS; i++) {
    time_out(0);
    time_out(1);
  }
  for (int i = 0; i < INTERRUPTS; i++) {
    be_interrupted(i);
    while (atomic_load(&interrupt_round) == i) sleep_us(50);
  }
  return NULL;
}

__attribute__((noinline)) static void hand_off(void) {
  if (sem_post(gate) != 0) die("sem_post on the gate failed");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: semwork RECORD\n");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal; /* no SA_RESTART: an interrupted sem_timedwait fails with EINTR */
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) die("sigaction");
  if (sem_init(&pool_sem, 0, 1) != 0) die("sem_init");
  gate = make_gate();

  pthread_t wt[WORKERS], ct;
  for (int i = 0; i < WORKERS; i++)
    if (pthread_create(&wt[i], NULL, worker_main, &workers[i]) != 0) die("pthread_create");
  if (pthread_create(&ct, NULL, consumer_main, NULL) != 0) die("pthread_create");
  while (atomic_load(&consumer_tid) == 0) sleep_us(100);
  int ctid = atomic_load(&consumer_tid);

  int handoffs = 0;
  for (int i = 0; i < HANDOFFS; i++) {
    while (atomic_load(&handoff_round) != i) sleep_us(50);
    wait_until_asleep(ctid, gate, sizeof(*gate));
    sleep_us(1000);
    hand_off();
    handoffs++;
    while (consumer.acquisitions <= i) sleep_us(50); /* written by the consumer before the next round */
    atomic_store(&handoff_round, -1);
  }
  for (int i = 0; i < INTERRUPTS; i++) {
    while (atomic_load(&interrupt_round) != i) sleep_us(50);
    wait_until_asleep(ctid, gate, sizeof(*gate));
    pthread_kill(ct, SIGUSR1);
    while (consumer.interrupted <= i) sleep_us(50);
    atomic_store(&interrupt_round, -1);
  }
  for (int i = 0; i < WORKERS; i++) pthread_join(wt[i], NULL);
  pthread_join(ct, NULL);

  FILE *f = fopen(argv[1], "w");
  if (!f) die("cannot write the record");
  fprintf(f, "{\"pid\": %d, \"sems\": {\"pool_sem\": \"%p\", \"gate\": \"%p\"},\n", (int)getpid(), (void *)&pool_sem,
          (void *)gate);
  fprintf(f, " \"hold_us\": %d, \"workers\": [", HOLD_US);
  for (int i = 0; i < WORKERS; i++)
    fprintf(f, "%s{\"tid\": %d, \"acquisitions\": %d, \"failed_trywaits\": %d, \"wait_ns\": %llu, \"hold_ns\": %llu}",
            i ? ", " : "", workers[i].tid, workers[i].acquisitions, workers[i].failed_trywaits,
            (unsigned long long)workers[i].wait_ns, (unsigned long long)workers[i].hold_ns);
  fprintf(f, "],\n \"consumer\": {\"tid\": %d, \"acquisitions\": %d, \"acquire_wait_ns\": %llu, \"timeouts\": %d, "
             "\"timeout_wait_ns\": %llu, \"interrupted\": %d},\n",
          consumer.tid, atomic_load(&consumer.acquisitions), (unsigned long long)consumer.acquire_wait_ns,
          consumer.timeouts, (unsigned long long)consumer.timeout_wait_ns, atomic_load(&consumer.interrupted));
  fprintf(f, " \"producer\": {\"tid\": %d, \"handoffs\": %d}}\n", (int)syscall(SYS_gettid), handoffs);
  fclose(f);
  return 0;
}
