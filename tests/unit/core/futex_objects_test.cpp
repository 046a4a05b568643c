#include <catch2/catch.hpp>

#include "core/futex_objects.h"

using namespace lockkit;
using Source = FutexObject::Source;

namespace {
FutexEvidence stack(std::vector<std::string> leaf_first) { return {std::move(leaf_first), false}; }
FutexEvidence waited_for_2() { return {{}, true}; }
}  // namespace

TEST_CASE("futex kinds have the names and glibc x86-64 sizes the reports use") {
  CHECK(std::string(futex_kind_name(FutexKind::Mutex)) == "mutex");
  CHECK(std::string(futex_kind_name(FutexKind::Rwlock)) == "rwlock");
  CHECK(std::string(futex_kind_name(FutexKind::Condvar)) == "condvar");
  CHECK(std::string(futex_kind_name(FutexKind::Semaphore)) == "semaphore");
  CHECK(std::string(futex_kind_name(FutexKind::Other)) == "futex");
  CHECK(futex_object_size(FutexKind::Mutex) == 40);
  CHECK(futex_object_size(FutexKind::Condvar) == 48);
  CHECK(futex_object_size(FutexKind::Rwlock) == 56);
  CHECK(futex_object_size(FutexKind::Semaphore) == 32);
}

TEST_CASE("both futex words of a condvar give its start, as do both of an rwlock") {
  CHECK(object_start(FutexKind::Condvar, 0x1028) == 0x1000);
  CHECK(object_start(FutexKind::Condvar, 0x102c) == 0x1000);
  CHECK(object_start(FutexKind::Rwlock, 0x2008) == 0x2000);
  CHECK(object_start(FutexKind::Rwlock, 0x200c) == 0x2000);
  CHECK(object_start(FutexKind::Mutex, 0x3000) == 0x3000);
  CHECK(object_start(FutexKind::Semaphore, 0x4000) == 0x4000);
}

TEST_CASE("the innermost glibc synchronisation function names the kind") {
  CHECK(kind_from_functions({"__lll_lock_wait", "pthread_mutex_lock", "worker"}) == FutexKind::Mutex);
  CHECK(kind_from_functions({"__lll_unlock_wake", "__pthread_mutex_unlock_usercnt"}) == FutexKind::Mutex);
  CHECK(kind_from_functions({"__futex_abstimed_wait_common", "___pthread_cond_wait", "consume"}) == FutexKind::Condvar);
  CHECK(kind_from_functions({"__futex_abstimed_wait_common", "__new_sem_wait_slow64", "sem_wait"}) == FutexKind::Semaphore);
  CHECK(kind_from_functions({"", "__pthread_rwlock_rdlock_full64", "reader"}) == FutexKind::Rwlock);
  // A condvar wait that re-takes its mutex waits in __lll_lock_wait: that wait is the mutex's.
  CHECK(kind_from_functions({"__lll_lock_wait", "__pthread_mutex_cond_lock", "___pthread_cond_wait"}) == FutexKind::Mutex);
  // glibc's internal locks share the protocol but are no pthread object.
  CHECK(kind_from_functions({"__lll_lock_wait_private", "malloc"}) == FutexKind::Other);
  CHECK_FALSE(kind_from_functions({"", "worker", "start_thread"}).has_value());
  // A user function that merely begins like a glibc one is no evidence.
  CHECK_FALSE(kind_from_functions({"sem_waiter_loop", "pthread_condition_check"}).has_value());
}

TEST_CASE("an init call covering the word decides, whatever else is known") {
  FutexClassifier c([](uint64_t) { return std::make_optional(std::make_pair(uint64_t(0x5000), uint64_t(40))); });
  c.add_init(0x1000, FutexKind::Condvar);
  auto o = c.classify(0x102c, {stack({"__lll_lock_wait"})});
  CHECK(o.kind == FutexKind::Condvar);
  CHECK(o.address == 0x1000);
  CHECK(o.source == Source::Init);
  c.add_init(0x2000, FutexKind::Semaphore);
  o = c.classify(0x2000, {});
  CHECK(o.kind == FutexKind::Semaphore);
  CHECK(o.address == 0x2000);
  // A word past the object, or at no futex offset of it, is not the object's.
  o = c.classify(0x1030, {});
  CHECK(o.source != Source::Init);
  o = c.classify(0x1004, {});
  CHECK(o.source != Source::Init);
}

TEST_CASE("a stack names the kind before a data symbol's size does") {
  FutexClassifier c([](uint64_t) { return std::make_optional(std::make_pair(uint64_t(0x1000), uint64_t(48))); });
  auto o = c.classify(0x1028, {stack({"x"}), stack({"__futex_abstimed_wait_common", "pthread_cond_timedwait"})});
  CHECK(o.kind == FutexKind::Condvar);
  CHECK(o.address == 0x1000);
  CHECK(o.source == Source::Stack);
}

TEST_CASE("a data symbol of an object's size classifies a word at that kind's futex offset") {
  auto sym = [](uint64_t start, uint64_t size) {
    return [=](uint64_t a) -> std::optional<std::pair<uint64_t, uint64_t>> {
      if (a >= start && a < start + size) return std::make_pair(start, size);
      return std::nullopt;
    };
  };
  FutexClassifier cond(sym(0x1000, 48));
  auto o = cond.classify(0x102c, {});
  CHECK(o.kind == FutexKind::Condvar);
  CHECK(o.address == 0x1000);
  CHECK(o.source == Source::Symbol);
  FutexClassifier mutex(sym(0x2000, 40));
  o = mutex.classify(0x2000, {});
  CHECK(o.kind == FutexKind::Mutex);
  CHECK(o.address == 0x2000);
  FutexClassifier sem(sym(0x3000, 32));
  CHECK(sem.classify(0x3000, {}).kind == FutexKind::Semaphore);
  FutexClassifier rw(sym(0x4000, 56));
  o = rw.classify(0x400c, {});
  CHECK(o.kind == FutexKind::Rwlock);
  CHECK(o.address == 0x4000);
  // The right size but a word where that kind never waits: not that object.
  CHECK(mutex.classify(0x2008, {}).kind == FutexKind::Other);
  // Another size: no kind from the symbol.
  FutexClassifier other(sym(0x5000, 8));
  CHECK(other.classify(0x5000, {}).kind == FutexKind::Other);
}

TEST_CASE("a plain wait for the value 2 is a mutex and nothing known is an other futex at the word") {
  FutexClassifier c;
  auto o = c.classify(0x6000, {stack({}), waited_for_2()});
  CHECK(o.kind == FutexKind::Mutex);
  CHECK(o.address == 0x6000);
  CHECK(o.source == Source::WaitValue);
  o = c.classify(0x7004, {stack({"worker"})});
  CHECK(o.kind == FutexKind::Other);
  CHECK(o.address == 0x7004);
  CHECK(o.source == Source::None);
}
