/* lockorder RECORD: threads take locks in known orders, one thread after another (each is joined
 * before the next starts), so that nothing can ever deadlock, while the orders seen together hold
 * potential deadlocks:
 *
 *   inversion    inv_a then inv_b in one thread, inv_b then inv_a in another (a 2-cycle)
 *   cycle        cyc_a -> cyc_b, cyc_b -> cyc_c, cyc_c -> cyc_a in three threads (a 3-cycle)
 *   ordered      ord_x then ord_y in two threads (never a cycle)
 *   trylock      try_a then try_b; then try_b then a trylock of try_a (no edge: a trylock never waits)
 *   read-read    rd_a then rd_b, rd_b then rd_a, every one a read lock (no edge: readers do not wait
 *                for readers)
 *   read-write   rwx_a read-locked then rwx_b write-locked; rwx_b then rwx_a both write-locked (a
 *                2-cycle: the writer of rwx_a waits for the reader)
 *   read-shared  rws_a read-locked then rws_b write-locked; rws_b write-locked then rws_a
 *                read-locked (edges, but no deadlock: the second reader of rws_a does not wait)
 *   recursive    rec_m (a recursive mutex) locked twice, then rec_inner, then rec_m a third time
 *                (one edge rec_m -> rec_inner: re-locks wait for nobody)
 *   heap         two heap mutexes made by make_heap_lock, taken in both orders (a 2-cycle)
 *
 * Each thread takes its locks ROUNDS times. RECORD gets one line per lock and per edge:
 *   lock NAME ADDRESS KIND HEAP            (KIND mutex or rwlock; HEAP 1 for heap locks)
 *   edge FROM TO TID FUNCTION FROM_MODE TO_MODE   (the first thread to take TO while holding FROM;
 *                                            FUNCTION made the call that took TO)
 *   none FROM TO TID FUNCTION WHY          (TO taken while holding FROM without an edge)
 *   cycle NAME...                          (the potential deadlocks among these edges)
 * Modes: exclusive (mutex), read or write (rwlock). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ROUNDS 3
#define NOINLINE __attribute__((noinline))

static pthread_mutex_t inv_a = PTHREAD_MUTEX_INITIALIZER, inv_b = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cyc_a = PTHREAD_MUTEX_INITIALIZER, cyc_b = PTHREAD_MUTEX_INITIALIZER,
                       cyc_c = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t ord_x = PTHREAD_MUTEX_INITIALIZER, ord_y = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t try_a = PTHREAD_MUTEX_INITIALIZER, try_b = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rd_a = PTHREAD_RWLOCK_INITIALIZER, rd_b = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t rwx_a = PTHREAD_RWLOCK_INITIALIZER, rwx_b = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t rws_a = PTHREAD_RWLOCK_INITIALIZER, rws_b = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t rec_m, rec_inner = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t *heap_1, *heap_2;

static FILE *record;
static volatile long work;

static long tid(void) { return syscall(SYS_gettid); }

static void check(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "lockorder: %s: %s\n", what, strerror(rc));
    exit(1);
  }
}

static void lock(pthread_mutex_t *m) { check(pthread_mutex_lock(m), "pthread_mutex_lock"); }
static void unlock(pthread_mutex_t *m) { check(pthread_mutex_unlock(m), "pthread_mutex_unlock"); }

/* Each pair of locks a thread takes, in order, and whether it makes an edge. Written once, in
 * the first round (the tool keeps the first thread to make each edge). */
static void edge(const char *from, const char *to, const char *fn, const char *from_mode, const char *to_mode) {
  fprintf(record, "edge %s %s %ld %s %s %s\n", from, to, tid(), fn, from_mode, to_mode);
}
static void none(const char *from, const char *to, const char *fn, const char *why) {
  fprintf(record, "none %s %s %ld %s %s\n", from, to, tid(), fn, why);
}

static NOINLINE void take_inv_ab(int round) {
  lock(&inv_a);
  lock(&inv_b);
  work++;
  unlock(&inv_b);
  unlock(&inv_a);
  if (round == 0) edge("inv_a", "inv_b", __func__, "exclusive", "exclusive");
}

static NOINLINE void take_inv_ba(int round) {
  lock(&inv_b);
  lock(&inv_a);
  work++;
  unlock(&inv_a);
  unlock(&inv_b);
  if (round == 0) edge("inv_b", "inv_a", __func__, "exclusive", "exclusive");
}

static NOINLINE void take_cyc_ab(int round) {
  lock(&cyc_a);
  lock(&cyc_b);
  unlock(&cyc_b);
  unlock(&cyc_a);
  if (round == 0) edge("cyc_a", "cyc_b", __func__, "exclusive", "exclusive");
}

