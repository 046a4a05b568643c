// locktrace: per-lock futex statistics from the futex system calls and scheduler switches.
#include "core/cli.h"
#include "core/process.h"
#include "locktrace/tool.h"

int main(int argc, char** argv) {
  return lockkit::run_tool("locktrace", [&] {
    lockkit::StopSignals signals;
    auto tool = lockkit::locktrace::make_tool(argc, argv);
    return tool ? lockkit::run(*tool, signals) : 0;
  });
}
