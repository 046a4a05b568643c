// The --hist file: one log2 histogram of blocked microseconds per (pid, futex address).
#include <catch2/catch.hpp>

#include <cstring>
#include <sstream>

#include "locktrace/model.h"
#include "locktrace/report.h"

using namespace lockkit::locktrace;

namespace {

lt_hist_key hkey(uint32_t pid, uint64_t addr, uint64_t blocked_us) {
  lt_hist_key k;
  std::memset(&k, 0, sizeof(k));
  k.pid = pid;
  k.uaddr = addr;
  k.slot = lk_log2_slot(blocked_us);
  return k;
}

std::string hist_text(const Snapshot& s) {
  std::ostringstream os;
  write_hists(os, build_hists(s));
  return os.str();
}

}  // namespace

TEST_CASE("each histogram starts with 'PID N, LOCK 0xADDR'") {
  Snapshot s;
  s.hists = {{hkey(77, 0x5600beef, 20000), 1}};
  std::string t = hist_text(s);
  CHECK(t.rfind("PID 77, LOCK 0x5600beef\n", 0) == 0);
}

TEST_CASE("waits that did not block land in the 0 -> 0 bucket, which is shown") {
  Snapshot s;
  s.hists = {{hkey(1, 0x10, 0), 4}, {hkey(1, 0x10, 1), 2}};
  std::string t = hist_text(s);
  CHECK(t.find("0 -> 0          : 4 ") != std::string::npos);
  CHECK(t.find("1 -> 1          : 2 ") != std::string::npos);
}

TEST_CASE("bucket labels are the exact ranges of the values counted in them") {
  Snapshot s;
  // 20 ms is 20000 us: in [16384, 32767]. 3 us: in [2, 3]. 4 us: in [4, 7].
  s.hists = {{hkey(1, 0x10, 20000), 5}, {hkey(1, 0x10, 3), 1}, {hkey(1, 0x10, 4), 1}};
  std::string t = hist_text(s);
  CHECK(t.find("16384 -> 32767      : 5 ") != std::string::npos);
  CHECK(t.find("2 -> 3          : 1 ") != std::string::npos);
  CHECK(t.find("4 -> 7          : 1 ") != std::string::npos);
  CHECK(t.find("8192 -> 16383      : 0 ") != std::string::npos);  // empty buckets inside the range
}

TEST_CASE("one histogram per (pid, address), ordered by pid then address") {
  Snapshot s;
  s.hists = {{hkey(2, 0x10, 5), 1}, {hkey(1, 0x20, 5), 1}, {hkey(1, 0x10, 5), 1}, {hkey(1, 0x10, 5), 2}};
  auto h = build_hists(s);
  REQUIRE(h.size() == 3);
  CHECK((h[0].pid == 1 && h[0].addr == 0x10));
  CHECK(h[0].hist.total() == 3);
  CHECK((h[1].pid == 1 && h[1].addr == 0x20));
  CHECK((h[2].pid == 2 && h[2].addr == 0x10));
  std::string t = hist_text(s);
  CHECK(t.find("\n\nPID 1, LOCK 0x20\n") != std::string::npos);
}
