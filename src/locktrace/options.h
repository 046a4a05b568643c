// locktrace's command line (the seed tool's interface plus -t, -o and --format).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

namespace lockkit::locktrace {

enum class Format { Csv, Json };

struct Options {
  pid_t pid = 0;            // 0 = all processes
  pid_t tid = 0;            // 0 = every thread
  std::vector<std::string> command;  // -- COMMAND: started traced, with every process it starts
  bool follow_forks = false;         // the target's process tree (always with a command)
  double duration_s = 0;    // 0 = until Ctrl-C (or the traced process exits)
  bool debug = false;
  std::string hist;         // "" none, "-" stdout, else a file
  std::string pprof;        // "" none: a gzipped pprof profile of the rows
  size_t stack_storage = 1024;
  std::string output = "-";
  Format format = Format::Csv;
  std::vector<std::string> debug_dirs;  // --debug-dir, absolute, searched before the defaults
  bool help = false;
  std::string help_text;
};

// Parses argv (argv[0] is the program name). Throws UsageError for bad input.
Options parse_options(int argc, char** argv);

}  // namespace lockkit::locktrace
