#include <catch2/catch.hpp>

#include <sstream>

#include "lockstat/report.h"

using namespace lockkit::lockstat;

namespace {
Report sample_report() {
  Report r;
  r.pid = 42;
  r.duration_s = 1.5;
  LockStats l;
  l.addr = 0x10;
  l.symbol = "orders_lock";
  l.totals.acquisitions = 3;
  l.totals.wait_ns = 300;
  l.totals.wait_max = 200;
  l.totals.holds = 3;
  l.totals.hold_ns = 900;
  l.totals.hold_max = 400;
  StackStats s{{"pthread_mutex_lock+0x0 [libc.so.6]", "place_order+0x1a [app]", "main+0x5 [app]"}, l.totals};
  ThreadStats t;
  t.tid = 43;
  t.totals = l.totals;
  t.stacks.push_back(s);
  l.threads.push_back(t);
  l.stacks.push_back(s);
  l.wait_hist.add_value(0, 3);
  r.locks.push_back(l);
  r.dropped.push_back({"stack traces lost", 2});
  return r;
}
}  // namespace

TEST_CASE("json report carries the documented top-level fields") {
  std::ostringstream os;
  write_json(os, sample_report(), 0);
  std::string j = os.str();
  for (auto field : {"\"pid\": 42", "\"duration_s\": 1.5", "\"locks\": [", "\"dropped\": {", "\"stack traces lost\": 2"})
    CHECK(j.find(field) != std::string::npos);
}

TEST_CASE("json locks carry address as hex string and name and kind and totals") {
  std::ostringstream os;
  write_json(os, sample_report(), 0);
  std::string j = os.str();
  for (auto field : {"\"address\": \"0x10\"", "\"name\": \"orders_lock\"", "\"kind\": \"mutex\"", "\"acquisitions\": 3",
                     "\"max_wait_ns\": 200", "\"hold_ns\": 900", "\"max_hold_ns\": 400", "\"tid\": 43",
                     "\"wait_hist\": {", "\"init_stack\": []"})
    CHECK(j.find(field) != std::string::npos);
}

TEST_CASE("json frames begin with the function name") {
  std::ostringstream os;
  write_json(os, sample_report(), 0);
  CHECK(os.str().find("\"place_order+0x1a [app]\"") != std::string::npos);
}

TEST_CASE("stack depth cuts frames in json") {
  std::ostringstream os;
  write_json(os, sample_report(), 1);
  CHECK(os.str().find("place_order") == std::string::npos);
}

TEST_CASE("folded output lists function names root first with the lock as leaf") {
  std::ostringstream os;
  write_folded(os, sample_report(), false);
  CHECK(os.str() == "main;place_order;pthread_mutex_lock;orders_lock 300\n");
}

TEST_CASE("folded hold output weighs stacks by hold time") {
  std::ostringstream os;
  write_folded(os, sample_report(), true);
  CHECK(os.str() == "main;place_order;pthread_mutex_lock;orders_lock 900\n");
}

TEST_CASE("text report shows drops and the lock table and the per-thread line of the lab") {
  std::ostringstream os;
  TextOptions opt;
  write_text(os, sample_report(), opt);
  std::string t = os.str();
  CHECK(t.find("WARNING: 2 stack traces lost") != std::string::npos);
  CHECK(t.find("Most contended locks (by wait)") != std::string::npos);
  CHECK(t.find("orders_lock  wait time 300ns  hold time 900ns  enter count 3") != std::string::npos);
}

TEST_CASE("text report says when totals are sampled estimates") {
  Report r = sample_report();
  r.sample_percent = 10;
  std::ostringstream os;
  write_text(os, r, TextOptions{});
  CHECK(os.str().find("scaled estimates") != std::string::npos);
}
