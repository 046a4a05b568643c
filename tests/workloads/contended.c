/* contended RECORD [wait]: contended waits whose waiter, holder and duration the program records itself,
 * for lockstat --mode contention.
 *
 * Every contended wait is made certain: the thread that holds the lock (or will signal) waits until
 * the other thread is asleep in the kernel on that very futex word (/proc/self/task/TID/syscall
 * names futex on the word, and its state is S), then holds on for a known time before releasing.
 * So each round is exactly one futex wait that sleeps and one wake that ends it.
 *
 *   hot_lock    global mutex; holder thread H keeps it HOT_HOLD_MS while waiter A or B (in turn)
 *               blocks on it, HOT_ROUNDS rounds; H releases it in hold_and_release()
 *   heap_lock   mutex from pthread_mutex_init; holder thread H2, waiter C, HEAP_ROUNDS rounds
 *   quiet_lock  global mutex taken QUIET_OPS times by one thread alone: never contended
 *   cv          global condition variable (with cv_lock): waiter D waits CV_ROUNDS times, signalled
 *               (outside cv_lock) once it sleeps
 *   heap_cv     condition variable from pthread_cond_init: the same, HEAP_CV_ROUNDS times
 *   gate_sem    global semaphore: waiter D blocks in sem_wait SEM_ROUNDS times until posted
 *
 * With "wait", it prints "pid N" and waits for a line on stdin before starting (so that a tracer can
 * attach to it first).
 *
 * Coordination between the threads uses atomics and short sleeps only (no futex of its own).
 * RECORD gets JSON: the pid, every lock's address, each contended wait (lock, waiter, holder,
 * wait_ns measured around the lock call), and the condvar, semaphore and quiet counts. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HOT_ROUNDS 20
#define HOT_HOLD_MS 5
#define HEAP_ROUNDS 10
#define HEAP_HOLD_MS 3
#define QUIET_OPS 1000
#define CV_ROUNDS 10
#define HEAP_CV_ROUNDS 5
#define SEM_ROUNDS 5
#define MAX_WAITS (HOT_ROUNDS + HEAP_ROUNDS)

pthread_mutex_t hot_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t quiet_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t cv_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
sem_t gate_sem;
static pthread_mutex_t *heap_lock;
static pthread_cond_t *heap_cv;

struct wait_rec {
  const char *lock;
  int waiter, holder;
  uint64_t wait_ns;
};
static struct wait_rec waits[MAX_WAITS];
static int nwaits;

/* The handshake of one round: the holder publishes the round, the waiter says it is about to
 * wait (its tid) and when it is done. */
static _Atomic int round_no = -1;
static _Atomic int waiter_tid;
static _Atomic int done_round = -1;
static _Atomic int cv_flag;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&ts, NULL);
}

static int gettid_(void) { return (int)syscall(SYS_gettid); }

static void die(const char *what) {
  fprintf(stderr, "contended: %s\n", what);
  exit(1);
}

/* Whether thread `tid` sleeps in futex() on a word in [lo, hi). */
static int asleep_on(int tid, uintptr_t lo, uintptr_t hi) {
  char path[64], buf[256];
  for (int pass = 0; pass < 2; pass++) {
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
    FILE *f = fopen(path, "r");
    if (!f) die("cannot read /proc/self/task/TID/syscall");
    long nr = -1;
    unsigned long addr = 0;
    int n = fscanf(f, "%ld 0x%lx", &nr, &addr);
    fclose(f);
    if (n != 2 || nr != SYS_futex || addr < lo || addr >= hi) return 0;
    if (pass == 1) break;
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
    f = fopen(path, "r");
    if (!f) die("cannot read /proc/self/task/TID/stat");
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = 0;
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || p[2] != 'S') return 0;
  }
  return 1;
}

static void wait_until_asleep(int tid, const void *obj, size_t size) {
  uint64_t deadline = now_ns() + 20ull * 1000000000ull;
  while (!asleep_on(tid, (uintptr_t)obj, (uintptr_t)obj + size)) {
    if (now_ns() > deadline) die("the waiter never slept on the lock");
    sleep_us(100);
  }
}

static int next_waiter(void) {
  int tid;
  while ((tid = atomic_load(&waiter_tid)) == 0) sleep_us(50);
  atomic_store(&waiter_tid, 0);
  return tid;
}

static void wait_done(int r) {
  while (atomic_load(&done_round) != r) sleep_us(50);
}

/* ---- mutexes: the holder's side ---- */

