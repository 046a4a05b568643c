#include "mklockstat/tool.h"

#include <fmt/format.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "core/kallsyms.h"
#include "core/output.h"
#include "core/pprof.h"
#include "core/process.h"
#include "core/session.h"
#include "core/tables.h"
#include "core/util.h"
#include "mklockstat/map_sizes.h"
#include "mklockstat/model.h"
#include "mklockstat/report.h"

namespace lockkit::probes {
extern const std::string kMklockstatBpf;
}

namespace lockkit::mklockstat {
namespace {

const char* const kBeginFn = "tracepoint__lock__contention_begin";
const char* const kEndFn = "tracepoint__lock__contention_end";

struct KprobeSpec {
  const char* function;
  const char* entry_fn;
  const char* return_fn;
  bool required;
};

// Acquisition functions of sleeping locks and rwlock_t. Spinlocks are not probed: a kretprobe on
// their acquisition can deadlock.
const KprobeSpec kKprobes[] = {
    {"mutex_lock", "mutex_enter", "sleeping_return_void", true},
    {"mutex_lock_interruptible", "mutex_enter", "sleeping_return_int", false},
    {"mutex_lock_killable", "mutex_enter", "sleeping_return_int", false},
    {"mutex_lock_io", "mutex_enter", "sleeping_return_void", false},
    {"down", "sem_enter", "sleeping_return_void", false},
    {"down_interruptible", "sem_enter", "sleeping_return_int", false},
    {"down_killable", "sem_enter", "sleeping_return_int", false},
    {"down_timeout", "sem_enter", "sleeping_return_int", false},
    {"down_read", "rwsem_read_enter", "sleeping_return_void", true},
    {"down_read_interruptible", "rwsem_read_enter", "sleeping_return_int", false},
    {"down_read_killable", "rwsem_read_enter", "sleeping_return_int", false},
    {"down_write", "rwsem_write_enter", "sleeping_return_void", true},
    {"down_write_killable", "rwsem_write_enter", "sleeping_return_int", false},
    {"_raw_read_lock", "rwlock_read_enter", "rwlock_return", false},
    {"_raw_write_lock", "rwlock_write_enter", "rwlock_return", false},
};

bool have_lock_tracepoints() {
  return tracefs_has("events/lock/contention_begin") && tracefs_has("events/lock/contention_end");
}

bool have_kprobes() {
  return tracefs_has("kprobe_events") || path_exists("/sys/bus/event_source/devices/kprobe");
}

Backend choose_backend(Backend wanted, bool dry_run) {
  if (wanted == Backend::Auto) {
    if (have_lock_tracepoints()) return Backend::Tracepoint;
    if (have_kprobes()) return Backend::Kprobe;
    throw ToolError("this kernel has neither the lock:contention_begin/end tracepoints (Linux >= 5.19) "
                    "nor kprobes: nothing to trace kernel locks with");
  }
  if (dry_run) return wanted;
  if (wanted == Backend::Kprobe && !have_kprobes())
    throw ToolError("the kprobe backend cannot run on this kernel: it has no kprobes (no kprobe_events in "
                    "tracefs, no kprobe PMU: CONFIG_KPROBES is off); use --backend tracepoint");
  if (wanted == Backend::Tracepoint && !have_lock_tracepoints())
    throw ToolError("this kernel has no lock:contention_begin/end tracepoints (Linux >= 5.19 with "
                    "CONFIG_TRACEPOINTS); use --backend kprobe");
  return wanted;
}

std::string lockcount_meaning(Backend b) {
  if (b == Backend::Tracepoint)
    return "backend tracepoint (lock:contention_begin/end): lockcount = contended acquisitions, "
           "diffsum = time waited for them";
  return "backend kprobe (mutex, rw_semaphore, semaphore, rwlock_t acquisition functions): lockcount = "
         "all acquisitions, diffsum = time inside the acquisition calls";
}

// Finished periods from the perf buffer, and what it lost.
struct Collector {
  PeriodBuffer buffer;
  uint64_t received = 0;
  uint64_t lost = 0;
  uint64_t malformed = 0;

