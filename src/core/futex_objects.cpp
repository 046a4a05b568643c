#include "core/futex_objects.h"

#include <sys/syscall.h>

#include <array>

#include "core/util.h"

namespace lockkit {

namespace {

// Offsets of the words each kind waits on or wakes.
bool is_futex_offset(FutexKind k, uint64_t off) {
  switch (k) {
    case FutexKind::Mutex:
    case FutexKind::Semaphore: return off == 0;
    case FutexKind::Condvar: return off == 0x28 || off == 0x2c || off == 0x10 || off == 0x14 || off == 0x24;
    case FutexKind::Rwlock: return off == 0x8 || off == 0xc;
    case FutexKind::Other: return false;
  }
  return false;
}

struct Pattern {
  const char* text;
  bool prefix;  // else the whole name
  FutexKind kind;
};

// Checked in order: the private lll functions before the pthread ones they would not match anyway,
// exact names before prefixes.
const Pattern kPatterns[] = {
    {"__lll_lock_wait_private", false, FutexKind::Other},
    {"__lll_lock_wake_private", false, FutexKind::Other},
    {"__lll_unlock_wake_private", false, FutexKind::Other},
    {"__lll_lock_wait", false, FutexKind::Mutex},
    {"__lll_clocklock_wait", false, FutexKind::Mutex},
    {"__lll_lock_wake", false, FutexKind::Mutex},
    {"__lll_unlock_wake", false, FutexKind::Mutex},
    {"pthread_mutex_", true, FutexKind::Mutex},
    {"__pthread_mutex_", true, FutexKind::Mutex},
    {"___pthread_mutex_", true, FutexKind::Mutex},
    {"std::mutex::", true, FutexKind::Mutex},
    {"std::recursive_mutex::", true, FutexKind::Mutex},
    {"std::timed_mutex::", true, FutexKind::Mutex},
    {"pthread_cond_", true, FutexKind::Condvar},
    {"__pthread_cond_", true, FutexKind::Condvar},
    {"___pthread_cond_", true, FutexKind::Condvar},
    {"__condvar_", true, FutexKind::Condvar},
    {"std::condition_variable::", true, FutexKind::Condvar},
    {"std::_V2::condition_variable_any::", true, FutexKind::Condvar},
    {"pthread_rwlock_", true, FutexKind::Rwlock},
    {"__pthread_rwlock_", true, FutexKind::Rwlock},
    {"___pthread_rwlock_", true, FutexKind::Rwlock},
    {"std::shared_mutex::", true, FutexKind::Rwlock},
    {"sem_wait", false, FutexKind::Semaphore},
    {"sem_timedwait", false, FutexKind::Semaphore},
    {"sem_clockwait", false, FutexKind::Semaphore},
    {"sem_post", false, FutexKind::Semaphore},
    {"__new_sem_", true, FutexKind::Semaphore},
    {"__old_sem_", true, FutexKind::Semaphore},
    {"__sem_wait_", true, FutexKind::Semaphore},
};

std::optional<FutexKind> kind_of_function(const std::string& name) {
  for (const Pattern& p : kPatterns)
    if (p.prefix ? starts_with(name, p.text) : name == p.text) return p.kind;
  return std::nullopt;
}

}  // namespace

const char* futex_kind_name(FutexKind k) {
  switch (k) {
    case FutexKind::Mutex: return "mutex";
    case FutexKind::Rwlock: return "rwlock";
    case FutexKind::Condvar: return "condvar";
    case FutexKind::Semaphore: return "semaphore";
    case FutexKind::Other: return "futex";
  }
  return "futex";
}

uint64_t futex_object_size(FutexKind k) {
  switch (k) {
    case FutexKind::Mutex: return 40;
    case FutexKind::Rwlock: return 56;
    case FutexKind::Condvar: return 48;
    case FutexKind::Semaphore: return 32;
    case FutexKind::Other: return 0;
  }
  return 0;
}

std::optional<FutexKind> kind_from_functions(const std::vector<std::string>& leaf_first) {
  for (auto& f : leaf_first)
    if (auto k = kind_of_function(f)) return k;
  return std::nullopt;
}

uint64_t object_start(FutexKind kind, uint64_t word) {
  switch (kind) {
    case FutexKind::Condvar: {
      uint64_t slot = word & ~uint64_t(7);
      // __g_signals (0x28) is the word waited on; __g_refs (0x10) only while a signaller switches
      // groups, and a word below 0x28 cannot tell the two apart: take the usual one when it fits.
      return slot >= 0x28 ? slot - 0x28 : slot;
    }
    case FutexKind::Rwlock: {
      uint64_t slot = word & ~uint64_t(7);
      return slot >= 8 ? slot - 8 : slot;
    }
    default: return word;
  }
}

FutexObject FutexClassifier::classify(uint64_t word, const std::vector<FutexEvidence>& evidence) const {
  // 1. An initialised object covering the word, at one of its futex offsets.
  auto it = inits_.upper_bound(word);
  while (it != inits_.begin()) {
    --it;
    uint64_t off = word - it->first;
    if (off >= 64) break;  // no object is larger
    if (off < futex_object_size(it->second) && is_futex_offset(it->second, off))
      return {it->first, it->second, FutexObject::Source::Init};
  }
  // 2. The innermost synchronisation function of a stack on the word.
  for (auto& e : evidence) {
    if (auto k = kind_from_functions(e.functions)) {
      if (*k == FutexKind::Other) return {word, *k, FutexObject::Source::Stack};
      return {object_start(*k, word), *k, FutexObject::Source::Stack};
    }
  }
  // 3. A data symbol of exactly one object's size, with the word at one of its futex offsets.
  if (data_) {
    if (auto sym = data_(word)) {
      for (FutexKind k : {FutexKind::Mutex, FutexKind::Condvar, FutexKind::Rwlock, FutexKind::Semaphore})
        if (sym->second == futex_object_size(k) && is_futex_offset(k, word - sym->first))
          return {sym->first, k, FutexObject::Source::Symbol};
    }
  }
  // 4. The mutex protocol's wait value.
  for (auto& e : evidence)
    if (e.wait_for_2) return {word, FutexKind::Mutex, FutexObject::Source::WaitValue};
  return {word, FutexKind::Other, FutexObject::Source::None};
}

namespace {
// The futex2 calls (Linux 5.16 and 6.7) by their x86-64 numbers where the C library's headers
// predate them.
#if defined(SYS_futex_waitv)
constexpr long kNrFutexWaitv = SYS_futex_waitv;
#elif defined(__x86_64__)
constexpr long kNrFutexWaitv = 449;
#else
constexpr long kNrFutexWaitv = -1;
#endif
#if defined(SYS_futex_wake)
constexpr long kNrFutexWake = SYS_futex_wake, kNrFutexWait = SYS_futex_wait, kNrFutexRequeue = SYS_futex_requeue;
#elif defined(__x86_64__)
constexpr long kNrFutexWake = 454, kNrFutexWait = 455, kNrFutexRequeue = 456;
#else
constexpr long kNrFutexWake = -1, kNrFutexWait = -1, kNrFutexRequeue = -1;
#endif
}  // namespace

std::vector<std::string> futex_syscall_defines() {
  return {"NR_FUTEX=" + std::to_string(SYS_futex), "NR_FUTEX_WAIT=" + std::to_string(kNrFutexWait),
          "NR_FUTEX_WAKE=" + std::to_string(kNrFutexWake), "NR_FUTEX_REQUEUE=" + std::to_string(kNrFutexRequeue),
          "NR_FUTEX_WAITV=" + std::to_string(kNrFutexWaitv)};
}

}  // namespace lockkit
