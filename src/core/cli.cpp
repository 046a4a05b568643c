#include "core/cli.h"

#include <cxxopts.hpp>
#include <fmt/format.h>

#include <iostream>

#include "core/util.h"

namespace lockkit {

int run_tool(const std::string& tool, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::cerr << tool << ": error: " << e.what() << "\nTry '" << tool << " --help'.\n";
    return 2;
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << tool << ": error: " << e.what() << "\nTry '" << tool << " --help'.\n";
    return 2;
  } catch (const ToolError& e) {
    std::cerr << tool << ": error: " << e.what() << '\n';
    return e.code();
  } catch (const std::exception& e) {
    std::cerr << tool << ": error: " << e.what() << '\n';
    return 1;
  }
}

void split_command(int argc, char** argv, std::vector<std::string>* own,
                   std::vector<std::string>* command) {
  bool after = false;
  for (int i = 0; i < argc; i++) {
    std::string a = argv[i];
    if (!after && a == "--" && i > 0) {
      after = true;
      continue;
    }
    (after ? command : own)->push_back(a);
  }
}

pid_t parse_pid(const std::string& s, const std::string& what) {
  auto v = parse_int(s);
  if (!v || *v <= 0 || *v > 4194304) throw UsageError(fmt::format("invalid {} '{}'", what, s));
  return pid_t(*v);
}

double parse_seconds(const std::string& s, const std::string& what) {
  auto v = parse_double(s);
  if (!v || *v <= 0 || *v > 1e7)
    throw UsageError(fmt::format("invalid {} '{}': expected a positive number of seconds", what, s));
  return *v;
}

long long parse_positive(const std::string& s, const std::string& what) {
  auto v = parse_int(s);
  if (!v || *v <= 0) throw UsageError(fmt::format("invalid {} '{}': expected a positive integer", what, s));
  return *v;
}

}  // namespace lockkit
