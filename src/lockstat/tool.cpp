#include "lockstat/tool.h"

#include <fmt/format.h>
#include <unistd.h>

#include <ctime>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "core/elf.h"
#include "core/mmap_tracker.h"
#include "core/output.h"
#include "core/process.h"
#include "core/session.h"
#include "core/stacks.h"
#include "core/symbolizer.h"
#include "core/tables.h"
#include "core/tree.h"
#include "core/unwind.h"
#include "core/uprobe_check.h"
#include "core/util.h"
#include "lockstat/contention_tool.h"
#include "lockstat/lock_order.h"
#include "lockstat/map_sizes.h"
#include "lockstat/model.h"
#include "lockstat/profile.h"
#include "lockstat/report.h"

namespace lockkit::probes {
extern const std::string kLockstatBpf;
}

namespace lockkit::lockstat {
namespace {

struct ProbeSpec {
  const char* symbol;
  const char* entry_fn;   // may be null
  const char* return_fn;  // may be null
  bool required;
  uint64_t cookie = 0;    // the entry program's attach cookie (LK_SITE_COOKIE)
};

// Every acquisition site runs lock_site_enter and every init site init_site_enter, told apart by
// their cookies.
constexpr const char* kLockSite = "lock_site_enter";
constexpr const char* kInitSite = "init_site_enter";
constexpr uint64_t site(uint32_t kind, uint32_t mode, uint32_t op) { return LK_SITE_COOKIE(kind, mode, op); }

// Lock and unlock sites come before init sites: on x86-64 glibc pthread_spin_init is an alias of
// pthread_spin_unlock, and an address can carry only one of our entry programs.
const ProbeSpec kMutexProbes[] = {
    {"pthread_mutex_lock", kLockSite, "lock_return", true, site(LK_MUTEX, LK_EXCLUSIVE, LK_OP_LOCK)},
    {"pthread_mutex_trylock", kLockSite, "lock_return", true, site(LK_MUTEX, LK_EXCLUSIVE, LK_OP_TRY)},
    {"pthread_mutex_timedlock", kLockSite, "lock_return", true, site(LK_MUTEX, LK_EXCLUSIVE, LK_OP_TIMED)},
    {"pthread_mutex_clocklock", kLockSite, "lock_return", false, site(LK_MUTEX, LK_EXCLUSIVE, LK_OP_TIMED)},
    {"pthread_mutex_unlock", "unlock_enter", nullptr, true},
    {"pthread_cond_wait", "cond_wait_enter", "cond_wait_return", true},
    {"pthread_cond_timedwait", "cond_wait_enter", "cond_wait_return", true},
    {"pthread_cond_clockwait", "cond_wait_enter", "cond_wait_return", false},
    {"pthread_mutex_init", kInitSite, nullptr, true, site(LK_MUTEX, 0, 0)},
};
const ProbeSpec kRwlockProbes[] = {
    {"pthread_rwlock_rdlock", kLockSite, "lock_return", true, site(LK_RWLOCK, LK_SHARED, LK_OP_LOCK)},
    {"pthread_rwlock_tryrdlock", kLockSite, "lock_return", true, site(LK_RWLOCK, LK_SHARED, LK_OP_TRY)},
    {"pthread_rwlock_timedrdlock", kLockSite, "lock_return", true, site(LK_RWLOCK, LK_SHARED, LK_OP_TIMED)},
    {"pthread_rwlock_clockrdlock", kLockSite, "lock_return", false, site(LK_RWLOCK, LK_SHARED, LK_OP_TIMED)},
    {"pthread_rwlock_wrlock", kLockSite, "lock_return", true, site(LK_RWLOCK, LK_EXCLUSIVE, LK_OP_LOCK)},
    {"pthread_rwlock_trywrlock", kLockSite, "lock_return", true, site(LK_RWLOCK, LK_EXCLUSIVE, LK_OP_TRY)},
    {"pthread_rwlock_timedwrlock", kLockSite, "lock_return", true, site(LK_RWLOCK, LK_EXCLUSIVE, LK_OP_TIMED)},
    {"pthread_rwlock_clockwrlock", kLockSite, "lock_return", false, site(LK_RWLOCK, LK_EXCLUSIVE, LK_OP_TIMED)},
    {"pthread_rwlock_unlock", "unlock_enter", nullptr, true},
    {"pthread_rwlock_init", kInitSite, nullptr, true, site(LK_RWLOCK, 0, 0)},
};
const ProbeSpec kSpinProbes[] = {
    {"pthread_spin_lock", kLockSite, "lock_return", true, site(LK_SPIN, LK_EXCLUSIVE, LK_OP_LOCK)},
    {"pthread_spin_trylock", kLockSite, "lock_return", true, site(LK_SPIN, LK_EXCLUSIVE, LK_OP_TRY)},
    {"pthread_spin_unlock", "unlock_enter", nullptr, true},
    {"pthread_spin_init", kInitSite, nullptr, false, site(LK_SPIN, 0, 0)},
};

// POSIX semaphores (--kinds sem). Each function's two symbol versions share one address in glibc
// 2.34 and later (sem_wait@GLIBC_2.2.5 and @@GLIBC_2.34): the Attacher probes each address once.
// sem_clockwait is glibc 2.30 and later.
const ProbeSpec kSemProbes[] = {
    {"sem_wait", kLockSite, "sem_return", true, site(LK_SEM, LK_EXCLUSIVE, LK_OP_LOCK)},
    {"sem_trywait", kLockSite, "sem_return", true, site(LK_SEM, LK_EXCLUSIVE, LK_OP_TRY)},
    {"sem_timedwait", kLockSite, "sem_return", true, site(LK_SEM, LK_EXCLUSIVE, LK_OP_TIMED)},
    {"sem_clockwait", kLockSite, "sem_return", false, site(LK_SEM, LK_EXCLUSIVE, LK_OP_TIMED)},
    {"sem_post", "sem_post_enter", nullptr, true},
    {"sem_init", "sem_init_enter", nullptr, true},
};
constexpr const char* kSemFutexTracepoint = "events/syscalls/sys_exit_futex/format";

class Attacher {
 public:
  // `static_program`: the file is a statically linked executable, which holds only the pthread
  // functions the program uses; one it lacks is never called, so even a required one is skipped.
  Attacher(Session& s, std::string lib, bool static_program, pid_t pid)
      : s_(s), lib_(lib), static_program_(static_program), pid_(pid), check_(pid, lib) {
    elf_ = ElfFile::open_cached(lib_);
  }
  const BreakpointCheck& check() const { return check_; }
  template <size_t N>
  void attach(const ProbeSpec (&specs)[N]) {
    for (auto& p : specs) {
      std::vector<ElfSymbol> syms;
      for (auto& s : elf_->find(p.symbol))
        if (s.is_function) syms.push_back(s);
      if (syms.empty()) {
        if (p.required && !static_program_) throw ToolError(fmt::format("{} does not define {}", lib_, p.symbol));
        continue;
      }
      for (auto& sym : syms) {  // every symbol version (pthread_cond_wait has two)
        if (p.entry_fn && entries_.insert(sym.addr).second) {
          s_.attach_uprobe(lib_, p.symbol, sym.addr, p.entry_fn, false, pid_, p.cookie);
          check_.add(p.symbol, sym.addr);
        }
        if (p.return_fn && returns_.insert(sym.addr).second)
          s_.attach_uprobe(lib_, p.symbol, sym.addr, p.return_fn, true, pid_);
      }
    }
  }

