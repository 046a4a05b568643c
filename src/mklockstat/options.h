// mklockstat's command line.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lockkit::mklockstat {

enum class Backend { Auto, Tracepoint, Kprobe };

std::string backend_name(Backend b);

struct Options {
  uint64_t period_ns = 50000000;       // --period MS
  double time_s = 10;                  // --time SEC; 0 = until Ctrl-C
  std::vector<std::string> skip_comms; // threads with these comms are not traced (empty: none)
  Backend backend = Backend::Auto;
  pid_t pid = 0;                       // -p: only this process (0 = all)
  pid_t tid = 0;                       // -t: only this thread (0 = all)
  std::string output = "-";
  bool names = false;                  // --names: 10th field, the lock's kernel symbol
  std::string pprof;                   // --pprof FILE: the samples as a gzipped pprof profile ("" none)
  size_t stack_storage = 16384;
  int perf_pages = 64;                 // perf buffer pages per CPU (a power of two)
  bool dry_run = false;                // compile and load the programs, attach nothing
  bool help = false;
  std::string help_text;
};

// Parses argv (argv[0] is the program name). Throws UsageError for bad input.
Options parse_options(int argc, char** argv);

}  // namespace lockkit::mklockstat
