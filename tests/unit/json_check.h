// Unit-test helpers for JSON: documents are compared parsed, never as text.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace lockkit::testing {

// Parses tool output strictly: invalid UTF-8 or invalid JSON throws, failing the test.
inline nlohmann::json parse_output(const std::string& text) { return nlohmann::json::parse(text); }

// An expected document under tests/data/.
inline nlohmann::json golden(const std::string& name) {
  std::ifstream f(std::string(TEST_DATA_DIR) + "/" + name);
  REQUIRE(f.good());
  return nlohmann::json::parse(f);
}

}  // namespace lockkit::testing

// Equal as parsed documents (object key order does not matter); on failure shows the JSON patch that
// turns the actual document into the expected one.
#define CHECK_JSON_EQ(actual, expected)                                                  \
  do {                                                                                   \
    const nlohmann::json lk_actual_ = (actual), lk_expected_ = (expected);               \
    INFO("patch from actual to expected: " << nlohmann::json::diff(lk_actual_, lk_expected_).dump()); \
    CHECK(lk_actual_ == lk_expected_);                                                   \
  } while (0)
