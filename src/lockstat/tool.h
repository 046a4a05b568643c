// lockstat as a core::Tool: which pthread functions to probe, how to read the maps into its model,
// and its reports. main.cpp only runs it.
#pragma once

#include <memory>

#include "core/run.h"
#include "lockstat/options.h"

namespace lockkit::lockstat {

// Parses the command line and opens the outputs; null (after printing help) for --help.
std::unique_ptr<Tool> make_tool(int argc, char** argv);

}  // namespace lockkit::lockstat
