// The lab locktrace: per futex word, thread and call stack, how long a process's futex calls were
// asleep (blocked) and how long they ran in the kernel otherwise (sys), as CSV. A small tool on
// lockkit's core library (src/core); the production tool is src/locktrace.
//
//   lab-locktrace [--bpf-text FILE] -p PID [SECONDS]
//   lab-locktrace [--bpf-text FILE] -- COMMAND [ARGS...]
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <cxxopts.hpp>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "core/cli.h"
#include "core/mmap_tracker.h"
#include "core/process.h"
#include "core/run.h"
#include "core/session.h"
#include "core/stacks.h"
#include "core/symbolizer.h"
#include "core/tables.h"
#include "core/unwind.h"
#include "core/util.h"
#include "locktrace.h"

namespace lockkit::probes {
extern const std::string kLabLocktraceHeaders;  // probes/common.h and locktrace.h
extern const std::string kLabLocktraceProgram;  // locktrace.bpf.c
}  // namespace lockkit::probes

namespace {

using namespace lockkit;

const char* const kTool = "lab-locktrace";

// sched_switch's prev_state: the task state bits (S=0x1, D=0x2, ... up to 0x80 on Linux 6.x), or
// TASK_REPORT_MAX (0x100) for a task preempted while runnable. Any of the low bits means asleep.
const char* const kStateMask = "0xff";

const std::map<int, std::string> kTodos = {
    {1, "the state machine on a context switch, in locktrace.bpf.c"},
    {2, "blocked and sys time of the finished call, and its row, in locktrace.bpf.c"},
    {3, "print one CSV row per thread, futex word and stack, in locktrace.cpp"},
};
std::set<int> g_open_todos;

void lab_todo(int n) { g_open_todos.insert(n); }

void find_bpf_todos(const std::string& program) {
  static const std::regex placeholder(R"(^\s*LAB_TODO\((\d+)\))", std::regex::multiline);
  for (std::sregex_iterator it(program.begin(), program.end(), placeholder), end; it != end; ++it)
    lab_todo(std::stoi((*it)[1]));
}

struct Options {
  pid_t pid = 0;
  std::vector<std::string> command;
  double duration_s = 0;
  std::string bpf_file;
  bool help = false;
  std::string help_text;
};

Options parse_options(int argc, char** argv) {
  Options o;
  std::vector<std::string> own;
  split_command(argc, argv, &own, &o.command);
  cxxopts::Options spec(kTool, "Futex calls of one process, asleep and awake, per word, thread and stack (the locktrace lab).");
  spec.custom_help("[options] -p PID [SECONDS] | [options] -- COMMAND [ARGS...]");
  spec.positional_help("");
  add_target_options(spec, "trace the running process PID");
  spec.add_options()("bpf-text", "load the BPF program from FILE instead of the one built in",
                     cxxopts::value<std::string>(), "FILE")("h,help", "show this help");
  add_duration_positional(spec, "seconds to trace (default: until Ctrl+C or the target's exit)");
  auto res = parse_arguments(spec, own);
  o.help = res.count("help") > 0;
  o.help_text = spec.help();
  if (o.help) return o;
  o.pid = pid_option(res);
  o.duration_s = duration_positional(res);
  if (res.count("bpf-text")) o.bpf_file = res["bpf-text"].as<std::string>();
  if (o.pid && !o.command.empty()) throw UsageError("give -p PID or -- COMMAND, not both");
  if (!o.pid && o.command.empty()) throw UsageError("nothing to trace: give -p PID or -- COMMAND");
  return o;
}

// CSV quoting: a field with a comma, a quote or a line break goes in quotes, quotes doubled.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

class LabLocktrace : public Tool {
 public:
  explicit LabLocktrace(Options o) : o_(std::move(o)) {
    if (o_.bpf_file.empty()) {
      program_ = probes::kLabLocktraceProgram;
    } else {
      auto text = read_file(o_.bpf_file);
      if (!text) throw UsageError(fmt::format("cannot read --bpf-text {}: {}", o_.bpf_file, errno_text(errno)));
      program_ = *text;
    }
    find_bpf_todos(program_);
  }

  const char* name() const override { return kTool; }
  TargetRequest target_request() const override {
    TargetRequest r;
    r.pid = o_.pid;
    r.command = o_.command;
    return r;
  }
  std::string bpf_text() const override { return probes::kLabLocktraceHeaders + program_; }
  std::vector<std::string> bpf_defines(const Target* t) const override {
    std::vector<std::string> d = {fmt::format("TARGET_PID={}", t->pid()), fmt::format("STATE_MASK={}", kStateMask),
                                  "MAX_ROWS=4096", "MAX_THREADS=4096"};
    for (auto& s : stack_map_defines(1024)) d.push_back(s);
    for (auto& s : unwind_map_defines()) d.push_back(s);
    return d;
  }

