// JSON output and the command line.
#include <catch2/catch.hpp>

#include <sstream>

#include "../argv.h"
#include "../json_check.h"
#include "core/util.h"
#include "locktrace/options.h"
#include "locktrace/report.h"

using namespace lockkit::locktrace;
using lockkit::testing::golden;
using lockkit::testing::parse_output;

namespace {

Options parse(std::vector<std::string> args) {
  return lockkit::testing::parse_with(parse_options, "locktrace", std::move(args));
}

Row sample_row() {
  Row r;
  r.pid = 5;
  r.tid = 6;
  r.addr = 0xabc;
  r.comm = "app";
  r.symbol = "queue_lock";
  r.object = lockkit::locktrace::RowObject{0xabc, lockkit::FutexKind::Mutex, std::string("queue_lock")};
  r.frames = {"main", "f(int, int)"};
  r.blocked_ns = 1500000;
  r.sys_ns = 2500;
  r.max_blocked_ns = 1000999;
  r.max_sys_ns = 1999;
  r.wait_count = 3;
  r.blocked_count = 2;
  r.errors = 3;
  r.errnos = {{11, 2}, {110, 1}};
  return r;
}

nlohmann::json json_of(const std::vector<Row>& rows, const JsonExtras& x) {
  std::ostringstream os;
  write_json(os, rows, x);
  return parse_output(os.str());
}

}  // namespace

TEST_CASE("JSON is the documented document: shared diagnostics, lock identity, times in ns") {
  Row lost;
  lost.pid = 5;
  lost.tid = 7;
  lost.addr = 0x7ffd0010;
  lost.comm = "app";
  lost.stack_lost = true;
  lost.sys_ns = 800;
  lost.max_sys_ns = 800;
  lost.wake_count = 1;
  std::vector<uint64_t> dbg(LT_DBG_MAX, 0), drops(LT_DROP_MAX, 0);
  dbg[LT_DBG_ENTERS] = 10;
  dbg[LT_DBG_EXITS] = 9;
  dbg[LT_DBG_PREEMPTED] = 1;
  drops[LT_DROP_CALLS_FULL] = 7;
  JsonExtras x;
  x.pid = 5;
  x.pids = {5, 7};
  x.duration_s = 2.5;
  x.diag = diagnostics(drops, 1);
  x.counters = debug_counters(dbg, 1);
  CHECK_JSON_EQ(json_of({sample_row(), lost}, x), golden("locktrace-report.json"));
}

TEST_CASE("JSON of a run over every process has null pid and tid and the thread filter its tid") {
  auto all = json_of({}, JsonExtras{});
  CHECK(all["pid"].is_null());
  CHECK(all["tid"].is_null());
  CHECK_JSON_EQ(all["rows"], nlohmann::json::array());
  JsonExtras x;
  x.pid = 5;
  x.tid = 6;
  auto one = json_of({}, x);
  CHECK(one["pid"] == 5);
  CHECK(one["tid"] == 6);
}

TEST_CASE("JSON stays valid UTF-8 with a task name or frame that is not") {
  Row r = sample_row();
  r.comm = "w\xe4rter\xff";  // Latin-1 task name, as prctl(PR_SET_NAME) allows
  r.frames = {"main", "g\xc3"};
  r.symbol = std::string("lock\x80");
  auto row = json_of({r}, JsonExtras{})["rows"][0];  // parsing fails on invalid UTF-8
  CHECK(row["comm"] == "w\xef\xbf\xbdrter\xef\xbf\xbd");
  CHECK(row["name"] == "lock\xef\xbf\xbd");
  CHECK_JSON_EQ(row["stack"], nlohmann::json::array({"w\xef\xbf\xbdrter\xef\xbf\xbd", "main", "g\xef\xbf\xbd"}));
}

TEST_CASE("the seed's interface: -p PID and a duration") {
  Options o = parse({"-p", "123", "10"});
  CHECK(o.pid == 123);
  CHECK(o.duration_s == 10);
  CHECK(o.stack_storage == 1024);
  CHECK(o.format == Format::Csv);
  CHECK(o.output == "-");
}

TEST_CASE("no options traces everything until Ctrl-C") {
  Options o = parse({});
  CHECK(o.pid == 0);
  CHECK(o.tid == 0);
  CHECK(o.duration_s == 0);
  CHECK_FALSE(o.debug);
}

TEST_CASE("the seed's other options and the extras parse") {
  Options o = parse({"-d", "--hist", "h.txt", "--stack-storage-size", "4096", "-t", "77", "-o", "x.json",
                     "--format", "json"});
  CHECK(o.debug);
  CHECK(o.hist == "h.txt");
  CHECK(o.stack_storage == 4096);
  CHECK(o.tid == 77);
  CHECK(o.output == "x.json");
  CHECK(o.format == Format::Json);
}

TEST_CASE("bad values are usage errors") {
  CHECK_THROWS_AS(parse({"-p", "abc"}), lockkit::UsageError);
  CHECK_THROWS_AS(parse({"--format", "xml"}), lockkit::UsageError);
  CHECK_THROWS_AS(parse({"--stack-storage-size", "0"}), lockkit::UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "0"}), lockkit::UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "5", "6"}), lockkit::UsageError);
  CHECK_THROWS_AS(parse({"--hist", "-"}), lockkit::UsageError);  // would share stdout with the CSV
}
