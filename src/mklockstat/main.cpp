// mklockstat: time spent waiting for kernel locks, per thread and lock, in fixed periods.
#include <bcc/BPF.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "core/cli.h"
#include "core/kallsyms.h"
#include "core/output.h"
#include "core/process.h"
#include "core/session.h"
#include "core/tables.h"
#include "core/util.h"
#include "mklockstat/map_sizes.h"
#include "mklockstat/model.h"
#include "mklockstat/options.h"
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

std::set<std::string> kernel_function_names() {
  std::set<std::string> out;
  auto text = read_file("/proc/kallsyms");
  if (!text) return out;
  std::istringstream in(*text);
  std::string addr, type, name, line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (ls >> addr >> type >> name && (type == "T" || type == "t" || type == "W" || type == "w"))
      out.insert(name);
  }
  return out;
}

// Finished periods from the perf buffer, and what it lost.
struct Collector {
  PeriodBuffer buffer;
  uint64_t received = 0;
  uint64_t lost = 0;
  uint64_t malformed = 0;

  static void on_sample(void* cookie, void* data, int size) {
    auto* c = static_cast<Collector*>(cookie);
    if (size < int(sizeof(mk_sample))) {
      c->malformed++;
      return;
    }
    mk_sample s;
    std::memcpy(&s, data, sizeof(s));
    c->buffer.add(sample_from(s.key, s.val));
    c->received++;
  }
  static void on_lost(void* cookie, uint64_t n) { static_cast<Collector*>(cookie)->lost += n; }
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
          fmt::format("STACK_ENTRIES={}", o.stack_storage)};
  append_map_sizes(defines, kMapSizes);
  return defines;
}

// Loads every program of the backend into the kernel (the verifier runs) without attaching.
int dry_run(Session& session, Backend b) {
  std::set<std::string> fns;
  bpf_prog_type type = b == Backend::Tracepoint ? BPF_PROG_TYPE_TRACEPOINT : BPF_PROG_TYPE_KPROBE;
  if (b == Backend::Tracepoint) {
    fns = {kBeginFn, kEndFn};
  } else {
    for (auto& k : kKprobes) {
      fns.insert(k.entry_fn);
      fns.insert(k.return_fn);
    }
  }
  for (auto& fn : fns) {
    int fd = -1;
    StderrFilter quiet;
    ebpf::StatusTuple st = session.bpf().load_func(fn, type, fd);
    if (!st.ok()) {
      std::string diag = quiet.take();
      throw ToolError(fmt::format("BPF program {} was rejected: {}{}", fn, st.msg(), diag.empty() ? "" : "\n" + diag));
    }
  }
  std::cerr << fmt::format("mklockstat: dry run: {} backend: {} BPF programs compiled and loaded; nothing "
                           "attached.\n", backend_name(b), fns.size());
  return 0;
}

void attach(Session& session, Backend b) {
  if (b == Backend::Tracepoint) {
    // The end first: a wait whose begin we saw always has its end seen too.
    session.attach_tracepoint("lock:contention_end", kEndFn);
    session.attach_tracepoint("lock:contention_begin", kBeginFn);
    return;
  }
  std::set<std::string> have = kernel_function_names();
  for (auto& k : kKprobes) {
    if (!have.count(k.function)) {
      if (k.required) throw ToolError(fmt::format("kernel function {} not found in /proc/kallsyms", k.function));
      continue;
    }
    // The return first, for the same reason.
    session.attach_kprobe(k.function, k.return_fn, true);
    session.attach_kprobe(k.function, k.entry_fn, false);
  }
}