static NOINLINE void take_cyc_bc(int round) {
  lock(&cyc_b);
  lock(&cyc_c);
  unlock(&cyc_c);
  unlock(&cyc_b);
  if (round == 0) edge("cyc_b", "cyc_c", __func__, "exclusive", "exclusive");
}

static NOINLINE void take_cyc_ca(int round) {
  lock(&cyc_c);
  lock(&cyc_a);
  unlock(&cyc_a);
  unlock(&cyc_c);
  if (round == 0) edge("cyc_c", "cyc_a", __func__, "exclusive", "exclusive");
}

static int ordered_first = 1;
static NOINLINE void take_ord_xy(int round) {
  lock(&ord_x);
  lock(&ord_y);
  unlock(&ord_y);
  unlock(&ord_x);
  if (round == 0) {
    if (ordered_first) edge("ord_x", "ord_y", __func__, "exclusive", "exclusive");
    else none("ord_x", "ord_y", __func__, "repeated");  /* the first thread's edge stays */
    ordered_first = 0;
  }
}

static NOINLINE void take_try_ab(int round) {
  lock(&try_a);
  lock(&try_b);
  unlock(&try_b);
  unlock(&try_a);
  if (round == 0) edge("try_a", "try_b", __func__, "exclusive", "exclusive");
}

static NOINLINE void take_try_ba(int round) {
  lock(&try_b);
  /* Nobody else runs now: the trylock succeeds, and makes no edge. */
  check(pthread_mutex_trylock(&try_a), "pthread_mutex_trylock");
  unlock(&try_a);
  unlock(&try_b);
  if (round == 0) none("try_b", "try_a", __func__, "trylock");
}

static NOINLINE void take_rd(pthread_rwlock_t *first, pthread_rwlock_t *second) {
  check(pthread_rwlock_rdlock(first), "pthread_rwlock_rdlock");
  check(pthread_rwlock_rdlock(second), "pthread_rwlock_rdlock");
  check(pthread_rwlock_unlock(second), "pthread_rwlock_unlock");
  check(pthread_rwlock_unlock(first), "pthread_rwlock_unlock");
}

static NOINLINE void take_rd_ab(int round) {
  take_rd(&rd_a, &rd_b);
  if (round == 0) none("rd_a", "rd_b", "take_rd", "read-read");
}

static NOINLINE void take_rd_ba(int round) {
  take_rd(&rd_b, &rd_a);
  if (round == 0) none("rd_b", "rd_a", "take_rd", "read-read");
}

static NOINLINE void take_rwx_ab(int round) {
  check(pthread_rwlock_rdlock(&rwx_a), "pthread_rwlock_rdlock");
  check(pthread_rwlock_wrlock(&rwx_b), "pthread_rwlock_wrlock");
  check(pthread_rwlock_unlock(&rwx_b), "pthread_rwlock_unlock");
  check(pthread_rwlock_unlock(&rwx_a), "pthread_rwlock_unlock");
  if (round == 0) edge("rwx_a", "rwx_b", __func__, "read", "write");
}

static NOINLINE void take_rwx_ba(int round) {
  check(pthread_rwlock_wrlock(&rwx_b), "pthread_rwlock_wrlock");
  check(pthread_rwlock_wrlock(&rwx_a), "pthread_rwlock_wrlock");
  check(pthread_rwlock_unlock(&rwx_a), "pthread_rwlock_unlock");
  check(pthread_rwlock_unlock(&rwx_b), "pthread_rwlock_unlock");
  if (round == 0) edge("rwx_b", "rwx_a", __func__, "write", "write");
}

static NOINLINE void take_rws_ab(int round) {
  check(pthread_rwlock_rdlock(&rws_a), "pthread_rwlock_rdlock");
  check(pthread_rwlock_wrlock(&rws_b), "pthread_rwlock_wrlock");
  check(pthread_rwlock_unlock(&rws_b), "pthread_rwlock_unlock");
  check(pthread_rwlock_unlock(&rws_a), "pthread_rwlock_unlock");
  if (round == 0) edge("rws_a", "rws_b", __func__, "read", "write");
}

static NOINLINE void take_rws_ba(int round) {
  check(pthread_rwlock_wrlock(&rws_b), "pthread_rwlock_wrlock");
  check(pthread_rwlock_rdlock(&rws_a), "pthread_rwlock_rdlock");
  check(pthread_rwlock_unlock(&rws_a), "pthread_rwlock_unlock");
  check(pthread_rwlock_unlock(&rws_b), "pthread_rwlock_unlock");
  if (round == 0) edge("rws_b", "rws_a", __func__, "write", "read");
}

