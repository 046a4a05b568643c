// Unit-test helpers for command lines: an argv as main() gets it, and the text of the usage error
// a parser gives for one.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "core/util.h"

namespace lockkit::testing {

// Owns a command line, program name first, and hands it out as argc/argv; argv()[argc()] is a
// null pointer, as in main(). Not copyable or movable: argv() points into the object.
class Argv {
 public:
  Argv(std::string program, std::vector<std::string> args) {
    strings_.reserve(args.size() + 1);
    strings_.push_back(std::move(program));
    for (auto& a : args) strings_.push_back(std::move(a));
    for (auto& s : strings_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }
  Argv(std::string program, std::initializer_list<std::string> args)
      : Argv(std::move(program), std::vector<std::string>(args)) {}
  Argv(const Argv&) = delete;
  Argv& operator=(const Argv&) = delete;

  int argc() const { return int(strings_.size()); }
  char** argv() { return pointers_.data(); }
  // The same command line as strings, for parsers that take a vector.
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

// Calls `parser(argc, argv)` (e.g. a tool's parse_options) on `program` followed by `args`.
template <class Parser>
auto parse_with(Parser&& parser, std::string program, std::vector<std::string> args) {
  Argv a(std::move(program), std::move(args));
  return parser(a.argc(), a.argv());
}

// What usage_message() returns when the call throws no UsageError.
inline constexpr char kNoUsageError[] = "(no usage error)";

// The text of the UsageError that calling `f` throws, or kNoUsageError when it returns. Other
// exceptions pass through and fail the test.
template <class F>
std::string usage_message(F&& f) {
  try {
    static_cast<void>(f());
  } catch (const UsageError& e) {
    return e.what();
  }
  return kNoUsageError;
}

}  // namespace lockkit::testing
