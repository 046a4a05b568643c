#include "locktrace/tool.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include "core/futex_objects.h"
#include "core/mmap_tracker.h"
#include "core/output.h"
#include "core/process.h"
#include "core/session.h"
#include "core/stacks.h"
#include "core/unwind.h"
#include "core/symbolizer.h"
#include "core/tables.h"
#include "core/tree.h"
#include "core/util.h"
#include "locktrace/map_sizes.h"
#include "locktrace/model.h"
#include "locktrace/report.h"

namespace lockkit::probes {
extern const std::string kLocktraceBpf;
}

namespace lockkit::locktrace {
namespace {

bool has_event(const std::string& event) { return tracefs_has("events/" + event + "/format"); }

// Symbolizers for every process seen, kept current while the processes live so that their frames
// still resolve after they exit.
class Symbols {
 public:
  ProcessSymbolizer& get(uint32_t pid) {
    auto it = procs_.find(pid);
    if (it == procs_.end()) {
      it = procs_.emplace(pid, Entry{ProcessSymbolizer(pid_t(pid)), true}).first;
      it->second.alive = it->second.sym.refresh();
    }
    return it->second.sym;
  }
  void refresh(const std::vector<uint32_t>& seen) {
    for (uint32_t pid : seen) get(pid);
    for (auto& [pid, e] : procs_)
      if (e.alive) e.alive = e.sym.refresh();
  }

 private:
  struct Entry {
    ProcessSymbolizer sym;
    bool alive;
  };
  std::map<uint32_t, Entry> procs_;
};

class Tracer {
 public:
  explicit Tracer(Session& s) {
    stats_fd_ = s.map_fd("stats");
    errs_fd_ = s.map_fd("errs");
    hists_fd_ = s.map_fd("hists");
    pids_fd_ = s.map_fd("pids");
    calls_fd_ = s.map_fd("calls");
    namer_ = std::make_unique<StackNamer>(s.stack_map());
    drops_fd_ = s.map_fd("drops");
    dbg_fd_ = s.map_fd("dbg");
  }

  // With a target: the process's mappings (and with a tree, its children's) are also taken from
  // the kernel's records as it makes them.
  void follow(uint32_t pid, TargetMappings* mappings, ProcessTree* tree, bool started) {
    if (started) symbols_.get(pid);  // a command held before its exec still maps our own files
    pid_ = pid;
    mappings_ = mappings;
    tree_ = tree;
  }

  // Takes in the traced processes' new mappings, and snapshots the address spaces of the processes
  // seen so far.
  void refresh() {
    std::vector<uint32_t> seen;
    if (tree_)
      for (auto& [pid, parent] : tree_->poll()) seen.push_back(uint32_t(pid));
    if (mappings_) mappings_->poll([this](pid_t pid) { return &symbols_.get(uint32_t(pid)); });
    for (auto& [pid, one] : read_map<uint32_t, uint32_t>(pids_fd_, false)) seen.push_back(pid);
    symbols_.refresh(seen);
  }

  Snapshot read() {
    Snapshot s;
    s.stats = read_map<lt_stat_key, lt_stat_val>(stats_fd_, false);
    s.errs = read_map<lt_err_key, uint64_t>(errs_fd_, false);
    s.hists = read_map<lt_hist_key, uint64_t>(hists_fd_, false);
    return s;
  }
  std::vector<uint64_t> drops() { return read_counters(drops_fd_, LT_DROP_MAX); }
  std::vector<uint64_t> debug() { return read_counters(dbg_fd_, LT_DBG_MAX); }
  uint64_t unfinished() { return read_map<uint32_t, lt_call>(calls_fd_, false).size(); }

  // Names global and static futex words (e.g. a global pthread mutex) from the ELF symbol tables.
  // Then the pthread object each word lies in (JSON's "object").
  void name_locks(std::vector<Row>& rows) {
    for (auto& r : rows) r.symbol = symbols_.get(r.pid).data_symbol(r.addr);
    classify_rows(rows, [this](uint32_t pid, uint64_t a) { return symbols_.get(pid).data_object(a); });
  }

  // The Frames (leaf first) behind the rows' stacks (root-first names), for --pprof.
  const StackFrameIndex& stack_frames() const { return stack_frames_; }

  StackResolver resolver() {
    return [this](const lt_stat_key& k) { return frames(k); };
  }

