// mklockstat as a core::Tool: the lock contention tracepoints (or kprobes), per-period model, log.
#pragma once

#include <memory>

#include "core/run.h"
#include "mklockstat/options.h"

namespace lockkit::mklockstat {

// Parses the command line and opens the output; null (after printing help) for --help.
std::unique_ptr<Tool> make_tool(int argc, char** argv);

}  // namespace lockkit::mklockstat
