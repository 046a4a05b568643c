#include "lockstat/contention_tool.h"

#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <map>
#include <set>

#include "core/elf.h"
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
#include "lockstat/contention_model.h"
#include "lockstat/contention_report.h"
#include "lockstat/map_sizes.h"
#include "lockstat/profile.h"

namespace lockkit::probes {
extern const std::string kLockstatContentionBpf;
}

namespace lockkit::lockstat {
namespace {

// Init functions, rarely called: they tell which objects exist (names by init stack, kinds).
// Each runs init_site_enter with its kind as the attach cookie.
struct InitProbe {
  const char* symbol;
  lc_init_kind kind;
};
const InitProbe kInitProbes[] = {
    {"pthread_mutex_init", LC_INIT_MUTEX},
    {"pthread_rwlock_init", LC_INIT_RWLOCK},
    {"pthread_cond_init", LC_INIT_COND},
    {"sem_init", LC_INIT_SEM},
};

// The thread ids of a process now (empty when it is gone).
std::set<uint32_t> thread_ids(pid_t pid) {
  std::set<uint32_t> out;
  DIR* d = opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (!d) return out;
  while (dirent* e = readdir(d))
    if (auto n = parse_int(e->d_name)) out.insert(uint32_t(*n));
  closedir(d);
  return out;
}

class ContentionTool : public Tool {
 public:
  explicit ContentionTool(Options o) : o_(std::move(o)) {
    // Outputs first: a bad path fails before anything is attached.
    if (!o_.json.empty()) json_out_ = std::make_unique<OutputFile>(o_.json);
    if (!o_.folded.empty()) folded_out_ = std::make_unique<OutputFile>(o_.folded);
    if (!o_.pprof.empty()) pprof_out_ = std::make_unique<OutputFile>(o_.pprof);
    text_to_stdout_ = o_.json != "-" && o_.folded != "-" && o_.pprof != "-";
    topt_.sort_name = o_.sort_name;
    topt_.stack_depth = o_.stack_depth;
    ElfFile::set_debug_dirs(o_.debug_dirs);
  }

  const char* name() const override { return "lockstat"; }
  TargetRequest target_request() const override {
    TargetRequest r;
    r.pid = o_.pid;
    r.command = o_.command;
    return r;
  }

  void check_environment() override {
    auto has = [](const std::string& e) { return tracefs_has("events/syscalls/" + e + "/format"); };
    futex2_ = has("sys_enter_futex_wait") && has("sys_enter_futex_wake");
    waitv_ = has("sys_enter_futex_waitv");
  }

  std::string bpf_text() const override { return probes::kLockstatContentionBpf; }
  std::vector<std::string> bpf_defines(const Target* t) const override {
    std::vector<std::string> defines = {fmt::format("TARGET_PID={}", t->pid()), fmt::format("SELF_PID={}", getpid()),
                                        fmt::format("HAVE_FUTEX2={}", futex2_ ? 1 : 0),
                                        fmt::format("HAVE_FUTEX_WAITV={}", waitv_ ? 1 : 0)};
    for (auto& d : futex_syscall_defines()) defines.push_back(d);  // NR_FUTEX, NR_FUTEX_WAKE
    for (auto& d : stack_map_defines(o_.stack_storage)) defines.push_back(d);
    for (auto& d : unwind_map_defines()) defines.push_back(d);
    append_map_sizes(defines, kContentionMapSizes);
    if (o_.follow_forks)
      for (auto& d : tree_defines()) defines.push_back(d);
    return defines;
  }

  void attach(Session& session, Target* t) override {
    // Before the command is released: its mappings are seen from its exec on.
    mappings_ = std::make_unique<TargetMappings>(
        name(), t->pid(), t->spawned() ? MmapTracker::Start::OnExec : MmapTracker::Start::Now);
    // The tree before the futex probes: a fork is followed once its tracepoint is attached. Its
    // processes need nothing else: the futex tracepoints see every process, lk_traced() picks.
    if (o_.follow_forks) {
      tree_ = std::make_unique<ProcessTree>(session, t->pid());
      mappings_->follow(tree_.get());
    }
    // Exits first: every call whose entry is recorded then has its exit seen.
    session.attach_tracepoint("syscalls:sys_exit_futex", "futex_exit");
    if (futex2_)
      for (const char* e : {"futex_wait", "futex_wake"})
        session.attach_tracepoint(fmt::format("syscalls:sys_exit_{}", e), "futex_exit");
    if (waitv_) session.attach_tracepoint("syscalls:sys_exit_futex_waitv", "futex_exit");
    session.attach_tracepoint("syscalls:sys_enter_futex", "futex_enter");
    if (futex2_) {
      session.attach_tracepoint("syscalls:sys_enter_futex_wait", "futex_wait_enter");
      session.attach_tracepoint("syscalls:sys_enter_futex_wake", "futex_wake_enter");
    }
    if (waitv_) session.attach_tracepoint("syscalls:sys_enter_futex_waitv", "futex_waitv_enter");
    size_t before = session.attached();
    // The init functions, where the file has them (a static program holds only those it uses).
    auto lib = resolve_pthread_library(t->spawned() ? 0 : t->pid(), t->exe(), o_.binary);
    lib_ = lib.path;
    unwind_ = prepare_unwind_tables(session, t->exe(), lib_);
    auto elf = ElfFile::open_cached(lib_);
    std::set<uint64_t> done;
    for (auto& p : kInitProbes)
      for (auto& sym : elf->find(p.symbol))
        if (sym.is_function && done.insert(sym.addr).second)
          session.attach_uprobe(lib_, p.symbol, sym.addr, "init_site_enter", false, t->pid(), p.kind);
    init_probes_ = session.attached() - before;
    if (t->spawned()) startup_stop_ = std::make_unique<StartupStop>(session, *t);
  }

