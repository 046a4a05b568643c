/* forktree DIR NCHILDREN [exec] [wait]: a process tree whose every lock call and futex call is known,
 * for the tests of process trees. Each process of the tree, as soon as it starts (right after its
 * fork, or its exec), makes its own numbers of:
 *   - pthread_mutex_lock/unlock pairs on the global mutex `tree_lock` (uncontended: one thread),
 *   - futex waits on the global word `tree_word` that fail at once with EAGAIN (its value is 0,
 *     the wait expects 1), and futex wakes on it that wake nobody (raw system calls),
 * then writes DIR/PID.json with what it did. The root forks NCHILDREN children; the first child
 * forks a grandchild of its own. With `exec`, every child (and the grandchild) executes this program
 * again (fork then exec) before it starts. With `wait`, the root reads a line from stdin before it
 * starts (so a tracer can attach to it first), then forks and works.
 *
 * Process number k (the root is 0, children 1..NCHILDREN, the grandchild NCHILDREN+1) makes
 * 50 + 13k lock pairs, 20 + 7k EAGAIN waits and 10 + 3k wakes. DIR/PID.json: {"pid", "ppid",
 * "index", "exec", "lock_pairs", "eagain_waits", "wakes", "lock", "word"}; the root's also lists
 * "children" (its children and the grandchild, in the order they were forked). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CHILDREN 16

pthread_mutex_t tree_lock = PTHREAD_MUTEX_INITIALIZER;
int tree_word;
static volatile long shared;
static const char *self_path;

static int lock_pairs(int k) { return 50 + 13 * k; }
static int eagain_waits(int k) { return 20 + 7 * k; }
static int wakes(int k) { return 10 + 3 * k; }

__attribute__((noinline)) static void tree_work(int k) {
  for (int i = 0; i < lock_pairs(k); i++) {
    pthread_mutex_lock(&tree_lock);
    shared++;
    pthread_mutex_unlock(&tree_lock);
  }
  for (int i = 0; i < eagain_waits(k); i++)
    if (syscall(SYS_futex, &tree_word, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0) != -1 || errno != EAGAIN) exit(3);
  for (int i = 0; i < wakes(k); i++)
    if (syscall(SYS_futex, &tree_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) != 0) exit(3);
}

static void write_record(const char *dir, int k, int exec, const pid_t *children, int n) {
  char path[4096];
  snprintf(path, sizeof(path), "%s/%d.json", dir, (int)getpid());
  FILE *f = fopen(path, "w");
  if (!f) exit(4);
  fprintf(f, "{\"pid\": %d, \"ppid\": %d, \"index\": %d, \"exec\": %s, \"lock_pairs\": %d, \"eagain_waits\": %d, "
             "\"wakes\": %d, \"lock\": \"%p\", \"word\": \"%p\"",
          (int)getpid(), (int)getppid(), k, exec ? "true" : "false", lock_pairs(k), eagain_waits(k), wakes(k),
          (void *)&tree_lock, (void *)&tree_word);
  if (children) {
    fprintf(f, ", \"children\": [");
    for (int i = 0; i < n; i++) fprintf(f, "%s%d", i ? ", " : "", (int)children[i]);
    fprintf(f, "]");
  }
  fprintf(f, "}\n");
  if (fclose(f) != 0) exit(4);
}

/* Becomes process number k of the tree: works at once (after an exec of this program with `exec`),
 * forks the grandchild when it is child 1, writes its record and exits. */
static pid_t start(const char *dir, int k, int exec, int grandchild_index, int pipe_fd);

static void child_main(const char *dir, int k, int exec, int grandchild_index, int pipe_fd) {
  tree_work(k);
  if (grandchild_index > 0) {
    pid_t g = start(dir, grandchild_index, exec, 0, -1);
    if (pipe_fd >= 0 && write(pipe_fd, &g, sizeof(g)) != sizeof(g)) exit(5);
    int st;
    if (waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0) exit(6);
  }
  write_record(dir, k, exec, NULL, 0);
  exit(0);
}

static pid_t start(const char *dir, int k, int exec, int grandchild_index, int pipe_fd) {
  pid_t p = fork();
  if (p < 0) exit(2);
  if (p > 0) return p;
  if (exec) {
    char ks[16], gs[16], fs[16];
    snprintf(ks, sizeof(ks), "%d", k);
    snprintf(gs, sizeof(gs), "%d", grandchild_index);
    snprintf(fs, sizeof(fs), "%d", pipe_fd);
    execl(self_path, self_path, "--child", dir, ks, gs, fs, (char *)NULL);
    _exit(7);
  }
  child_main(dir, k, 0, grandchild_index, pipe_fd);
  return 0;
}

int main(int argc, char **argv) {
  self_path = "/proc/self/exe";
  if (argc == 6 && strcmp(argv[1], "--child") == 0) {
    child_main(argv[2], atoi(argv[3]), 1, atoi(argv[4]), atoi(argv[5]));
    return 0;
  }
  if (argc < 3) {
    fprintf(stderr, "usage: forktree DIR NCHILDREN [exec] [wait]\n");
    return 2;
  }
  const char *dir = argv[1];
  int n = atoi(argv[2]);
  if (n < 1 || n > MAX_CHILDREN) n = 1;
  int exec = 0, wait_line = 0;
  for (int i = 3; i < argc; i++) {
    if (strcmp(argv[i], "exec") == 0) exec = 1;
    else if (strcmp(argv[i], "wait") == 0) wait_line = 1;
  }
  if (wait_line) {
    char line[64];
    if (!fgets(line, sizeof(line), stdin)) return 2;
  }
  tree_work(0);
  int fds[2];
  if (pipe(fds) != 0) return 2;  /* the first child says which pid its grandchild got */
  pid_t children[MAX_CHILDREN + 1];
  for (int i = 0; i < n; i++) children[i] = start(dir, i + 1, exec, i == 0 ? n + 1 : 0, fds[1]);
  close(fds[1]);
  if (read(fds[0], &children[n], sizeof(pid_t)) != sizeof(pid_t)) return 5;
  for (int i = 0; i < n; i++) {
    int st;
    if (waitpid(children[i], &st, 0) != children[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 6;
  }
  write_record(dir, 0, 0, children, n + 1);
  return 0;
}
