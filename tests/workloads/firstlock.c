/* firstlock: a lock taken before main, in the program's own constructor, among the first code of
 * the program that runs.
 *
 *   firstlock RECORD_FILE
 *
 * The constructor locks and unlocks first_lock once (in take_first_lock); main only writes what
 * happened to RECORD_FILE as JSON: the lock's address and how many times it was locked. The tests
 * use its build without frame pointers (firstlock-nofp): a stack taken there before a tracer knows
 * where the program's modules are mapped cannot be unwound whole. */
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t first_lock = PTHREAD_MUTEX_INITIALIZER;
static int first_lock_calls;

__attribute__((noinline)) static void take_first_lock(void) {
  pthread_mutex_lock(&first_lock);
  first_lock_calls++;
  pthread_mutex_unlock(&first_lock);
}

static volatile int constructors_run;

__attribute__((constructor, noinline)) static void before_main(void) {
  take_first_lock();
  constructors_run++; /* after the call: no tail call, so before_main keeps its frame */
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: firstlock RECORD_FILE\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "w");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  fprintf(f, "{\"first_lock\": \"%p\", \"first_lock_calls\": %d}\n", (void *)&first_lock, first_lock_calls);
  return fclose(f) == 0 ? 0 : 1;
}
