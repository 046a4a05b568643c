#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "../argv.h"
#include "core/cli.h"
#include "core/kheaders.h"
#include "core/util.h"

using namespace lockkit;
using lockkit::testing::Argv;
using lockkit::testing::usage_message;

TEST_CASE("pids must be positive integers") {
  CHECK(parse_pid("123") == 123);
  CHECK_THROWS_AS(parse_pid("abc"), UsageError);
  CHECK_THROWS_AS(parse_pid("0"), UsageError);
  CHECK_THROWS_AS(parse_pid("-5"), UsageError);
  CHECK_THROWS_AS(parse_pid("12x"), UsageError);
}

TEST_CASE("durations must be positive seconds") {
  CHECK(parse_seconds("0.5", "duration") == 0.5);
  CHECK_THROWS_AS(parse_seconds("0", "duration"), UsageError);
  CHECK_THROWS_AS(parse_seconds("nan", "duration"), UsageError);
  CHECK_THROWS_AS(parse_seconds("", "duration"), UsageError);
}

TEST_CASE("usage errors exit 2 and other errors exit 1") {
  CHECK(run_tool("t", [] () -> int { throw UsageError("bad"); }) == 2);
  CHECK(run_tool("t", [] () -> int { throw ToolError("broken"); }) == 1);
  CHECK(run_tool("t", [] { return 0; }) == 0);
}

TEST_CASE("split_command separates the tool's arguments from the command after --") {
  Argv argv("tool", {"-n", "3", "--", "prog", "--", "x"});
  std::vector<std::string> own, cmd;
  split_command(argv.argc(), argv.argv(), &own, &cmd);
  CHECK(own == std::vector<std::string>{"tool", "-n", "3"});
  CHECK(cmd == std::vector<std::string>{"prog", "--", "x"});
}

TEST_CASE("durations print in a readable unit") {
  CHECK(format_duration(850) == "850ns");
  CHECK(format_duration(12300) == "12.3us");
  CHECK(format_duration(4.56e6) == "4.56ms");
  CHECK(format_duration(1.2e9) == "1.20s");
}

TEST_CASE("header trees merge common and arch with arch entries winning") {
  char tmpl[] = "/tmp/lockkit-kh-XXXXXX";
  std::string root = mkdtemp(tmpl);
  auto write = [](const std::string& p, const std::string& text) { std::ofstream(p) << text; };
  std::string c = root + "/common", a = root + "/arch", d = root + "/merged";
  for (auto dir : {c, c + "/include", c + "/include/linux", a, a + "/include", a + "/include/generated"})
    mkdir(dir.c_str(), 0755);
  write(c + "/include/linux/kconfig.h", "common");
  write(c + "/Makefile", "common");
  write(a + "/Makefile", "arch");
  write(a + "/include/generated/autoconf.h", "arch");
  merge_header_trees(c, a, d);
  CHECK(read_file(d + "/include/linux/kconfig.h") == std::optional<std::string>("common"));
  CHECK(read_file(d + "/include/generated/autoconf.h") == std::optional<std::string>("arch"));
  CHECK(read_file(d + "/Makefile") == std::optional<std::string>("arch"));
  std::string cmd = "rm -rf '" + root + "'";
  CHECK(std::system(cmd.c_str()) == 0);
}

namespace {

using Catch::Matchers::Contains;

// A spec shaped like the tools': value options, a flag and one positional "duration".
cxxopts::ParseResult parse_spec(std::vector<std::string> args) {
  cxxopts::Options spec("t", "test");
  spec.add_options()
    ("p,pid", "pid", cxxopts::value<std::string>(), "PID")
    ("json", "file", cxxopts::value<std::string>(), "FILE")
    ("r,reset", "flag")
    ("duration", "seconds", cxxopts::value<std::vector<std::string>>());
  spec.parse_positional({"duration"});
  return parse_arguments(spec, Argv("t", std::move(args)).strings());
}

}  // namespace

TEST_CASE("a negative number standing alone is passed on as the positional value") {
  auto res = parse_spec({"-p", "12", "-5"});
  CHECK(res["duration"].as<std::vector<std::string>>() == std::vector<std::string>{"-5"});
  CHECK(res["pid"].as<std::string>() == "12");
}

TEST_CASE("a negative number after a value option is that option's value") {
  auto res = parse_spec({"-p", "-5"});
  CHECK(res["pid"].as<std::string>() == "-5");
  CHECK(res.count("duration") == 0);
}

TEST_CASE("a value option followed by another option names the missing value") {
  CHECK_THAT(usage_message([] { parse_spec({"-p", "--json", "x"}); }),
             Contains("-p needs a value (PID)") && Contains("'--json'"));
}

TEST_CASE("positional values keep their order around options") {
  auto res = parse_spec({"5", "-r", "-p", "1", "6"});
  CHECK(res["duration"].as<std::vector<std::string>>() == std::vector<std::string>{"5", "6"});
  CHECK(res.count("reset") == 1);
}

TEST_CASE("a value option given twice is a usage error") {
  CHECK_THAT(usage_message([] { parse_spec({"-p", "1", "--pid", "2"}); }), Contains("-p/--pid given more than once"));
  CHECK_THAT(usage_message([] { parse_spec({"--json=a", "--json", "b"}); }), Contains("--json given more than once"));
}

TEST_CASE("a flag given twice is accepted") {
  CHECK(parse_spec({"-r", "--reset", "-p", "1"}).count("reset") == 2);
}

