#include <catch2/catch.hpp>

#include <set>
#include <sstream>

#include "../json_check.h"
#include "lockstat/contention_model.h"
#include "lockstat/contention_report.h"

using namespace lockkit;
using namespace lockkit::lockstat;
using lockkit::testing::parse_output;

namespace {

// Stacks 1..: frames by id. Stack 1 waits in __lll_lock_wait, 2 releases in __lll_unlock_wake from
// release_orders, 3 waits in a condvar, 4 is a second waiting site of the mutex.
std::vector<Frame> frames_of(int32_t id) {
  auto f = [](const char* fn, uint64_t off, const char* mod) {
    Frame fr;
    fr.function = fn;
    fr.offset = off;
    fr.module = mod;
    return fr;
  };
  switch (id) {
    case 1: return {f("__lll_lock_wait", 0x30, "libc.so.6"), f("pthread_mutex_lock", 0x90, "libc.so.6"), f("place_order", 0x1a, "app")};
    case 2: return {f("__lll_unlock_wake", 0x20, "libc.so.6"), f("pthread_mutex_unlock", 0x40, "libc.so.6"), f("release_orders", 0x11, "app")};
    case 3: return {f("__futex_abstimed_wait_common", 0x50, "libc.so.6"), f("___pthread_cond_wait", 0x70, "libc.so.6"), f("consume", 0x22, "app")};
    case 4: return {f("__lll_lock_wait", 0x30, "libc.so.6"), f("pthread_mutex_lock", 0x90, "libc.so.6"), f("cancel_order", 0x2b, "app")};
  }
  return {};
}

constexpr uint64_t kMutex = 0x1000, kCond = 0x2000;

constexpr uint32_t kPid = 9;

lc_wait_key wait_key(uint64_t word, uint32_t tid, uint32_t holder, int32_t stack, uint32_t hint, uint32_t pid = kPid) {
  lc_wait_key k{};
  k.pid = pid;
  k.uaddr = word;
  k.tid = tid;
  k.holder = holder;
  k.stackid = stack;
  k.hint = hint;
  return k;
}

lc_wait_val wait_val(uint64_t n, uint64_t ns, uint64_t max) {
  lc_wait_val v{};
  v.contentions = n;
  v.wait_ns = ns;
  v.max_wait_ns = max;
  return v;
}

ContentionSnapshot sample() {
  ContentionSnapshot s;
  const uint32_t mutex_wait = LC_FUTEX_WAIT | LC_FUTEX_PRIVATE_FLAG | LC_HINT_VAL2;
  const uint32_t cond_wait = LC_FUTEX_WAIT_BITSET | LC_FUTEX_PRIVATE_FLAG;
  s.waits.push_back({wait_key(kMutex, 11, 10, 1, mutex_wait), wait_val(3, 3000, 1500)});
  s.waits.push_back({wait_key(kMutex, 12, 10, 4, mutex_wait), wait_val(2, 1000, 600)});
  s.waits.push_back({wait_key(kMutex, 12, 13, 4, mutex_wait), wait_val(1, 400, 400)});
  // An owner field that names no thread of the process (a torn read): no holder.
  s.waits.push_back({wait_key(kMutex, 11, 999999, 1, mutex_wait), wait_val(1, 100, 100)});
  // Both words of one condition variable.
  s.waits.push_back({wait_key(kCond + 0x28, 11, 0, 3, cond_wait), wait_val(4, 8000, 5000)});
  s.waits.push_back({wait_key(kCond + 0x2c, 12, 0, 3, cond_wait), wait_val(2, 2000, 1000)});
  lc_retry_key rk{};
  rk.pid = kPid;
  rk.uaddr = kMutex;
  rk.tid = 11;
  rk.hint = mutex_wait;
  s.retries.push_back({rk, 7});
  lc_release_key rel{};
  rel.pid = kPid;
  rel.uaddr = kMutex;
  rel.tid = 10;
  rel.stackid = 2;
  rel.hint = LC_FUTEX_WAKE | LC_FUTEX_PRIVATE_FLAG;
  s.releases.push_back({rel, {5, 5}});
  rel.tid = 13;
  s.releases.push_back({rel, {1, 1}});
  return s;
}

ContentionNaming naming() {
  ContentionNaming n;
  n.frames = [](uint32_t, int32_t id, uint64_t) { return frames_of(id); };
  n.data_object = [](uint32_t pid, uint64_t a) -> std::optional<DataObject> {
    if (pid == kPid && a >= kMutex && a < kMutex + 40) return DataObject{"orders_lock", kMutex, 40};
    return std::nullopt;
  };
  n.is_thread = [](uint32_t pid, uint32_t tid) { return pid == kPid && std::set<uint32_t>{10, 11, 12, 13}.count(tid) > 0; };
  return n;
}

const ContentionLock& find(const ContentionReport& r, FutexKind kind) {
  for (auto& l : r.locks)
    if (l.kind == kind) return l;
  FAIL("no lock of that kind");
  return r.locks.front();
}

}  // namespace