  void on_sample(const void* data, int size) {
    if (size < int(sizeof(mk_sample))) {
      malformed++;
      return;
    }
    mk_sample s;
    std::memcpy(&s, data, sizeof(s));
    buffer.add(sample_from(s.key, s.val));
    received++;
  }
  void on_lost(uint64_t n) { lost += n; }
};

// Takes periods left open before `cutoff` out of the map. A period BPF pushes out at the same
// moment is deleted by only one side: lookup-and-delete fails here when BPF got it first.
void sweep_open_periods(int fd, uint64_t cutoff, PeriodBuffer& buffer) {
  for (auto& [k, v] : read_map<mk_key, mk_period>(fd, false)) {
    if (v.start >= cutoff) continue;
    mk_period got;
    if (bpf_lookup_and_delete(fd, &k, &got) == 0) buffer.add(sample_from(k, got));
  }
}

std::string seconds_text(double s) {
  return s == double(int64_t(s)) ? fmt::format("{}", int64_t(s)) : fmt::format("{:g}", s);
}

std::vector<std::string> bpf_defines(const Options& o, Backend b) {
  std::vector<std::string> defines = {b == Backend::Tracepoint ? "MK_BACKEND_TRACEPOINT=1" : "MK_BACKEND_KPROBE=1",
                                      fmt::format("PERIOD_NS={}ULL", o.period_ns),
                                      fmt::format("SELF_PID={}", getpid()),
                                      fmt::format("TARGET_PID={}", o.pid),
                                      fmt::format("TARGET_TID={}", o.tid),
                                      fmt::format("FILTER_COMMS={}", o.skip_comms.empty() ? 0 : 1),
                                      };
  for (auto& d : stack_map_defines(o.stack_storage)) defines.push_back(d);
  append_map_sizes(defines, kMapSizes);
  return defines;
}

// Loads every program of the backend into the kernel (the verifier runs) without attaching.
void dry_run(Session& session, Backend b) {
  std::set<std::string> fns;
  int type = b == Backend::Tracepoint ? BPF_PROG_TYPE_TRACEPOINT : BPF_PROG_TYPE_KPROBE;
  if (b == Backend::Tracepoint) {
    fns = {kBeginFn, kEndFn};
  } else {
    for (auto& k : kKprobes) {
      fns.insert(k.entry_fn);
      fns.insert(k.return_fn);
    }
  }
  for (auto& fn : fns) session.load_function(fn, type);
  std::cerr << fmt::format("mklockstat: dry run: {} backend: {} BPF programs compiled and loaded; nothing "
                           "attached.\n", backend_name(b), fns.size());
}

void attach_backend(Session& session, Backend b, const KernelSymbols& ksyms) {
  if (b == Backend::Tracepoint) {
    // The end first: a wait whose begin we saw always has its end seen too.
    session.attach_tracepoint("lock:contention_end", kEndFn);
    session.attach_tracepoint("lock:contention_begin", kBeginFn);
    return;
  }
  for (auto& k : kKprobes) {
    if (!ksyms.has_function(k.function)) {
      if (k.required) throw ToolError(fmt::format("kernel function {} not found in /proc/kallsyms", k.function));
      continue;
    }
    // The return first, for the same reason.
    session.attach_kprobe(k.function, k.return_fn, true);
    session.attach_kprobe(k.function, k.entry_fn, false);
  }
}

class MklockstatTool : public Tool {
 public:
  // A bad path fails before anything is attached. The log streams into a temporary beside the
  // file and replaces it only at out_.commit(): an interrupted run still commits, a failed one leaves
  // the old file as it was; only SIGKILL leaves a ".<name>.lockkit-XXXXXX" temporary behind.
  explicit MklockstatTool(Options o) : o_(std::move(o)), out_(o_.output) {
    if (!o_.pprof.empty()) pprof_out_ = std::make_unique<OutputFile>(o_.pprof);
    o_.pid = resolve_target_ids(o_.pid, o_.tid).pid;  // with -t: the thread's process, followed as with -p
  }

  const char* name() const override { return "mklockstat"; }
  TargetRequest target_request() const override {
    TargetRequest r;
    r.pid = o_.pid;
    r.allow_kernel_thread = true;  // kernel threads take kernel locks too
    return r;
  }

