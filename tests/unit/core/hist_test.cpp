#include <catch2/catch.hpp>
#include <sstream>

#include "core/hist.h"
#include "../json_check.h"

using lockkit::Log2Hist;

TEST_CASE("log2 slot 0 holds only the value 0") {
  CHECK(Log2Hist::slot_of(0) == 0);
  CHECK(Log2Hist::slot_of(1) == 1);
}

TEST_CASE("log2 slot k holds 2^(k-1) .. 2^k - 1") {
  CHECK(Log2Hist::slot_of(2) == 2);
  CHECK(Log2Hist::slot_of(3) == 2);
  CHECK(Log2Hist::slot_of(4) == 3);
  CHECK(Log2Hist::slot_of(1023) == 10);
  CHECK(Log2Hist::slot_of(1024) == 11);
  CHECK(Log2Hist::slot_of(UINT64_MAX) == 64);
}

TEST_CASE("log2 bucket labels match the values they hold") {
  for (uint32_t s = 1; s < 64; s++) {
    CHECK(Log2Hist::slot_of(Log2Hist::slot_low(s)) == s);
    CHECK(Log2Hist::slot_of(Log2Hist::slot_high(s)) == s);
  }
  CHECK(Log2Hist::slot_low(3) == 4);
  CHECK(Log2Hist::slot_high(3) == 7);
}

TEST_CASE("text histogram shows the 0 bucket and every row between the extremes") {
  Log2Hist h;
  h.add_value(0);
  h.add_value(5, 2);
  std::ostringstream os;
  h.print(os, "usecs");
  std::string text = os.str();
  CHECK(text.find("0 -> 0") != std::string::npos);
  CHECK(text.find("1 -> 1") != std::string::npos);
  CHECK(text.find("2 -> 3") != std::string::npos);
  CHECK(text.find("4 -> 7") != std::string::npos);
  CHECK(text.find("8 -> 15") == std::string::npos);
}

TEST_CASE("json histogram lists buckets with low and high and count") {
  Log2Hist h;
  h.add_value(6, 3);
  CHECK_JSON_EQ(h.to_json("us"), R"({"unit": "us", "buckets": [{"low": 4, "high": 7, "count": 3}]})"_json);
}

TEST_CASE("json histogram of no samples has no buckets") {
  CHECK_JSON_EQ(Log2Hist().to_json("us"), R"({"unit": "us", "buckets": []})"_json);
}

TEST_CASE("scaling a histogram rounds counts") {
  Log2Hist h;
  h.add_value(1, 3);
  h.scale(2.5);
  CHECK(h.slot(1) == 8);
}