TEST_CASE("contention model: a mutex's waits, per thread and stack, with the holders that caused them") {
  InitLabels labels;
  ContentionReport r = build_contention_report(sample(), naming(), labels);
  REQUIRE(r.locks.size() == 2);
  const ContentionLock& m = find(r, FutexKind::Mutex);
  CHECK(m.address == kMutex);
  CHECK(m.display_name() == "orders_lock");
  CHECK(m.contentions == 7);
  CHECK(m.wait_ns == 4500);
  CHECK(m.max_wait_ns == 1500);
  CHECK(m.eagain_waits == 7);
  REQUIRE(m.threads.size() == 2);
  CHECK(m.threads[0].tid == 11);
  CHECK(m.threads[0].contentions == 4);
  CHECK(m.threads[0].eagain_waits == 7);
  CHECK(m.threads[1].tid == 12);
  CHECK(m.threads[1].contentions == 3);
  REQUIRE(m.stacks.size() == 2);
  CHECK(m.stacks[0].frames[2] == "place_order+0x1a [app]");  // most wait first
  CHECK(m.stacks[0].contentions == 4);
  CHECK(m.has_holders);
  REQUIRE(m.holders.size() == 2);
  CHECK(m.holders[0].tid == 10);
  CHECK(m.holders[0].contentions == 5);
  CHECK(m.holders[0].wait_ns == 4000);
  REQUIRE(m.holders[0].stacks.size() == 1);
  CHECK(m.holders[0].stacks[0].count == 5);
  CHECK(m.holders[0].stacks[0].frames[2] == "release_orders+0x11 [app]");
  CHECK(m.holders[1].tid == 13);
  CHECK(m.holders[1].contentions == 1);
  CHECK(m.unknown_holder_contentions == 1);
}

TEST_CASE("contention model: a condvar's two futex words are one condvar, apart from any mutex") {
  InitLabels labels;
  ContentionReport r = build_contention_report(sample(), naming(), labels);
  const ContentionLock& c = find(r, FutexKind::Condvar);
  CHECK(c.address == kCond);
  CHECK(c.words == std::vector<uint64_t>{kCond + 0x28, kCond + 0x2c});
  CHECK(c.contentions == 6);
  CHECK(c.wait_ns == 10000);
  CHECK(c.max_wait_ns == 5000);
  CHECK_FALSE(c.has_holders);
  CHECK(c.holders.empty());
}

TEST_CASE("contention model: an init call names a heap lock by label and init stack") {
  ContentionSnapshot s = sample();
  lc_init in{};
  in.kind = LC_INIT_COND;
  in.stackid = 3;
  lc_init_key ik{};
  ik.addr = kCond;
  ik.pid = kPid;
  s.inits.push_back({ik, in});
  InitLabels labels;
  ContentionReport r = build_contention_report(s, naming(), labels);
  const ContentionLock& c = find(r, FutexKind::Condvar);
  CHECK(c.source == FutexObject::Source::Init);
  CHECK(c.display_name() == "#1");
  CHECK_FALSE(c.init_frames.empty());
}

TEST_CASE("contention view: sort by contentions, top N, minimum wait") {
  InitLabels labels;
  ContentionReport r = build_contention_report(sample(), naming(), labels);
  CHECK(r.locks[0].kind == FutexKind::Condvar);  // by wait: 10000 > 4500
  apply_contention_view(r, SortKey::Count, 0, 0);
  CHECK(r.locks[0].kind == FutexKind::Mutex);  // 7 > 6
  apply_contention_view(r, SortKey::Wait, 0, 5000);
  REQUIRE(r.locks.size() == 1);
  CHECK(r.locks[0].kind == FutexKind::Condvar);
}

