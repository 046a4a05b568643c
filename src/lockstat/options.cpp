#include "lockstat/options.h"

#include <cxxopts.hpp>
#include <fmt/format.h>

#include "core/cli.h"
#include "core/help.h"
#include "core/util.h"
#include "lockstat/contention_model.h"

namespace lockkit::lockstat {

namespace {

bool is_metric(const std::string& s) { return s == "wait" || s == "hold"; }

// "--folded wait FILE" takes two values; cxxopts takes one, so join them as "--folded=wait,FILE".
// The two words are checked here, where it is still known which is which: a metric followed by an
// option is a missing FILE, not a file named "-p".
std::vector<std::string> join_folded(const std::vector<std::string>& args) {
  auto option_like = [](const std::string& a) { return a.size() > 1 && a[0] == '-'; };
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& a = args[i];
    if (a != "--folded" && !(starts_with(a, "--folded=") && a.find(',') == std::string::npos)) {
      out.push_back(a);  // "--folded=wait,FILE" is left to cxxopts
      continue;
    }
    std::string metric;
    size_t file_at = i + 1;
    if (a == "--folded") {
      if (i + 1 >= args.size() || option_like(args[i + 1]))
        throw UsageError("--folded needs a metric and a file: --folded wait|hold FILE|-");
      metric = args[i + 1];
      file_at = i + 2;
    } else {
      metric = a.substr(9);
    }
    if (!is_metric(metric))
      throw UsageError(fmt::format("invalid --folded metric '{}': expected wait or hold (--folded wait|hold FILE|-)", metric));
    if (file_at >= args.size())
      throw UsageError(fmt::format("--folded {} needs a FILE (or - for stdout) after the metric", metric));
    if (option_like(args[file_at]))
      throw UsageError(fmt::format("--folded {} needs a FILE (or - for stdout) after the metric, not the option '{}'",
                                   metric, args[file_at]));
    out.push_back("--folded=" + metric + "," + args[file_at]);
    i = file_at;
  }
  return out;
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  std::vector<std::string> own, command;
  split_command(argc, argv, &own, &command);
  own = join_folded(own);

  cxxopts::Options spec("lockstat", "Profile pthread lock contention of one process: how long threads waited "
                                    "for each lock and held it, per thread and call stack (--mode full, with "
                                    "uprobes), or only the contended waits, who held the lock and where it was "
                                    "released (--mode contention, from futex system calls, much cheaper).");
  spec.custom_help("[options] -p PID [duration] | [options] -- COMMAND [ARGS...]");
  spec.positional_help("");
  spec.set_width(100);
  // clang-format off
  add_target_options(spec, "trace the running process PID");
  add_follow_forks_option(spec);
  spec.add_options()
    ("mode", "full (every lock call, on uprobes) or contention (contended waits only, from futex "
             "system calls; sees no uncontended acquisition, no hold time, no spinning in user space "
             "before the system call)", cxxopts::value<std::string>()->default_value("full"), "MODE")
    ("i,interval", "print a report every SEC seconds", cxxopts::value<std::string>()->default_value("5"), "SEC")
    ("reset", "per-interval reports (default: cumulative since start)")
    ("n,top", "show the N most contended locks (0 = all)", cxxopts::value<std::string>()->default_value("10"), "N")
    ("s,sort", "sort by wait|hold|count|max_wait|max_hold|avg_wait", cxxopts::value<std::string>()->default_value("wait"), "KEY")
    ("m,min-wait", "only locks whose total wait is at least MS milliseconds", cxxopts::value<std::string>(), "MS")
    ("sample", "record only PCT% of acquisitions (0 < PCT <= 100); totals become estimates", cxxopts::value<std::string>(), "PCT")
    ("kinds", "lock kinds to trace: any of mutex,rwlock,spin,sem (POSIX semaphores, not in the "
              "default), or all", cxxopts::value<std::string>()->default_value("mutex,rwlock,spin"), "LIST")
    ("per-thread", "also print wait and hold histograms per thread")
    ("lock-order", "record the order in which each thread takes locks and report every cycle "
                   "(A then B in one thread, B then A in another): potential deadlocks (--mode full)")
    ("json", "write the final report as JSON to FILE (- for stdout)", cxxopts::value<std::string>(), "FILE")
    ("folded", "write folded stacks weighted by wait or hold time: --folded wait|hold FILE|-", cxxopts::value<std::vector<std::string>>(), "METRIC FILE")
    ("stack-depth", "show at most N frames per stack (0 = all)", cxxopts::value<std::string>()->default_value("0"), "N")
    ;
  add_stack_storage_option(spec, "number of distinct stacks BPF can store", 16384);
  spec.add_options()
    ("binary", "library or static executable holding the pthread functions", cxxopts::value<std::string>(), "PATH");
  add_debug_dir_option(spec);
  add_pprof_option(spec);
  add_help_options(spec);
  // clang-format on
  add_duration_positional(spec, "seconds to trace");

