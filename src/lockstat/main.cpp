// lockstat: pthread lock contention of one process, from uprobes.
#include <fmt/format.h>
#include <unistd.h>

#include <ctime>
#include <iostream>
#include <map>
#include <memory>

#include "core/cli.h"
#include "core/elf.h"
#include "core/output.h"
#include "core/process.h"
#include "core/session.h"
#include "core/symbolizer.h"
#include "core/tables.h"
#include "core/uprobe_check.h"
#include "core/util.h"
#include "lockstat/map_sizes.h"
#include "lockstat/model.h"
#include "lockstat/options.h"
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
};

// Lock and unlock sites come before init sites: on x86-64 glibc pthread_spin_init is an alias of
// pthread_spin_unlock, and an address can carry only one of our entry programs.
const ProbeSpec kMutexProbes[] = {
    {"pthread_mutex_lock", "mutex_lock_enter", "lock_return", true},
    {"pthread_mutex_trylock", "mutex_trylock_enter", "lock_return", true},
    {"pthread_mutex_timedlock", "mutex_timedlock_enter", "lock_return", true},
    {"pthread_mutex_clocklock", "mutex_timedlock_enter", "lock_return", false},
    {"pthread_mutex_unlock", "unlock_enter", nullptr, true},
    {"pthread_cond_wait", "cond_wait_enter", "cond_wait_return", true},
    {"pthread_cond_timedwait", "cond_wait_enter", "cond_wait_return", true},
    {"pthread_cond_clockwait", "cond_wait_enter", "cond_wait_return", false},
    {"pthread_mutex_init", "mutex_init_enter", nullptr, true},
};
const ProbeSpec kRwlockProbes[] = {
    {"pthread_rwlock_rdlock", "rwlock_rdlock_enter", "lock_return", true},
    {"pthread_rwlock_tryrdlock", "rwlock_tryrdlock_enter", "lock_return", true},
    {"pthread_rwlock_timedrdlock", "rwlock_timedrdlock_enter", "lock_return", true},
    {"pthread_rwlock_clockrdlock", "rwlock_timedrdlock_enter", "lock_return", false},
    {"pthread_rwlock_wrlock", "rwlock_wrlock_enter", "lock_return", true},
    {"pthread_rwlock_trywrlock", "rwlock_trywrlock_enter", "lock_return", true},
    {"pthread_rwlock_timedwrlock", "rwlock_timedwrlock_enter", "lock_return", true},
    {"pthread_rwlock_clockwrlock", "rwlock_timedwrlock_enter", "lock_return", false},
    {"pthread_rwlock_unlock", "unlock_enter", nullptr, true},
    {"pthread_rwlock_init", "rwlock_init_enter", nullptr, true},
};
const ProbeSpec kSpinProbes[] = {
    {"pthread_spin_lock", "spin_lock_enter", "lock_return", true},
    {"pthread_spin_trylock", "spin_trylock_enter", "lock_return", true},
    {"pthread_spin_unlock", "unlock_enter", nullptr, true},
    {"pthread_spin_init", "spin_init_enter", nullptr, false},
};

