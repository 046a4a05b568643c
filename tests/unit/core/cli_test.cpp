#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cli.h"
#include "core/kheaders.h"
#include "core/util.h"

using namespace lockkit;

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
  const char* argv[] = {"tool", "-n", "3", "--", "prog", "--", "x"};
  std::vector<std::string> own, cmd;
  split_command(7, const_cast<char**>(argv), &own, &cmd);
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
