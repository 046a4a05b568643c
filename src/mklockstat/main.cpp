// mklockstat: time spent waiting for kernel locks, per thread and lock, in fixed periods.
#include "core/cli.h"
#include "core/process.h"
#include "mklockstat/tool.h"

int main(int argc, char** argv) {
  return lockkit::run_tool("mklockstat", [&] {
    lockkit::StopSignals signals;
    auto tool = lockkit::mklockstat::make_tool(argc, argv);
    return tool ? lockkit::run(*tool, signals) : 0;
  });
}