/* The lock helpers are real calls (no tail call), so that the stacks show them and their callers:
 * release_lock then hold_and_release for the release, take_lock then wait_round for the wait. */
__attribute__((noinline)) static void release_lock(pthread_mutex_t *m) {
  pthread_mutex_unlock(m);
  __asm__ volatile("" ::: "memory");
}

/* Takes the lock, waits until this round's waiter sleeps on it, keeps it hold_ms, releases it. */
__attribute__((noinline)) static void hold_and_release(pthread_mutex_t *m, int r, int hold_ms) {
  pthread_mutex_lock(m);
  atomic_store(&round_no, r);
  int tid = next_waiter();
  wait_until_asleep(tid, m, sizeof(*m));
  sleep_us(hold_ms * 1000L);
  release_lock(m);
  __asm__ volatile("" ::: "memory");  /* no tail call: this frame stays on the stack */
}

struct role {
  pthread_mutex_t *lock;
  const char *name;
  int first, rounds, step, hold_ms;  /* rounds first, first+step, ... (two waiters share hot_lock) */
};

static void *holder_main(void *arg) {
  struct role *ro = arg;
  for (int i = 0; i < ro->rounds; i++) {
    hold_and_release(ro->lock, i, ro->hold_ms);
    wait_done(i);
  }
  return NULL;
}

/* ---- mutexes: the waiter's side ---- */

__attribute__((noinline)) static void take_lock(pthread_mutex_t *m) {
  pthread_mutex_lock(m);
  __asm__ volatile("" ::: "memory");
}

static _Atomic int holder_of[2];  /* the holder thread's tid per lock (0 hot, 1 heap) */

__attribute__((noinline)) static void wait_round(struct role *ro, int r, int which) {
  while (atomic_load(&round_no) != r) sleep_us(50);
  int me = gettid_();
  atomic_store(&waiter_tid, me);
  uint64_t t0 = now_ns();
  take_lock(ro->lock);
  uint64_t t1 = now_ns();
  pthread_mutex_unlock(ro->lock);
  struct wait_rec *w = &waits[__atomic_fetch_add(&nwaits, 1, __ATOMIC_SEQ_CST)];
  w->lock = ro->name;
  w->waiter = me;
  w->holder = atomic_load(&holder_of[which]);
  w->wait_ns = t1 - t0;
  atomic_store(&done_round, r);
}

struct waiter_arg {
  struct role *ro;
  int which, first, step;
};

static void *waiter_main(void *arg) {
  struct waiter_arg *wa = arg;
  for (int r = wa->first; r < wa->ro->rounds; r += wa->step) wait_round(wa->ro, r, wa->which);
  return NULL;
}

static void *holder_start(void *arg) {
  struct role *ro = arg;
  atomic_store(&holder_of[ro->lock == &hot_lock ? 0 : 1], gettid_());
  return holder_main(arg);
}

/* ---- condition variables and the semaphore ---- */

static _Atomic int cv_waiter_tid;
static _Atomic int cv_waits_done;

__attribute__((noinline)) static void cond_wait_once(pthread_cond_t *c) {
  pthread_mutex_lock(&cv_lock);
  while (!atomic_load(&cv_flag)) pthread_cond_wait(c, &cv_lock);
  atomic_store(&cv_flag, 0);
  pthread_mutex_unlock(&cv_lock);
}

static void *cv_waiter_main(void *arg) {
  (void)arg;
  atomic_store(&cv_waiter_tid, gettid_());
  for (int i = 0; i < CV_ROUNDS; i++) {
    cond_wait_once(&cv);
    atomic_fetch_add(&cv_waits_done, 1);
  }
  for (int i = 0; i < HEAP_CV_ROUNDS; i++) {
    cond_wait_once(heap_cv);
    atomic_fetch_add(&cv_waits_done, 1);
  }
  for (int i = 0; i < SEM_ROUNDS; i++) {
    while (sem_wait(&gate_sem) != 0) {
    }
    atomic_fetch_add(&cv_waits_done, 1);
  }
  return NULL;
}

static void signal_when_asleep(pthread_cond_t *c, int tid, int done_before) {
  wait_until_asleep(tid, c, sizeof(*c));
  pthread_mutex_lock(&cv_lock);
  atomic_store(&cv_flag, 1);
  pthread_mutex_unlock(&cv_lock);
  pthread_cond_signal(c);  /* outside cv_lock: the waiter re-takes a free mutex */
  while (atomic_load(&cv_waits_done) != done_before + 1) sleep_us(50);
}

