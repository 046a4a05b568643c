#include "locktrace/options.h"

#include <cxxopts.hpp>
#include <fmt/format.h>

#include <vector>

#include "core/cli.h"
#include "core/help.h"
#include "core/util.h"

namespace lockkit::locktrace {

Options parse_options(int argc, char** argv) {
  Options o;
  // "-- -5" ends the options before a (negative) duration, as getopt allows: not a command.
  std::vector<std::string> own, command;
  split_command(argc, argv, &own, &command);
  bool numbers_only = !command.empty();
  for (auto& a : command)
    if (!parse_double(a) && !is_negative_number(a)) numbers_only = false;
  if (numbers_only) {
    own = std::vector<std::string>(argv, argv + argc);
    command.clear();
  }
  cxxopts::Options spec("locktrace", "Trace kernel futex events and collect per-lock stats.");
  spec.positional_help("[duration]");
  spec.set_width(100);
  add_target_options(spec, "the PID to trace; if not specified, trace all",
                     "trace only this thread (its process ends the trace when it exits)");
  // clang-format off
  spec.add_options()
    ("d,debug", "display extra stats used for sanity checking / debugging (stderr, at exit)")
    ("hist", "write per-lock histograms of blocked time to the specified file (- for stdout)", cxxopts::value<std::string>(), "HIST");
  add_follow_forks_option(spec);
  add_stack_storage_option(spec, "the number of unique stack traces that can be stored and displayed", 1024);
  spec.add_options()
    ("o,output", "write the CSV (or JSON) to FILE instead of stdout", cxxopts::value<std::string>()->default_value("-"), "FILE")
    ("format", "output format: csv or json", cxxopts::value<std::string>()->default_value("csv"), "FORMAT");
  add_debug_dir_option(spec);
  add_pprof_option(spec);
  add_help_options(spec);
  // clang-format on
  add_duration_positional(spec, "duration of trace, in seconds");
  // Two forms: a running process (or all), or a command to start.
  spec.custom_help(option_summary(spec) + " [duration] | [options] -- COMMAND [ARGS...]");
  spec.positional_help("");
  auto res = parse_arguments(spec, own);
  HelpExtras extras;
  extras.examples = {
      {"locktrace", "trace all processes until Ctrl-C"},
      {"locktrace -p 1234", "trace pid 1234 until it exits or Ctrl-C"},
      {"locktrace -p 1234 10", "trace pid 1234 for 10 seconds"},
      {"locktrace -p 1234 --follow-forks", "trace pid 1234 and every process it forks from now on"},
      {"locktrace --format json -o locks.json -- make -j2", "start make traced with every process it starts"},
      {"locktrace -p 1234 --hist h.txt", "also write per-lock histograms of blocked time"},
      {"locktrace -p 1234 --format json -o locks.json", "write the per-lock statistics as JSON"},
  };
  if (help_requested(res, spec, extras, &o.help_text)) {
    o.help = true;
    return o;
  }
  o.pid = pid_option(res);
  o.tid = tid_option(res);
  o.command = command;
  if (!command.empty() && (o.pid || o.tid)) throw UsageError("give either -p PID (or -t TID) or -- COMMAND, not both");
  o.follow_forks = follow_forks_option(res, o.pid, o.tid, !command.empty());
  o.duration_s = duration_positional(res);
  o.debug = res.count("debug") > 0;
  if (res.count("hist")) {
    o.hist = res["hist"].as<std::string>();
    if (o.hist.empty()) throw UsageError("--hist needs a file name (or -)");
  }
  o.stack_storage = stack_storage_option(res);
  o.debug_dirs = debug_dirs_option(res);
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
  o.pprof = pprof_option(res);
  check_distinct_outputs({{"-o", o.output}, {"--hist", o.hist}, {"--pprof", o.pprof}});
  return o;
}

}  // namespace lockkit::locktrace
