// mutexpair: two std::mutex, each taken in its own function, each made contended on purpose; built
// without frame pointers (as distributions build C++), for the stack tests of lockstat and locktrace.
//
//   mutexpair RECORD_FILE [--wait-stdin]
//
// Two threads, ROUNDS rounds. In each round the holder takes account_mutex in deposit() and keeps it
// until the waiter, calling deposit() too, has marked the mutex contended (the waiter is then in, or
// entering, FUTEX_WAIT, and the holder's unlock must FUTEX_WAKE it); then the same with queue_mutex
// in produce(). RECORD_FILE gets the thread ids, the mutex addresses and every call made.
// --wait-stdin: print the pid, then wait for a line on stdin before starting (for "-p" tracing).
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

namespace {

constexpr int kRounds = 20;

std::mutex account_mutex;
std::mutex queue_mutex;
long balance = 0;
long queued = 0;
std::atomic<int> held{0};  // round number + 1 the holder is holding in, per mutex phase
std::atomic<bool> timed_out{false};

pid_t tid() { return pid_t(syscall(SYS_gettid)); }

// glibc's lock word (the first int of pthread_mutex_t): 2 = locked with a waiter.
int lock_word(std::mutex& m) { return __atomic_load_n(reinterpret_cast<int*>(m.native_handle()), __ATOMIC_ACQUIRE); }

// Holds `m` (already locked by the caller) until another thread waits for it.
void hold_until_contended(std::mutex& m, int phase) {
  held.store(phase);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (lock_word(m) != 2) {
    if (std::chrono::steady_clock::now() > deadline) {
      timed_out = true;
      break;
    }
  }
}

__attribute__((noinline)) void deposit(long amount, int phase) {
  std::lock_guard<std::mutex> g(account_mutex);
  balance += amount;
  if (phase) hold_until_contended(account_mutex, phase);
}

__attribute__((noinline)) void produce(long item, int phase) {
  std::lock_guard<std::mutex> g(queue_mutex);
  queued += item;
  if (phase) hold_until_contended(queue_mutex, phase);
}

struct Calls {
  pid_t tid = 0;
  int deposits = 0, produces = 0;
};
Calls holder_calls, waiter_calls;
std::atomic<int> done_phase{0};

void wait_for(std::atomic<int>& v, int want) {
  while (v.load() < want) std::this_thread::yield();
}

__attribute__((noinline)) void holder() {
  holder_calls.tid = tid();
  for (int r = 0; r < kRounds; r++) {
    int phase = 2 * r + 1;
    deposit(1, phase);
    holder_calls.deposits++;
    wait_for(done_phase, phase);
    produce(1, phase + 1);
    holder_calls.produces++;
    wait_for(done_phase, phase + 1);
  }
}

__attribute__((noinline)) void waiter() {
  waiter_calls.tid = tid();
  for (int r = 0; r < kRounds; r++) {
    int phase = 2 * r + 1;
    wait_for(held, phase);
    deposit(-1, 0);
    waiter_calls.deposits++;
    done_phase.store(phase);
    wait_for(held, phase + 1);
    produce(-1, 0);
    waiter_calls.produces++;
    done_phase.store(phase + 1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: mutexpair RECORD_FILE [--wait-stdin]\n");
    return 2;
  }
  if (argc > 2 && std::string(argv[2]) == "--wait-stdin") {
    std::printf("pid %d\n", int(getpid()));
    std::fflush(stdout);
    std::string line;
    std::getline(std::cin, line);
  }
  std::thread h(holder), w(waiter);
  h.join();
  w.join();
  FILE* f = std::fopen(argv[1], "w");
  if (!f) return 1;
  std::fprintf(f,
               "{\"pid\": %d, \"rounds\": %d, \"timed_out\": %s,\n"
               " \"locks\": {\"account_mutex\": \"%p\", \"queue_mutex\": \"%p\"},\n"
               " \"threads\": [{\"role\": \"holder\", \"tid\": %d, \"deposits\": %d, \"produces\": %d},\n"
               "             {\"role\": \"waiter\", \"tid\": %d, \"deposits\": %d, \"produces\": %d}]}\n",
               int(getpid()), kRounds, timed_out ? "true" : "false", static_cast<void*>(account_mutex.native_handle()),
               static_cast<void*>(queue_mutex.native_handle()), holder_calls.tid, holder_calls.deposits,
               holder_calls.produces, waiter_calls.tid, waiter_calls.deposits, waiter_calls.produces);
  return std::fclose(f) == 0 ? 0 : 1;
}
