// Command-line plumbing common to the tools: error reporting, exit codes, argument checks and
// typed value parsers, so that every tool words the same mistake the same way.
#pragma once

#include <sys/types.h>

#include <cxxopts.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lockkit {

// Runs a tool's body and turns every failure into one line on stderr and an exit code:
// usage errors exit 2 ("<tool>: error: ...", then "Try '<tool> --help'."), others exit 1.
int run_tool(const std::string& tool, const std::function<int()>& body);

// Splits argv at the first "--": the tool's own arguments and the command to run.
void split_command(int argc, char** argv, std::vector<std::string>* own, std::vector<std::string>* command);

// For the tools that only follow running processes: "--" (a command to start) is a usage error
// that names what was given and what to give instead.
void reject_command(const std::string& tool, int argc, char** argv);

// True for an argument that is a negative number ("-5", "-0.5", "-1e3"): a bad value, never an
// option (no tool has digit options).
bool is_negative_number(const std::string& arg);

// Parses `args` (args[0] is the program name) with `spec`, first catching what cxxopts would
// misreport:
// - an option that takes a value followed by another option ("-p --json x"): the value is missing;
// - a negative number standing alone ("-p 1 -5"): cxxopts would read it as option '5'; it is
//   passed on as a positional value, whose own check then names it ("invalid duration '-5'").
// Then an option that takes a value given more than once is a usage error (the first one would
// be silently lost), except the options meant to be repeated (--debug-dir).
cxxopts::ParseResult parse_arguments(cxxopts::Options& spec, const std::vector<std::string>& args);

// The one positional value `name` (e.g. "duration"), or nullopt when none was given. A second
// one is a usage error: "duration given twice" when it is also a number, else "unexpected argument".
std::optional<std::string> single_positional(const cxxopts::ParseResult& res, const std::string& name);

// A process or thread id: a decimal number from 1 to the kernel's maximum.
pid_t parse_pid(const std::string& s, const std::string& what = "pid");
// A positive number of seconds (fractions allowed), at most kMaxSeconds; with `zero_ok`, 0 too.
constexpr double kMaxSeconds = 1e7;
double parse_seconds(const std::string& s, const std::string& what, bool zero_ok = false);
// A decimal integer from `min` to `max`.
long long parse_integer(const std::string& s, const std::string& what, long long min, long long max);
// A positive decimal integer, at most `max`.
long long parse_positive(const std::string& s, const std::string& what, long long max = (1LL << 62));

// Options every tool shares, declared once and read back typed:
//   -p/--pid PID, and (with a non-empty `tid_help`) -t/--tid TID;
//   --stack-storage-size N (distinct stacks BPF can keep, 1..2^20);
//   --debug-dir DIR (repeatable, or DIR:DIR...): directories searched for separate debug files
//   (DIR/.build-id/xx/rest.debug, DIR/<file's directory>/<debuglink>) before the default places;
//   the positional duration in seconds.
void add_target_options(cxxopts::Options& spec, const std::string& pid_help, const std::string& tid_help = "");
void add_stack_storage_option(cxxopts::Options& spec, const std::string& help, size_t default_n);
void add_debug_dir_option(cxxopts::Options& spec);
void add_duration_positional(cxxopts::Options& spec, const std::string& help);
// 0 when not given.
pid_t pid_option(const cxxopts::ParseResult& res);
pid_t tid_option(const cxxopts::ParseResult& res);
size_t stack_storage_option(const cxxopts::ParseResult& res);
// The --debug-dir directories in the order given, made absolute; one that is not a directory is a
// usage error. Empty when not given.
std::vector<std::string> debug_dirs_option(const cxxopts::ParseResult& res);
// 0 (until stopped) when not given.
double duration_positional(const cxxopts::ParseResult& res);

// --follow-forks: with -p PID, also trace the processes PID forks from then on (a command given
// after -- is always followed with every process it starts).
void add_follow_forks_option(cxxopts::Options& spec);
// Whether the run follows the target's process tree: always for a command, with --follow-forks for
// -p PID. --follow-forks without -p (nor a command) or with -t is a usage error.
bool follow_forks_option(const cxxopts::ParseResult& res, pid_t pid, pid_t tid, bool command);

// --pprof FILE: the run's final report as a gzipped pprof profile (core/pprof.h), "-" for stdout.
void add_pprof_option(cxxopts::Options& spec);
// "" when not given; an empty name is a usage error.
std::string pprof_option(const cxxopts::ParseResult& res);

// Output options as (option, file) pairs ("" = not given, "-" = stdout): at most one may write to
// stdout and no two to one file; otherwise a usage error naming both options.
void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs);

}  // namespace lockkit
