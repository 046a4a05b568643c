#include "lockstat/options.h"

#include <cxxopts.hpp>
#include <fmt/format.h>

#include "core/cli.h"
#include "core/util.h"

namespace lockkit::lockstat {

namespace {

// "--folded wait FILE" takes two values; cxxopts takes one, so join them as "wait,FILE".
std::vector<std::string> join_folded(std::vector<std::string> args) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); i++) {
    if (args[i] == "--folded" && i + 2 < args.size() && args[i + 1].find(',') == std::string::npos &&
        (args[i + 1] == "wait" || args[i + 1] == "hold")) {
      out.push_back("--folded=" + args[i + 1] + "," + args[i + 2]);
      i += 2;
      continue;
    }
    out.push_back(args[i]);
  }
  return out;
}

}  // namespace

Options parse_options(int argc, char** argv) {
  Options o;
  std::vector<std::string> own, command;
  split_command(argc, argv, &own, &command);
  own = join_folded(own);

  cxxopts::Options spec("lockstat", "Profile pthread lock contention of one process with uprobes: how long "
                                    "threads waited for each lock and held it, per thread and call stack.");
  spec.custom_help("[options] -p PID [duration] | [options] -- COMMAND [ARGS...]");
  spec.positional_help("");
  spec.set_width(100);
  // clang-format off
  spec.add_options()
    ("p,pid", "trace the running process PID", cxxopts::value<std::string>(), "PID")
    ("i,interval", "print a report every SEC seconds", cxxopts::value<std::string>()->default_value("5"), "SEC")
    ("reset", "per-interval reports (default: cumulative since start)")
    ("n,top", "show the N most contended locks (0 = all)", cxxopts::value<std::string>()->default_value("10"), "N")
    ("s,sort", "sort by wait|hold|count|max_wait|max_hold|avg_wait", cxxopts::value<std::string>()->default_value("wait"), "KEY")
    ("m,min-wait", "only locks whose total wait is at least MS milliseconds", cxxopts::value<std::string>(), "MS")
    ("sample", "record only PCT% of acquisitions (0 < PCT <= 100); totals become estimates", cxxopts::value<std::string>(), "PCT")
    ("kinds", "lock kinds to trace: any of mutex,rwlock,spin", cxxopts::value<std::string>()->default_value("mutex,rwlock,spin"), "LIST")
    ("per-thread", "also print wait and hold histograms per thread")
    ("json", "write the final report as JSON to FILE (- for stdout)", cxxopts::value<std::string>(), "FILE")
    ("folded", "write folded stacks weighted by wait or hold time: --folded wait|hold FILE|-", cxxopts::value<std::vector<std::string>>(), "METRIC FILE")
    ("stack-depth", "show at most N frames per stack (0 = all)", cxxopts::value<std::string>()->default_value("0"), "N")
    ("stack-storage-size", "number of distinct stacks BPF can store", cxxopts::value<std::string>()->default_value("16384"), "N")
    ("binary", "library or static executable holding the pthread functions", cxxopts::value<std::string>(), "PATH")
    ("h,help", "show this help")
    ("duration", "seconds to trace", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  spec.parse_positional({"duration"});

  std::vector<char*> av;
  for (auto& a : own) av.push_back(const_cast<char*>(a.c_str()));
  auto res = spec.parse(int(av.size()), av.data());
  o.help_text = spec.help() +
                "\nExamples:\n"
                "  lockstat -p 1234              # trace pid 1234 until it exits or Ctrl-C\n"
                "  lockstat -p 1234 10           # trace for 10 seconds\n"
                "  lockstat -s max_wait -n 5 -- ./app arg   # start ./app traced from its first instruction\n"
                "  lockstat --json out.json --folded wait wait.folded -p 1234\n";
  if (res.count("help")) {
    o.help = true;
    return o;
  }
  o.command = command;
  if (res.count("pid")) o.pid = parse_pid(res["pid"].as<std::string>());
  if (o.pid && !command.empty()) throw UsageError("give either -p PID or -- COMMAND, not both");
  if (!o.pid && command.empty()) throw UsageError("nothing to trace: give -p PID or -- COMMAND");
  if (res.count("duration")) {
    auto d = res["duration"].as<std::vector<std::string>>();
    if (d.size() > 1) throw UsageError(fmt::format("unexpected argument '{}'", d[1]));
    o.duration_s = parse_seconds(d[0], "duration");
  }
  o.interval_s = parse_seconds(res["interval"].as<std::string>(), "interval");
  o.reset = res.count("reset") > 0;
  auto top = parse_int(res["top"].as<std::string>());
  if (!top || *top < 0) throw UsageError("invalid --top '" + res["top"].as<std::string>() + "'");
  o.top = size_t(*top);
  o.sort_name = res["sort"].as<std::string>();
  auto sk = parse_sort_key(o.sort_name);
  if (!sk) throw UsageError("invalid --sort '" + o.sort_name + "': expected wait, hold, count, max_wait, max_hold or avg_wait");
  o.sort = *sk;
  if (res.count("min-wait")) {
    auto ms = parse_double(res["min-wait"].as<std::string>());
    if (!ms || *ms < 0) throw UsageError("invalid --min-wait '" + res["min-wait"].as<std::string>() + "'");
    o.min_wait_ns = uint64_t(*ms * 1e6);
  }
  if (res.count("sample")) {
    auto p = parse_double(res["sample"].as<std::string>());
    if (!p || *p <= 0 || *p > 100)
      throw UsageError("invalid --sample '" + res["sample"].as<std::string>() + "': expected 0 < PCT <= 100");
    if (*p < 0.01) throw UsageError("--sample below 0.01% is not supported");
    o.sample_percent = *p;
  }
  o.mutex = o.rwlock = o.spin = false;
  for (auto& k : split(res["kinds"].as<std::string>(), ',')) {
    if (k == "mutex") o.mutex = true;
    else if (k == "rwlock") o.rwlock = true;
    else if (k == "spin" || k == "spinlock") { o.spin = true; o.spin_requested = res.count("kinds") > 0; }
    else throw UsageError("invalid --kinds entry '" + k + "': expected mutex, rwlock or spin");
  }
  o.per_thread = res.count("per-thread") > 0;
  if (res.count("json")) o.json = res["json"].as<std::string>();
  if (res.count("folded")) {
    auto v = res["folded"].as<std::vector<std::string>>();
    if (v.size() != 2 || (v[0] != "wait" && v[0] != "hold"))
      throw UsageError("--folded takes a metric and a file: --folded wait|hold FILE|-");
    o.folded_hold = v[0] == "hold";
    o.folded = v[1];
    if (o.folded.empty()) throw UsageError("--folded needs a file name (or -)");
  }
  if (o.json == "-" && o.folded == "-") throw UsageError("--json - and --folded ... - cannot both write to stdout");
  auto depth = parse_int(res["stack-depth"].as<std::string>());
  if (!depth || *depth < 0 || *depth > 127) throw UsageError("invalid --stack-depth '" + res["stack-depth"].as<std::string>() + "': expected 0..127");
  o.stack_depth = size_t(*depth);
  o.stack_storage = size_t(parse_positive(res["stack-storage-size"].as<std::string>(), "--stack-storage-size"));
  if (o.stack_storage > (1u << 20)) throw UsageError("--stack-storage-size is at most 1048576");
  if (res.count("binary")) o.binary = res["binary"].as<std::string>();
  return o;
}

}  // namespace lockkit::lockstat
