#include "core/cli.h"

#include <fmt/format.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <map>

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

void reject_command(const std::string& tool, int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    if (std::string(argv[i]) != "--") continue;
    // "-- -5" ends the options before a (negative) duration, as getopt allows: not a command.
    bool numbers_only = i + 1 < argc;
    for (int j = i + 1; j < argc; j++)
      if (!parse_double(argv[j]) && !is_negative_number(argv[j])) numbers_only = false;
    if (numbers_only) return;
    std::string given = "--";
    for (int j = i + 1; j < argc && j < i + 3; j++) given += std::string(" ") + argv[j];
    if (argc > i + 3) given += " ...";
    throw UsageError(fmt::format("{} does not start commands ('{}'): start the program, then give -p PID",
                                 tool, given));
  }
}

bool is_negative_number(const std::string& arg) {
  if (arg.size() < 2 || arg[0] != '-') return false;
  char c = arg[1];
  return (std::isdigit(static_cast<unsigned char>(c)) || c == '.') && parse_double(arg.substr(1)).has_value();
}

namespace {

bool looks_like_option(const std::string& arg) {
  return arg.size() > 1 && arg[0] == '-' && !is_negative_number(arg);
}

std::string option_display(const cxxopts::HelpOptionDetails& d) {
  std::string out;
  if (!d.s.empty()) out = "-" + d.s;
  for (auto& l : d.l) out += (out.empty() ? "--" : "/--") + l;
  return out;
}

}  // namespace

cxxopts::ParseResult parse_arguments(cxxopts::Options& spec, const std::vector<std::string>& args) {
  const cxxopts::HelpGroupDetails& group = spec.group_help("");
  std::map<std::string, const cxxopts::HelpOptionDetails*> by_name;  // "-p", "--pid"
  for (auto& d : group.options) {
    if (!d.s.empty()) by_name["-" + d.s] = &d;
    for (auto& l : d.l) by_name["--" + l] = &d;
  }
  auto find = [&](const std::string& name) -> const cxxopts::HelpOptionDetails* {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  };

  std::vector<std::string> options, positional;
  std::map<const cxxopts::HelpOptionDetails*, int> given;
  if (!args.empty()) options.push_back(args[0]);
  for (size_t i = 1; i < args.size(); i++) {
    const std::string& a = args[i];
    if (a == "--") {
      positional.insert(positional.end(), args.begin() + long(i) + 1, args.end());
      break;
    }
    if (!looks_like_option(a)) {
      positional.push_back(a);
      continue;
    }
    options.push_back(a);
    // The option whose value is the next argument, if any.
    const cxxopts::HelpOptionDetails* takes_next = nullptr;
    std::string spelled;
    if (starts_with(a, "--")) {
      size_t eq = a.find('=');
      const cxxopts::HelpOptionDetails* d = find(a.substr(0, eq));
      if (!d) continue;  // cxxopts names the unknown option
      given[d]++;
      if (eq == std::string::npos && !d->is_boolean) {
        takes_next = d;
        spelled = a;
      }
    } else {
      // A group of short options: the first one taking a value takes the rest of the group, or
      // the next argument when it ends the group.
      for (size_t k = 1; k < a.size(); k++) {
        std::string name = std::string("-") + a[k];
        const cxxopts::HelpOptionDetails* d = find(name);
        if (!d) break;
        given[d]++;
        if (d->is_boolean) continue;
        if (k + 1 == a.size()) {
          takes_next = d;
          spelled = name;
        }
        break;
      }
    }
    if (!takes_next || i + 1 >= args.size()) continue;  // cxxopts reports a missing last value
    const std::string& v = args[i + 1];
    if (looks_like_option(v))
      throw UsageError(fmt::format("{} needs a value ({}) but is followed by the option '{}'", spelled,
                                   takes_next->arg_help.empty() ? "an argument" : takes_next->arg_help, v));
    options.push_back(v);
    i++;
  }
  if (!positional.empty()) {
    options.push_back("--");
    options.insert(options.end(), positional.begin(), positional.end());
  }

  std::vector<const char*> argv;
  for (auto& a : options) argv.push_back(a.c_str());
  cxxopts::ParseResult res = spec.parse(int(argv.size()), argv.data());
  auto repeatable = [](const cxxopts::HelpOptionDetails& d) {
    return d.l.size() == 1 && d.l[0] == "debug-dir";
  };
  for (auto& d : group.options)
    if (!d.is_boolean && given[&d] > 1 && !repeatable(d))
      throw UsageError(fmt::format("{} given more than once: give it once", option_display(d)));
  return res;
}

