// JSON output and the command line.
#include <catch2/catch.hpp>

#include <sstream>

#include "core/util.h"
#include "locktrace/options.h"
#include "locktrace/report.h"

using namespace lockkit::locktrace;

namespace {

Options parse(std::vector<std::string> args) {
  args.insert(args.begin(), "locktrace");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  return parse_options(int(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("JSON rows carry the CSV fields, the stack as a list and errors by errno") {
  Row r;
  r.pid = 5;
  r.tid = 6;
  r.addr = 0xabc;
  r.comm = "app";
  r.frames = {"main", "f(int, int)"};
  r.wait_count = 3;
  r.errors = 3;
  r.errnos = {{11, 2}, {110, 1}};
  std::ostringstream os;
  JsonExtras x;
  x.pid = 5;
  write_json(os, {r}, x);
  std::string j = os.str();
  for (const char* k : {"\"blocked_us\": 0", "\"sys_us\": 0", "\"max_blocked_us\": 0", "\"max_sys_us\": 0",
                        "\"wait_count\": 3", "\"blocked_count\": 0", "\"wake_count\": 0", "\"errors\": 3",
                        "\"addr\": \"0xabc\"", "\"EAGAIN\": 2", "\"ETIMEDOUT\": 1", "\"tid\": null"}) {
    INFO(k);
    CHECK(j.find(k) != std::string::npos);
  }
  CHECK(j.find("\"stack\": [\n        \"app\",\n        \"main\",\n        \"f(int, int)\"\n      ]") !=
        std::string::npos);
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