  void attach(Session& s, Target* t) override {
    mappings_ = std::make_unique<TargetMappings>(
        kTool, t->pid(), t->spawned() ? MmapTracker::Start::OnExec : MmapTracker::Start::Now);
    // Unwind tables for every module the process maps, so that stacks are whole through libc.
    unwind_ = std::make_unique<UnwindTables>(s);
    s.attach_tracepoint("syscalls:sys_enter_futex", "futex_enter");
    s.attach_tracepoint("syscalls:sys_exit_futex", "futex_exit");
    s.attach_tracepoint("sched:sched_switch", "on_switch");
  }

  void arm(Session&, Target* t) override {
    target_ = t;
    sym_ = std::make_unique<ProcessSymbolizer>(t->pid());
    std::cerr << fmt::format("Tracing futex calls of pid {}... Ctrl+C to quit.\n", t->pid());
  }

  double duration_s() const override { return o_.duration_s; }
  void tick(uint64_t) override { refresh_maps(); }

  void finish(Session& s, const RunEnd&) override {
    refresh_maps();
    auto rows = read_map<lab_row_key, lab_row>(s.map_fd("rows"), false);
    std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) {
      return std::make_tuple(a.first.tid, a.first.uaddr, a.second.wait_count) <
             std::make_tuple(b.first.tid, b.first.uaddr, b.second.wait_count);
    });
    StackNamer namer(s.stack_map());
    std::cout << "pid,tid,addr,blocked_us,sys_us,max_blocked_us,max_sys_us,wait_count,blocked_count,"
                 "wake_count,errors,preempted,stack\n";
    for (auto& [k, v] : rows) {
      // The stack as one field: the thread's name, then the frames from the outermost to the
      // futex call, separated by ';' (the folded form flame graphs read).
      std::string comm(v.comm, strnlen(v.comm, sizeof(v.comm)));
      std::string stack = comm;
      if (k.stackid < 0) {
        stack += ";[lost stack]";
      } else {
        auto frames = namer.user_stack(*sym_, k.stackid, k.caller, true);
        for (auto it = frames.rbegin(); it != frames.rend(); ++it) stack += ";" + frame_name(*it);
      }
      std::string stack_field = csv_field(stack);
      // BEGIN TODO 3: print one CSV row per thread, futex word and stack
      // HINT: One line per row, in the header's order: pid, tid, the word's address as 0x... (fmt's
      // HINT: {:#x}), the four times in whole microseconds (ns / 1000), wait_count, blocked_count,
      // HINT: wake_count, errors, preempted, and stack_field (the stack, quoted for CSV) last.
      // STUB: lab_todo(3);
      std::cout << fmt::format("{},{},{:#x},{},{},{},{},{},{},{},{},{},{}\n", k.pid, k.tid, k.uaddr, v.blocked_ns / 1000,
                               v.sys_ns / 1000, v.max_blocked_ns / 1000, v.max_sys_ns / 1000, v.wait_count,
                               v.blocked_count, v.wake_count, v.errors, v.preempted, stack_field);
      // END TODO 3
    }
    auto lost = read_counters(s.map_fd("lost"), LAB_LOST_MAX);
    static const char* const what[LAB_LOST_MAX] = {"futex calls (too many threads inside one at once)",
                                                   "rows (map full)", "stacks"};
    for (size_t i = 0; i < lost.size(); i++)
      if (lost[i]) std::cerr << fmt::format("{}: lost {} {}\n", kTool, lost[i], what[i]);
    std::cout.flush();
    if (!g_open_todos.empty()) {
      for (int n : g_open_todos) std::cerr << fmt::format("{}: TODO {} ({}) not done\n", kTool, n, kTodos.at(n));
      throw ToolError(fmt::format("{} of {} TODOs not done", g_open_todos.size(), kTodos.size()));
    }
  }

 private:
  void refresh_maps() {
    mappings_->poll(*sym_);
    if (target_->running_program()) sym_->refresh();
  }

  Options o_;
  std::string program_;
  Target* target_ = nullptr;
  std::unique_ptr<TargetMappings> mappings_;
  std::unique_ptr<ProcessSymbolizer> sym_;
  std::unique_ptr<UnwindTables> unwind_;
};

}  // namespace

int main(int argc, char** argv) {
  return lockkit::tool_main(kTool, argc, argv, [](int argc, char** argv) -> std::unique_ptr<lockkit::Tool> {
    return lockkit::tool_or_help<LabLocktrace>(parse_options(argc, argv));
  });
}
