// Usage errors name the real mistake.
#include <catch2/catch.hpp>

#include "../argv.h"
#include "core/util.h"
#include "locktrace/options.h"

using namespace lockkit::locktrace;
using lockkit::UsageError;
using Catch::Matchers::Contains;

namespace {

Options parse(std::vector<std::string> args) {
  return lockkit::testing::parse_with(parse_options, "locktrace", std::move(args));
}

std::string usage_message(std::vector<std::string> args) {
  return lockkit::testing::usage_message([&] { return parse(std::move(args)); });
}

}  // namespace

TEST_CASE("a command after -- is the command to start, followed with its tree") {
  Options o = parse({"--format", "json", "--", "sleep", "1"});
  CHECK(o.command == std::vector<std::string>{"sleep", "1"});
  CHECK(o.follow_forks);
  CHECK(o.pid == 0);
}

TEST_CASE("a pid and a command together are refused") {
  CHECK_THAT(usage_message({"-p", "1", "--", "sleep", "1"}), Contains("give either -p PID (or -t TID) or -- COMMAND"));
}

TEST_CASE("numbers after -- are still the duration") {
  Options o = parse({"-p", "1", "--", "5"});
  CHECK(o.command.empty());
  CHECK(o.duration_s == 5);
}

TEST_CASE("follow-forks needs a pid and no thread") {
  CHECK(parse({"-p", "1", "--follow-forks"}).follow_forks);
  CHECK_FALSE(parse({"-p", "1"}).follow_forks);
  CHECK_THAT(usage_message({"--follow-forks"}), Contains("--follow-forks needs -p PID"));
  CHECK_THAT(usage_message({"-t", "5", "--follow-forks"}), Contains("--follow-forks follows processes, not one thread"));
}

TEST_CASE("a negative duration is a bad value") {
  CHECK_THAT(usage_message({"-p", "1", "-3"}), Contains("invalid duration '-3': must be a positive number"));
}

TEST_CASE("a duration given twice is refused") {
  CHECK_THAT(usage_message({"-p", "1", "5", "6"}), Contains("duration given twice ('5' and '6')"));
}

TEST_CASE("a tid given twice is refused") {
  CHECK_THAT(usage_message({"-t", "5", "-t", "6"}), Contains("-t/--tid given more than once"));
}

TEST_CASE("hist and output cannot both write one file") {
  CHECK_THAT(usage_message({"-o", "x", "--hist", "x"}), Contains("--hist and -o cannot both write to 'x'"));
}

TEST_CASE("a pid option followed by -t is a missing pid") {
  CHECK_THAT(usage_message({"-p", "-t", "5"}), Contains("-p needs a value (PID)"));
}

TEST_CASE("a stack storage size above the limit names the limit") {
  CHECK_THAT(usage_message({"--stack-storage-size", "2000000"}), Contains("must be at most 1048576"));
}

TEST_CASE("pid tid and duration still parse together") {
  Options o = parse({"-p", "10", "-t", "11", "2.5"});
  CHECK(o.pid == 10);
  CHECK(o.tid == 11);
  CHECK(o.duration_s == 2.5);
}

TEST_CASE("debug directories reach the options") {
  CHECK(parse({"--debug-dir", "/usr:/etc"}).debug_dirs == std::vector<std::string>{"/usr", "/etc"});
}
