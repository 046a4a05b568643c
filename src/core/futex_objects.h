// Which pthread object a futex word belongs to: mutex, rwlock, condition variable, semaphore, or
// none we know (another futex). Used by lockstat's contention mode (one lock per object, condvar
// waits apart from mutex waits) and by locktrace's JSON (a row's futex word named as its object).
//
// The layouts are glibc's on x86-64 (checked on 2.36; the same since 2.25 for condvars and rwlocks):
//   pthread_mutex_t  (40 bytes)  waits on its first word (__lock, value 2 = locked with waiters)
//   pthread_cond_t   (48 bytes)  waits on __g_signals[0|1] at 0x28/0x2c
//   pthread_rwlock_t (56 bytes)  waits on __wrphase_futex (0x8) and __writers_futex (0xc)
//   sem_t            (32 bytes)  waits on its first word (the value)
// Each is 8-byte aligned, so the object starts at (word & ~7) - 0x28 for a condvar and
// (word & ~7) - 8 for an rwlock, whichever of its two words was used.
//
// What tells the kind, strongest first:
//   1. an init call seen for an object covering the word (pthread_mutex_init, sem_init, ...);
//   2. the glibc function in a stack that waited on or woke the word (__lll_lock_wait,
//      pthread_cond_wait, sem_post, ...), the innermost one deciding (a condvar wait that re-takes
//      its mutex waits in __lll_lock_wait: that wait is the mutex's);
//   3. a data symbol covering the word whose size is one of the sizes above, with the word at one
//      of that kind's futex offsets;
//   4. how the word was waited on: FUTEX_WAIT for the value 2 is a glibc mutex's (or glibc's own
//      internal lock's: they share the protocol);
//   else an other futex at the word itself.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lockkit {

enum class FutexKind { Mutex, Rwlock, Condvar, Semaphore, Other };

// "mutex", "rwlock", "condvar", "semaphore", "futex".
const char* futex_kind_name(FutexKind k);
// sizeof the glibc x86-64 object (0 for Other).
uint64_t futex_object_size(FutexKind k);

// What one call (or row of calls) on the word shows.
struct FutexEvidence {
  std::vector<std::string> functions;  // function names of its user stack, leaf first (may be empty)
  bool wait_for_2 = false;             // a plain FUTEX_WAIT expecting the value 2
};

struct FutexObject {
  enum class Source { Init, Stack, Symbol, WaitValue, None };
  uint64_t address = 0;  // the object's start (the word itself for Other)
  FutexKind kind = FutexKind::Other;
  Source source = Source::None;
};

// The kind the innermost glibc (or libstdc++) synchronisation function of a stack names; nullopt
// when none is recognised. glibc's internal locks (__lll_lock_wait_private) are Other.
std::optional<FutexKind> kind_from_functions(const std::vector<std::string>& leaf_first);

// The start of the `kind` object that waits on or wakes `word` (see the layouts above).
uint64_t object_start(FutexKind kind, uint64_t word);

class FutexClassifier {
 public:
  // The symbol covering a data address: (runtime start, size).
  using DataLookup = std::function<std::optional<std::pair<uint64_t, uint64_t>>(uint64_t addr)>;
  explicit FutexClassifier(DataLookup data = nullptr) : data_(std::move(data)) {}

  // An object seen being initialised (pthread_mutex_init(addr), sem_init(addr), ...).
  void add_init(uint64_t start, FutexKind kind) { inits_[start] = kind; }

  FutexObject classify(uint64_t word, const std::vector<FutexEvidence>& evidence) const;

 private:
  DataLookup data_;
  std::map<uint64_t, FutexKind> inits_;
};

// The -D defines NR_FUTEX, NR_FUTEX_WAIT, NR_FUTEX_WAKE, NR_FUTEX_REQUEUE and NR_FUTEX_WAITV: the
// futex system calls' numbers (a syscall tracepoint's __syscall_nr), -1 for one this build does
// not know.
std::vector<std::string> futex_syscall_defines();

}  // namespace lockkit
