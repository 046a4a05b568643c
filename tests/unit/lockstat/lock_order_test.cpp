#include <catch2/catch.hpp>

#include <set>
#include <sstream>

#include "lockstat/lock_order.h"

using namespace lockkit::lockstat;

namespace {

lk_order_key key(uint64_t from, uint64_t to, uint32_t from_mode = LK_EXCLUSIVE, uint32_t to_mode = LK_EXCLUSIVE) {
  lk_order_key k{};
  k.from = from;
  k.to = to;
  k.from_mode = from_mode;
  k.to_mode = to_mode;
  return k;
}

lk_order_edge edge(uint32_t tid, uint32_t kind = LK_MUTEX) {
  lk_order_edge e{};
  e.tid = tid;
  e.from_kind = e.to_kind = uint16_t(kind);
  e.from_stackid = e.to_stackid = int32_t(tid);
  return e;
}

void add(OrderEdges& g, uint64_t from, uint64_t to, uint32_t tid = 1) { g.push_back({key(from, to), edge(tid)}); }

// The cycles as lists of locks, and each cycle's edges checked to follow its locks.
std::set<std::vector<uint64_t>> cycles_of(const OrderEdges& g, const CycleSearch& cs) {
  std::set<std::vector<uint64_t>> out;
  for (auto& c : cs.cycles) {
    REQUIRE(c.edges.size() == c.locks.size());
    for (size_t i = 0; i < c.locks.size(); i++) {
      CHECK(g[c.edges[i]].first.from == c.locks[i]);
      CHECK(g[c.edges[i]].first.to == c.locks[(i + 1) % c.locks.size()]);
    }
    out.insert(c.locks);
  }
  CHECK(out.size() == cs.cycles.size());  // none twice
  return out;
}

}  // namespace

TEST_CASE("lock order: A then B in one thread and B then A in another is a 2-cycle") {
  OrderEdges g;
  add(g, 0x20, 0x10, 7);
  add(g, 0x10, 0x20, 8);
  CycleSearch cs = find_cycles(g);
  CHECK_FALSE(cs.cut);
  CHECK(cycles_of(g, cs) == std::set<std::vector<uint64_t>>{{0x10, 0x20}});
  // locks[0] is the lowest address, and the first edge leaves it.
  CHECK(g[cs.cycles[0].edges[0]].second.tid == 8);
}

TEST_CASE("lock order: A->B, B->C, C->A is one 3-cycle") {
  OrderEdges g;
  add(g, 0x1, 0x2);
  add(g, 0x2, 0x3);
  add(g, 0x3, 0x1);
  CycleSearch cs = find_cycles(g);
  CHECK(cycles_of(g, cs) == std::set<std::vector<uint64_t>>{{0x1, 0x2, 0x3}});
}

TEST_CASE("lock order: locks always taken in one order make no cycle") {
  OrderEdges g;
  add(g, 0x1, 0x2);
  add(g, 0x1, 0x3);
  add(g, 0x2, 0x3);
  add(g, 0x3, 0x4);
  add(g, 0x1, 0x4);
  CycleSearch cs = find_cycles(g);
  CHECK(cs.cycles.empty());
  CHECK_FALSE(cs.cut);
  CHECK(cs.shared_only == 0);
}

TEST_CASE("lock order: overlapping cycles are each reported once") {
  // A<->B, B->C->A (shares B->... and ...->A with the first), and A->B->C->A.
  OrderEdges g;
  add(g, 0xa, 0xb);
  add(g, 0xb, 0xa);
  add(g, 0xb, 0xc);
  add(g, 0xc, 0xa);
  add(g, 0xc, 0xb);
  CycleSearch cs = find_cycles(g);
  CHECK(cycles_of(g, cs) == std::set<std::vector<uint64_t>>{{0xa, 0xb}, {0xb, 0xc}, {0xa, 0xb, 0xc}});
  // Shortest first.
  CHECK(cs.cycles.front().locks.size() == 2);
  CHECK(cs.cycles.back().locks.size() == 3);
}

TEST_CASE("lock order: a ring longer than the length bound is not reported and the search says it was cut") {
  OrderEdges g;
  for (uint64_t i = 1; i <= 5; i++) add(g, i, i % 5 + 1);  // 1->2->3->4->5->1
  add(g, 1, 9);
  add(g, 9, 1);  // and a 2-cycle, within the bound
  CycleLimits lim;
  lim.max_length = 4;
  CycleSearch cs = find_cycles(g, lim);
  CHECK(cycles_of(g, cs) == std::set<std::vector<uint64_t>>{{1, 9}});
  CHECK(cs.cut);
  CHECK_THAT(cs.cut_why, Catch::Contains("4 locks"));
  lim.max_length = 5;
  CycleSearch whole = find_cycles(g, lim);
  CHECK(cycles_of(g, whole) == std::set<std::vector<uint64_t>>{{1, 9}, {1, 2, 3, 4, 5}});
  CHECK_FALSE(whole.cut);
}

