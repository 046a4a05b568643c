// The command line and the monitor filter.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "../argv.h"
#include "core/util.h"
#include "mklockstat/model.h"
#include "mklockstat/options.h"

using namespace lockkit;
using namespace lockkit::mklockstat;

using Catch::Matchers::Contains;

namespace {

Options parse(std::vector<std::string> args) {
  return lockkit::testing::parse_with(parse_options, "mklockstat", std::move(args));
}

std::string usage_message(std::vector<std::string> args) {
  return lockkit::testing::usage_message([&] { return parse(std::move(args)); });
}

}  // namespace

TEST_CASE("defaults keep the seed's interface: 50 ms periods for 10 s, monitors filtered") {
  Options o = parse({});
  CHECK(o.period_ns == 50000000);
  CHECK(o.time_s == 10);
  CHECK(o.skip_comms == std::vector<std::string>{"collect", "collectl", "tcplife-bpfcc"});
  CHECK(o.backend == Backend::Auto);
  CHECK(o.output == "-");
  CHECK_FALSE(o.names);
}

TEST_CASE("the period is whole milliseconds and --time 0 means until Ctrl-C") {
  Options o = parse({"--period", "20", "--time", "0"});
  CHECK(o.period_ns == 20000000);
  CHECK(o.time_s == 0);
  CHECK_THROWS_AS(parse({"--period", "0"}), UsageError);
  CHECK_THROWS_AS(parse({"--period", "2.5"}), UsageError);
  CHECK_THROWS_AS(parse({"--time", "-1"}), UsageError);
}

TEST_CASE("filter-comm replaces the monitor list") {
  CHECK(parse({"--filter-comm", "a,b, c"}).skip_comms == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("no-filter-monitors traces every command") {
  CHECK(parse({"--no-filter-monitors"}).skip_comms.empty());
  CHECK_THROWS_AS(parse({"--no-filter-monitors", "--filter-comm", "a"}), UsageError);
}

TEST_CASE("filter-comm refuses names the kernel cannot hold") {
  CHECK_THROWS_AS(parse({"--filter-comm", "a-very-long-command-name"}), UsageError);
}

TEST_CASE("the comm filter key is the name cut to 15 bytes and zero padded") {
  mk_comm k = comm_key("tcplife-bpfcc");
  CHECK(std::string(k.name) == "tcplife-bpfcc");
  for (size_t i = std::strlen("tcplife-bpfcc"); i < MK_COMM_LEN; i++) CHECK(k.name[i] == 0);
  mk_comm l = comm_key("0123456789abcdefgh");
  CHECK(std::string(l.name, strnlen(l.name, MK_COMM_LEN)) == "0123456789abcde");
}

TEST_CASE("the monitor filter matches whole commands only") {
  auto& mon = default_monitors();
  CHECK(comm_filtered(mon, "collectl"));
  CHECK(comm_filtered(mon, "tcplife-bpfcc"));
  CHECK_FALSE(comm_filtered(mon, "collectd"));
  CHECK_FALSE(comm_filtered(mon, "coll"));
  CHECK_FALSE(comm_filtered({}, "collectl"));
}

TEST_CASE("backend, pid, tid, output and names options are parsed") {
  Options o = parse({"--backend", "kprobe", "-p", "42", "-t", "43", "-o", "run.log", "--names"});
  CHECK(o.backend == Backend::Kprobe);
  CHECK(o.pid == 42);
  CHECK(o.tid == 43);
  CHECK(o.output == "run.log");
  CHECK(o.names);
  CHECK(parse({"--backend", "tracepoint"}).backend == Backend::Tracepoint);
  CHECK_THROWS_AS(parse({"--backend", "fentry"}), UsageError);
  CHECK_THROWS_AS(parse({"-p", "0"}), UsageError);
}

TEST_CASE("perf-pages must be a power of two") {
  CHECK(parse({"--perf-pages", "128"}).perf_pages == 128);
  CHECK_THROWS_AS(parse({"--perf-pages", "100"}), UsageError);
}

TEST_CASE("stray arguments are refused") {
  CHECK_THROWS_AS(parse({"10"}), UsageError);
}

TEST_CASE("a command after -- is refused naming the --") {
  CHECK_THAT(usage_message({"--", "sleep", "1"}), Contains("mklockstat does not start commands ('-- sleep 1')"));
}

TEST_CASE("a number given as an argument points to --time") {
  CHECK_THAT(usage_message({"10"}), Contains("unexpected argument '10'") && Contains("--time SEC"));
}

TEST_CASE("a negative number given as an argument is not taken for an option") {
  CHECK_THAT(usage_message({"-5"}), Contains("unexpected argument '-5'"));
}

TEST_CASE("a negative time says what --time accepts") {
  CHECK_THAT(usage_message({"--time", "-1"}), Contains("invalid --time '-1': must be 0 or a positive number"));
}

TEST_CASE("time given twice is refused") {
  CHECK_THAT(usage_message({"--time", "5", "--time", "6"}), Contains("--time given more than once"));
}

TEST_CASE("filter-comm naming no command is refused") {
  CHECK_THAT(usage_message({"--filter-comm", ","}), Contains("--filter-comm names no command"));
}

TEST_CASE("perf-pages above the limit names the limit") {
  CHECK_THAT(usage_message({"--perf-pages", "8192"}), Contains("must be at most 4096"));
}

TEST_CASE("a pid option followed by another option is a missing pid") {
  CHECK_THAT(usage_message({"-p", "--names"}), Contains("-p needs a value (PID)"));
}

TEST_CASE("the pprof option takes a file that no other output writes to") {
  CHECK(parse({}).pprof.empty());
  CHECK(parse({"--pprof", "run.pb.gz"}).pprof == "run.pb.gz");
  CHECK(parse({"--pprof", "-", "-o", "run.log"}).pprof == "-");
  CHECK_THAT(usage_message({"--pprof", "-"}), Contains("-o - and --pprof - cannot both write to stdout"));
  CHECK_THAT(usage_message({"--pprof", "x", "-o", "x"}), Contains("-o and --pprof cannot both write to 'x'"));
  CHECK_THAT(usage_message({"--pprof", ""}), Contains("--pprof needs a file name"));
}
