// Period arithmetic (the inline functions BPF itself runs) and the flow of finished periods to the
// log: pushed out at rollover, swept when idle, flushed at exit, merged and ordered.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <tuple>

#include "mklockstat/model.h"

using namespace lockkit::mklockstat;

namespace {

constexpr uint64_t P = 50000000;  // 50 ms

mk_key key(uint32_t pid, uint32_t tid, uint64_t lock, uint32_t type = MK_T_SEM_W) {
  mk_key k;
  std::memset(&k, 0, sizeof(k));
  k.pid = pid;
  k.tid = tid;
  k.lock = lock;
  k.type = type;
  return k;
}

struct KeyLess {
  bool operator()(const mk_key& a, const mk_key& b) const {
    return std::tie(a.lock, a.pid, a.tid, a.cpu, a.type) < std::tie(b.lock, b.pid, b.tid, b.cpu, b.type);
  }
};

// The BPF side's period table, driven by the same header functions wait_end() uses: a wait that
// ends in a later period pushes the open one out and opens a new one.
struct BpfPeriods {
  std::map<mk_key, mk_period, KeyLess> map;
  std::vector<Sample> pushed;  // what went through the perf buffer

  void wait_end(const mk_key& k, uint64_t now, uint64_t wait, int32_t stackid) {
    auto it = map.find(k);
    if (it != map.end()) {
      if (mk_period_add(&it->second, now, wait, P)) return;
      pushed.push_back(sample_from(k, it->second));
      map.erase(it);
    }
    mk_period n;
    std::memset(&n, 0, sizeof(n));
    mk_period_open(&n, now, wait, P, stackid);
    map[k] = n;
  }
  // The exit flush: every period still open.
  std::vector<Sample> drain() {
    std::vector<Sample> out;
    for (auto& [k, v] : map) out.push_back(sample_from(k, v));
    map.clear();
    return out;
  }
};

Sample sample(uint64_t start, uint32_t tid, uint64_t count, uint64_t wait, int32_t stackid = 1) {
  Sample s;
  s.start = start;
  s.pid = 100;
  s.tid = tid;
  s.lock = 0xffff888100000000ull;
  s.type = MK_T_SEM_W;
  s.count = count;
  s.wait_ns = wait;
  s.stackid = stackid;
  s.comm = "worker";
  return s;
}

}  // namespace

TEST_CASE("period start is the multiple of the period at or below the time") {
  CHECK(period_start(0, P) == 0);
  CHECK(period_start(P - 1, P) == 0);
  CHECK(period_start(P, P) == P);
  CHECK(period_start(1093912345678ull, P) == 1093900000000ull);
  CHECK(period_start(1093912345678ull, 1000000) == 1093912000000ull);
}

TEST_CASE("periods before complete_before ended at least one whole period ago") {
  CHECK(complete_before(10 * P + 1, P) == 9 * P);
  CHECK(complete_before(10 * P, P) == 9 * P);
  CHECK(complete_before(P / 2, P) == 0);  // nothing is complete yet
}

TEST_CASE("a wait ending inside the open period is added to it") {
  mk_period v;
  std::memset(&v, 0, sizeof(v));
  mk_period_open(&v, 3 * P + 10, 500, P, 7);
  CHECK(v.start == 3 * P);
  CHECK(v.count == 1);
  CHECK(v.wait_ns == 500);
  CHECK(v.stackid == 7);
  CHECK(mk_period_add(&v, 4 * P - 1, 250, P) == 1);
  CHECK(v.count == 2);
  CHECK(v.wait_ns == 750);
}

TEST_CASE("a wait ending in a later period leaves the finished period untouched") {
  mk_period v;
  std::memset(&v, 0, sizeof(v));
  mk_period_open(&v, 3 * P, 500, P, 7);
  CHECK(mk_period_add(&v, 4 * P, 250, P) == 0);
  CHECK(v.start == 3 * P);
  CHECK(v.count == 1);
  CHECK(v.wait_ns == 500);
}

