// Command-line plumbing common to the tools: error reporting, exit codes, value checks.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace lockkit {

// Runs a tool's body and turns every failure into one line on stderr and an exit code:
// usage errors exit 2 ("<tool>: error: ...", then "Try '<tool> --help'."), others exit 1.
int run_tool(const std::string& tool, const std::function<int()>& body);

// Splits argv at the first "--": the tool's own arguments and the command to run.
void split_command(int argc, char** argv, std::vector<std::string>* own, std::vector<std::string>* command);

pid_t parse_pid(const std::string& s, const std::string& what = "pid");
// A positive number of seconds (fractions allowed).
double parse_seconds(const std::string& s, const std::string& what);
long long parse_positive(const std::string& s, const std::string& what);

}  // namespace lockkit