static NOINLINE void take_recursive(int round) {
  lock(&rec_m);
  lock(&rec_m);
  lock(&rec_inner);
  lock(&rec_m);
  unlock(&rec_m);
  unlock(&rec_inner);
  unlock(&rec_m);
  unlock(&rec_m);
  if (round == 0) {
    none("rec_m", "rec_m", __func__, "recursive");
    edge("rec_m", "rec_inner", __func__, "exclusive", "exclusive");
    none("rec_inner", "rec_m", __func__, "recursive");
  }
}

static NOINLINE void take_heap_12(int round) {
  lock(heap_1);
  lock(heap_2);
  unlock(heap_2);
  unlock(heap_1);
  if (round == 0) edge("heap_1", "heap_2", __func__, "exclusive", "exclusive");
}

static NOINLINE void take_heap_21(int round) {
  lock(heap_2);
  lock(heap_1);
  unlock(heap_1);
  unlock(heap_2);
  if (round == 0) edge("heap_2", "heap_1", __func__, "exclusive", "exclusive");
}

static NOINLINE pthread_mutex_t *make_heap_lock(void) {
  pthread_mutex_t *m = malloc(sizeof(*m));
  if (!m) {
    fprintf(stderr, "lockorder: out of memory\n");
    exit(1);
  }
  check(pthread_mutex_init(m, NULL), "pthread_mutex_init");
  return m;
}

typedef void (*step_fn)(int round);

static void *run_step(void *arg) {
  step_fn fn = *(step_fn *)arg;
  for (int r = 0; r < ROUNDS; r++) fn(r);
  return NULL;
}

/* One thread per step, each joined before the next starts: no two ever hold locks at once. */
static void run(step_fn fn) {
  pthread_t t;
  check(pthread_create(&t, NULL, run_step, &fn), "pthread_create");
  check(pthread_join(t, NULL), "pthread_join");
}

static void lock_line(const char *name, const void *addr, const char *kind, int heap) {
  fprintf(record, "lock %s %p %s %d\n", name, addr, kind, heap);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: lockorder RECORD\n");
    return 2;
  }
  record = fopen(argv[1], "w");
  if (!record) {
    perror(argv[1]);
    return 1;
  }
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  check(pthread_mutex_init(&rec_m, &attr), "pthread_mutex_init");
  pthread_mutexattr_destroy(&attr);
  heap_1 = make_heap_lock();
  heap_2 = make_heap_lock();

  lock_line("inv_a", &inv_a, "mutex", 0);
  lock_line("inv_b", &inv_b, "mutex", 0);
  lock_line("cyc_a", &cyc_a, "mutex", 0);
  lock_line("cyc_b", &cyc_b, "mutex", 0);
  lock_line("cyc_c", &cyc_c, "mutex", 0);
  lock_line("ord_x", &ord_x, "mutex", 0);
  lock_line("ord_y", &ord_y, "mutex", 0);
  lock_line("try_a", &try_a, "mutex", 0);
  lock_line("try_b", &try_b, "mutex", 0);
  lock_line("rd_a", &rd_a, "rwlock", 0);
  lock_line("rd_b", &rd_b, "rwlock", 0);
  lock_line("rwx_a", &rwx_a, "rwlock", 0);
  lock_line("rwx_b", &rwx_b, "rwlock", 0);
  lock_line("rws_a", &rws_a, "rwlock", 0);
  lock_line("rws_b", &rws_b, "rwlock", 0);
  lock_line("rec_m", &rec_m, "mutex", 0);
  lock_line("rec_inner", &rec_inner, "mutex", 0);
  lock_line("heap_1", heap_1, "mutex", 1);
  lock_line("heap_2", heap_2, "mutex", 1);

  run(take_inv_ab);
  run(take_inv_ba);
  run(take_cyc_ab);
  run(take_cyc_bc);
  run(take_cyc_ca);
  run(take_ord_xy);
  run(take_ord_xy);
  run(take_try_ab);
  run(take_try_ba);
  run(take_rd_ab);
  run(take_rd_ba);
  run(take_rwx_ab);
  run(take_rwx_ba);
  run(take_rws_ab);
  run(take_rws_ba);
  run(take_recursive);
  run(take_heap_12);
  run(take_heap_21);

  fprintf(record, "cycle inv_a inv_b\n");
  fprintf(record, "cycle cyc_a cyc_b cyc_c\n");
  fprintf(record, "cycle rwx_a rwx_b\n");
  fprintf(record, "cycle heap_1 heap_2\n");
  if (fclose(record) != 0) {
    perror(argv[1]);
    return 1;
  }
  printf("lockorder: done\n");
  return work == 2 * ROUNDS ? 0 : 1;
}