TEST_CASE("two positional numbers are a duration given twice") {
  auto res = parse_spec({"-p", "1", "5", "6"});
  CHECK_THAT(usage_message([&] { single_positional(res, "duration"); }), Contains("duration given twice ('5' and '6')"));
}

TEST_CASE("a word after the positional number is an unexpected argument") {
  auto res = parse_spec({"-p", "1", "5", "soon"});
  CHECK_THAT(usage_message([&] { single_positional(res, "duration"); }), Contains("unexpected argument 'soon'"));
}

TEST_CASE("no positional value gives nullopt") {
  CHECK_FALSE(single_positional(parse_spec({"-p", "1"}), "duration").has_value());
}

TEST_CASE("a command after -- is refused by tools that only follow processes") {
  Argv argv("tool", {"-p", "1", "--", "sleep", "1"});
  CHECK_THAT(usage_message([&] { reject_command("tool", argv.argc(), argv.argv()); }),
             Contains("tool does not start commands ('-- sleep 1')") && Contains("-p PID"));
  Argv fine("tool", {"-p", "1"});
  CHECK_NOTHROW(reject_command("tool", fine.argc(), fine.argv()));
}

TEST_CASE("numbers after -- are a duration for tools that only follow processes") {
  Argv argv("tool", {"-p", "1", "--", "-5"});
  CHECK_NOTHROW(reject_command("tool", argv.argc(), argv.argv()));
  Argv mixed("tool", {"-p", "1", "--", "5", "x"});
  CHECK_THAT(usage_message([&] { reject_command("tool", mixed.argc(), mixed.argv()); }),
             Contains("does not start commands"));
}

TEST_CASE("negative numbers are told from options") {
  CHECK(is_negative_number("-5"));
  CHECK(is_negative_number("-0.5"));
  CHECK(is_negative_number("-1e3"));
  CHECK_FALSE(is_negative_number("-p"));
  CHECK_FALSE(is_negative_number("-"));
  CHECK_FALSE(is_negative_number("-5x"));
  CHECK_FALSE(is_negative_number("5"));
}

TEST_CASE("pids are decimal: a leading zero does not make octal") {
  CHECK(parse_pid("010") == 10);
  CHECK_THROWS_AS(parse_pid("0x10"), UsageError);
  CHECK_THROWS_AS(parse_pid(" 5"), UsageError);
}

TEST_CASE("a negative number of seconds is told to be positive") {
  CHECK_THAT(usage_message([] { parse_seconds("-5", "duration"); }),
             Contains("invalid duration '-5'") && Contains("must be a positive number of seconds"));
}

TEST_CASE("too many seconds names the maximum") {
  CHECK_THAT(usage_message([] { parse_seconds("1e9", "duration"); }), Contains("at most 10000000 seconds"));
}

TEST_CASE("zero seconds is accepted only where it means no limit") {
  CHECK(parse_seconds("0", "--time", true) == 0);
  CHECK_THAT(usage_message([] { parse_seconds("-1", "--time", true); }), Contains("must be 0 or a positive"));
  CHECK_THAT(usage_message([] { parse_seconds("0", "interval"); }), Contains("must be a positive"));
}

TEST_CASE("integers outside their range name the bound") {
  CHECK(parse_integer("0", "--top", 0, 10) == 0);
  CHECK_THAT(usage_message([] { parse_integer("-1", "--top", 0, 10); }), Contains("must be at least 0"));
  CHECK_THAT(usage_message([] { parse_integer("11", "--top", 0, 10); }), Contains("must be at most 10"));
  CHECK_THAT(usage_message([] { parse_integer("99999999999999999999999", "N", 1, 10); }), Contains("must be at most 10"));
  CHECK_THAT(usage_message([] { parse_integer("ten", "N", 1, 10); }), Contains("expected a whole number"));
}

namespace {

cxxopts::ParseResult parse_debug_dirs(std::vector<std::string> args) {
  cxxopts::Options spec("t", "test");
  add_debug_dir_option(spec);
  return parse_arguments(spec, Argv("t", std::move(args)).strings());
}

}  // namespace

TEST_CASE("the debug directory option may be repeated and may list directories separated by colons") {
  auto res = parse_debug_dirs({"--debug-dir", "/usr", "--debug-dir=/etc:/tmp", "--debug-dir", "/usr"});
  CHECK(debug_dirs_option(res) == std::vector<std::string>{"/usr", "/etc", "/tmp"});
  CHECK(debug_dirs_option(parse_debug_dirs({})).empty());
}

TEST_CASE("debug directories given are made absolute") {
  char buf[4096];
  REQUIRE(getcwd(buf, sizeof(buf)) != nullptr);
  REQUIRE(chdir("/usr") == 0);
  auto dirs = debug_dirs_option(parse_debug_dirs({"--debug-dir", "lib"}));
  REQUIRE(chdir(buf) == 0);
  CHECK(dirs == std::vector<std::string>{"/usr/lib"});
}

TEST_CASE("a debug directory that is not a directory is a usage error naming it") {
  CHECK_THAT(usage_message([] { debug_dirs_option(parse_debug_dirs({"--debug-dir", "/no/such/dir"})); }),
             Contains("--debug-dir /no/such/dir") && Contains("No such file"));
  CHECK_THAT(usage_message([] { debug_dirs_option(parse_debug_dirs({"--debug-dir", "/proc/self/status"})); }),
             Contains("not a directory"));
}
