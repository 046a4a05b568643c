#include <catch2/catch.hpp>

#include "lockstat/model.h"

using namespace lockkit::lockstat;

namespace {

lk_stat_key key(uint64_t lock, uint32_t tid, int32_t stackid, uint32_t kind = LK_MUTEX, uint32_t mode = LK_EXCLUSIVE) {
  lk_stat_key k{};
  k.lock = lock;
  k.tid = tid;
  k.stackid = stackid;
  k.caller = 0x1000 + uint64_t(stackid);
  k.kind = kind;
  k.mode = mode;
  return k;
}

lk_stat_val val(uint64_t acq, uint64_t wait, uint64_t wmax, uint64_t hold, uint64_t hmax) {
  lk_stat_val v{};
  v.acquisitions = acq;
  v.wait_ns = wait;
  v.wait_min = acq ? wait / acq : UINT64_MAX;
  v.wait_max = wmax;
  v.holds = acq;
  v.hold_ns = hold;
  v.hold_min = acq ? hold / acq : UINT64_MAX;
  v.hold_max = hmax;
  return v;
}

Naming naming() {
  Naming n;
  n.frames = [](uint32_t, int32_t id, uint64_t) {
    return std::vector<std::string>{"pthread_mutex_lock+0x0 [libc.so.6]", "fn" + std::to_string(id) + "+0x4 [app]"};
  };
  n.data_symbol = [](uint32_t, uint64_t a) -> std::optional<std::string> {
    if (a == 0xA) return std::string("global_lock");
    return std::nullopt;
  };
  n.init_stack = [](uint32_t, uint64_t a) -> std::optional<std::pair<std::vector<std::string>, uint32_t>> {
    if (a == 0xB || a == 0xC) return std::make_pair(std::vector<std::string>{"init_" + std::to_string(a)}, 0u);
    return std::nullopt;
  };
  return n;
}

Snapshot two_locks() {
  Snapshot s;
  s.stats.push_back({key(0xA, 1, 7), val(10, 1000, 300, 5000, 900)});
  s.stats.push_back({key(0xA, 2, 7), val(5, 4000, 2000, 500, 200)});
  s.stats.push_back({key(0xA, 2, 8), val(1, 10, 10, 10, 10)});
  s.stats.push_back({key(0xB, 1, 9), val(3, 30, 20, 9000, 5000)});
  return s;
}

const LockStats& find(const Report& r, uint64_t addr) {
  for (auto& l : r.locks)
    if (l.addr == addr) return l;
  FAIL("lock missing");
  throw 0;
}

}  // namespace

TEST_CASE("lock totals roll up every thread and stack") {
  InitLabels labels;
  Report r = build_report(two_locks(), naming(), labels, 100);
  const LockStats& a = find(r, 0xA);
  CHECK(a.totals.acquisitions == 16);
  CHECK(a.totals.wait_ns == 5010);
  CHECK(a.totals.wait_max == 2000);
  CHECK(a.totals.hold_ns == 5510);
  CHECK(a.totals.hold_max == 900);
  CHECK(a.totals.min_wait() == 10);
}

TEST_CASE("thread totals roll up that thread's stacks") {
  InitLabels labels;
  Report r = build_report(two_locks(), naming(), labels, 100);
  const LockStats& a = find(r, 0xA);
  REQUIRE(a.threads.size() == 2);
  CHECK(a.threads[1].tid == 2);
  CHECK(a.threads[1].totals.acquisitions == 6);
  CHECK(a.threads[1].stacks.size() == 2);
}

TEST_CASE("stacks with the same frames merge across threads") {
  InitLabels labels;
  Report r = build_report(two_locks(), naming(), labels, 100);
  const LockStats& a = find(r, 0xA);
  REQUIRE(a.stacks.size() == 2);
  CHECK(a.stacks[0].totals.acquisitions == 15);  // stack 7 of tids 1 and 2, largest wait first
}

