// lockstat's command line.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lockstat/model.h"

namespace lockkit::lockstat {

// full: uprobes on every pthread lock call (acquisitions, waits, holds). contention: the futex
// system calls only (contended waits and their holders, at a fraction of the cost).
enum class Mode { Full, Contention };

struct Options {
  Mode mode = Mode::Full;
  pid_t pid = 0;
  std::vector<std::string> command;  // after "--"
  bool follow_forks = false;         // the target's process tree (always with a command)
  double duration_s = 0;             // 0 = until the target exits or Ctrl-C
  double interval_s = 5;
  bool reset = false;
  size_t top = 10;                   // 0 = all
  SortKey sort = SortKey::Wait;
  std::string sort_name = "wait";
  uint64_t min_wait_ns = 0;
  double sample_percent = 100;
  bool mutex = true, rwlock = true, spin = true;
  bool spin_requested = false;       // --kinds named spin explicitly
  bool sem = false;                  // POSIX semaphores: only when --kinds names them
  bool per_thread = false;
  bool lock_order = false;           // --lock-order: the lock-order graph and its cycles
  std::string json;                  // "" none, "-" stdout, else a file
  std::string folded;                // "" none
  bool folded_hold = false;
  std::string pprof;                 // "" none: a gzipped pprof profile
  size_t stack_depth = 0;            // 0 = whole stacks
  size_t stack_storage = 16384;
  std::string binary;
  std::vector<std::string> debug_dirs;  // --debug-dir, absolute, searched before the defaults
  bool help = false;
  std::string help_text;
};

// Parses argv (argv[0] is the program name). Throws UsageError for bad input.
Options parse_options(int argc, char** argv);

}  // namespace lockkit::lockstat