int run(int argc, char** argv) {
  StopSignals signals;
  Options o = parse_options(argc, argv);
  if (o.help) {
    std::cout << o.help_text;
    return 0;
  }
  // A bad path fails before anything is attached. The log streams into a temporary beside the
  // file and replaces it only at out.commit(): an interrupted run still commits, a failed one leaves
  // the old file as it was; only SIGKILL leaves a ".<name>.lockkit-XXXXXX" temporary behind.
  OutputFile out(o.output);

  // The backend is chosen before the kernel headers are looked for, so that a backend this kernel
  // cannot run fails with its own reason alone.
  if (geteuid() != 0) prepare_environment("mklockstat");  // fails with the reason
  ensure_tracefs();
  Backend backend = choose_backend(o.backend, o.dry_run);
  prepare_environment("mklockstat");
  std::unique_ptr<Target> target;
  if (o.pid) target = std::make_unique<Target>(Target::attach(o.pid));
  if (o.tid && !path_exists(fmt::format("/proc/{}", o.tid)))
    throw ToolError(fmt::format("no thread with tid {}", o.tid));
  KernelSymbols ksyms = KernelSymbols::load();

  Session session("mklockstat");
  session.compile(probes::kMklockstatBpf, bpf_defines(o, backend));
  if (o.dry_run) return dry_run(session, backend);
  signals.throw_if_stopped("tracing started");

  int skip_fd = session.map_fd("skip_comms");
  for (auto& name : o.skip_comms) {
    mk_comm key = comm_key(name);
    uint8_t one = 1;
    if (bpf_update_elem(skip_fd, &key, &one, 0) != 0)
      throw ToolError(fmt::format("cannot fill the comm filter: {}", errno_text(errno)));
  }
  int periods_fd = session.map_fd("periods");
  int stacks_fd = session.map_fd("stacks");
  int counters_fd = session.map_fd("counters");

  Collector collector;
  {
    StderrFilter quiet;
    ebpf::StatusTuple st = session.bpf().open_perf_buffer("finished", &Collector::on_sample, &Collector::on_lost,
                                                          &collector, o.perf_pages);
    if (!st.ok()) throw ToolError("cannot open the perf buffer: " + st.msg());
  }
  ebpf::BPFPerfBuffer* perf = session.bpf().get_perf_buffer("finished");
  if (!perf) throw ToolError("internal: perf buffer 'finished' not open");

  attach(session, backend);

  LogWriter writer(
      out.stream(),
      [&](int32_t id) {
        auto frames = kernel_frames(read_stack(stacks_fd, id), [&](uint64_t a) { return ksyms.resolve(a); });
        if (frames.empty()) frames.push_back("[stack unavailable]");
        return frames;
      },
      o.names, [&](uint64_t lock) { return lock_name(ksyms.data_symbol(lock)); });

  uint64_t start = monotonic_ns();
  uint64_t end = o.time_s > 0 ? start + uint64_t(o.time_s * 1e9) : UINT64_MAX;
  uint64_t tick = std::max<uint64_t>(10000000ull, std::min<uint64_t>(o.period_ns, 200000000ull));
  std::cerr << (o.time_s > 0 ? fmt::format("Tracing locks for {} seconds", seconds_text(o.time_s))
                             : std::string("Tracing locks until Ctrl-C"))
            << fmt::format(" ({}; period {} ms). Ctrl-C to end early.\n", lockcount_meaning(backend),
                           o.period_ns / 1000000);

  std::string why = "time is up";
  for (;;) {
    uint64_t now = monotonic_ns();
    Wake w = wait_until(std::min(end, now + tick), signals, target.get());
    now = monotonic_ns();
    uint64_t cutoff = complete_before(now, o.period_ns);
    sweep_open_periods(periods_fd, cutoff, collector.buffer);
    perf->consume();
    writer.write(collector.buffer.take_before(cutoff));
    if (w == Wake::Signal) { why = "interrupted"; break; }
    if (w == Wake::TargetExit) { why = fmt::format("pid {} exited", o.pid); break; }
    if (now >= end) break;
  }
  session.detach_all(detach_notice("mklockstat", signals));
  uint64_t stopped = monotonic_ns();
  // Flush: every period still in the perf buffer or open in the map.
  perf->consume();
  for (auto& [k, v] : read_map<mk_key, mk_period>(periods_fd, true)) collector.buffer.add(sample_from(k, v));
  writer.write(collector.buffer.take_all());
  out.commit();

  auto c = read_counters(counters_fd, MK_C_MAX);
  RunSummary sum;
  sum.why = why;
  sum.seconds = double(stopped - start) / 1e9;
  sum.period_ns = o.period_ns;
  sum.samples = writer.samples();
  sum.periods = writer.periods();
  sum.stacks = writer.stacks();
  sum.waits = c[MK_C_WAITS];
  sum.failed_waits = c[MK_C_FAILED];
  sum.lost_stacks = c[MK_C_STACK_LOST];
  // A full perf buffer both fails the output (counted by BPF) and reports the loss (counted here).
  sum.lost_samples = std::max(c[MK_C_OUTPUT_FAILED], collector.lost) + collector.malformed;
  sum.not_recorded = c[MK_C_PENDING_FULL] + c[MK_C_PERIODS_FULL];
  sum.late = collector.buffer.late();
  std::cerr << summary_text(sum) << '\n';
  return 0;
}

}  // namespace
}  // namespace lockkit::mklockstat

int main(int argc, char** argv) {
  return lockkit::run_tool("mklockstat", [&] { return lockkit::mklockstat::run(argc, argv); });
}