TEST_CASE("globals are named by symbol and initialised locks by a stable #N label") {
  InitLabels labels;
  Snapshot s = two_locks();
  s.stats.push_back({key(0xC, 1, 9), val(1, 1, 1, 1, 1)});
  Report r1 = build_report(s, naming(), labels, 100);
  CHECK(find(r1, 0xA).display_name() == "global_lock");
  int b = find(r1, 0xB).init_label, c = find(r1, 0xC).init_label;
  CHECK(b != c);
  Report r2 = build_report(s, naming(), labels, 100);
  CHECK(find(r2, 0xB).init_label == b);
  CHECK(find(r2, 0xC).display_name() == "#" + std::to_string(c));
}

TEST_CASE("locks with neither symbol nor init stack show their address") {
  InitLabels labels;
  Snapshot s;
  s.stats.push_back({key(0xD0, 1, 1), val(1, 1, 1, 1, 1)});
  Report r = build_report(s, naming(), labels, 100);
  CHECK(r.locks[0].display_name() == "0xd0");
}

TEST_CASE("sorting by hold puts the longest-held lock first") {
  InitLabels labels;
  Report r = build_report(two_locks(), naming(), labels, 100);
  apply_view(r, SortKey::Hold, 0, 0);
  CHECK(r.locks[0].addr == 0xB);
  apply_view(r, SortKey::Wait, 0, 0);
  CHECK(r.locks[0].addr == 0xA);
  apply_view(r, SortKey::MaxHold, 0, 0);
  CHECK(r.locks[0].addr == 0xB);
}

TEST_CASE("top N keeps the N first locks") {
  InitLabels labels;
  Report r = build_report(two_locks(), naming(), labels, 100);
  apply_view(r, SortKey::Count, 1, 0);
  REQUIRE(r.locks.size() == 1);
  CHECK(r.locks[0].addr == 0xA);
}

TEST_CASE("min wait drops locks whose total wait is below it") {
  InitLabels labels;
  Report r = build_report(two_locks(), naming(), labels, 100);
  apply_view(r, SortKey::Wait, 0, 1000);
  REQUIRE(r.locks.size() == 1);
  CHECK(r.locks[0].addr == 0xA);
}

TEST_CASE("sampled reports scale counts and sums but not extremes") {
  InitLabels labels;
  Report r = build_report(two_locks(), naming(), labels, 25);
  CHECK(r.estimated());
  const LockStats& a = find(r, 0xA);
  CHECK(a.totals.acquisitions == 64);
  CHECK(a.totals.wait_ns == 20040);
  CHECK(a.totals.wait_max == 2000);
}

TEST_CASE("rwlock acquisitions split into reads and writes") {
  InitLabels labels;
  Snapshot s;
  s.stats.push_back({key(0xE, 1, 1, LK_RWLOCK, LK_SHARED), val(4, 1, 1, 1, 1)});
  s.stats.push_back({key(0xE, 2, 1, LK_RWLOCK, LK_EXCLUSIVE), val(3, 1, 1, 1, 1)});
  Report r = build_report(s, naming(), labels, 100);
  CHECK(r.locks[0].read_acquisitions == 4);
  CHECK(r.locks[0].write_acquisitions == 3);
}

TEST_CASE("histograms roll up per lock and per thread and globally") {
  InitLabels labels;
  Snapshot s = two_locks();
  s.hists.push_back({lk_hist_key{0xA, 1, LK_WAIT, 3}, 5});
  s.hists.push_back({lk_hist_key{0xA, 2, LK_WAIT, 3}, 2});
  s.hists.push_back({lk_hist_key{0xB, 1, LK_HOLD, 4}, 1});
  Report r = build_report(s, naming(), labels, 100);
  CHECK(find(r, 0xA).wait_hist.slot(3) == 7);
  CHECK(r.thread_hists[1].first.slot(3) == 5);
  CHECK(r.thread_hists[1].second.slot(4) == 1);
  CHECK(r.wait_hist.total() == 7);
}

