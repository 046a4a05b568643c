#include "mklockstat/options.h"

#include <cxxopts.hpp>
#include <fmt/format.h>

#include "core/cli.h"
#include "core/help.h"
#include "core/util.h"
#include "mklockstat/model.h"

namespace lockkit::mklockstat {

std::string backend_name(Backend b) {
  switch (b) {
    case Backend::Auto: return "auto";
    case Backend::Tracepoint: return "tracepoint";
    case Backend::Kprobe: return "kprobe";
  }
  return "?";
}

Options parse_options(int argc, char** argv) {
  Options o;
  reject_command("mklockstat", argc, argv);
  cxxopts::Options spec("mklockstat",
                        "Time spent waiting for kernel locks, per thread and lock, in fixed periods "
                        "(milli-kLockStat).");
  spec.custom_help("[options]");
  spec.positional_help("");
  // clang-format off
  spec.set_width(100);
  spec.add_options()
    ("period", "period in ms for reporting aggregate data", cxxopts::value<std::string>()->default_value("50"), "MS")
    ("time", "seconds to collect samples, then exit (0 = until Ctrl-C)", cxxopts::value<std::string>()->default_value("10"), "SEC")
    ("no-filter-monitors", "also log locks taken by known monitors (collect, collectl, tcplife-bpfcc)")
    ("filter-comm", "skip threads with these commands (comma-separated; replaces the default list)", cxxopts::value<std::string>(), "LIST")
    ("backend", "auto, tracepoint (lock:contention_begin/end: contended waits) or kprobe (every acquisition)", cxxopts::value<std::string>()->default_value("auto"), "NAME");
  add_target_options(spec, "only threads of process PID (a kernel thread too); ends when it exits",
                     "only thread TID (its process ends the trace when it exits)");
  spec.add_options()
    ("o,output", "write the log to FILE instead of stdout", cxxopts::value<std::string>()->default_value("-"), "FILE")
    ("names", "append a 10th field: the kernel symbol of the lock (global locks), or empty")
    ;
  add_pprof_option(spec);
  add_stack_storage_option(spec, "number of distinct kernel stacks BPF can store", 16384);
  spec.add_options()
    ("perf-pages", "perf buffer pages per CPU for finished periods (a power of two)", cxxopts::value<std::string>()->default_value("64"), "N")
    ("dry-run", "compile the BPF program and load it into the kernel, attach nothing, exit");
  add_help_options(spec);
  // clang-format on
  auto res = parse_arguments(spec, std::vector<std::string>(argv, argv + argc));
  HelpExtras extras;
  extras.notes =
      "Output (stdout or -o FILE), one line per (thread, lock, period) and one per stack:\n"
      "  s,command,P<pid>_T<tid>,typename,lockaddr,starttime,diffsum,lockcount,stackid[,name]\n"
      "  t,stackid,frame1,frame2,...\n";
  extras.examples = {
      {"mklockstat --period 50 --time 10 > run.log", "log 10 seconds in 50 ms periods"},
      {"mklockstat -p 1234 --names -o run.log", "only pid 1234, until it exits or 10 s, with lock names"},
      {"mklockstat --time 0 --no-filter-monitors", "until Ctrl-C, monitors included"},
      {"mklockstat --time 10 -o run.log --pprof run.pb.gz", "the log and the same samples as a pprof profile"},
  };
  if (help_requested(res, spec, extras, &o.help_text)) {
    o.help = true;
    return o;
  }
  if (!res.unmatched().empty()) {
    const std::string& a = res.unmatched()[0];
    if (parse_double(a))
      throw UsageError(fmt::format("unexpected argument '{}': mklockstat takes no duration argument (use --time SEC)", a));
    throw UsageError(fmt::format("unexpected argument '{}'", a));
  }

  std::string period = res["period"].as<std::string>();
  auto ms = parse_double(period);
  if (!ms || *ms < 1 || *ms > 3600000 || *ms != double(int64_t(*ms)))
    throw UsageError(fmt::format("invalid --period '{}': expected whole milliseconds, 1 to 3600000", period));
  o.period_ns = uint64_t(*ms) * 1000000ull;

  o.time_s = parse_seconds(res["time"].as<std::string>(), "--time", true);

  if (res.count("no-filter-monitors") && res.count("filter-comm"))
    throw UsageError("--no-filter-monitors and --filter-comm cannot be combined");
  if (res.count("filter-comm")) {
    for (auto& n : split(res["filter-comm"].as<std::string>(), ',')) {
      std::string name = trim(n);
      if (name.empty()) continue;
      if (name.size() > MK_COMM_LEN - 1)
        throw UsageError(fmt::format("--filter-comm '{}': commands are at most {} characters (the kernel "
                                     "keeps no more)", name, MK_COMM_LEN - 1));
      o.skip_comms.push_back(name);
    }
    if (o.skip_comms.empty())
      throw UsageError("--filter-comm names no command (to filter none, use --no-filter-monitors)");
  } else if (!res.count("no-filter-monitors")) {
    o.skip_comms = default_monitors();
  }

  std::string b = res["backend"].as<std::string>();
  if (b == "auto") o.backend = Backend::Auto;
  else if (b == "tracepoint") o.backend = Backend::Tracepoint;
  else if (b == "kprobe") o.backend = Backend::Kprobe;
  else throw UsageError(fmt::format("invalid --backend '{}': expected auto, tracepoint or kprobe", b));

  o.pid = pid_option(res);
  o.tid = tid_option(res);
  o.output = res["output"].as<std::string>();
  o.names = res.count("names") > 0;
  o.pprof = pprof_option(res);
  check_distinct_outputs({{"-o", o.output}, {"--pprof", o.pprof}});
  o.stack_storage = stack_storage_option(res);
  long long pages = parse_positive(res["perf-pages"].as<std::string>(), "--perf-pages", 4096);
  if ((pages & (pages - 1)) != 0)
    throw UsageError(fmt::format("invalid --perf-pages '{}': expected a power of two up to 4096", pages));
  o.perf_pages = int(pages);
  o.dry_run = res.count("dry-run") > 0;
  return o;
}

}  // namespace lockkit::mklockstat
