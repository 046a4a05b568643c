#include <catch2/catch.hpp>

#include <sstream>

#include "../json_check.h"
#include "lockstat/report.h"

using namespace lockkit::lockstat;
using lockkit::testing::golden;
using lockkit::testing::parse_output;

namespace {
Report sample_report() {
  Report r;
  r.pid = 42;
  r.pids = {42, 44};
  r.duration_s = 1.5;
  LockStats l;
  l.pid = 42;
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
  std::vector<uint64_t> drops(LK_DROP_MAX, 0);
  drops[LK_DROP_STATS_FULL] = 1;
  drops[LK_DROP_STACK_LOST] = 2;
  add_drops(r.diag, drops);
  r.diag.warn("the breakpoint on pthread_mutex_unlock went missing from pid 42: calls to it were not all seen");
  return r;
}

nlohmann::json json_of(const Report& r, size_t depth) {
  std::ostringstream os;
  write_json(os, r, depth);
  return parse_output(os.str());
}
}  // namespace

TEST_CASE("json report is the documented document") {
  CHECK_JSON_EQ(json_of(sample_report(), 0), golden("lockstat-report.json"));
}

TEST_CASE("json lock named by its init stack carries the label, an unnamed lock null") {
  Report r = sample_report();
  r.locks[0].symbol.reset();
  r.locks[0].init_label = 3;
  r.locks[0].init_frames = {"pthread_mutex_init+0x0 [libc.so.6]", "make_lock+0x9 [app]"};
  LockStats unnamed = r.locks[0];
  unnamed.addr = 0x7f00aa10;
  unnamed.init_label = 0;
  unnamed.init_frames.clear();
  r.locks.push_back(unnamed);
  auto j = json_of(r, 0);
  CHECK(j["locks"][0]["name"] == "#3");
  CHECK_JSON_EQ(j["locks"][0]["init_stack"], R"(["pthread_mutex_init+0x0 [libc.so.6]", "make_lock+0x9 [app]"])"_json);
  CHECK(j["locks"][1]["address"] == "0x7f00aa10");
  CHECK(j["locks"][1]["name"].is_null());
}

TEST_CASE("json rwlocks carry their read and write acquisitions") {
  Report r = sample_report();
  r.locks[0].kind = LK_RWLOCK;
  r.locks[0].read_acquisitions = 2;
  r.locks[0].write_acquisitions = 1;
  auto lock = json_of(r, 0)["locks"][0];
  CHECK(lock["kind"] == "rwlock");
  CHECK(lock["read_acquisitions"] == 2);
  CHECK(lock["write_acquisitions"] == 1);
  CHECK_FALSE(json_of(sample_report(), 0)["locks"][0].contains("read_acquisitions"));
}

TEST_CASE("json semaphores carry handoffs and unreleased acquisitions, other kinds not") {
  Report r = sample_report();
  r.locks[0].kind = LK_SEM;
  r.locks[0].totals.handoffs = 5;
  r.locks[0].totals.unreleased = 2;
  r.locks[0].threads[0].totals.handoffs = 5;
  r.locks[0].stacks[0].totals.unreleased = 2;
  auto lock = json_of(r, 0)["locks"][0];
  CHECK(lock["kind"] == "semaphore");
  CHECK(lock["handoffs"] == 5);
  CHECK(lock["unreleased"] == 2);
  CHECK(lock["threads"][0]["handoffs"] == 5);
  CHECK(lock["stacks"][0]["unreleased"] == 2);
  auto mutex = json_of(sample_report(), 0)["locks"][0];
  CHECK_FALSE(mutex.contains("handoffs"));
  CHECK_FALSE(mutex["threads"][0].contains("unreleased"));
}

TEST_CASE("text per-thread lines show semaphore timeouts, handoffs and unreleased acquisitions") {
  Report r = sample_report();
  r.locks[0].kind = LK_SEM;
  auto& st = r.locks[0].threads[0].stacks[0].totals;
  st.timeouts = 1;
  st.handoffs = 2;
  st.unreleased = 3;
  std::ostringstream os;
  write_text(os, r, TextOptions());
  CHECK(os.str().find("enter count 3  timeouts 1  handoffs 2  unreleased 3\n") != std::string::npos);
  CHECK(os.str().find("semaphore") != std::string::npos);
}

TEST_CASE("stack depth cuts frames in json") {
  auto j = json_of(sample_report(), 1);
  CHECK_JSON_EQ(j["locks"][0]["stacks"][0]["frames"], R"(["pthread_mutex_lock+0x0 [libc.so.6]"])"_json);
}

TEST_CASE("json stays valid UTF-8 when a frame or symbol holds other bytes") {
  Report r = sample_report();
  r.locks[0].symbol = std::string("lock_\xe9t\xe9");  // Latin-1 bytes
  r.locks[0].stacks[0].frames[1] = "f\xff\xfe+0x1 [app\x80]";
  auto j = json_of(r, 0);  // parsing fails on invalid UTF-8
  CHECK(j["locks"][0]["name"] == "lock_\xef\xbf\xbdt\xef\xbf\xbd");
  CHECK(j["locks"][0]["stacks"][0]["frames"][1] == "f\xef\xbf\xbd\xef\xbf\xbd+0x1 [app\xef\xbf\xbd]");
}

TEST_CASE("drop counters become reasons, lost stacks their own count") {
  lockkit::Diagnostics d;
  std::vector<uint64_t> drops(LK_DROP_MAX, 0);
  drops[LK_DROP_PENDING_FULL] = 4;
  drops[LK_DROP_STACK_LOST] = 6;
  add_drops(d, drops);
  REQUIRE(d.dropped.size() == 1);
  CHECK(d.dropped[0].reason == "pending_map_full");
  CHECK(d.dropped[0].count == 4);
  CHECK(d.lost_stacks == 6);
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
  CHECK(t.find("WARNING: 1 lock events were not recorded: the statistics map is full\n"
               "WARNING: 2 stack traces could not be stored; a larger --stack-storage-size keeps more\n"
               "WARNING: the breakpoint on pthread_mutex_unlock went missing") != std::string::npos);
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