TEST_CASE("merging snapshots adds sums and combines extremes") {
  Snapshot total = two_locks();
  Snapshot delta;
  delta.stats.push_back({key(0xA, 1, 7), val(2, 100, 5000, 10, 1)});
  delta.stats.push_back({key(0xF, 3, 1), val(1, 1, 1, 1, 1)});
  merge_snapshot(total, delta);
  REQUIRE(total.stats.size() == 5);
  CHECK(total.stats[0].second.acquisitions == 12);
  CHECK(total.stats[0].second.wait_max == 5000);
  CHECK(total.stats[0].second.hold_max == 900);
}

TEST_CASE("semaphore handoffs and unreleased acquisitions roll up and merge") {
  Snapshot s;
  lk_stat_val post{};
  post.wait_min = post.hold_min = UINT64_MAX;
  post.handoffs = 4;
  lk_stat_val take = val(4, 400, 200, 0, 0);
  take.holds = 0;
  take.unreleased = 3;
  s.stats.push_back({key(0xD, 1, 7, LK_SEM), post});
  s.stats.push_back({key(0xD, 2, 8, LK_SEM), take});
  Snapshot total;
  merge_snapshot(total, s);
  merge_snapshot(total, s);
  InitLabels labels;
  Report r = build_report(total, naming(), labels, 100);
  const LockStats& l = find(r, 0xD);
  CHECK(std::string(kind_name(l.kind)) == "semaphore");
  CHECK(l.totals.handoffs == 8);
  CHECK(l.totals.unreleased == 6);
  CHECK(l.totals.acquisitions == 8);
  REQUIRE(l.threads.size() == 2);
  CHECK(l.threads[0].totals.handoffs == 8);
  CHECK(l.threads[1].totals.unreleased == 6);
  Report sampled = build_report(s, naming(), labels, 50);
  CHECK(find(sampled, 0xD).totals.unreleased == 6);
}

TEST_CASE("semaphore acquisitions open at the end become unreleased rows, other kinds none") {
  std::vector<std::pair<lk_held_key, lk_held>> held;
  lk_held h{};
  h.acquired = 5;
  h.caller = 0x1234;
  h.stackid = 9;
  h.kind = LK_SEM;
  h.depth = 1;
  held.push_back({lk_held_key{0xE, 7, 0}, h});
  h.kind = LK_MUTEX;
  held.push_back({lk_held_key{0xF, 7, 0}, h});
  auto rows = open_semaphore_rows(held);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].first.lock == 0xE);
  CHECK(rows[0].first.tid == 7);
  CHECK(rows[0].first.stackid == 9);
  CHECK(rows[0].first.caller == 0x1234);
  CHECK(rows[0].second.unreleased == 1);
  CHECK(rows[0].second.acquisitions == 0);
  Snapshot s;
  s.stats = rows;
  InitLabels labels;
  Report r = build_report(s, naming(), labels, 100);
  CHECK(find(r, 0xE).totals.min_wait() == 0);
}

TEST_CASE("sort keys parse from their names only") {
  CHECK(parse_sort_key("avg_wait") == SortKey::AvgWait);
  CHECK_FALSE(parse_sort_key("bogus").has_value());
}

TEST_CASE("one address in two processes is two locks") {
  Snapshot s;
  lk_stat_key parent = key(0xA, 1, 7), child = key(0xA, 5, 7);
  parent.pid = 1;
  child.pid = 5;
  s.stats.push_back({parent, val(10, 1000, 300, 5000, 900)});
  s.stats.push_back({child, val(4, 400, 300, 500, 200)});
  lk_hist_key h{};
  h.lock = 0xA;
  h.tid = 5;
  h.which = LK_WAIT;
  h.slot = 3;
  s.hists.push_back({h, 4});
  InitLabels labels;
  Report r = build_report(s, naming(), labels, 100);
  REQUIRE(r.locks.size() == 2);
  for (auto& l : r.locks) {
    CHECK(l.addr == 0xA);
    CHECK(l.totals.acquisitions == (l.pid == 1 ? 10u : 4u));
    CHECK(l.threads.size() == 1);
    CHECK(l.threads[0].tid == (l.pid == 1 ? 1u : 5u));
    CHECK(l.wait_hist.total() == (l.pid == 5 ? 4u : 0u));  // the child's thread's histogram row
  }
}