std::optional<std::string> single_positional(const cxxopts::ParseResult& res, const std::string& name) {
  if (!res.count(name)) return std::nullopt;
  auto v = res[name].as<std::vector<std::string>>();
  if (v.size() > 1) {
    auto number = [](const std::string& s) { return parse_double(s).has_value(); };
    if (number(v[0]) && number(v[1]))
      throw UsageError(fmt::format("{} given twice ('{}' and '{}'): give one", name, v[0], v[1]));
    if (number(v[0])) throw UsageError(fmt::format("unexpected argument '{}'", v[1]));
  }
  return v[0];
}

pid_t parse_pid(const std::string& s, const std::string& what) {
  auto v = parse_int(s);
  if (!v) throw UsageError(fmt::format("invalid {} '{}': expected a decimal number", what, s));
  if (*v <= 0 || *v > 4194304)
    throw UsageError(fmt::format("invalid {} '{}': expected 1 to 4194304", what, s));
  return pid_t(*v);
}

double parse_seconds(const std::string& s, const std::string& what, bool zero_ok) {
  auto v = parse_double(s);
  if (!v) throw UsageError(fmt::format("invalid {} '{}': expected a number of seconds", what, s));
  if (*v < 0 || (*v == 0 && !zero_ok))
    throw UsageError(fmt::format("invalid {} '{}': must be {}a positive number of seconds", what, s,
                                 zero_ok ? "0 or " : ""));
  if (*v > kMaxSeconds)
    throw UsageError(fmt::format("invalid {} '{}': at most {:.0f} seconds", what, s, kMaxSeconds));
  return *v;
}

long long parse_integer(const std::string& s, const std::string& what, long long min, long long max) {
  auto v = parse_int(s);
  if (!v) {
    bool digits = s.find_first_not_of("0123456789", s[0] == '-' ? 1 : 0) == std::string::npos && s != "-";
    if (digits)  // out of the range of long long
      throw UsageError(fmt::format("invalid {} '{}': must be {} {}", what, s, s[0] == '-' ? "at least" : "at most",
                                   s[0] == '-' ? min : max));
    throw UsageError(fmt::format("invalid {} '{}': expected a whole number", what, s));
  }
  if (*v < min) throw UsageError(fmt::format("invalid {} '{}': must be at least {}", what, s, min));
  if (*v > max) throw UsageError(fmt::format("invalid {} '{}': must be at most {}", what, s, max));
  return *v;
}

long long parse_positive(const std::string& s, const std::string& what, long long max) {
  return parse_integer(s, what, 1, max);
}

void add_target_options(cxxopts::Options& spec, const std::string& pid_help, const std::string& tid_help) {
  spec.add_options()("p,pid", pid_help, cxxopts::value<std::string>(), "PID");
  if (!tid_help.empty()) spec.add_options()("t,tid", tid_help, cxxopts::value<std::string>(), "TID");
}

void add_follow_forks_option(cxxopts::Options& spec) {
  spec.add_options()("follow-forks",
                     "with -p PID, also trace every process PID forks from now on (and theirs); a command "
                     "after -- is always traced with every process it starts");
}

