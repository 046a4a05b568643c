#include <catch2/catch.hpp>

#include "core/output.h"
#include "core/session.h"

#include <sstream>

using namespace lockkit;

TEST_CASE("csv fields without special characters are not quoted") {
  CHECK(csv_field("plain") == "plain");
}

TEST_CASE("csv fields with commas or quotes are quoted and quotes doubled") {
  CHECK(csv_field("f(int, char)") == "\"f(int, char)\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_field("two\nlines") == "\"two\nlines\"");
}

TEST_CASE("csv row joins quoted fields with commas") {
  CHECK(csv_row({"a", "b,c", ""}) == "a,\"b,c\",");
}

TEST_CASE("folded line lists frames root first and ends with the value") {
  CHECK(folded_line({"leaf", "mid", "root"}, 42) == "root;mid;leaf 42");
}

TEST_CASE("folded line keeps frames containing semicolons apart") {
  CHECK(folded_line({"a;b", "root"}, 1) == "root;a:b 1");
}

TEST_CASE("libbcc noise lines are recognised and real errors are not") {
  CHECK(is_libbcc_noise("sha1 socket not available: Address family not supported by protocol"));
  CHECK(is_libbcc_noise("cannot get prog tag, ignore saving source with program tag"));
  CHECK_FALSE(is_libbcc_noise("bpf: Failed to load program: Permission denied"));
}
