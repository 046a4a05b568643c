// Rows from BPF map contents: merging, ordering, errno breakdown, lost stacks, stack repair.
#include <catch2/catch.hpp>

#include <cstring>
#include <sstream>

#include "locktrace/model.h"
#include "locktrace/report.h"

using namespace lockkit::locktrace;

namespace {

lt_stat_key key(uint32_t pid, uint32_t tid, uint64_t addr, int32_t stackid, uint64_t caller = 0) {
  lt_stat_key k;
  std::memset(&k, 0, sizeof(k));
  k.pid = pid;
  k.tid = tid;
  k.uaddr = addr;
  k.stackid = stackid;
  k.caller = caller;
  return k;
}

lt_stat_val val(uint64_t blocked_ns, uint64_t waits, const char* comm = "app") {
  lt_stat_val v;
  std::memset(&v, 0, sizeof(v));
  v.blocked_ns = blocked_ns;
  v.max_blocked_ns = blocked_ns;
  v.wait_count = waits;
  v.blocked_count = blocked_ns ? waits : 0;
  std::strncpy(v.comm, comm, sizeof(v.comm) - 1);
  return v;
}

StackResolver by_id(std::map<int32_t, std::vector<std::string>> stacks) {
  return [stacks](const lt_stat_key& k) -> std::optional<std::vector<std::string>> {
    auto it = stacks.find(k.stackid);
    if (it == stacks.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

TEST_CASE("keys whose stacks resolve to the same frames merge into one row") {
  Snapshot s;
  lt_stat_val a = val(1000, 1), b = val(5000, 2);
  b.max_sys_ns = 70;
  s.stats = {{key(1, 2, 0x10, 7, 0xaa), a}, {key(1, 2, 0x10, 8, 0xbb), b}};
  auto rows = build_rows(s, by_id({{7, {"main", "lock"}}, {8, {"main", "lock"}}}));
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].blocked_ns == 6000);
  CHECK(rows[0].max_blocked_ns == 5000);
  CHECK(rows[0].max_sys_ns == 70);
  CHECK(rows[0].wait_count == 3);
}

TEST_CASE("different threads, addresses or stacks stay separate rows") {
  Snapshot s;
  s.stats = {{key(1, 2, 0x10, 7), val(1, 1)}, {key(1, 3, 0x10, 7), val(1, 1)},
             {key(1, 2, 0x20, 7), val(1, 1)}, {key(1, 2, 0x10, 8), val(1, 1)}};
  auto rows = build_rows(s, by_id({{7, {"main", "a"}}, {8, {"main", "b"}}}));
  CHECK(rows.size() == 4);
}

TEST_CASE("rows are sorted by pid, then blocked time descending") {
  Snapshot s;
  s.stats = {{key(20, 20, 0x1, 1), val(900, 1)}, {key(10, 11, 0x1, 1), val(100, 1)},
             {key(10, 12, 0x1, 1), val(300, 1)}, {key(20, 21, 0x1, 1), val(50, 1)}};
  auto rows = build_rows(s, by_id({{1, {"main"}}}));
  sort_rows(rows);
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].pid == 10);
  CHECK(rows[0].blocked_ns == 300);
  CHECK(rows[1].blocked_ns == 100);
  CHECK(rows[2].pid == 20);
  CHECK(rows[2].blocked_ns == 900);
  CHECK(rows[3].blocked_ns == 50);
}

TEST_CASE("errors are broken down by errno for their own row") {
  Snapshot s;
  lt_stat_key k1 = key(1, 2, 0x10, 7), k2 = key(1, 2, 0x20, 7);
  s.stats = {{k1, val(0, 5)}, {k2, val(0, 1)}};
  lt_err_key e1{}, e2{}, e3{};
  e1.row = k1;
  e1.err = 11;
  e2.row = k1;
  e2.err = 110;
  e3.row = k2;
  e3.err = 4;
  s.errs = {{e1, 3}, {e2, 2}, {e3, 1}};
  auto rows = build_rows(s, by_id({{7, {"main"}}}));
  sort_rows(rows);
  REQUIRE(rows.size() == 2);
  const Row& r1 = rows[0].addr == 0x10 ? rows[0] : rows[1];
  const Row& r2 = rows[0].addr == 0x10 ? rows[1] : rows[0];
  CHECK(r1.errnos == std::map<int, uint64_t>{{11, 3}, {110, 2}});
  CHECK(r2.errnos == std::map<int, uint64_t>{{4, 1}});
  CHECK(errno_name(11) == "EAGAIN");
  CHECK(errno_name(110) == "ETIMEDOUT");
}