bool follow_forks_option(const cxxopts::ParseResult& res, pid_t pid, pid_t tid, bool command) {
  bool given = res.count("follow-forks") > 0;
  if (given && tid) throw UsageError("--follow-forks follows processes, not one thread: give -p PID without -t");
  if (given && !pid && !command)
    throw UsageError("--follow-forks needs -p PID (without a target every process is traced already)");
  return command || given;
}

void add_stack_storage_option(cxxopts::Options& spec, const std::string& help, size_t default_n) {
  spec.add_options()("stack-storage-size", help, cxxopts::value<std::string>()->default_value(std::to_string(default_n)), "N");
}

void add_debug_dir_option(cxxopts::Options& spec) {
  spec.add_options()("debug-dir",
                     "also look for separate debug files (by build-id or debuglink) in DIR, before "
                     "/usr/lib/debug; repeatable, or DIR:DIR...",
                     cxxopts::value<std::vector<std::string>>(), "DIR");
}

void add_duration_positional(cxxopts::Options& spec, const std::string& help) {
  spec.add_options()("duration", help, cxxopts::value<std::vector<std::string>>());
  spec.parse_positional({"duration"});
}

pid_t pid_option(const cxxopts::ParseResult& res) {
  return res.count("pid") ? parse_pid(res["pid"].as<std::string>()) : 0;
}

pid_t tid_option(const cxxopts::ParseResult& res) {
  return res.count("tid") ? parse_pid(res["tid"].as<std::string>(), "tid") : 0;
}

size_t stack_storage_option(const cxxopts::ParseResult& res) {
  return size_t(parse_positive(res["stack-storage-size"].as<std::string>(), "--stack-storage-size", 1 << 20));
}

std::vector<std::string> debug_dirs_option(const cxxopts::ParseResult& res) {
  std::vector<std::string> out;
  if (!res.count("debug-dir")) return out;
  for (auto& given : res["debug-dir"].as<std::vector<std::string>>()) {
    if (given.empty()) throw UsageError("--debug-dir needs a directory");
    for (auto& dir : split(given, ':')) {
      if (dir.empty()) continue;  // "a::b", a trailing ':'
      struct stat st;
      if (::stat(dir.c_str(), &st) != 0)
        throw UsageError(fmt::format("--debug-dir {}: {}", dir, errno_text(errno)));
      if (!S_ISDIR(st.st_mode)) throw UsageError(fmt::format("--debug-dir {}: not a directory", dir));
      char buf[PATH_MAX];
      std::string abs = ::realpath(dir.c_str(), buf) ? std::string(buf) : dir;
      if (std::find(out.begin(), out.end(), abs) == out.end()) out.push_back(abs);
    }
  }
  return out;
}

double duration_positional(const cxxopts::ParseResult& res) {
  auto d = single_positional(res, "duration");
  return d ? parse_seconds(*d, "duration") : 0;
}

void add_pprof_option(cxxopts::Options& spec) {
  spec.add_options()("pprof", "write the final report as a gzipped pprof profile to FILE (- for stdout)",
                     cxxopts::value<std::string>(), "FILE");
}

std::string pprof_option(const cxxopts::ParseResult& res) {
  if (!res.count("pprof")) return "";
  std::string f = res["pprof"].as<std::string>();
  if (f.empty()) throw UsageError("--pprof needs a file name (or - for stdout)");
  return f;
}

void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& outputs) {
  for (size_t i = 0; i < outputs.size(); i++)
    for (size_t j = i + 1; j < outputs.size(); j++) {
      auto& [a, fa] = outputs[i];
      auto& [b, fb] = outputs[j];
      if (fa.empty() || fa != fb) continue;
      if (fa == "-") throw UsageError(fmt::format("{} - and {} - cannot both write to stdout", a, b));
      throw UsageError(fmt::format("{} and {} cannot both write to '{}'", a, b, fa));
    }
}

}  // namespace lockkit
