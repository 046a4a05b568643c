// The life of one tracing run, the same for every tool:
//
//   options -> outputs -> environment -> target -> compile -> attach -> arm -> release the command
//   -> wait (ticks, intervals, duration, stop signals, the target's exit) -> detach -> final read
//   -> reports -> commit outputs -> exit status
//
// A tool supplies what differs (its probe plan, its model, its reports) by implementing Tool; it
// parses its options and opens its outputs in its constructor, so that a bad command line or an
// unwritable file fails before anything else happens. run() does the rest.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace lockkit {

class Session;
class StopSignals;
class Target;

// What a tool traces: a running process (pid), a command it starts (command), or, when both are
// empty, the whole system.
struct TargetRequest {
  pid_t pid = 0;
  std::vector<std::string> command;
  // Kernel threads have no user space: they are refused unless the tool traces kernel locks.
  bool allow_kernel_thread = false;
  // With a thread id (-t), the process is the thread's own (see resolve_target_ids).
};

// Why and when the wait loop ended.
struct RunEnd {
  enum Reason { Duration, Signal, TargetExit } reason = Duration;
  uint64_t start_ns = 0;  // monotonic, when every probe was armed
  uint64_t stop_ns = 0;   // monotonic, when the loop ended (before detaching)
  double seconds() const { return double(stop_ns - start_ns) / 1e9; }
};

class Tool {
 public:
  virtual ~Tool() = default;
  virtual const char* name() const = 0;
  virtual TargetRequest target_request() const = 0;

  // After the outputs, before kernel headers are looked for (e.g. choosing a backend).
  virtual void check_environment() {}
  // The BPF program and its -D defines (without the -D) for this target (null: system-wide).
  virtual std::string bpf_text() const = 0;
  virtual std::vector<std::string> bpf_defines(const Target* target) const = 0;
  // Compiled, nothing attached: a tool may end here (e.g. a dry run) by returning true.
  virtual bool stop_after_compile(Session&) { return false; }
  // Attaches every probe. Throws ToolError naming the probe that failed.
  virtual void attach(Session&, Target* target) = 0;
  // Every probe attached: start recording (e.g. set an "armed" flag), and say so on stderr.
  virtual void arm(Session&, Target* target) = 0;

  // Seconds to trace (0: until a stop signal or the target's exit).
  virtual double duration_s() const = 0;
  // Periodic reports every this many ns (0: none).
  virtual uint64_t interval_ns() const { return 0; }
  // The longest the loop sleeps between ticks.
  virtual uint64_t tick_ns() const { return 200000000ull; }
  // Called after every wake while tracing (refresh symbol snapshots, drain buffers...).
  virtual void tick(uint64_t now_ns) {}
  // Whether processes of the target's tree still run (then the run goes on after the target's own
  // exit, until they have all exited too).
  virtual bool tree_alive() { return false; }
  // A descriptor that wakes the loop (and ticks the tool) as soon as it is readable, e.g. a
  // process of the tree that waits for its probes; -1: none.
  virtual int ready_fd() const { return -1; }
  // Called at every interval while tracing.
  virtual void interval(uint64_t now_ns) {}
  // The loop ended, probes still attached (last checks that need them).
  virtual void before_detach(const RunEnd&) {}
  // Probes detached: final read, reports, and committing the outputs.
  virtual void finish(Session&, const RunEnd&) = 0;
};

// Runs `tool` through the whole life of a run. Returns the exit status: the traced command's own
// (128+N when signal N killed it) when it exited during the run, else 0. Errors are thrown as
// ToolError / UsageError (see run_tool in core/cli.h).
int run(Tool& tool, StopSignals& signals);

// "duration reached", "interrupted", "target exited".
std::string describe(RunEnd::Reason r);

// Builds tool T from parsed options: null after printing the help text for --help.
template <class T, class Options>
std::unique_ptr<Tool> tool_or_help(Options o) {
  if (o.help) {
    std::cout << o.help_text;
    return nullptr;
  }
  return std::make_unique<T>(std::move(o));
}

// The whole main() of a tool: blocks the stop signals first (before any thread starts), builds the
// tool from the command line and runs it; errors become one line and exit 1 or 2 (run_tool).
int tool_main(const char* name, int argc, char** argv,
              const std::function<std::unique_ptr<Tool>(int, char**)>& make_tool);

}  // namespace lockkit