 private:
  Session& s_;
  std::string lib_;
  bool static_program_;
  pid_t pid_;
  std::shared_ptr<const ElfFile> elf_;
  std::set<uint64_t> entries_, returns_;
  BreakpointCheck check_;
};

class Tracer {
 public:
  Tracer(const Options& o, Session& s, Target& t, const BreakpointCheck& check, TargetMappings& mappings)
      : o_(o), s_(s), target_(t), check_(check), mappings_(mappings), sym_(t.pid()), namer_(s.stack_map()) {
    stats_fd_ = s.map_fd("stats");
    hists_fd_ = s.map_fd("hists");
    inits_fd_ = s.map_fd("inits");
    drops_fd_ = s.map_fd("drops");
    held_fd_ = s.map_fd("held");
    if (o.lock_order) order_fd_ = s.map_fd("order_edges");
    naming_.frames = [this](uint32_t pid, int32_t id, uint64_t caller) { return frames(pid, id, caller); };
    naming_.data_symbol = [this](uint32_t pid, uint64_t a) { return symbolizer(pid).data_symbol(a); };
    // Init stacks are kept by address, whichever process of the tree made the call (a forked child
    // shares the objects its parent initialised before the fork).
    naming_.init_stack = [this](uint32_t pid, uint64_t a) -> std::optional<std::pair<std::vector<std::string>, uint32_t>> {
      auto it = inits_.find(a);
      if (it == inits_.end()) return std::nullopt;
      return std::make_pair(frames(pid, it->second.stackid, it->second.caller), it->second.kind);
    };
  }