  auto res = parse_arguments(spec, own);
  HelpExtras extras;
  extras.notes = std::string("Note: ") + kContentionBlindSpots +
                 ". It reports, per lock, the contended waits per thread and waiting stack, and for "
                 "mutexes the holders that caused them with their release stacks.\n";
  extras.examples = {
      {"lockstat -p 1234", "trace pid 1234 until it exits or Ctrl-C"},
      {"lockstat -p 1234 10", "trace pid 1234 for 10 seconds"},
      {"lockstat -p 1234 --follow-forks", "trace pid 1234 and every process it forks from now on"},
      {"lockstat -s max_wait -n 5 -- ./app arg", "start ./app traced from its first instruction; 5 locks by max wait"},
      {"lockstat --json out.json --folded wait wait.folded -p 1234", "also write JSON and folded wait stacks"},
      {"lockstat --mode contention -p 1234 10", "contended waits only, with holders and release stacks"},
      {"lockstat --pprof locks.pb.gz -p 1234 10", "a pprof profile; then: go tool pprof -http=: locks.pb.gz"},
      {"lockstat --lock-order -- ./app", "also report lock-order cycles (potential deadlocks)"},
  };
  if (help_requested(res, spec, extras, &o.help_text)) {
    o.help = true;
    return o;
  }
  o.command = command;
  o.pid = pid_option(res);
  if (o.pid && !command.empty()) throw UsageError("give either -p PID or -- COMMAND, not both");
  if (!o.pid && command.empty()) throw UsageError("nothing to trace: give -p PID or -- COMMAND");
  o.follow_forks = follow_forks_option(res, o.pid, 0, !command.empty());
  o.duration_s = duration_positional(res);
  o.interval_s = parse_seconds(res["interval"].as<std::string>(), "interval");
  o.reset = res.count("reset") > 0;
  o.top = size_t(parse_integer(res["top"].as<std::string>(), "--top", 0, 1LL << 40));
  o.sort_name = res["sort"].as<std::string>();
  auto sk = parse_sort_key(o.sort_name);
  if (!sk) throw UsageError("invalid --sort '" + o.sort_name + "': expected wait, hold, count, max_wait, max_hold or avg_wait");
  o.sort = *sk;
  if (res.count("min-wait")) {
    std::string text = res["min-wait"].as<std::string>();
    auto ms = parse_double(text);
    if (!ms) throw UsageError("invalid --min-wait '" + text + "': expected a number of milliseconds");
    if (*ms < 0) throw UsageError("invalid --min-wait '" + text + "': must be 0 or more milliseconds");
    if (*ms > kMaxSeconds * 1e3)
      throw UsageError(fmt::format("invalid --min-wait '{}': at most {:.0f} milliseconds", text, kMaxSeconds * 1e3));
    o.min_wait_ns = uint64_t(*ms * 1e6);
  }
  if (res.count("sample")) {
    std::string text = res["sample"].as<std::string>();
    auto p = parse_double(text);
    if (!p || *p <= 0 || *p > 100)
      throw UsageError("invalid --sample '" + text + "': expected 0 < PCT <= 100");
    if (*p < 0.01) throw UsageError("invalid --sample '" + text + "': below 0.01% is not supported");
    o.sample_percent = *p;
  }
  o.mutex = o.rwlock = o.spin = o.sem = false;
  std::string kinds = res["kinds"].as<std::string>();
  for (auto& k : split(kinds, ',')) {
    if (k == "mutex") o.mutex = true;
    else if (k == "rwlock") o.rwlock = true;
    else if (k == "spin" || k == "spinlock") { o.spin = true; o.spin_requested = res.count("kinds") > 0; }
    else if (k == "sem" || k == "semaphore") o.sem = true;
    else if (k == "all") o.mutex = o.rwlock = o.spin = o.sem = true;  // spin stays a warning if refused
    else if (k.empty()) throw UsageError("invalid --kinds '" + kinds + "': an empty entry; expected mutex, rwlock, spin, sem or all");
    else throw UsageError("invalid --kinds entry '" + k + "': expected mutex, rwlock, spin, sem or all");
  }
  o.per_thread = res.count("per-thread") > 0;
  o.lock_order = res.count("lock-order") > 0;
  if (o.lock_order && res.count("sample"))
    throw UsageError("--lock-order cannot be combined with --sample: an edge between two locks is seen only "
                     "when both acquisitions are traced");
  std::string mode = res["mode"].as<std::string>();
  if (mode == "contention") o.mode = Mode::Contention;
  else if (mode != "full") throw UsageError("invalid --mode '" + mode + "': expected full or contention");
  if (res.count("json")) {
    o.json = res["json"].as<std::string>();
    if (o.json.empty()) throw UsageError("--json needs a file name (or - for stdout)");
  }
  if (res.count("folded")) {
    auto v = res["folded"].as<std::vector<std::string>>();
    if (v.size() != 2) throw UsageError("--folded takes a metric and a file: --folded wait|hold FILE|-");
    if (!is_metric(v[0]))
      throw UsageError(fmt::format("invalid --folded metric '{}': expected wait or hold (--folded wait|hold FILE|-)", v[0]));
    o.folded_hold = v[0] == "hold";
    o.folded = v[1];
    if (o.folded.empty()) throw UsageError("--folded needs a file name (or - for stdout)");
  }
  o.pprof = pprof_option(res);
  check_distinct_outputs({{"--json", o.json}, {"--folded", o.folded}, {"--pprof", o.pprof}});
  if (o.mode == Mode::Contention) {
    // What contention mode cannot do, refused by name rather than ignored.
    if (res.count("lock-order"))
      throw UsageError("--lock-order needs --mode full: contention mode sees only contended waits, not which "
                       "locks a thread holds");
    for (const char* opt : {"sample", "reset", "kinds", "per-thread"})
      if (res.count(opt))
        throw UsageError(fmt::format("--{} does not apply to --mode contention (it records only contended waits)", opt));
    if (o.folded_hold) throw UsageError("--folded hold needs --mode full: contention mode measures no hold time");
    if (o.sort == SortKey::Hold || o.sort == SortKey::MaxHold)
      throw UsageError(fmt::format("--sort {} needs --mode full: contention mode measures no hold time", o.sort_name));
  }
  o.stack_depth = size_t(parse_integer(res["stack-depth"].as<std::string>(), "--stack-depth", 0, 127));
  o.stack_storage = stack_storage_option(res);
  o.debug_dirs = debug_dirs_option(res);
  if (res.count("binary")) {
    o.binary = res["binary"].as<std::string>();
    if (o.binary.empty()) throw UsageError("--binary needs a path");
  }
  return o;
}

}  // namespace lockkit::lockstat
