#include <catch2/catch.hpp>

#include "../argv.h"
#include "core/util.h"
#include "lockstat/options.h"

using namespace lockkit::lockstat;
using lockkit::UsageError;

using Catch::Matchers::Contains;

namespace {

Options parse(std::vector<std::string> args) {
  return lockkit::testing::parse_with(parse_options, "lockstat", std::move(args));
}

std::string usage_message(std::vector<std::string> args) {
  return lockkit::testing::usage_message([&] { return parse(std::move(args)); });
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
  CHECK_THROWS_AS(parse({"-p", "1", "--kinds", "mutex,condvar"}), UsageError);
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
  CHECK_FALSE(o.sem);
}

TEST_CASE("semaphores are traced only when kinds names them") {
  Options d = parse({"-p", "1"});
  CHECK(d.mutex);
  CHECK(d.rwlock);
  CHECK(d.spin);
  CHECK_FALSE(d.sem);
  Options s = parse({"-p", "1", "--kinds", "sem"});
  CHECK(s.sem);
  CHECK_FALSE(s.mutex);
  CHECK(parse({"-p", "1", "--kinds", "mutex,semaphore"}).sem);
  Options a = parse({"-p", "1", "--kinds", "all"});
  CHECK((a.mutex && a.rwlock && a.spin && a.sem));
  CHECK_FALSE(a.spin_requested);  // an untraceable spin lock stays a warning with "all"
  CHECK_THAT(usage_message({"-p", "1", "--kinds", "sems"}),
             Contains("invalid --kinds entry 'sems'") && Contains("sem or all"));
}

TEST_CASE("a folded metric followed by an option is a missing file") {
  CHECK_THAT(usage_message({"--folded", "wait", "-p", "1", "1"}),
             Contains("--folded wait needs a FILE") && Contains("'-p'"));
}

TEST_CASE("a folded metric at the end is a missing file") {
  CHECK_THAT(usage_message({"-p", "1", "--folded", "hold"}), Contains("--folded hold needs a FILE"));
}

TEST_CASE("an unknown folded metric is named before its file is taken as a duration") {
  CHECK_THAT(usage_message({"--folded", "foo", "x", "-p", "1"}),
             Contains("invalid --folded metric 'foo'") && Contains("wait or hold"));
}

TEST_CASE("folded written with = takes its file from the next argument") {
  Options o = parse({"-p", "1", "--folded=hold", "h.folded"});
  CHECK(o.folded == "h.folded");
  CHECK(o.folded_hold);
}

TEST_CASE("folded given twice is refused") {
  CHECK_THAT(usage_message({"-p", "1", "--folded", "wait", "a", "--folded", "hold", "b"}),
             Contains("--folded given more than once"));
}

TEST_CASE("a negative duration is a bad value and not an option") {
  CHECK_THAT(usage_message({"-p", "1", "-5"}), Contains("invalid duration '-5': must be a positive number"));
}

TEST_CASE("a negative interval says the interval must be positive") {
  CHECK_THAT(usage_message({"-p", "1", "-i", "-2"}), Contains("invalid interval '-2': must be a positive number"));
}

TEST_CASE("a duration given twice is refused") {
  CHECK_THAT(usage_message({"-p", "1", "5", "6"}), Contains("duration given twice ('5' and '6')"));
}

TEST_CASE("a pid given twice is refused") {
  CHECK_THAT(usage_message({"-p", "1", "-p", "2"}), Contains("-p/--pid given more than once"));
}

TEST_CASE("a pid option followed by another option is a missing pid") {
  CHECK_THAT(usage_message({"-p", "--json", "x"}), Contains("-p needs a value (PID)"));
}

TEST_CASE("a pid with a leading zero is decimal") {
  CHECK(parse({"-p", "010"}).pid == 10);
}

TEST_CASE("json and folded cannot both write one file") {
  CHECK_THAT(usage_message({"-p", "1", "--json", "out", "--folded", "wait", "out"}),
             Contains("--json and --folded cannot both write to 'out'"));
}

TEST_CASE("an empty json file name is refused") {
  CHECK_THAT(usage_message({"-p", "1", "--json", ""}), Contains("--json needs a file name"));
}

TEST_CASE("an empty binary path is refused") {
  CHECK_THAT(usage_message({"-p", "1", "--binary", ""}), Contains("--binary needs a path"));
}

TEST_CASE("an empty kinds entry is refused") {
  CHECK_THAT(usage_message({"-p", "1", "--kinds", ""}), Contains("invalid --kinds ''"));
  CHECK_THAT(usage_message({"-p", "1", "--kinds", "mutex,"}), Contains("an empty entry"));
}

TEST_CASE("a negative top names the lower bound") {
  CHECK_THAT(usage_message({"-p", "1", "-n", "-1"}), Contains("invalid --top '-1': must be at least 0"));
}

TEST_CASE("a huge min wait is refused instead of overflowing") {
  CHECK_THAT(usage_message({"-p", "1", "-m", "1e20"}), Contains("invalid --min-wait '1e20': at most"));
}

TEST_CASE("a stack depth above the limit names the limit") {
  CHECK_THAT(usage_message({"-p", "1", "--stack-depth", "500"}), Contains("must be at most 127"));
}

TEST_CASE("a stack storage size above the limit names the limit") {
  CHECK_THAT(usage_message({"-p", "1", "--stack-storage-size", "2000000"}), Contains("must be at most 1048576"));
}

TEST_CASE("debug directories reach the options, in order") {
  CHECK(parse({"-p", "1", "--debug-dir", "/usr", "--debug-dir", "/etc"}).debug_dirs ==
        std::vector<std::string>{"/usr", "/etc"});
  CHECK(parse({"-p", "1"}).debug_dirs.empty());
}

TEST_CASE("the mode is full unless contention is asked for") {
  CHECK(parse({"-p", "1"}).mode == Mode::Full);
  CHECK(parse({"--mode", "full", "-p", "1"}).mode == Mode::Full);
  Options o = parse({"--mode", "contention", "-s", "count", "--folded", "wait", "w.folded", "-p", "1"});
  CHECK(o.mode == Mode::Contention);
  CHECK(o.sort == SortKey::Count);
  CHECK_THAT(usage_message({"--mode", "fast", "-p", "1"}), Contains("invalid --mode 'fast'"));
}

TEST_CASE("contention mode refuses the options that need uprobes on the lock calls, by name") {
  CHECK_THAT(usage_message({"--mode", "contention", "--sample", "10", "-p", "1"}), Contains("--sample does not apply"));
  CHECK_THAT(usage_message({"--mode", "contention", "--reset", "-p", "1"}), Contains("--reset does not apply"));
  CHECK_THAT(usage_message({"--mode", "contention", "--kinds", "mutex", "-p", "1"}), Contains("--kinds does not apply"));
  CHECK_THAT(usage_message({"--mode", "contention", "--per-thread", "-p", "1"}), Contains("--per-thread does not apply"));
  CHECK_THAT(usage_message({"--mode", "contention", "--folded", "hold", "h", "-p", "1"}), Contains("no hold time"));
  CHECK_THAT(usage_message({"--mode", "contention", "-s", "max_hold", "-p", "1"}), Contains("--sort max_hold needs --mode full"));
}

TEST_CASE("lock order is off unless asked for, and reaches the options") {
  CHECK_FALSE(parse({"-p", "1"}).lock_order);
  CHECK(parse({"--lock-order", "-p", "1"}).lock_order);
}

TEST_CASE("lock order is refused in contention mode, naming the mode") {
  CHECK_THAT(usage_message({"--mode", "contention", "--lock-order", "-p", "1"}),
             Contains("--lock-order needs --mode full"));
}

TEST_CASE("lock order is refused with sampling") {
  CHECK_THAT(usage_message({"--lock-order", "--sample", "10", "-p", "1"}),
             Contains("--lock-order cannot be combined with --sample"));
}