TEST_CASE("rollover pushes finished periods and the exit flush emits the last one of every thread") {
  BpfPeriods bpf;
  mk_key a = key(100, 101, 0x1000), b = key(100, 102, 0x1000);
  bpf.wait_end(a, 0 * P + 5, 10, 1);
  bpf.wait_end(a, 0 * P + 9, 20, 1);
  bpf.wait_end(b, 1 * P + 1, 40, 2);
  bpf.wait_end(a, 2 * P + 3, 30, 1);  // pushes a's period 0
  bpf.wait_end(a, 2 * P + 4, 5, 1);
  REQUIRE(bpf.pushed.size() == 1);
  CHECK(bpf.pushed[0].start == 0);
  CHECK(bpf.pushed[0].count == 2);
  CHECK(bpf.pushed[0].wait_ns == 30);

  PeriodBuffer buf;
  for (auto& s : bpf.pushed) buf.add(s);
  for (auto& s : bpf.drain()) buf.add(s);  // a's period 2 and b's period 1 were never pushed
  auto out = buf.take_all();
  REQUIRE(out.size() == 3);
  CHECK(std::make_tuple(out[0].start, out[0].tid, out[0].count) == std::make_tuple(0 * P, 101u, uint64_t(2)));
  CHECK(std::make_tuple(out[1].start, out[1].tid, out[1].count) == std::make_tuple(1 * P, 102u, uint64_t(1)));
  CHECK(std::make_tuple(out[2].start, out[2].tid, out[2].count) == std::make_tuple(2 * P, 101u, uint64_t(2)));
  uint64_t waits = 0;
  for (auto& s : out) waits += s.count;
  CHECK(waits == 5);  // every wait in exactly one sample
}

TEST_CASE("take_before hands out complete periods in order and keeps the rest") {
  PeriodBuffer buf;
  buf.add(sample(2 * P, 101, 1, 10));
  buf.add(sample(0, 102, 1, 10));
  buf.add(sample(0, 101, 1, 10));
  buf.add(sample(1 * P, 101, 1, 10));
  auto out = buf.take_before(2 * P);
  REQUIRE(out.size() == 3);
  CHECK(std::make_pair(out[0].start, out[0].tid) == std::make_pair(uint64_t(0), 101u));
  CHECK(std::make_pair(out[1].start, out[1].tid) == std::make_pair(uint64_t(0), 102u));
  CHECK(out[2].start == P);
  CHECK(buf.size() == 1);
  CHECK(buf.take_before(2 * P).empty());
  CHECK(buf.take_all().at(0).start == 2 * P);
}

TEST_CASE("pieces of one period of one thread and lock are merged") {
  PeriodBuffer buf;
  buf.add(sample(P, 101, 2, 100, -17));  // e.g. taken by a sweep while BPF reopened the period
  buf.add(sample(P, 101, 3, 50, 4));
  auto out = buf.take_all();
  REQUIRE(out.size() == 1);
  CHECK(out[0].count == 5);
  CHECK(out[0].wait_ns == 150);
  CHECK(out[0].stackid == 4);  // the known stack wins over a lost one
}

TEST_CASE("read and write sides of one lock stay separate samples") {
  PeriodBuffer buf;
  Sample r = sample(P, 101, 1, 10), w = sample(P, 101, 1, 10);
  r.type = MK_T_SEM_R;
  buf.add(w);
  buf.add(r);
  auto out = buf.take_all();
  REQUIRE(out.size() == 2);
  CHECK(out[0].type == MK_T_SEM_R);
  CHECK(out[1].type == MK_T_SEM_W);
}

TEST_CASE("a sample for a period already handed out is counted late, not dropped") {
  PeriodBuffer buf;
  buf.add(sample(0, 101, 1, 10));
  CHECK(buf.take_before(P).size() == 1);
  buf.add(sample(0, 102, 1, 10));
  CHECK(buf.late() == 1);
  CHECK(buf.take_before(2 * P).size() == 1);
}

TEST_CASE("sample_from copies the key and the period, comm without padding") {
  mk_key k = key(7, 8, 0xffffffff82a0b0c0ull, MK_T_MUTEX);
  mk_period v;
  std::memset(&v, 0, sizeof(v));
  v.start = 5 * P;
  v.wait_ns = 1234;
  v.count = 3;
  v.stackid = -14;
  std::strcpy(v.comm, "kworker/0:1");
  Sample s = sample_from(k, v);
  CHECK(s.pid == 7);
  CHECK(s.tid == 8);
  CHECK(s.lock == 0xffffffff82a0b0c0ull);
  CHECK(s.type == MK_T_MUTEX);
  CHECK(s.start == 5 * P);
  CHECK(s.wait_ns == 1234);
  CHECK(s.count == 3);
  CHECK(s.stackid == -14);
  CHECK(s.comm == "kworker/0:1");
}
