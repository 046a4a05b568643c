// lockstat --mode contention as a core::Tool: futex tracepoints and init-function uprobes, the
// contention model and its reports. make_tool() hands over to it for --mode contention.
#pragma once

#include <memory>

#include "core/run.h"
#include "lockstat/options.h"

namespace lockkit::lockstat {

std::unique_ptr<Tool> make_contention_tool(Options o);

}  // namespace lockkit::lockstat