TEST_CASE("contention JSON: the documented shape, and no field this mode cannot know") {
  InitLabels labels;
  ContentionReport r = build_contention_report(sample(), naming(), labels);
  r.pid = 42;
  r.duration_s = 2;
  std::vector<uint64_t> drops(LC_DROP_MAX, 0);
  drops[LC_DROP_WAITS_FULL] = 3;
  drops[LC_DROP_STACK_LOST] = 1;
  add_contention_drops(r.diag, drops);
  std::ostringstream os;
  write_contention_json(os, r, 0);
  auto doc = parse_output(os.str());
  CHECK(doc["mode"] == "contention");
  CHECK(doc["pid"] == 42);
  CHECK(doc["duration_s"] == 2.0);
  CHECK(doc["dropped"]["waits_map_full"] == 3);
  CHECK(doc["lost_stacks"] == 1);
  CHECK(doc["warnings"].is_array());
  REQUIRE(doc["locks"].size() == 2);
  for (auto& l : doc["locks"]) {
    for (const char* k : {"address", "name", "kind", "contentions", "wait_ns", "max_wait_ns", "eagain_waits", "threads", "stacks"})
      CHECK(l.contains(k));
    for (const char* k : {"acquisitions", "hold_ns", "holds", "failed_trylocks", "min_wait_ns", "hold_hist", "wait_hist"})
      CHECK_FALSE(l.contains(k));
    for (auto& t : l["threads"]) CHECK_FALSE(t.contains("acquisitions"));
  }
  auto& cond = doc["locks"][0];
  CHECK(cond["kind"] == "condvar");
  CHECK_FALSE(cond.contains("holders"));
  auto& mutex = doc["locks"][1];
  CHECK(mutex["kind"] == "mutex");
  CHECK(mutex["pid"] == kPid);
  CHECK(mutex["name"] == "orders_lock");
  CHECK(mutex["address"] == "0x1000");
  REQUIRE(mutex["holders"].size() == 2);
  CHECK(mutex["holders"][0]["tid"] == 10);
  CHECK(mutex["holders"][0]["contentions"] == 5);
  CHECK(mutex["holders"][0]["wait_ns"] == 4000);
  CHECK(mutex["holders"][0]["stacks"][0]["count"] == 5);
  CHECK(mutex["holders"][0]["stacks"][0]["frames"][2] == "release_orders+0x11 [app]");
  CHECK(mutex["stacks"][0]["contentions"] == 4);
  CHECK(mutex["threads"][0]["eagain_waits"] == 7);
}

TEST_CASE("contention text and folded output: the blind spots said, stacks weighted by wait") {
  InitLabels labels;
  ContentionReport r = build_contention_report(sample(), naming(), labels);
  std::ostringstream text;
  write_contention_text(text, r, {});
  CHECK(text.str().find("uncontended acquisitions") != std::string::npos);
  CHECK(text.str().find("hold times") != std::string::npos);
  CHECK(text.str().find("spinning in user space") != std::string::npos);
  CHECK(text.str().find("tid 10: caused 5 contentions") != std::string::npos);
  std::ostringstream folded;
  write_contention_folded(folded, r);
  CHECK(folded.str().find("place_order;pthread_mutex_lock;__lll_lock_wait;orders_lock 3100\n") != std::string::npos);
}

TEST_CASE("the BPF side keeps waits and wakes of every futex command glibc and futex2 use") {
  for (uint32_t cmd : {LC_FUTEX_WAIT, LC_FUTEX_WAIT_BITSET, LC_FUTEX_LOCK_PI, LC_FUTEX_LOCK_PI2,
                       LC_FUTEX_WAIT_REQUEUE_PI, LC_CMD_FUTEX2_WAIT, LC_CMD_FUTEX2_WAITV})
    CHECK(lc_classify_cmd(cmd) == LC_CLASS_WAIT);
  for (uint32_t cmd : {LC_FUTEX_WAKE, LC_FUTEX_WAKE_BITSET, LC_FUTEX_WAKE_OP, LC_FUTEX_REQUEUE,
                       LC_FUTEX_CMP_REQUEUE, LC_FUTEX_CMP_REQUEUE_PI, LC_FUTEX_UNLOCK_PI, LC_CMD_FUTEX2_WAKE})
    CHECK(lc_classify_cmd(cmd) == LC_CLASS_WAKE);
  CHECK(lc_classify_cmd(2) == LC_CLASS_NONE);  // FUTEX_FD
  CHECK(lc_classify_cmd(8) == LC_CLASS_NONE);  // FUTEX_TRYLOCK_PI never sleeps
  // The private and clock flags are stripped before classifying.
  CHECK(lc_classify_cmd((LC_FUTEX_WAIT_BITSET | LC_FUTEX_PRIVATE_FLAG | LC_FUTEX_CLOCK_REALTIME) & LC_FUTEX_CMD_MASK) ==
        LC_CLASS_WAIT);
}