 private:
  // Root first. The word at the stack pointer in a syscall need not be a return address: it is
  // kept only when it lands in a known function.
  std::optional<std::vector<std::string>> frames(const lt_stat_key& k) {
    auto& frames = namer_->user_stack(symbols_.get(k.pid), k.stackid, k.caller, true);
    if (frames.empty()) return std::nullopt;
    std::vector<std::string> names;
    for (auto it = frames.rbegin(); it != frames.rend(); ++it) names.push_back(frame_name(*it));
    return stack_frames_.add(names, frames);
  }

  int stats_fd_, errs_fd_, hists_fd_, pids_fd_, calls_fd_, drops_fd_, dbg_fd_;
  uint32_t pid_ = 0;
  TargetMappings* mappings_ = nullptr;
  ProcessTree* tree_ = nullptr;
  Symbols symbols_;
  std::unique_ptr<StackNamer> namer_;
  StackFrameIndex stack_frames_;
};

class LocktraceTool : public Tool {
 public:
  explicit LocktraceTool(Options o) : o_(std::move(o)), out_(o_.output) {
    // Outputs first: a bad path fails before anything is attached.
    if (!o_.hist.empty()) hist_out_ = std::make_unique<OutputFile>(o_.hist);
    if (!o_.pprof.empty()) pprof_out_ = std::make_unique<OutputFile>(o_.pprof);
    pid_ = resolve_target_ids(o_.pid, o_.tid).pid;  // with -t: the thread's process
    ElfFile::set_debug_dirs(o_.debug_dirs);
  }

  const char* name() const override { return "locktrace"; }
  TargetRequest target_request() const override {
    TargetRequest r;
    r.pid = pid_;
    r.command = o_.command;
    return r;
  }

  void check_environment() override {
    futex2_ = has_event("syscalls/sys_enter_futex_wait") && has_event("syscalls/sys_enter_futex_wake") &&
              has_event("syscalls/sys_enter_futex_requeue");
    waitv_ = has_event("syscalls/sys_enter_futex_waitv");
    state_mask_ = state_mask_from_format(read_file(tracefs_root() + "/events/sched/sched_switch/format").value_or(""));
  }

  std::string bpf_text() const override { return probes::kLocktraceBpf; }
  std::vector<std::string> bpf_defines(const Target* t) const override {
    std::vector<std::string> defines = {fmt::format("TARGET_PID={}", t ? t->pid() : 0),
            fmt::format("TARGET_TID={}", o_.tid),
            fmt::format("SELF_PID={}", getpid()),
            fmt::format("STATE_MASK={:#x}", state_mask_),
            };
    for (auto& d : futex_syscall_defines()) defines.push_back(d);
    for (auto& d : stack_map_defines(o_.stack_storage)) defines.push_back(d);
    for (auto& d : unwind_map_defines()) defines.push_back(d);
    append_map_sizes(defines, kMapSizes);
    if (o_.follow_forks)
      for (auto& d : tree_defines()) defines.push_back(d);
    return defines;
  }

  void attach(Session& session, Target* t) override {
    if (t) pid_ = t->pid();  // a command: the process just started
    // Every process whose mappings are seen gets unwind rows for its modules (set_module_listener).
    unwind_ = std::make_unique<UnwindTables>(session);
    // The tree first: a fork is followed once its tracepoint is attached.
    if (o_.follow_forks) tree_ = std::make_unique<ProcessTree>(session, pid_);
    if (t) {
      // A command's mappings are seen from its exec on.
      mappings_ = std::make_unique<TargetMappings>(
          name(), pid_, t->spawned() ? MmapTracker::Start::OnExec : MmapTracker::Start::Now);
      mappings_->follow(tree_.get());
    }
    // Switches and exits first: every call whose enter is recorded then has its exit and switches seen.
    session.attach_tracepoint("sched:sched_switch", "on_switch");
    session.attach_tracepoint("syscalls:sys_exit_futex", "futex_exit");
    if (futex2_)
      for (const char* e : {"futex_wait", "futex_wake", "futex_requeue"})
        session.attach_tracepoint(fmt::format("syscalls:sys_exit_{}", e), "futex_exit");
    if (waitv_) session.attach_tracepoint("syscalls:sys_exit_futex_waitv", "futex_exit");
    // One program for every call's entry (it tells them apart by number).
    session.attach_tracepoint("syscalls:sys_enter_futex", "futex_any_enter");
    if (futex2_)
      for (const char* e : {"futex_wait", "futex_wake", "futex_requeue"})
        session.attach_tracepoint(fmt::format("syscalls:sys_enter_{}", e), "futex_any_enter");
    if (waitv_) session.attach_tracepoint("syscalls:sys_enter_futex_waitv", "futex_any_enter");
  }

