// The CSV output: header, field formats and RFC 4180 quoting of the stack column.
#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "locktrace/report.h"

using namespace lockkit::locktrace;

namespace {

// A strict RFC 4180 reader: records of fields, quoted fields may hold commas, quotes (doubled) and
// line breaks.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> rec;
  std::string field;
  bool quoted = false, in_quotes = false;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        i++;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        field += c;
      }
    } else if (c == '"' && field.empty() && !quoted) {
      in_quotes = quoted = true;
    } else if (c == ',') {
      rec.push_back(field);
      field.clear();
      quoted = false;
    } else if (c == '\n') {
      rec.push_back(field);
      records.push_back(rec);
      rec.clear();
      field.clear();
      quoted = false;
    } else {
      REQUIRE_FALSE(quoted);  // text after a closing quote is malformed
      field += c;
    }
  }
  REQUIRE_FALSE(in_quotes);
  if (!field.empty() || !rec.empty()) {
    rec.push_back(field);
    records.push_back(rec);
  }
  return records;
}

Row sample_row() {
  Row r;
  r.pid = 42;
  r.tid = 43;
  r.addr = 0x7f00dead0010;
  r.comm = "worker";
  r.frames = {"main", "std::map<int, std::string>::at(int const&)", "syscall"};
  r.blocked_ns = 1999999;
  r.sys_ns = 999;
  r.max_blocked_ns = 1000500;
  r.max_sys_ns = 1500;
  r.wait_count = 3;
  r.blocked_count = 2;
  r.wake_count = 4;
  r.errors = 1;
  return r;
}

std::string csv_of(const std::vector<Row>& rows) {
  std::ostringstream os;
  write_csv(os, rows);
  return os.str();
}

}  // namespace

TEST_CASE("the CSV header is the seed tool's, 12 columns") {
  auto recs = parse_csv(csv_of({}));
  REQUIRE(recs.size() == 1);
  CHECK(recs[0] == std::vector<std::string>{"pid", "tid", "addr", "blocked_us", "sys_us", "max_blocked_us",
                                            "max_sys_us", "wait_count", "blocked_count", "wake_count",
                                            "errors", "stack"});
}

TEST_CASE("a stack with commas (C++ signatures) is quoted: a CSV reader sees exactly 12 fields") {
  auto recs = parse_csv(csv_of({sample_row()}));
  REQUIRE(recs.size() == 2);
  REQUIRE(recs[1].size() == 12);
  CHECK(recs[1][11] == "worker;main;std::map<int, std::string>::at(int const&);syscall");
}

TEST_CASE("quotes inside the stack column are doubled and read back intact") {
  Row r = sample_row();
  r.frames = {"operator\"\"_lock(char const*, unsigned long)"};
  std::string text = csv_of({r});
  CHECK(text.find("\"worker;operator\"\"\"\"_lock(char const*, unsigned long)\"") != std::string::npos);
  auto recs = parse_csv(text);
  REQUIRE(recs[1].size() == 12);
  CHECK(recs[1][11] == "worker;operator\"\"_lock(char const*, unsigned long)");
}

TEST_CASE("a stack without special characters is not quoted") {
  Row r = sample_row();
  r.frames = {"main", "lock_it"};
  CHECK(csv_fields(r)[11] == "worker;main;lock_it");
  CHECK(csv_of({r}).find(",worker;main;lock_it\n") != std::string::npos);
}

TEST_CASE("numeric columns: hex address, times in whole microseconds, counts") {
  auto f = csv_fields(sample_row());
  REQUIRE(f.size() == 12);
  CHECK(f[0] == "42");
  CHECK(f[1] == "43");
  CHECK(f[2] == "0x7f00dead0010");
  CHECK(f[3] == "1999");  // 1999999 ns
  CHECK(f[4] == "0");     // 999 ns
  CHECK(f[5] == "1000");
  CHECK(f[6] == "1");
  CHECK(f[7] == "3");
  CHECK(f[8] == "2");
  CHECK(f[9] == "4");
  CHECK(f[10] == "1");
}

TEST_CASE("the stack column is the task name, then the frames root to leaf") {
  Row r;
  r.comm = "lt-waiter";
  r.frames = {"start_thread", "waiter_main", "block_on_word", "syscall"};
  CHECK(r.stack_column() == "lt-waiter;start_thread;waiter_main;block_on_word;syscall");
}

TEST_CASE("unresolved frames and a lost stack are named in the stack column") {
  Row r;
  r.comm = "app";
  r.frames = {"", "main"};
  CHECK(r.stack_column() == "app;[unknown];main");
  r.stack_lost = true;
  CHECK(r.stack_column() == "app;[lost stack]");
}

TEST_CASE("semicolons inside a name cannot split the folded stack") {
  Row r;
  r.comm = "a;b";
  r.frames = {"f;g"};
  CHECK(r.stack_column() == "a:b;f:g");
  CHECK(r.stack().size() == 2);
}