TEST_CASE("a negative stack id is a lost stack and the resolver is not asked") {
  Snapshot s;
  s.stats = {{key(1, 2, 0x10, -17), val(10, 1)}};
  bool asked = false;
  auto rows = build_rows(s, [&](const lt_stat_key&) -> std::optional<std::vector<std::string>> {
    asked = true;
    return std::vector<std::string>{"x"};
  });
  CHECK_FALSE(asked);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].stack_lost);
  CHECK(lost_stack_rows(rows) == 1);
}

TEST_CASE("the task name comes from the BPF row") {
  Snapshot s;
  s.stats = {{key(1, 2, 0x10, 7), val(10, 1, "lt-waiter")}};
  auto rows = build_rows(s, by_id({{7, {"main"}}}));
  CHECK(rows[0].stack_column() == "lt-waiter;main");
}

TEST_CASE("lost stacks are the calls BPF could not store, or the rows shown lost when more") {
  std::vector<uint64_t> drops(LT_DROP_MAX, 0);
  CHECK(diagnostics(drops, 3).lost_stacks == 3);
  drops[LT_DROP_STACK_LOST] = 5;
  auto d = diagnostics(drops, 3);
  CHECK(d.lost_stacks == 5);
  CHECK(d.dropped.empty());
  CHECK(lockkit::diagnostic_lines(d) ==
        std::vector<std::string>{"WARNING: 5 stack traces could not be stored; a larger --stack-storage-size keeps more"});
  CHECK(diagnostics(std::vector<uint64_t>(LT_DROP_MAX, 0), 0).empty());
}

TEST_CASE("map-full drops are warned about by reason") {
  std::vector<uint64_t> drops(LT_DROP_MAX, 0);
  drops[LT_DROP_CALLS_FULL] = 5;
  drops[LT_DROP_STATS_FULL] = 2;
  auto d = diagnostics(drops, 0);
  CHECK(d.dropped_count("calls_map_full") == 5);
  CHECK(d.dropped_count("stats_map_full") == 2);
  CHECK(lockkit::diagnostic_lines(d) ==
        std::vector<std::string>{
            "WARNING: 5 futex calls were not traced: too many threads inside futex calls at once",
            "WARNING: 2 futex calls were not recorded: the statistics map is full"});
}

TEST_CASE("JSON counters are the debug counters only") {
  std::vector<uint64_t> dbg(LT_DBG_MAX, 0);
  dbg[LT_DBG_ENTERS] = 2;
  CHECK(debug_counters(dbg, 1) == Counters{{"enters", 2}, {"exits", 0}, {"exits_without_enter", 0},
                                           {"preempted", 0}, {"blocked_twice", 0}, {"unfinished", 1}});
}

TEST_CASE("debug counters print as 'name count' lines in a fixed order") {
  std::vector<uint64_t> dbg(LT_DBG_MAX, 0), drops(LT_DROP_MAX, 0);
  dbg[LT_DBG_ENTERS] = 10;
  dbg[LT_DBG_EXITS] = 12;
  dbg[LT_DBG_ORPHAN_EXITS] = 2;
  dbg[LT_DBG_PREEMPTED] = 1;
  dbg[LT_DBG_BLOCKED_TWICE] = 3;
  drops[LT_DROP_STACK_LOST] = 4;
  std::ostringstream os;
  write_debug(os, debug_counters(dbg, drops, 7));
  CHECK(os.str() ==
        "enters 10\nexits 12\nexits_without_enter 2\npreempted 1\nblocked_twice 3\nunfinished 7\n"
        "calls_map_full 0\nstats_map_full 0\nhist_map_full 0\nerrors_map_full 0\npids_map_full 0\n"
        "stack_errors 4\n");
}