TEST_CASE("lock order: the cycle count bound stops the search and says so") {
  // A complete graph on 5 locks has 84 elementary cycles.
  OrderEdges g;
  for (uint64_t a = 1; a <= 5; a++)
    for (uint64_t b = 1; b <= 5; b++)
      if (a != b) add(g, a, b);
  CHECK(find_cycles(g).cycles.size() == 84);
  CycleLimits lim;
  lim.max_cycles = 10;
  CycleSearch cs = find_cycles(g, lim);
  CHECK(cs.cycles.size() == 10);
  CHECK(cs.cut);
  CHECK_THAT(cs.cut_why, Catch::Contains("first 10 cycles"));
}

TEST_CASE("lock order: the step bound stops the search and says so") {
  OrderEdges g;
  for (uint64_t a = 1; a <= 6; a++)
    for (uint64_t b = 1; b <= 6; b++)
      if (a != b) add(g, a, b);
  CycleLimits lim;
  lim.max_steps = 50;
  CycleSearch cs = find_cycles(g, lim);
  CHECK(cs.cut);
  CHECK_THAT(cs.cut_why, Catch::Contains("50 steps"));
  CHECK(cs.cycles.size() < find_cycles(g).cycles.size());
}

TEST_CASE("lock order: a cycle whose lock is held for reading and taken for reading is no deadlock") {
  // T1 holds A for reading and write-locks B; T2 holds B and read-locks A: readers do not wait for
  // each other, so T2 gets A.
  OrderEdges g;
  g.push_back({key(0x1, 0x2, LK_SHARED, LK_EXCLUSIVE), edge(1, LK_RWLOCK)});
  g.push_back({key(0x2, 0x1, LK_EXCLUSIVE, LK_SHARED), edge(2, LK_RWLOCK)});
  CycleSearch cs = find_cycles(g);
  CHECK(cs.cycles.empty());
  CHECK(cs.shared_only == 1);
  // T2 write-locks A instead: it waits for T1's read hold, a deadlock.
  g.push_back({key(0x2, 0x1, LK_EXCLUSIVE, LK_EXCLUSIVE), edge(3, LK_RWLOCK)});
  cs = find_cycles(g);
  REQUIRE(cs.cycles.size() == 1);
  CHECK(g[cs.cycles[0].edges[1]].second.tid == 3);  // the edge that makes it one
  CHECK(cs.shared_only == 0);
}

TEST_CASE("lock order: the report names locks by symbol, else by init label, else address, and keeps each edge's stacks") {
  OrderEdges g;
  add(g, 0x1000, 0x7f00, 11);
  add(g, 0x7f00, 0x1000, 12);
  add(g, 0x1000, 0x9999, 13);
  Naming n;
  n.frames = [](uint32_t, int32_t id, uint64_t) { return std::vector<std::string>{"fn" + std::to_string(id) + "+0x1 [app]"}; };
  n.data_symbol = [](uint32_t, uint64_t a) -> std::optional<std::string> {
    if (a == 0x1000) return std::string("inv_a");
    return std::nullopt;
  };
  n.init_stack = [](uint32_t, uint64_t a) -> std::optional<std::pair<std::vector<std::string>, uint32_t>> {
    if (a == 0x7f00) return std::make_pair(std::vector<std::string>{"pthread_mutex_init", "make_heap"}, uint32_t(LK_MUTEX));
    return std::nullopt;
  };
  InitLabels labels;
  labels.label(0x5);  // a lock the main report labelled first keeps #1
  LockOrderReport r = build_lock_order(g, n, labels);
  REQUIRE(r.cycles.size() == 1);
  lockkit::Json j = lock_order_json(r, 0);
  CHECK(j["cycles"][0]["locks"] == lockkit::Json::array({"inv_a", "#2"}));
  auto& e0 = j["cycles"][0]["edges"][0];
  CHECK(e0["from"] == "inv_a");
  CHECK(e0["to"] == "#2");
  CHECK(e0["tid"] == 11);
  CHECK(e0["frames"] == lockkit::Json::array({"fn11+0x1 [app]"}));
  CHECK(j["cycles"][0]["edges"][1]["tid"] == 12);
  CHECK(j["edges"].size() == 3);
  CHECK(j["edges"][1]["to"] == "0x9999");  // no name: the address
  CHECK(j["truncated"] == false);
  std::ostringstream os;
  write_lock_order_text(os, r, 0);
  CHECK_THAT(os.str(), Catch::Contains("Potential deadlock 1: inv_a -> #2 -> inv_a"));
  CHECK_THAT(os.str(), Catch::Contains("by tid 12"));
  CHECK_THAT(os.str(), Catch::Contains("make_heap"));
}

TEST_CASE("lock order: one address in two processes is two locks, and cycles stay within a process") {
  // pid 1 takes A then B, pid 2 takes B then A: the same addresses, different locks, no cycle.
  OrderEdges g;
  g.push_back({key(0x1, 0x2), edge(10)});
  g.back().first.pid = 1;
  g.push_back({key(0x2, 0x1), edge(20)});
  g.back().first.pid = 2;
  CHECK(find_cycles(g).cycles.empty());
  // pid 2 also takes A then B: its own inversion.
  g.push_back({key(0x1, 0x2), edge(21)});
  g.back().first.pid = 2;
  CycleSearch cs = find_cycles(g);
  REQUIRE(cs.cycles.size() == 1);
  CHECK(cs.cycles[0].pid == 2);
  for (size_t e : cs.cycles[0].edges) CHECK(g[e].first.pid == 2);
}
