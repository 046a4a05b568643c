#include <catch2/catch.hpp>

#include "core/util.h"
#include "lockstat/options.h"

using namespace lockkit::lockstat;
using lockkit::UsageError;

namespace {
Options parse(std::vector<std::string> args) {
  args.insert(args.begin(), "lockstat");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  return parse_options(int(argv.size()), argv.data());
}
}  // namespace

TEST_CASE("pid and duration parse") {
  Options o = parse({"-p", "123", "10"});
  CHECK(o.pid == 123);
  CHECK(o.duration_s == 10);
  CHECK(o.interval_s == 5);
}

TEST_CASE("a command after -- is traced instead of a pid") {
  Options o = parse({"-n", "3", "--", "./app", "-x"});
  CHECK(o.command == std::vector<std::string>{"./app", "-x"});
  CHECK(o.top == 3);
}

TEST_CASE("something to trace is required and only one thing") {
  CHECK_THROWS_AS(parse({}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "--", "ls"}), UsageError);
}

TEST_CASE("invalid values are usage errors") {
  CHECK_THROWS_AS(parse({"-p", "x"}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "-s", "bogus"}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "--sample", "0"}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "--sample", "101"}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "--kinds", "mutex,semaphore"}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "-i", "0"}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "-m", "-1"}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "0"}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "5", "6"}), UsageError);
}

TEST_CASE("folded takes a metric and a file") {
  Options o = parse({"-p", "1", "--folded", "hold", "out.folded"});
  CHECK(o.folded == "out.folded");
  CHECK(o.folded_hold);
  CHECK_THROWS_AS(parse({"-p", "1", "--folded", "wait"}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "1", "--folded", "bogus", "f"}), std::exception);
}

TEST_CASE("json and folded cannot both take stdout") {
  CHECK_THROWS_AS(parse({"-p", "1", "--json", "-", "--folded", "wait", "-"}), UsageError);
}

TEST_CASE("min wait is in milliseconds and sample in percent") {
  Options o = parse({"-p", "1", "-m", "2.5", "--sample", "12.5"});
  CHECK(o.min_wait_ns == 2500000);
  CHECK(o.sample_percent == 12.5);
}

TEST_CASE("kinds select the lock families") {
  Options o = parse({"-p", "1", "--kinds", "rwlock"});
  CHECK_FALSE(o.mutex);
  CHECK(o.rwlock);
  CHECK_FALSE(o.spin);
}
