// locktrace: per-lock futex statistics from the futex system calls and scheduler switches.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "core/cli.h"
#include "core/output.h"
#include "core/process.h"
#include "core/session.h"
#include "core/symbolizer.h"
#include "core/tables.h"
#include "core/util.h"
#include "locktrace/map_sizes.h"
#include "locktrace/model.h"
#include "locktrace/options.h"
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
    stacks_fd_ = s.map_fd("stacks");
    drops_fd_ = s.map_fd("drops");
    dbg_fd_ = s.map_fd("dbg");
  }

  void follow(uint32_t pid) { symbols_.get(pid); }

  // Snapshots the address spaces of the processes seen so far.
  void refresh() {
    std::vector<uint32_t> seen;
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
  void name_locks(std::vector<Row>& rows) {
    for (auto& r : rows) r.symbol = symbols_.get(r.pid).data_symbol(r.addr);
  }

  StackResolver resolver() {
    return [this](const lt_stat_key& k) { return frames(k); };
  }

 private:
  std::optional<std::vector<std::string>> frames(const lt_stat_key& k) {
    auto key = std::make_tuple(k.pid, k.stackid, k.caller);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    std::optional<std::vector<std::string>> out;
    std::vector<uint64_t> ips = read_stack(stacks_fd_, k.stackid);
    if (!ips.empty()) {
      ProcessSymbolizer& sym = symbols_.get(k.pid);
      // The word at the stack pointer in a syscall need not be a return address: keep it only when
      // it lands in a known function.
      ips = restore_caller(ips, k.caller, [&](uint64_t a) { return sym.resolve(a - 1).resolved(); });
      std::vector<std::string> names;
      auto frames = sym.resolve_stack(ips);
      for (auto it = frames.rbegin(); it != frames.rend(); ++it) names.push_back(frame_name(*it));  // root first
      out = std::move(names);
    }
    cache_[key] = out;
    return out;
  }

  int stats_fd_, errs_fd_, hists_fd_, pids_fd_, calls_fd_, stacks_fd_, drops_fd_, dbg_fd_;
  Symbols symbols_;
  std::map<std::tuple<uint32_t, int32_t, uint64_t>, std::optional<std::vector<std::string>>> cache_;
};

int run(int argc, char** argv) {
  StopSignals signals;
  Options o = parse_options(argc, argv);
  if (o.help) {
    std::cout << o.help_text;
    return 0;
  }
  // Open outputs first: a bad path fails before anything is attached.
  OutputFile out(o.output);
  std::unique_ptr<OutputFile> hist_out;
  if (!o.hist.empty()) hist_out = std::make_unique<OutputFile>(o.hist);

  pid_t pid = o.pid;
  if (o.tid) {
    auto tgid = tgid_of(o.tid);
    if (!tgid) throw ToolError(fmt::format("no thread with tid {}", o.tid));
    pid_t owner = *tgid;
    if (pid && pid != owner) throw UsageError(fmt::format("tid {} belongs to pid {}, not {}", o.tid, owner, pid));
    pid = owner;
  }
  std::optional<Target> target;
  if (pid) target.emplace(Target::attach(pid));
  prepare_environment("locktrace");

  bool futex2 = has_event("syscalls/sys_enter_futex_wait") &&
                has_event("syscalls/sys_enter_futex_wake") &&
                has_event("syscalls/sys_enter_futex_requeue");
  bool waitv = has_event("syscalls/sys_enter_futex_waitv");
  int64_t state_mask = state_mask_from_format(read_file(tracefs_root() + "/events/sched/sched_switch/format").value_or(""));

  Session session("locktrace");
  std::vector<std::string> defines = {
      fmt::format("TARGET_PID={}", pid),
      fmt::format("TARGET_TID={}", o.tid),
      fmt::format("SELF_PID={}", getpid()),
      fmt::format("STATE_MASK={:#x}", state_mask),
      fmt::format("HAVE_FUTEX2={}", futex2 ? 1 : 0),
      fmt::format("HAVE_FUTEX_WAITV={}", waitv ? 1 : 0),
      fmt::format("STACK_ENTRIES={}", o.stack_storage)};
  append_map_sizes(defines, kMapSizes);
  session.compile(probes::kLocktraceBpf, defines);
  signals.throw_if_stopped("tracing started");
  // Switches and exits first: every call whose enter is recorded then has its exit and switches seen.
  session.attach_tracepoint("sched:sched_switch", "on_switch");
  session.attach_tracepoint("syscalls:sys_exit_futex", "futex_exit");
  if (futex2)
    for (const char* e : {"futex_wait", "futex_wake", "futex_requeue"})
      session.attach_tracepoint(fmt::format("syscalls:sys_exit_{}", e), "futex_exit");
  if (waitv) session.attach_tracepoint("syscalls:sys_exit_futex_waitv", "futex_exit");
  session.attach_tracepoint("syscalls:sys_enter_futex", "futex_enter");
  if (futex2) {
    session.attach_tracepoint("syscalls:sys_enter_futex_wait", "futex_wait_enter");
    session.attach_tracepoint("syscalls:sys_enter_futex_wake", "futex_wake_enter");
    session.attach_tracepoint("syscalls:sys_enter_futex_requeue", "futex_requeue_enter");
  }
  if (waitv) session.attach_tracepoint("syscalls:sys_enter_futex_waitv", "futex_waitv_enter");

  Tracer tracer(session);
  if (pid) tracer.follow(uint32_t(pid));
  if (o.tid)
    std::cerr << fmt::format("Tracing tid {} of pid {}, Ctrl+C to quit.\n", o.tid, pid);
  else if (pid)
    std::cerr << fmt::format("Tracing pid {}, Ctrl+C to quit.\n", pid);
  else
    std::cerr << "Tracing all processes, Ctrl+C to quit.\n";

  uint64_t start = monotonic_ns();
  uint64_t end = o.duration_s > 0 ? start + uint64_t(o.duration_s * 1e9) : UINT64_MAX;
  for (;;) {
    uint64_t deadline = std::min<uint64_t>(end, monotonic_ns() + 200000000ull);
    Wake w = wait_until(deadline, signals, target ? &*target : nullptr);
    tracer.refresh();
    if (w != Wake::Timeout || monotonic_ns() >= end) break;
  }
  session.detach_all(detach_notice("locktrace", signals));
  double duration_s = double(monotonic_ns() - start) / 1e9;

  Snapshot snap = tracer.read();
  std::vector<Row> rows = build_rows(snap, tracer.resolver());
  sort_rows(rows);
  tracer.name_locks(rows);
  std::vector<uint64_t> drops = tracer.drops();
  Counters counters = debug_counters(tracer.debug(), drops, tracer.unfinished());
  size_t lost = lost_stack_rows(rows);

  if (o.format == Format::Csv) {
    write_csv(out.stream(), rows);
  } else {
    JsonExtras x;
    x.pid = uint32_t(pid);
    x.tid = uint32_t(o.tid);
    x.duration_s = duration_s;
    x.lost_stacks = lost;
    x.counters = counters;
    write_json(out.stream(), rows, x);
  }
  out.commit();
  if (hist_out) {
    write_hists(hist_out->stream(), build_hists(snap));
    hist_out->commit();
  }
  for (auto& w : warnings(drops, lost)) std::cerr << w << '\n';
  if (o.debug) write_debug(std::cerr, counters);
  return 0;
}

}  // namespace
}  // namespace lockkit::locktrace

int main(int argc, char** argv) {
  return lockkit::run_tool("locktrace", [&] { return lockkit::locktrace::run(argc, argv); });
}