  // Takes in every mapping the traced processes made since the last call, and keeps the
  // address-space snapshots current while they live (they cover what was mapped before tracing
  // started).
  void refresh_maps() {
    mappings_.poll([this](pid_t pid) { return &symbolizer(uint32_t(pid)); });
    if (target_.running_program()) sym_.refresh();
    for (auto& [pid, p] : others_)
      if (p.second) p.second = p.first->refresh();
  }

  // A process of the tree about to run its first instruction: a fork starts with its parent's
  // modules; an exec with none (its mappings come as it makes them).
  void start_process(pid_t pid, pid_t parent, bool exec) {
    auto& entry = others_[uint32_t(pid)];
    entry = {std::make_unique<ProcessSymbolizer>(pid), true};
    if (!exec && parent > 0) entry.first->inherit(symbolizer(uint32_t(parent)));
    // Stopped at its exec, its maps show the new program and its loader (whose mapping records
    // may have been taken in before this): the libraries come as it maps them.
    if (exec) entry.second = entry.first->refresh();
  }

  // The symbolizer of a traced process (the target's, or one of its tree's).
  ProcessSymbolizer& symbolizer(uint32_t pid) {
    if (pid == uint32_t(target_.pid())) return sym_;
    auto it = others_.find(pid);
    if (it == others_.end()) {
      auto s = std::make_unique<ProcessSymbolizer>(pid_t(pid));
      bool alive = s->refresh();
      it = others_.emplace(pid, std::make_pair(std::move(s), alive)).first;
    }
    return *it->second.first;
  }
  void set_pids(std::function<std::vector<uint32_t>()> pids) { pids_ = std::move(pids); }

  // Reads the maps; in --reset mode drains them and keeps whole-run totals in user space.
  // `final_read`: tracing has ended, so what is still held will not be released while traced.
  Snapshot read(bool final_read = false) {
    Snapshot s;
    s.stats = read_map<lk_stat_key, lk_stat_val>(stats_fd_, o_.reset);
    if (final_read && o_.sem)  // semaphore acquisitions never posted back by their thread
      for (auto& row : open_semaphore_rows(read_map<lk_held_key, lk_held>(held_fd_, false)))
        s.stats.push_back(row);
    s.hists = read_map<lk_hist_key, uint64_t>(hists_fd_, o_.reset);
    for (auto& [k, v] : read_map<uint64_t, lk_init>(inits_fd_, false)) inits_[k] = v;
    if (o_.reset) merge_snapshot(total_, s);
    return s;
  }
  const Snapshot& total(const Snapshot& latest) const { return o_.reset ? total_ : latest; }

