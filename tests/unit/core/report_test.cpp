// The shared report vocabulary: diagnostics, lock identity, and JSON that is always valid UTF-8.
#include <catch2/catch.hpp>

#include <sstream>

#include "../json_check.h"
#include "core/json.h"
#include "core/report.h"

using namespace lockkit;
using lockkit::testing::parse_output;

namespace {
const DropReason kFull{"stats_map_full", "events were not recorded: the statistics map is full"};
const DropReason kBusy{"calls_map_full", "calls were not traced: too many threads at once"};
}  // namespace

TEST_CASE("diagnostics sum a repeated reason, keep the first order and skip zero counts") {
  Diagnostics d;
  d.drop(kBusy, 2);
  d.drop(kFull, 0);
  d.drop(kFull, 3);
  d.drop(kBusy, 5);
  REQUIRE(d.dropped.size() == 2);
  CHECK(d.dropped[0].reason == "calls_map_full");
  CHECK(d.dropped_count("calls_map_full") == 7);
  CHECK(d.dropped_count("stats_map_full") == 3);
  CHECK(d.dropped_count("hist_map_full") == 0);
}

TEST_CASE("diagnostics text: one warning line per drop, for lost stacks and per warning") {
  Diagnostics d;
  d.drop(kFull, 3);
  d.lost_stacks = 4;
  d.warn("the breakpoint on pthread_mutex_lock went missing");
  std::ostringstream os;
  write_diagnostics(os, d);
  CHECK(os.str() ==
        "WARNING: 3 events were not recorded: the statistics map is full\n"
        "WARNING: 4 stack traces could not be stored; a larger --stack-storage-size keeps more\n"
        "WARNING: the breakpoint on pthread_mutex_lock went missing\n");
}

TEST_CASE("diagnostics of a run that lost nothing print nothing") {
  Diagnostics d;
  d.drop(kFull, 0);
  CHECK(d.empty());
  CHECK(diagnostic_lines(d).empty());
}

TEST_CASE("diagnostics json: dropped by reason, lost stacks and warnings as top-level keys") {
  Diagnostics d;
  d.drop(kFull, 3);
  d.lost_stacks = 1;
  d.warn("w");
  Json doc;
  add_diagnostics(doc, d);
  CHECK_JSON_EQ(doc, R"({"dropped": {"stats_map_full": 3}, "lost_stacks": 1, "warnings": ["w"]})"_json);
  Json empty;
  add_diagnostics(empty, Diagnostics{});
  CHECK_JSON_EQ(empty, R"({"dropped": {}, "lost_stacks": 0, "warnings": []})"_json);
}

TEST_CASE("diagnostics merge sums drops and lost stacks and appends warnings") {
  Diagnostics a, b;
  a.drop(kFull, 1);
  a.warn("x");
  b.drop(kFull, 2);
  b.drop(kBusy, 1);
  b.lost_stacks = 3;
  b.warn("y");
  a.merge(b);
  CHECK(a.dropped_count("stats_map_full") == 3);
  CHECK(a.dropped_count("calls_map_full") == 1);
  CHECK(a.lost_stacks == 3);
  CHECK(a.warnings == std::vector<std::string>{"x", "y"});
}

TEST_CASE("a lock is its hex address and its name or null") {
  Json named, unnamed;
  add_lock_identity(named, LockIdentity{0x7f0012ab, std::string("orders_lock")});
  add_lock_identity(unnamed, LockIdentity{0x10, std::nullopt});
  CHECK_JSON_EQ(named, R"({"address": "0x7f0012ab", "name": "orders_lock"})"_json);
  CHECK_JSON_EQ(unnamed, R"({"address": "0x10", "name": null})"_json);
  CHECK(LockIdentity{0x10, std::nullopt}.display() == "0x10");
  CHECK(LockIdentity{0x10, std::string("#2")}.display() == "#2");
}

TEST_CASE("json text escapes quotes, backslashes and control characters") {
  Json doc{{"s", "a\"b\\c\n\x01"}};
  CHECK(json_text(doc, -1) == R"({"s":"a\"b\\c\n\u0001"})");
  CHECK(parse_output(json_text(doc))["s"] == "a\"b\\c\n\x01");
}

TEST_CASE("json text is valid UTF-8 whatever bytes a traced string holds") {
  // A lone continuation byte, a truncated sequence, an overlong encoding and a surrogate, in a value
  // and in a key; valid multi-byte UTF-8 passes through unchanged.
  std::string bad = "t\x80x \xc3 \xc0\xaf \xed\xa0\x80 \xff";
  Json doc{{"comm", bad}, {"frames", {"ok \xc3\xa9", bad}}, {std::string("k\xfe"), 1}};
  std::string text = json_text(doc);
  nlohmann::json parsed = parse_output(text);  // throws on invalid UTF-8
  std::string comm = parsed["comm"];
  CHECK(comm.find('\x80') == std::string::npos);
  CHECK(comm.find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD
  CHECK(comm.substr(0, 1) == "t");
  CHECK(parsed["frames"][0] == "ok \xc3\xa9");
  CHECK(parsed.contains("k\xef\xbf\xbd"));
}

TEST_CASE("json documents keep their keys in the order they were added") {
  Json doc;
  doc["pid"] = 1;
  doc["dropped"] = Json::object();
  doc["address"] = "0x1";
  CHECK(json_text(doc, -1) == R"({"pid":1,"dropped":{},"address":"0x1"})");
}
