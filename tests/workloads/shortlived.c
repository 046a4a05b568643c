/* shortlived RECORD [NFORKS]: a program that is gone within ~50 ms, for the tests of mappings seen
 * as they are made (a tracer that only snapshots /proc/PID/maps between ticks never sees libc
 * mapped in it).
 *
 * Two threads each take two global mutexes a few times (from short_work and short_helper, so the
 * stacks have frames of the program under pthread_mutex_lock); then the program forks NFORKS
 * children (default 0) that exit at once, and waits for them.
 *
 * RECORD (JSON) holds: pid, the tids of both threads, each lock's address and acquisitions, and
 * the pids of the children. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 20
#define MAX_FORKS 16

static pthread_mutex_t short_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t short_b = PTHREAD_MUTEX_INITIALIZER;
static volatile long shared;
static int tids[2];

__attribute__((noinline)) static void short_helper(void) {
  pthread_mutex_lock(&short_b);
  shared += 2;
  pthread_mutex_unlock(&short_b);
}

__attribute__((noinline)) static void short_work(int slot) {
  tids[slot] = (int)syscall(SYS_gettid);
  for (int i = 0; i < ROUNDS; i++) {
    pthread_mutex_lock(&short_a);
    shared++;
    pthread_mutex_unlock(&short_a);
    short_helper();
  }
}

static void *thread_main(void *arg) {
  (void)arg;
  short_work(1);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: shortlived RECORD [NFORKS]\n");
    return 2;
  }
  int nforks = argc > 2 ? atoi(argv[2]) : 0;
  if (nforks < 0 || nforks > MAX_FORKS) nforks = MAX_FORKS;
  pthread_t t;
  if (pthread_create(&t, NULL, thread_main, NULL) != 0) return 1;
  short_work(0);
  pthread_join(t, NULL);

  pid_t children[MAX_FORKS];
  for (int i = 0; i < nforks; i++) {
    children[i] = fork();
    if (children[i] < 0) return 1;
    if (children[i] == 0) _exit(0);
  }
  for (int i = 0; i < nforks; i++) waitpid(children[i], NULL, 0);

  FILE *f = fopen(argv[1], "w");
  if (!f) return 1;
  fprintf(f, "{\"pid\": %d, \"tids\": [%d, %d],\n", (int)getpid(), tids[0], tids[1]);
  fprintf(f, " \"locks\": {\"short_a\": {\"address\": \"%p\", \"acquisitions\": %d},\n", (void *)&short_a, 2 * ROUNDS);
  fprintf(f, "           \"short_b\": {\"address\": \"%p\", \"acquisitions\": %d}},\n", (void *)&short_b, 2 * ROUNDS);
  fprintf(f, " \"children\": [");
  for (int i = 0; i < nforks; i++) fprintf(f, "%s%d", i ? ", " : "", (int)children[i]);
  fprintf(f, "]}\n");
  return fclose(f) == 0 ? 0 : 1;
}