  // A command just released: its mappings, as soon as it has mapped `lib`.
  void catch_up(const std::string& lib) {
    catch_up_with_start([this] { refresh_maps(); }, sym_, lib);
  }
  void set_unwind(const UnwindTables* u) { unwind_ = u; }

  // A warning for every report (e.g. a lock kind that could not be traced).
  void warn(std::string w) { warnings_.push_back(std::move(w)); }

  // Notes every breakpoint that vanished from the target while it still runs (before detaching).
  void check_breakpoints() {
    if (target_.running_program() && !target_.exited())
      for (auto& fn : check_.missing()) lost_probes_.insert(fn);
  }

  Report report(const Snapshot& snap, double duration_s) {
    Report r = build_report(snap, naming_, labels_, o_.sample_percent);
    r.pid = target_.pid();
    std::set<uint32_t> pids = {uint32_t(target_.pid())};
    if (pids_)
      for (uint32_t p : pids_()) pids.insert(p);
    for (auto& l : r.locks) pids.insert(l.pid);
    r.pids.assign(pids.begin(), pids.end());
    r.duration_s = duration_s;
    add_drops(r.diag, read_counters(drops_fd_, LK_DROP_MAX));
    for (auto& w : warnings_) r.diag.warn(w);
    mappings_.add_to(r.diag);  // lost mapping records, forked children
    if (unwind_)
      for (auto& w : unwind_->warnings()) r.diag.warn(w);
    // A breakpoint that vanished from the target means calls went unseen: say so, never hide it.
    for (auto& fn : lost_probes_)
      r.diag.warn(fmt::format("the breakpoint on {} went missing from pid {}: calls to it were not all seen",
                              fn, target_.pid()));
    return r;
  }

  // --lock-order: the edges recorded since the start (never drained) and their cycles, named as
  // the last read() left the init stacks.
  LockOrderReport lock_order() {
    return build_lock_order(read_map<lk_order_key, lk_order_edge>(order_fd_, false), naming_, labels_);
  }

  // The Frames behind formatted frames the report holds (for the pprof profile).
  const StackFrameIndex& stack_frames() const { return stack_frames_; }

 private:
  // At a function's entry the word at the stack pointer is the return address into the caller.
  std::vector<std::string> frames(uint32_t pid, int32_t id, uint64_t caller) {
    if (id < 0) return {"[lost stack]"};
    std::vector<std::string> out;
    const auto& fs = namer_.user_stack(symbolizer(pid), id, caller);
    for (auto& f : fs) out.push_back(format_frame(f));
    return stack_frames_.add(out, fs);
  }

  const Options& o_;
  Session& s_;
  Target& target_;
  const BreakpointCheck& check_;
  TargetMappings& mappings_;
  std::set<std::string> lost_probes_;
  std::vector<std::string> warnings_;
  ProcessSymbolizer sym_;
  std::map<uint32_t, std::pair<std::unique_ptr<ProcessSymbolizer>, bool>> others_;  // pid -> (symbols, alive)
  std::function<std::vector<uint32_t>()> pids_;  // the processes of the tree
  int stats_fd_, hists_fd_, inits_fd_, drops_fd_, held_fd_;
  int order_fd_ = -1;
  Naming naming_;
  InitLabels labels_;
  std::map<uint64_t, lk_init> inits_;
  Snapshot total_;
  StackNamer namer_;
  const UnwindTables* unwind_ = nullptr;
  StackFrameIndex stack_frames_;
};


class LockstatTool : public Tool {
 public:
  explicit LockstatTool(Options o) : o_(std::move(o)) {
    // Outputs first: a bad path fails before anything is attached.
    if (!o_.json.empty()) json_out_ = std::make_unique<OutputFile>(o_.json);
    if (!o_.folded.empty()) folded_out_ = std::make_unique<OutputFile>(o_.folded);
    if (!o_.pprof.empty()) pprof_out_ = std::make_unique<OutputFile>(o_.pprof);
    text_to_stdout_ = o_.json != "-" && o_.folded != "-" && o_.pprof != "-";
    topt_.sort_name = o_.sort_name;
    topt_.per_thread_hists = o_.per_thread;
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
    sem_futex_tp_ = o_.sem && tracefs_has(kSemFutexTracepoint);
  }