class Attacher {
 public:
  Attacher(Session& s, std::string lib, pid_t pid) : s_(s), lib_(lib), pid_(pid), check_(pid, lib) {
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
        if (p.required) throw ToolError(fmt::format("{} does not define {}", lib_, p.symbol));
        continue;
      }
      for (auto& sym : syms) {  // every symbol version (pthread_cond_wait has two)
        if (p.entry_fn && entries_.insert(sym.addr).second) {
          s_.attach_uprobe(lib_, p.symbol, sym.addr, p.entry_fn, false, pid_);
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
  pid_t pid_;
  std::shared_ptr<const ElfFile> elf_;
  std::set<uint64_t> entries_, returns_;
  BreakpointCheck check_;
};

std::string clock_now() {
  time_t t = time(nullptr);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[16];
  strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return buf;
}

class Tracer {
 public:
  Tracer(const Options& o, Session& s, Target& t, const BreakpointCheck& check)
      : o_(o), s_(s), target_(t), check_(check), sym_(t.pid()) {
    stats_fd_ = s.map_fd("stats");
    hists_fd_ = s.map_fd("hists");
    inits_fd_ = s.map_fd("inits");
    stacks_fd_ = s.map_fd("stacks");
    drops_fd_ = s.map_fd("drops");
    naming_.frames = [this](int32_t id, uint64_t caller) { return frames(id, caller); };
    naming_.data_symbol = [this](uint64_t a) { return sym_.data_symbol(a); };
    naming_.init_stack = [this](uint64_t a) -> std::optional<std::pair<std::vector<std::string>, uint32_t>> {
      auto it = inits_.find(a);
      if (it == inits_.end()) return std::nullopt;
      return std::make_pair(frames(it->second.stackid, it->second.caller), it->second.kind);
    };
  }

  // Keeps the address-space snapshot current while the target lives.
  void refresh_maps() {
    if (target_.running_program()) sym_.refresh();
  }

  // Reads the maps; in --reset mode drains them and keeps whole-run totals in user space.
  Snapshot read() {
    Snapshot s;
    s.stats = read_map<lk_stat_key, lk_stat_val>(stats_fd_, o_.reset);
    s.hists = read_map<lk_hist_key, uint64_t>(hists_fd_, o_.reset);
    for (auto& [k, v] : read_map<uint64_t, lk_init>(inits_fd_, false)) inits_[k] = v;
    if (o_.reset) merge_snapshot(total_, s);
    return s;
  }
  const Snapshot& total(const Snapshot& latest) const { return o_.reset ? total_ : latest; }

  // Notes every breakpoint that vanished from the target while it still runs (before detaching).
  void check_breakpoints() {
    if (target_.running_program() && !target_.exited())
      for (auto& fn : check_.missing()) lost_probes_.insert(fn);
  }

  Report report(const Snapshot& snap, double duration_s) {
    Report r = build_report(snap, naming_, labels_, o_.sample_percent);
    r.pid = target_.pid();
    r.duration_s = duration_s;
    auto drops = read_counters(drops_fd_, LK_DROP_MAX);
    for (uint32_t i = 0; i < LK_DROP_MAX; i++)
      if (drops[i]) r.dropped.emplace_back(drop_reason_name(i), drops[i]);
    // A breakpoint that vanished from the target means calls went unseen: say so, never hide it.
    for (auto& fn : lost_probes_)
      r.warnings.push_back(fmt::format("the breakpoint on {} went missing from pid {}: calls to it were not all seen",
                                       fn, target_.pid()));
    return r;
  }

 private:
  std::vector<std::string> frames(int32_t id, uint64_t caller) {
    if (id < 0) return {"[lost stack]"};
    auto key = std::make_pair(id, caller);
    auto it = frame_cache_.find(key);
    if (it != frame_cache_.end()) return it->second;
    // At a function's entry the word at the stack pointer is the return address into the caller.
    std::vector<uint64_t> ips = restore_caller(read_stack(stacks_fd_, id), caller);
    std::vector<std::string> out;
    for (auto& f : sym_.resolve_stack(ips)) out.push_back(format_frame(f));
    frame_cache_[key] = out;
    return out;
  }

  const Options& o_;
  Session& s_;
  Target& target_;
  const BreakpointCheck& check_;
  std::set<std::string> lost_probes_;
  ProcessSymbolizer sym_;
  int stats_fd_, hists_fd_, inits_fd_, stacks_fd_, drops_fd_;
  Naming naming_;
  InitLabels labels_;
  std::map<uint64_t, lk_init> inits_;
  Snapshot total_;
  std::map<std::pair<int32_t, uint64_t>, std::vector<std::string>> frame_cache_;
};

int run(int argc, char** argv) {
  StopSignals signals;
  Options o = parse_options(argc, argv);
  if (o.help) {
    std::cout << o.help_text;
    return 0;
  }
  // Open outputs first: a bad path fails before anything is attached.
  std::unique_ptr<OutputFile> json_out, folded_out;
  if (!o.json.empty()) json_out = std::make_unique<OutputFile>(o.json);
  if (!o.folded.empty()) folded_out = std::make_unique<OutputFile>(o.folded);
  bool text_to_stdout = o.json != "-" && o.folded != "-";

  if (!o.command.empty()) resolve_command(o.command[0]);  // a bad command is a usage error, found first
  prepare_environment("lockstat");
  Target target = o.command.empty() ? Target::attach(o.pid) : Target::spawn(o.command);
  std::string lib = resolve_pthread_library(target.spawned() ? 0 : target.pid(), target.exe(), o.binary);

  Session session("lockstat");
  std::vector<std::string> defines = {
      fmt::format("TARGET_PID={}", target.pid()),
      fmt::format("SAMPLE_PER_10K={}", int(o.sample_percent * 100 + 0.5)),
      fmt::format("STACK_ENTRIES={}", o.stack_storage)};
  append_map_sizes(defines, kMapSizes);
  session.compile(probes::kLockstatBpf, defines);
  signals.throw_if_stopped("tracing started");  // compiling takes seconds: a Ctrl-C meanwhile ends here
  Attacher attacher(session, lib, target.pid());
  try {
    if (o.mutex) attacher.attach(kMutexProbes);
    if (o.rwlock) attacher.attach(kRwlockProbes);
  } catch (const ToolError&) {
    if (!target.spawned() && target.exited())
      throw ToolError(fmt::format("process {} exited before tracing started", target.pid()));
    throw;
  }
  if (o.spin) {
    // x86-64 glibc's pthread_spin_lock begins with a locked decrement, an instruction the kernel
    // refuses to put a uprobe on: spin locks cannot be traced there. Say so, once.
    try {
      attacher.attach(kSpinProbes);
    } catch (const ToolError& e) {
      if (o.spin_requested) throw;
      std::cerr << "lockstat: warning: spin locks not traced: " << e.what() << '\n';
    }
  }

  Tracer tracer(o, session, target, attacher.check());
  uint32_t zero = 0, one = 1;
  if (bpf_update_elem(session.map_fd("armed"), &zero, &one, 0) != 0)
    throw ToolError("cannot arm the probes: " + errno_text(errno));
  target.release();
  std::cerr << fmt::format("Tracing pid {} ({} probes on {}, {})... Ctrl+C to quit.\n", target.pid(),
                           session.attached(), lib, session.uprobe_mechanism());
  tracer.refresh_maps();

  uint64_t start = monotonic_ns();
  uint64_t interval_ns = uint64_t(o.interval_s * 1e9);
  uint64_t end = o.duration_s > 0 ? start + uint64_t(o.duration_s * 1e9) : UINT64_MAX;
  uint64_t next_report = start + interval_ns;
  uint64_t interval_start = start;
  int interval_no = 0;
  std::string why = "duration reached";
  TextOptions topt;
  topt.sort_name = o.sort_name;
  topt.per_thread_hists = o.per_thread;
  topt.stack_depth = o.stack_depth;

  auto print_text = [&](const Snapshot& snap, uint64_t now, bool final_report) {
    double secs = double(now - (o.reset ? interval_start : start)) / 1e9;
    Report r = tracer.report(snap, secs);
    apply_view(r, o.sort, o.top, o.min_wait_ns);
    topt.header = fmt::format("[{}] pid {}, {}, {:.1f} s{}", clock_now(), target.pid(),
                              final_report ? std::string("final report") : fmt::format("interval {}", interval_no),
                              secs, o.reset ? "" : " since start");
    std::ostream& os = text_to_stdout ? std::cout : std::cerr;
    if (text_to_stdout) write_text(os, r, topt);
    os.flush();
  };

  for (;;) {
    uint64_t deadline = std::min<uint64_t>({next_report, end, monotonic_ns() + 200000000ull});
    Wake w = wait_until(deadline, signals, &target);
    tracer.refresh_maps();
    uint64_t now = monotonic_ns();
    if (w == Wake::Signal) { why = "interrupted"; break; }
    if (w == Wake::TargetExit) { why = "target exited"; break; }
    if (now >= end) break;
    if (now >= next_report) {
      interval_no++;
      tracer.check_breakpoints();
      print_text(tracer.read(), now, false);
      interval_start = now;
      next_report += interval_ns;
      if (next_report <= now) next_report = now + interval_ns;
    }
  }
  // Detach first, then read and report: the target gets its full speed back at once, and the maps
  // no longer change while they are read.
  uint64_t now = monotonic_ns();
  tracer.check_breakpoints();
  std::cerr << fmt::format("lockstat: {} after {:.1f} s; detaching probes.\n", why, double(now - start) / 1e9);
  session.detach_all(detach_notice("lockstat", signals));
  Snapshot last = tracer.read();
  interval_no++;
  print_text(last, now, true);
  Report whole = tracer.report(tracer.total(last), double(now - start) / 1e9);
  apply_view(whole, o.sort, o.top, o.min_wait_ns);
  if (json_out) {
    write_json(json_out->stream(), whole, o.stack_depth);
    json_out->commit();
  }
  if (folded_out) {
    write_folded(folded_out->stream(), whole, o.folded_hold);
    folded_out->commit();
  }
  // Like time(1) and strace(1): a traced command's exit status is ours (128+N when signal N
  // killed it). A command still running when tracing ended, and a -p run, end with 0.
  if (target.spawned() && target.exited()) return target.exit_status().value_or(0);
  return 0;
}

}  // namespace
}  // namespace lockkit::lockstat

int main(int argc, char** argv) {
  return lockkit::run_tool("lockstat", [&] { return lockkit::lockstat::run(argc, argv); });
}