  void arm(Session& session, Target* t) override {
    target_ = t;
    sym_ = std::make_unique<ProcessSymbolizer>(t->pid());
    namer_ = std::make_unique<StackNamer>(session.stack_map());
    waits_fd_ = session.map_fd("waits");
    retries_fd_ = session.map_fd("retries");
    releases_fd_ = session.map_fd("releases");
    inits_fd_ = session.map_fd("inits");
    calls_fd_ = session.map_fd("calls");
    drops_fd_ = session.map_fd("drops");
    std::cerr << fmt::format(
        "Tracing pid {}{} (contention mode: futex system calls, {} init probes on {}, {})... Ctrl+C to quit.\n",
        t->pid(), !tree_ ? "" : t->spawned() ? " and every process it starts" : " and the processes it forks from now on",
        init_probes_, lib_, session.uprobe_mechanism());
    start_ns_ = monotonic_ns();
    start_wall_ns_ = wall_clock_ns();
  }

  double duration_s() const override { return o_.duration_s; }
  bool tree_alive() override { return tree_ && tree_->alive(); }
  uint64_t interval_ns() const override { return uint64_t(o_.interval_s * 1e9); }
  void tick(uint64_t) override {
    if (first_tick_ && startup_stop_) startup_stop_->finish([this] { refresh(); });
    if (first_tick_ && target_->spawned()) catch_up_with_start([this] { refresh(); }, *sym_, lib_);
    first_tick_ = false;
    refresh();
  }
  void interval(uint64_t now) override {
    interval_no_++;
    print_text(report(read(), double(now - start_ns_) / 1e9), fmt::format("interval {}", interval_no_), now);
  }

  void before_detach(const RunEnd& e) override {
    // The waits still sleeping, while the probes still see them end: after detaching, a wait that
    // ends would look as if it went on.
    end_waits_ = waits_in_progress();
    end_read_ns_ = monotonic_ns();
    std::cerr << fmt::format("lockstat: {} after {:.1f} s; detaching probes.\n", describe(e.reason), e.seconds());
  }

  void finish(Session&, const RunEnd& e) override {
    refresh();  // the last mappings, before any stack is named
    ContentionSnapshot snap = read();
    snap.in_progress = end_waits_;
    snap.read_ns = end_read_ns_;
    ContentionReport r = report(snap, e.seconds());
    apply_contention_view(r, o_.sort, o_.top, o_.min_wait_ns);
    print_text(r, "final report", e.stop_ns);
    if (json_out_) {
      write_contention_json(json_out_->stream(), r, o_.stack_depth);
      json_out_->commit();
    }
    if (folded_out_) {
      write_contention_folded(folded_out_->stream(), r);
      folded_out_->commit();
    }
    if (pprof_out_)
      write_profile(*pprof_out_, contention_profile(r, stack_frames_, start_wall_ns_, target_->exe()));
  }

 private:
  void refresh() {
    if (tree_) tree_->poll();
    mappings_->poll([this](pid_t pid) { return &symbolizer(uint32_t(pid)); });
    if (target_->running_program() && sym_->refresh())
      for (uint32_t tid : thread_ids(target_->pid())) tids_.insert({uint32_t(target_->pid()), tid});
    for (auto& [pid, s] : others_)
      if (s.second) s.second = s.first->refresh();
  }

  // The target's symbolizer, or one for another process of its tree, kept current while it lives.
  ProcessSymbolizer& symbolizer(uint32_t pid) {
    if (pid == uint32_t(target_->pid())) return *sym_;
    auto it = others_.find(pid);
    if (it == others_.end()) {
      auto s = std::make_unique<ProcessSymbolizer>(pid_t(pid));
      bool alive = s->refresh();
      it = others_.emplace(pid, std::make_pair(std::move(s), alive)).first;
    }
    return *it->second.first;
  }

  ContentionSnapshot read() {
    ContentionSnapshot s;
    s.waits = read_map<lc_wait_key, lc_wait_val>(waits_fd_, false);
    s.retries = read_map<lc_retry_key, uint64_t>(retries_fd_, false);
    s.releases = read_map<lc_release_key, lc_release_val>(releases_fd_, false);
    s.inits = read_map<lc_init_key, lc_init>(inits_fd_, false);
    s.read_ns = monotonic_ns();
    s.in_progress = waits_in_progress();
    return s;
  }