  std::string bpf_text() const override { return probes::kLockstatBpf; }
  std::vector<std::string> bpf_defines(const Target* t) const override {
    std::vector<std::string> defines = {fmt::format("TARGET_PID={}", t->pid()),
                                        fmt::format("SAMPLE_PER_10K={}", int(o_.sample_percent * 100 + 0.5)),
                                        fmt::format("LK_SEM_FUTEX_TP={}", sem_futex_tp_ ? 1 : 0)};
    if (o_.lock_order) defines.push_back("LOCK_ORDER=1");
    for (auto& d : stack_map_defines(o_.stack_storage)) defines.push_back(d);
    for (auto& d : unwind_map_defines()) defines.push_back(d);
    append_map_sizes(defines, kMapSizes);
    if (o_.follow_forks)
      for (auto& d : tree_defines(true)) defines.push_back(d);
    return defines;
  }

  void attach(Session& session, Target* t) override {
    // Before the command is released: its mappings are seen from its exec on.
    mappings_ = std::make_unique<TargetMappings>(
        name(), t->pid(), t->spawned() ? MmapTracker::Start::OnExec : MmapTracker::Start::Now);
    // The tree before any uprobe: from now on each new process of it waits for its own probes.
    if (o_.follow_forks) {
      tree_ = std::make_unique<ProcessTree>(session, t->pid(), true);
      mappings_->follow(tree_.get());
    }
    session_ = &session;
    auto lib = resolve_pthread_library(t->spawned() ? 0 : t->pid(), t->exe(), o_.binary);
    lib_ = lib.path;
    lib_static_ = lib.static_program;
    unwind_ = prepare_unwind_tables(session, t->exe(), lib_);
    attacher_ = std::make_unique<Attacher>(session, lib_, lib.static_program, t->pid());
    attach_kinds(*attacher_, true);
    probed_[t->pid()] = lib_;
    lock_probes_ = session.attached();
    // The command itself (the tree's root; the tree stops only the processes it starts).
    if (t->spawned()) startup_stop_ = std::make_unique<StartupStop>(session, *t);
  }

  // The probes of every lock kind asked for, through `a` (the target's, or a process of its tree).
  void attach_kinds(Attacher& a, bool target) {
    if (o_.mutex) a.attach(kMutexProbes);
    if (o_.rwlock) a.attach(kRwlockProbes);
    if (o_.sem) {
      if (target)
        attach_semaphores(*session_);  // and the futex tracepoint it shares with the tree
      else
        a.attach(kSemProbes);
    }
    if (o_.spin) {
      // x86-64 glibc's pthread_spin_lock begins with a locked decrement, an instruction the kernel
      // refuses to put a uprobe on: spin locks cannot be traced there. Say so, once.
      try {
        a.attach(kSpinProbes);
      } catch (const ToolError& e) {
        if (o_.spin_requested) throw;
        if (target) {
          spin_warning_ = std::string("spin locks not traced: ") + e.what();
          std::cerr << "lockstat: warning: " << spin_warning_ << '\n';
        }
      }
    }
  }

