// Small helpers shared by every tool: errors with exit codes, file and string utilities.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace lockkit {

// An error the user can act on. The tools print "<tool>: error: <what>" and exit with `code`
// (2 for bad usage, 1 for everything else).
class ToolError : public std::runtime_error {
 public:
  explicit ToolError(const std::string& what, int code = 1) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

class UsageError : public ToolError {
 public:
  explicit UsageError(const std::string& what) : ToolError(what, 2) {}
};

std::optional<std::string> read_file(const std::string& path);
bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
std::vector<std::string> split(const std::string& s, char sep);
std::string trim(const std::string& s);
bool starts_with(const std::string& s, const std::string& prefix);
bool ends_with(const std::string& s, const std::string& suffix);
std::string basename_of(const std::string& path);
// `path` made absolute against the working directory (unchanged when already absolute or empty).
std::string absolute_path(const std::string& path);
std::string errno_text(int err);
// The target of symbolic link `path`, or "" when it cannot be read.
std::string readlink_str(const std::string& path);

// Strict number parsing for command-line values: the whole string must be a number in range.
std::optional<long long> parse_int(const std::string& s);
std::optional<double> parse_double(const std::string& s);

// Monotonic clock in nanoseconds (CLOCK_MONOTONIC, the clock bpf_ktime_get_ns() reads).
uint64_t monotonic_ns();
// The local wall-clock time as "HH:MM:SS" (report headers).
std::string local_time_hms();

// Human-readable duration for nanoseconds: "850ns", "12.3us", "4.56ms", "1.20s".
std::string format_duration(double ns);

// Demangles a C++ symbol; returns the input unchanged when it is not a mangled name.
std::string demangle(const std::string& name);

}  // namespace lockkit