TEST_CASE("contention model: a private FUTEX_WAIT for 2 is a mutex even without names or symbols") {
  ContentionSnapshot s;
  s.waits.push_back({wait_key(0x9000, 11, 10, 5, LC_FUTEX_WAIT | LC_FUTEX_PRIVATE_FLAG | LC_HINT_VAL2),
                     wait_val(2, 200, 150)});
  s.waits.push_back({wait_key(0xa000, 11, 10, 5, LC_FUTEX_WAIT_BITSET | LC_FUTEX_PRIVATE_FLAG | LC_HINT_VAL2),
                     wait_val(1, 100, 100)});
  ContentionNaming n;
  n.frames = [](uint32_t, int32_t, uint64_t) { return std::vector<Frame>{}; };
  InitLabels labels;
  ContentionReport r = build_contention_report(s, n, labels);
  REQUIRE(r.locks.size() == 2);
  const ContentionLock& m = find(r, FutexKind::Mutex);
  CHECK(m.address == 0x9000);
  CHECK(m.source == FutexObject::Source::WaitValue);
  REQUIRE(m.holders.size() == 1);  // no thread list given: any non-zero owner but the waiter
  CHECK(m.holders[0].tid == 10);
  CHECK(find(r, FutexKind::Other).address == 0xa000);  // a bitset wait for 2 is not the protocol's
}

TEST_CASE("contention model: one address in two processes is two locks, each named in its process") {
  ContentionSnapshot s = sample();
  s.waits.push_back({wait_key(kMutex, 21, 20, 1, LC_FUTEX_WAIT | LC_FUTEX_PRIVATE_FLAG | LC_HINT_VAL2, 8),
                     wait_val(1, 50, 50)});
  InitLabels labels;
  ContentionReport r = build_contention_report(s, naming(), labels);
  REQUIRE(r.locks.size() == 3);
  int mutexes = 0;
  for (auto& l : r.locks) {
    if (l.kind != FutexKind::Mutex) continue;
    mutexes++;
    if (l.pid == 8) {
      CHECK(l.contentions == 1);
      CHECK_FALSE(l.symbol.has_value());  // orders_lock is a symbol of process 9 only
      CHECK(l.unknown_holder_contentions == 1);  // 20 is no thread of process 8 that was seen
    } else {
      CHECK(l.pid == kPid);
      CHECK(l.contentions == 7);
    }
  }
  CHECK(mutexes == 2);
}

TEST_CASE("contention model: a wait still sleeping at the end makes its lock, with the holder it waits for") {
  ContentionSnapshot s;
  lc_call c{};
  c.uaddr = 0xb000;
  c.pid = kPid;
  c.owner = 10;
  c.hint = LC_FUTEX_WAIT | LC_FUTEX_PRIVATE_FLAG | LC_HINT_VAL2;
  c.cls = LC_CLASS_WAIT;
  c.start_ns = 1000;
  s.in_progress.push_back({11, c});
  s.read_ns = 5000;
  InitLabels labels;
  ContentionReport r = build_contention_report(s, naming(), labels);
  REQUIRE(r.locks.size() == 1);
  const ContentionLock& l = r.locks[0];
  CHECK(l.kind == FutexKind::Mutex);
  CHECK(l.contentions == 0);  // not finished: not a contention yet
  CHECK(l.in_progress == 1);
  CHECK(l.in_progress_ns == 4000);
  REQUIRE(l.threads.size() == 1);
  CHECK(l.threads[0].tid == 11);
  CHECK(l.threads[0].in_progress);
  REQUIRE(l.holders.size() == 1);
  CHECK(l.holders[0].tid == 10);
  CHECK(l.holders[0].in_progress == 1);
  CHECK(l.holders[0].contentions == 0);
}