  // The new processes of the tree, each stopped before its first instruction: their probes (a
  // fork: on its parent's pthread library; an exec: on its new program's, unless that one is
  // probed already, which the kernel keeps across the exec), their unwind rows and symbols, then
  // SIGCONT. A process that cannot be probed runs untraced, with a warning.
  void start_tree_processes() {
    for (auto& p : tree_->stopped()) {
      pid_t parent = p.parent ? p.parent : tree_->parent(p.pid);
      tree_->note(p.pid, parent);
      std::string lib;
      try {
        bool is_static = lib_static_;
        if (!p.exec) {
          auto it = probed_.find(parent);
          lib = it != probed_.end() ? it->second : lib_;
        } else {
          std::string exe = readlink_str(fmt::format("/proc/{}/exe", p.pid));
          if (ends_with(exe, " (deleted)")) exe.resize(exe.size() - 10);
          auto pl = resolve_pthread_library(0, exe, o_.binary);
          lib = pl.path;
          is_static = pl.static_program;
          prepare_program(*unwind_, exe, lib);
        }
        tracer_->start_process(p.pid, parent, p.exec);
        auto it = probed_.find(p.pid);
        if (it == probed_.end() || it->second != lib) {
          Attacher a(*session_, lib, is_static, p.pid);
          attach_kinds(a, false);
          probed_[p.pid] = lib;
        }
      } catch (const ToolError& e) {
        std::string w = fmt::format("pid {} (forked by {}) is not traced: {}", p.pid, parent, e.what());
        std::cerr << "lockstat: warning: " << w << '\n';
        tracer_->warn(w);
        lib.clear();
      }
      tree_->resume(p.pid);
      // A new program maps its libraries within a millisecond or so: take its mappings in as it
      // does, so that its first stacks unwind with their rows.
      if (p.exec && !lib.empty())
        catch_up_with_start([this] { tracer_->refresh_maps(); }, tracer_->symbolizer(uint32_t(p.pid)), lib);
    }
  }

  void arm(Session& session, Target* t) override {
    tracer_ = std::make_unique<Tracer>(o_, session, *t, attacher_->check(), *mappings_);
    tracer_->set_unwind(unwind_.get());
    if (tree_)
      tracer_->set_pids([this] {
        std::vector<uint32_t> out;
        for (pid_t p : tree_->pids()) out.push_back(uint32_t(p));
        return out;
      });
    if (!spin_warning_.empty()) tracer_->warn(spin_warning_);
    if (!sem_warning_.empty()) tracer_->warn(sem_warning_);
    uint32_t zero = 0, one = 1;
    session.update("armed", zero, one);
    std::cerr << fmt::format("Tracing pid {}{} ({} probes on {}, {})... Ctrl+C to quit.\n", t->pid(),
                             !tree_ ? "" : t->spawned() ? " and every process it starts" : " and the processes it forks from now on",
                             lock_probes_, lib_, session.uprobe_mechanism());
    target_ = t;
    start_ns_ = interval_start_ = monotonic_ns();
    start_wall_ns_ = wall_clock_ns();
  }

  double duration_s() const override { return o_.duration_s; }
  uint64_t interval_ns() const override { return uint64_t(o_.interval_s * 1e9); }
  // Keeps the address-space snapshot current while the target lives.
  void tick(uint64_t) override {
    if (first_tick_ && startup_stop_) startup_stop_->finish([this] { tracer_->refresh_maps(); });
    if (first_tick_ && target_->spawned()) tracer_->catch_up(lib_);
    first_tick_ = false;
    if (tree_) {
      tree_->poll();
      start_tree_processes();
    }
    tracer_->refresh_maps();
  }
  int ready_fd() const override { return tree_ ? tree_->ready_fd() : -1; }
  bool tree_alive() override { return tree_ && tree_->alive(); }
  void interval(uint64_t now) override {
    interval_no_++;
    tracer_->check_breakpoints();
    print_text(tracer_->read(), now, false);
    interval_start_ = now;
  }

  void before_detach(const RunEnd& e) override {
    tracer_->check_breakpoints();
    if (tree_) tree_->resume_all();  // a process stopped meanwhile runs on, untraced from now on
    std::cerr << fmt::format("lockstat: {} after {:.1f} s; detaching probes.\n", describe(e.reason), e.seconds());
  }