  // The backend is chosen before the kernel headers are looked for, so that a backend this kernel
  // cannot run fails with its own reason alone.
  void check_environment() override {
    backend_ = choose_backend(o_.backend, o_.dry_run);
  }

  std::string bpf_text() const override { return probes::kMklockstatBpf; }
  std::vector<std::string> bpf_defines(const Target*) const override { return mklockstat::bpf_defines(o_, backend_); }

  bool stop_after_compile(Session& session) override {
    if (!o_.dry_run) return false;
    dry_run(session, backend_);
    return true;
  }

  void attach(Session& session, Target*) override {
    ksyms_ = KernelSymbols::load();
    ksyms_loaded_ns_ = monotonic_ns();
    if (pprof_out_) kernel_image_ = kernel_image_module(ksyms_);
    for (auto& name : o_.skip_comms) {
      mk_comm key = comm_key(name);
      uint8_t one = 1;
      session.update("skip_comms", key, one);
    }
    periods_fd_ = session.map_fd("periods");
    stacks_ = session.stack_map();
    counters_fd_ = session.map_fd("counters");
    session.open_perf_buffer(
        "finished", [this](const void* d, int n) { collector_.on_sample(d, n); },
        [this](uint64_t n) { collector_.on_lost(n); }, o_.perf_pages);
    session_ = &session;
    attach_backend(session, backend_, ksyms_);
  }

  void arm(Session&, Target*) override {
    start_wall_ns_ = wall_clock_ns();
    start_mono_ns_ = monotonic_ns();
    writer_ = std::make_unique<LogWriter>(
        out_.stream(),
        [this](int32_t id) {
          auto resolved =
              resolve_return_addresses(read_stack(stacks_, id).ips, [&](uint64_t a) { return kernel_frame(a); });
          auto frames = kernel_frames(resolved);
          if (frames.empty()) frames.push_back("[stack unavailable]");
          if (pprof_out_) {
            // The profile's frames are the log's: named here, once per stack id.
            std::vector<Frame>& pf = profile_stacks_[id];
            for (auto& f : resolved) pf.push_back(kernel_profile_frame(f, kernel_image_));
            if (pf.empty()) pf.push_back(named_frame("[stack unavailable]"));
          }
          return frames;
        },
        o_.names, [this](uint64_t lock) { return lock_name(ksyms_.data_symbol(lock)); });
    std::cerr << (o_.time_s > 0 ? fmt::format("Tracing locks for {} seconds", seconds_text(o_.time_s))
                                : std::string("Tracing locks until Ctrl-C"))
              << fmt::format(" ({}; period {} ms). Ctrl-C to end early.\n", lockcount_meaning(backend_),
                             o_.period_ns / 1000000);
  }

  double duration_s() const override { return o_.time_s; }
  uint64_t tick_ns() const override { return std::max<uint64_t>(10000000ull, std::min<uint64_t>(o_.period_ns, 200000000ull)); }

  // Writes every period that is complete: closed by BPF into the perf buffer, or left open in the
  // map by threads that stopped waiting.
  void tick(uint64_t now) override {
    uint64_t cutoff = complete_before(now, o_.period_ns);
    sweep_open_periods(periods_fd_, cutoff, collector_.buffer);
    session_->consume_perf_buffer("finished");
    write(collector_.buffer.take_before(cutoff));
  }

