// locktrace as a core::Tool: the futex and scheduler tracepoints, the per-lock model, CSV/JSON.
#pragma once

#include <memory>

#include "core/run.h"
#include "locktrace/options.h"

namespace lockkit::locktrace {

// Parses the command line and opens the outputs; null (after printing help) for --help.
std::unique_ptr<Tool> make_tool(int argc, char** argv);

}  // namespace lockkit::locktrace