  // Probes are detached first (the target is back to full speed, and the maps no longer change
  // while they are read), then the final report.
  void finish(Session&, const RunEnd& e) override {
    tracer_->refresh_maps();  // the last mappings, before any stack is named
    Snapshot last = tracer_->read(true);
    interval_no_++;
    print_text(last, e.stop_ns, true);
    Report whole = tracer_->report(tracer_->total(last), e.seconds());
    if (tree_) tree_->add_to(whole.diag);
    apply_view(whole, o_.sort, o_.top, o_.min_wait_ns);
    if (json_out_) {
      Json doc = report_json(whole, o_.stack_depth);
      if (o_.lock_order) doc["lock_order"] = lock_order_json(tracer_->lock_order(), o_.stack_depth);
      write_json_document(json_out_->stream(), doc);
      json_out_->commit();
    }
    if (folded_out_) {
      write_folded(folded_out_->stream(), whole, o_.folded_hold);
      folded_out_->commit();
    }
    if (pprof_out_)
      write_profile(*pprof_out_, report_profile(whole, tracer_->stack_frames(),
                                                start_wall_ns_, target_->exe()));
  }

 private:
  // The semaphore functions, and the futex exit that tells a timed wait's timeout from an
  // interruption (both return -1; errno is out of BPF's reach).
  void attach_semaphores(Session& session) {
    if (sem_futex_tp_) {
      session.attach_tracepoint("syscalls:sys_exit_futex", "sem_futex_exit");
    } else {
      sem_warning_ = "this kernel has no syscalls:sys_exit_futex tracepoint: a sem_timedwait or sem_clockwait "
                     "that fails is counted in errors, as timeouts cannot be told from interruptions";
      std::cerr << "lockstat: warning: " << sem_warning_ << '\n';
    }
    attacher_->attach(kSemProbes);
  }

  void print_text(const Snapshot& snap, uint64_t now, bool final_report) {
    double secs = double(now - (o_.reset ? interval_start_ : start_ns_)) / 1e9;
    Report r = tracer_->report(snap, secs);
    apply_view(r, o_.sort, o_.top, o_.min_wait_ns);
    topt_.header = fmt::format("[{}] pid {}, {}, {:.1f} s{}", local_time_hms(), target_->pid(),
                               final_report ? std::string("final report") : fmt::format("interval {}", interval_no_),
                               secs, o_.reset ? "" : " since start");
    if (text_to_stdout_) {
      write_text(std::cout, r, topt_);
      if (o_.lock_order) write_lock_order_text(std::cout, tracer_->lock_order(), o_.stack_depth);
    }
    std::cout.flush();
  }

  Options o_;
  std::unique_ptr<OutputFile> json_out_, folded_out_, pprof_out_;
  bool text_to_stdout_ = true;
  TextOptions topt_;
  std::string lib_;
  std::string spin_warning_, sem_warning_;
  bool sem_futex_tp_ = false;
  std::unique_ptr<Attacher> attacher_;
  std::unique_ptr<TargetMappings> mappings_;
  std::unique_ptr<ProcessTree> tree_;
  Session* session_ = nullptr;
  bool lib_static_ = false;
  std::map<pid_t, std::string> probed_;  // process -> the pthread library its probes are on
  std::unique_ptr<Tracer> tracer_;
  std::unique_ptr<UnwindTables> unwind_;
  std::unique_ptr<StartupStop> startup_stop_;
  size_t lock_probes_ = 0;
  bool first_tick_ = true;
  Target* target_ = nullptr;
  uint64_t start_ns_ = 0, interval_start_ = 0;
  int64_t start_wall_ns_ = 0;
  int interval_no_ = 0;
};

}  // namespace

std::unique_ptr<Tool> make_tool(int argc, char** argv) {
  Options o = parse_options(argc, argv);
  if (!o.help && o.mode == Mode::Contention) return make_contention_tool(std::move(o));
  return tool_or_help<LockstatTool>(std::move(o));
}

}  // namespace lockkit::lockstat