  void finish(Session& session, const RunEnd& e) override {
    uint64_t stopped = monotonic_ns();
    // Flush: every period still in the perf buffer or open in the map.
    session.consume_perf_buffer("finished");
    for (auto& [k, v] : read_map<mk_key, mk_period>(periods_fd_, true)) collector_.buffer.add(sample_from(k, v));
    write(collector_.buffer.take_all());
    out_.commit();
    if (pprof_out_) write_pprof(e, stopped);

    auto c = read_counters(counters_fd_, MK_C_MAX);
    RunSummary sum;
    sum.why = e.reason == RunEnd::Signal       ? std::string("interrupted")
              : e.reason == RunEnd::TargetExit ? fmt::format("pid {} exited", o_.pid)
                                               : std::string("time is up");
    sum.seconds = double(stopped - e.start_ns) / 1e9;
    sum.period_ns = o_.period_ns;
    sum.samples = writer_->samples();
    sum.periods = writer_->periods();
    sum.stacks = writer_->stacks();
    sum.waits = c[MK_C_WAITS];
    sum.failed_waits = c[MK_C_FAILED];
    sum.lost_stacks = c[MK_C_STACK_LOST];
    // A full perf buffer both fails the output (counted by BPF) and reports the loss (counted here).
    sum.lost_samples = std::max(c[MK_C_OUTPUT_FAILED], collector_.lost) + collector_.malformed;
    sum.not_recorded = c[MK_C_PENDING_FULL] + c[MK_C_PERIODS_FULL];
    sum.late = collector_.buffer.late();
    std::cerr << summary_text(sum) << '\n';
    write_diagnostics(std::cerr, diagnostics(sum));
  }

 private:
  Options o_;
  OutputFile out_;
  Backend backend_ = Backend::Tracepoint;
  // Code loaded at run time (BPF programs of any tracer, modules) enters kallsyms after we read
  // it: an address there that does not resolve re-reads kallsyms, at most once a second.
  Frame kernel_frame(uint64_t addr) {
    Frame f = ksyms_.resolve(addr);
    constexpr uint64_t kRuntimeCode = 0xffffffffc0000000ull;
    uint64_t now = monotonic_ns();
    if (!f.resolved() && addr >= kRuntimeCode && now - ksyms_loaded_ns_ > 1000000000ull) {
      try {
        ksyms_ = KernelSymbols::load();
      } catch (const ToolError&) {
      }
      ksyms_loaded_ns_ = now;
      f = ksyms_.resolve(addr);
    }
    return f;
  }

  // Samples go to the log as their periods complete; with --pprof they are kept for the profile.
  void write(std::vector<Sample> samples) {
    writer_->write(samples);
    if (pprof_out_) profile_samples_.insert(profile_samples_.end(), samples.begin(), samples.end());
  }

  void write_pprof(const RunEnd& e, uint64_t stopped) {
    ProfileSource src;
    src.frames = [this](int32_t id) {
      auto it = profile_stacks_.find(id);
      return it != profile_stacks_.end() ? it->second : std::vector<Frame>{named_frame("[stack unavailable]")};
    };
    src.name = [this](uint64_t lock) { return lock_name(ksyms_.data_symbol(lock)); };
    ProfileData p = samples_profile(profile_samples_, src);
    p.time_nanos = start_wall_ns_;
    p.duration_nanos = int64_t(stopped - e.start_ns);
    p.comments.push_back("mklockstat: kernel lock waits per period, thread, lock and type; " +
                         lockcount_meaning(backend_) + "; contentions = lockcount, delay = diffsum; each "
                         "sample's stack is the thread's first stack on that lock");
    p.comments.push_back(fmt::format("period_start is ns on the monotonic clock, periods of {} ms; monotonic {} "
                                     "was {} ns since the epoch", o_.period_ns / 1000000, start_mono_ns_,
                                     start_wall_ns_));
    write_profile(*pprof_out_, p);
  }

  std::unique_ptr<OutputFile> pprof_out_;
  std::shared_ptr<const MappedModule> kernel_image_;
  std::map<int32_t, std::vector<Frame>> profile_stacks_;
  std::vector<Sample> profile_samples_;
  int64_t start_wall_ns_ = 0;
  uint64_t start_mono_ns_ = 0;

  KernelSymbols ksyms_;
  uint64_t ksyms_loaded_ns_ = 0;
  Session* session_ = nullptr;
  int periods_fd_ = -1, counters_fd_ = -1;
  int stacks_ = -1;
  Collector collector_;
  std::unique_ptr<LogWriter> writer_;
};

}  // namespace

std::unique_ptr<Tool> make_tool(int argc, char** argv) {
  return tool_or_help<MklockstatTool>(parse_options(argc, argv));
}

}  // namespace lockkit::mklockstat