int main(int argc, char **argv) {
  if (argc != 2 && !(argc == 3 && strcmp(argv[2], "wait") == 0)) {
    fprintf(stderr, "usage: contended RECORD [wait]\n");
    return 2;
  }
  if (argc == 3) {
    char line[64];
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin)) die("no start line on stdin");
  }
  heap_lock = malloc(sizeof(*heap_lock));
  heap_cv = malloc(sizeof(*heap_cv));
  if (!heap_lock || !heap_cv || pthread_mutex_init(heap_lock, NULL) != 0 || pthread_cond_init(heap_cv, NULL) != 0 ||
      sem_init(&gate_sem, 0, 0) != 0)
    die("cannot initialise the locks");

  /* The uncontended lock: one thread, nobody else touches it. */
  int quiet_tid = gettid_();
  for (int i = 0; i < QUIET_OPS; i++) {
    pthread_mutex_lock(&quiet_lock);
    pthread_mutex_unlock(&quiet_lock);
  }

  /* hot_lock: holder H, waiters A (even rounds) and B (odd rounds). */
  struct role hot = {&hot_lock, "hot_lock", 0, HOT_ROUNDS, 1, HOT_HOLD_MS};
  struct waiter_arg wa = {&hot, 0, 0, 2}, wb = {&hot, 0, 1, 2};
  pthread_t h, a, b;
  pthread_create(&h, NULL, holder_start, &hot);
  pthread_create(&a, NULL, waiter_main, &wa);
  pthread_create(&b, NULL, waiter_main, &wb);
  pthread_join(h, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);

  /* heap_lock: holder H2, waiter C. */
  atomic_store(&round_no, -1);
  atomic_store(&done_round, -1);
  struct role heap = {heap_lock, "heap_lock", 0, HEAP_ROUNDS, 1, HEAP_HOLD_MS};
  struct waiter_arg wc = {&heap, 1, 0, 1};
  pthread_t h2, c;
  pthread_create(&h2, NULL, holder_start, &heap);
  pthread_create(&c, NULL, waiter_main, &wc);
  pthread_join(h2, NULL);
  pthread_join(c, NULL);

  /* Condition variables and the semaphore: waiter D, signalled from here. */
  pthread_t d;
  pthread_create(&d, NULL, cv_waiter_main, NULL);
  int dtid;
  while ((dtid = atomic_load(&cv_waiter_tid)) == 0) sleep_us(50);
  int done = 0;
  for (int i = 0; i < CV_ROUNDS; i++) signal_when_asleep(&cv, dtid, done++);
  for (int i = 0; i < HEAP_CV_ROUNDS; i++) signal_when_asleep(heap_cv, dtid, done++);
  for (int i = 0; i < SEM_ROUNDS; i++) {
    wait_until_asleep(dtid, &gate_sem, sizeof(gate_sem));
    sem_post(&gate_sem);
    while (atomic_load(&cv_waits_done) != done + 1) sleep_us(50);
    done++;
  }
  pthread_join(d, NULL);

  FILE *f = fopen(argv[1], "w");
  if (!f) die("cannot write the record");
  fprintf(f, "{\"pid\": %d, \"locks\": {\"hot_lock\": \"%p\", \"heap_lock\": \"%p\", \"quiet_lock\": \"%p\", "
             "\"cv_lock\": \"%p\", \"cv\": \"%p\", \"heap_cv\": \"%p\", \"gate_sem\": \"%p\"},\n",
          (int)getpid(), (void *)&hot_lock, (void *)heap_lock, (void *)&quiet_lock, (void *)&cv_lock, (void *)&cv,
          (void *)heap_cv, (void *)&gate_sem);
  fprintf(f, " \"quiet\": {\"tid\": %d, \"acquisitions\": %d},\n", quiet_tid, QUIET_OPS);
  fprintf(f, " \"cond_waits\": {\"cv\": %d, \"heap_cv\": %d}, \"cv_waiter\": %d, \"sem_waits\": %d,\n", CV_ROUNDS,
          HEAP_CV_ROUNDS, dtid, SEM_ROUNDS);
  fprintf(f, " \"waits\": [");
  for (int i = 0; i < nwaits; i++)
    fprintf(f, "%s\n  {\"lock\": \"%s\", \"waiter\": %d, \"holder\": %d, \"wait_ns\": %llu}", i ? "," : "",
            waits[i].lock, waits[i].waiter, waits[i].holder, (unsigned long long)waits[i].wait_ns);
  fprintf(f, "]}\n");
  fclose(f);
  return 0;
}