  void arm(Session& session, Target* t) override {
    tracer_ = std::make_unique<Tracer>(session);
    start_wall_ns_ = wall_clock_ns();
    if (pid_) tracer_->follow(uint32_t(pid_), mappings_.get(), tree_.get(), !(t && t->spawned()));
    if (o_.tid)
      std::cerr << fmt::format("Tracing tid {} of pid {}, Ctrl+C to quit.\n", o_.tid, pid_);
    else if (pid_)
      std::cerr << fmt::format("Tracing pid {}{}, Ctrl+C to quit.\n", pid_,
                               !o_.follow_forks ? "" : o_.command.empty() ? " and the processes it forks from now on"
                                                                          : " and every process it starts");
    else
      std::cerr << "Tracing all processes, Ctrl+C to quit.\n";
  }

  double duration_s() const override { return o_.duration_s; }
  bool tree_alive() override { return tree_ && tree_->alive(); }
  void tick(uint64_t) override { tracer_->refresh(); }

  void finish(Session&, const RunEnd& e) override {
    tracer_->refresh();  // the last mappings, before any stack is named
    Snapshot snap = tracer_->read();
    std::vector<Row> rows = build_rows(snap, tracer_->resolver());
    sort_rows(rows);
    tracer_->name_locks(rows);
    std::vector<uint64_t> drops = tracer_->drops(), dbg = tracer_->debug();
    uint64_t unfinished = tracer_->unfinished();
    Diagnostics diag = diagnostics(drops, lost_stack_rows(rows));
    if (mappings_) mappings_->add_to(diag);  // lost mapping records, forked children
    if (tree_) tree_->add_to(diag);          // forks not followed
    for (auto& w : unwind_->warnings()) diag.warn(w);
    if (o_.format == Format::Csv) {
      write_csv(out_.stream(), rows);
    } else {
      JsonExtras x;
      x.pid = uint32_t(pid_);
      x.tid = uint32_t(o_.tid);
      x.pids = traced_pids(rows);
      x.duration_s = double(monotonic_ns() - e.start_ns) / 1e9;
      x.diag = diag;
      x.counters = debug_counters(dbg, unfinished);
      write_json(out_.stream(), rows, x);
    }
    out_.commit();
    if (hist_out_) {
      write_hists(hist_out_->stream(), build_hists(snap));
      hist_out_->commit();
    }
    if (pprof_out_) {
      ProfileData p = rows_profile(rows, tracer_->stack_frames());
      p.time_nanos = start_wall_ns_;
      p.duration_nanos = int64_t(monotonic_ns() - e.start_ns);
      if (pid_) p.main_binary = readlink_str(fmt::format("/proc/{}/exe", pid_));
      write_profile(*pprof_out_, p);
    }
    write_diagnostics(std::cerr, diag);
    if (o_.debug) write_debug(std::cerr, debug_counters(dbg, drops, unfinished));
  }

 private:
  Options o_;
  OutputFile out_;
  std::unique_ptr<OutputFile> hist_out_, pprof_out_;
  int64_t start_wall_ns_ = 0;
  pid_t pid_ = 0;
  std::unique_ptr<UnwindTables> unwind_;
  bool futex2_ = false, waitv_ = false;
  int64_t state_mask_ = 0;
  std::unique_ptr<TargetMappings> mappings_;
  std::unique_ptr<ProcessTree> tree_;
  std::unique_ptr<Tracer> tracer_;

  // The processes traced: the target and its tree (each seen, whether it made futex calls or not),
  // and every process with a row (all of them without a target).
  std::vector<uint32_t> traced_pids(const std::vector<Row>& rows) const {
    std::set<uint32_t> pids;
    if (pid_) pids.insert(uint32_t(pid_));
    if (tree_)
      for (pid_t p : tree_->pids()) pids.insert(uint32_t(p));
    for (auto& r : rows) pids.insert(r.pid);
    return {pids.begin(), pids.end()};
  }
};

}  // namespace

std::unique_ptr<Tool> make_tool(int argc, char** argv) {
  return tool_or_help<LocktraceTool>(parse_options(argc, argv));
}

}  // namespace lockkit::locktrace
