// lockstat: pthread lock contention of one process, from uprobes.
#include "core/cli.h"
#include "core/process.h"
#include "lockstat/tool.h"

int main(int argc, char** argv) {
  return lockkit::run_tool("lockstat", [&] {
    lockkit::StopSignals signals;
    auto tool = lockkit::lockstat::make_tool(argc, argv);
    return tool ? lockkit::run(*tool, signals) : 0;
  });
}