  std::vector<std::pair<uint32_t, lc_call>> waits_in_progress() {
    std::vector<std::pair<uint32_t, lc_call>> out;
    // A thread gone meanwhile (killed inside its wait, its process exited) waits no more.
    for (auto& [tid, c] : read_map<uint32_t, lc_call>(calls_fd_, false))
      if (c.cls == LC_CLASS_WAIT && path_exists(fmt::format("/proc/{}/task/{}", c.pid, tid))) out.emplace_back(tid, c);
    return out;
  }

  ContentionReport report(const ContentionSnapshot& snap, double seconds) {
    // Threads of each process: those seen in /proc and every one that waited, woke or initialised.
    for (auto& [k, v] : snap.waits) tids_.insert({k.pid, k.tid});
    for (auto& [k, v] : snap.releases) tids_.insert({k.pid, k.tid});
    for (auto& [k, v] : snap.inits) tids_.insert({k.pid, v.tid});
    ContentionNaming naming;
    naming.frames = [this](uint32_t pid, int32_t id, uint64_t caller) {
      // The word at the stack pointer in a syscall need not be a return address: it is kept only
      // when it lands in a known function.
      const auto& frames = namer_->user_stack(symbolizer(pid), id, caller, true);
      std::vector<std::string> text;
      for (auto& f : frames) text.push_back(format_frame(f));
      stack_frames_.add(text, frames);
      return frames;
    };
    naming.data_object = [this](uint32_t pid, uint64_t a) { return symbolizer(pid).data_object(a); };
    naming.is_thread = [this](uint32_t pid, uint32_t tid) { return tids_.count({pid, tid}) > 0; };
    ContentionReport r = build_contention_report(snap, naming, labels_);
    r.pid = target_->pid();
    r.pids = traced_pids(r);
    r.duration_s = seconds;
    add_contention_drops(r.diag, read_counters(drops_fd_, LC_DROP_MAX));
    mappings_->add_to(r.diag);  // lost mapping records, forked children
    if (tree_) tree_->add_to(r.diag);  // forks not followed
    for (auto& w : unwind_->warnings()) r.diag.warn(w);
    return r;
  }

  // The processes traced: the target, every process of its tree seen, and any with a lock.
  std::vector<uint32_t> traced_pids(const ContentionReport& r) const {
    std::set<uint32_t> pids = {uint32_t(target_->pid())};
    if (tree_)
      for (pid_t p : tree_->pids()) pids.insert(uint32_t(p));
    for (auto& l : r.locks) pids.insert(l.pid);
    return {pids.begin(), pids.end()};
  }

  void print_text(ContentionReport r, const std::string& what, uint64_t now) {
    apply_contention_view(r, o_.sort, o_.top, o_.min_wait_ns);
    topt_.header = fmt::format("[{}] pid {}, {}, {:.1f} s since start (contention mode)", local_time_hms(),
                               target_->pid(), what, double(now - start_ns_) / 1e9);
    if (text_to_stdout_) write_contention_text(std::cout, r, topt_);
    std::cout.flush();
  }

  Options o_;
  std::unique_ptr<OutputFile> json_out_, folded_out_, pprof_out_;
  StackFrameIndex stack_frames_;  // the Frames behind the report's stacks, for --pprof
  int64_t start_wall_ns_ = 0;
  bool text_to_stdout_ = true;
  ContentionTextOptions topt_;
  bool futex2_ = false, waitv_ = false;
  std::string lib_;
  size_t init_probes_ = 0;
  std::unique_ptr<TargetMappings> mappings_;
  std::unique_ptr<ProcessTree> tree_;
  Target* target_ = nullptr;
  std::unique_ptr<ProcessSymbolizer> sym_;
  std::unique_ptr<StackNamer> namer_;
  std::unique_ptr<UnwindTables> unwind_;
  std::unique_ptr<StartupStop> startup_stop_;
  bool first_tick_ = true;
  int waits_fd_ = -1, retries_fd_ = -1, releases_fd_ = -1, inits_fd_ = -1, calls_fd_ = -1, drops_fd_ = -1;
  std::map<uint32_t, std::pair<std::unique_ptr<ProcessSymbolizer>, bool>> others_;  // pid -> (symbols, alive)
  std::set<std::pair<uint32_t, uint32_t>> tids_;  // (pid, tid)
  std::vector<std::pair<uint32_t, lc_call>> end_waits_;  // in progress when tracing ended
  uint64_t end_read_ns_ = 0;
  InitLabels labels_;
  uint64_t start_ns_ = 0;
  int interval_no_ = 0;
};

}  // namespace

std::unique_ptr<Tool> make_contention_tool(Options o) { return std::make_unique<ContentionTool>(std::move(o)); }

}  // namespace lockkit::lockstat
