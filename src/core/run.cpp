#include "core/run.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "core/cli.h"
#include "core/process.h"
#include "core/session.h"
#include "core/util.h"

namespace lockkit {

std::string describe(RunEnd::Reason r) {
  switch (r) {
    case RunEnd::Duration: return "duration reached";
    case RunEnd::Signal: return "interrupted";
    case RunEnd::TargetExit: return "target exited";
  }
  return "";
}

namespace {

// Waits, ticking the tool and calling its intervals, until the duration, a stop signal or the
// target's exit.
RunEnd wait_loop(Tool& tool, StopSignals& signals, Target* target) {
  RunEnd e;
  e.start_ns = monotonic_ns();
  double duration = tool.duration_s();
  uint64_t end = duration > 0 ? e.start_ns + uint64_t(duration * 1e9) : UINT64_MAX;
  uint64_t interval = tool.interval_ns();
  uint64_t next_interval = interval ? e.start_ns + interval : UINT64_MAX;
  uint64_t tick = std::max<uint64_t>(tool.tick_ns(), 1000000ull);
  bool target_gone = false;  // the target exited; processes of its tree still run
  for (;;) {
    uint64_t deadline = std::min<uint64_t>({next_interval, end, monotonic_ns() + tick});
    Wake w = wait_until(deadline, signals, target_gone ? nullptr : target, tool.ready_fd());
    uint64_t now = monotonic_ns();
    tool.tick(now);
    e.stop_ns = now;
    if (w == Wake::Signal) { e.reason = RunEnd::Signal; break; }
    if (w == Wake::TargetExit || target_gone) {
      // A tree outlives its root (a daemon, a shell's background job): trace it to its end.
      target_gone = true;
      if (!tool.tree_alive()) { e.reason = RunEnd::TargetExit; break; }
    }
    if (now >= end) { e.reason = RunEnd::Duration; break; }
    if (now >= next_interval) {
      tool.interval(now);
      next_interval += interval;
      if (next_interval <= now) next_interval = now + interval;
    }
  }
  return e;
}

}  // namespace

int run(Tool& tool, StopSignals& signals) {
  TargetRequest req = tool.target_request();
  if (!req.command.empty()) resolve_command(req.command[0]);  // a bad command is a usage error, found first
  std::optional<Target> target;
  if (req.command.empty() && req.pid > 0) target.emplace(Target::attach(req.pid, req.allow_kernel_thread ? KernelThreads::Allow : KernelThreads::Refuse));

  require_root();
  ensure_tracefs();
  tool.check_environment();
  prepare_environment(tool.name());
  if (!req.command.empty()) target.emplace(Target::spawn(req.command));
  Target* t = target ? &*target : nullptr;

  Session session(tool.name());
  session.compile(tool.bpf_text(), tool.bpf_defines(t));
  if (tool.stop_after_compile(session)) return 0;
  signals.throw_if_stopped("tracing started");  // compiling takes seconds: a Ctrl-C meanwhile ends here
  try {
    tool.attach(session, t);
  } catch (const ToolError&) {
    if (t && !t->spawned() && t->exited())
      throw ToolError(fmt::format("process {} exited before tracing started", t->pid()));
    throw;
  }
  tool.arm(session, t);
  if (t) t->release();
  tool.tick(monotonic_ns());  // the first look at the running target (e.g. its address space)

  RunEnd end = wait_loop(tool, signals, t);
  tool.before_detach(end);
  session.detach_all(detach_notice(tool.name(), signals));
  tool.finish(session, end);
  // Like time(1) and strace(1): a traced command's exit status is ours (128+N when signal N
  // killed it). A command still running when tracing ended, and a -p run, end with 0.
  if (t && t->spawned() && t->exited()) return t->exit_status().value_or(0);
  return 0;
}

int tool_main(const char* name, int argc, char** argv,
              const std::function<std::unique_ptr<Tool>(int, char**)>& make_tool) {
  return run_tool(name, [&] {
    StopSignals signals;
    auto tool = make_tool(argc, argv);
    return tool ? run(*tool, signals) : 0;
  });
}

}  // namespace lockkit
