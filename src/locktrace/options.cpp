#include "locktrace/options.h"

#include <cxxopts.hpp>
#include <fmt/format.h>

#include <vector>

#include "core/cli.h"
#include "core/util.h"

namespace lockkit::locktrace {

Options parse_options(int argc, char** argv) {
  Options o;
  reject_command("locktrace", argc, argv);
  cxxopts::Options spec("locktrace", "Trace kernel futex events and collect per-lock stats.");
  spec.custom_help(
      "[-h] [-p PID] [-t TID] [-d] [--hist HIST] [--stack-storage-size STACK_STORAGE_SIZE] "
      "[-o FILE] [--format csv|json]");
  spec.positional_help("[duration]");
  // clang-format off
  spec.set_width(100);
  spec.add_options()
    ("p,pid", "the PID to trace; if not specified, trace all", cxxopts::value<std::string>(), "PID")
    ("t,tid", "trace only this thread (its process ends the trace when it exits)", cxxopts::value<std::string>(), "TID")
    ("d,debug", "display extra stats used for sanity checking / debugging (stderr, at exit)")
    ("hist", "write per-lock histograms of blocked time to the specified file (- for stdout)", cxxopts::value<std::string>(), "HIST")
    ("stack-storage-size", "the number of unique stack traces that can be stored and displayed",
     cxxopts::value<std::string>()->default_value("1024"), "N")
    ("o,output", "write the CSV (or JSON) to FILE instead of stdout", cxxopts::value<std::string>()->default_value("-"), "FILE")
    ("format", "output format: csv or json", cxxopts::value<std::string>()->default_value("csv"), "FORMAT")
    ("h,help", "show this help")
    ("duration", "duration of trace, in seconds", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  spec.parse_positional({"duration"});
  auto res = parse_arguments(spec, std::vector<std::string>(argv, argv + argc));
  o.help_text = spec.help() +
                "\n  duration                      duration of trace, in seconds\n"
                "\nExamples:\n"
                "  locktrace                        # trace all processes until Ctrl-C\n"
                "  locktrace -p 1234                # trace pid 1234 until it exits or Ctrl-C\n"
                "  locktrace -p 1234 10             # trace pid 1234 for 10 seconds\n"
                "  locktrace -p 1234 --hist h.txt   # also write per-lock histograms of blocked time\n"
                "  locktrace -p 1234 --format json -o locks.json\n";
  if (res.count("help")) {
    o.help = true;
    return o;
  }
  if (res.count("pid")) o.pid = parse_pid(res["pid"].as<std::string>());
  if (res.count("tid")) o.tid = parse_pid(res["tid"].as<std::string>(), "tid");
  if (auto d = single_positional(res, "duration")) o.duration_s = parse_seconds(*d, "duration");
  o.debug = res.count("debug") > 0;
  if (res.count("hist")) {
    o.hist = res["hist"].as<std::string>();
    if (o.hist.empty()) throw UsageError("--hist needs a file name (or -)");
  }
  o.stack_storage = size_t(parse_positive(res["stack-storage-size"].as<std::string>(), "--stack-storage-size", 1 << 20));
  o.output = res["output"].as<std::string>();
  if (o.output.empty()) throw UsageError("-o needs a file name (or -)");
  std::string f = res["format"].as<std::string>();
  if (f == "csv") o.format = Format::Csv;
  else if (f == "json") o.format = Format::Json;
  else throw UsageError("invalid --format '" + f + "': expected csv or json");
  if (o.hist == "-" && o.output == "-")
    throw UsageError("--hist - and the CSV/JSON output cannot both go to stdout (use -o FILE)");
  if (!o.hist.empty() && o.hist != "-" && o.hist == o.output)
    throw UsageError(fmt::format("--hist and -o cannot both write to '{}'", o.hist));
  return o;
}

}  // namespace lockkit::locktrace
