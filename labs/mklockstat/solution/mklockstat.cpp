// The lab mklockstat: how long one process's threads waited for kernel locks, per thread, lock and
// lock type, in fixed periods (50 ms by default), as the log mklockstat writes:
//
//   s,command,P<pid>_T<tid>,type,lockaddr,period_start_ns,wait_ns,count,stackid
//   t,stackid,frame1,frame2,...       (a kernel stack, leaf first, before the first line using it)
//
// A small tool on lockkit's core library (src/core); the production tool is src/mklockstat.
//
//   lab-mklockstat [options] -p PID [SECONDS]
//   lab-mklockstat [options] -- COMMAND [ARGS...]
//   lab-mklockstat --types
#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <cxxopts.hpp>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/cli.h"
#include "core/kallsyms.h"
#include "core/output.h"
#include "core/process.h"
#include "core/run.h"
#include "core/session.h"
#include "core/symbolizer.h"
#include "core/tables.h"
#include "core/util.h"
#include "mklockstat.h"

namespace lockkit::probes {
extern const std::string kLabMklockstatHeaders;  // probes/common.h and mklockstat.h
extern const std::string kLabMklockstatProgram;  // mklockstat.bpf.c
}  // namespace lockkit::probes

namespace {

using namespace lockkit;

const char* const kTool = "lab-mklockstat";

const std::map<int, std::string> kTodos = {
    {1, "add the wait to its period, or push the finished period out, in mklockstat.bpf.c"},
    {2, "the lock type of a contention_begin flags word, in mklockstat.cpp"},
    {3, "flush the periods that are over, in order, in mklockstat.cpp"},
};
std::set<int> g_open_todos;

void lab_todo(int n) { g_open_todos.insert(n); }

void find_bpf_todos(const std::string& program) {
  static const std::regex placeholder(R"(^\s*LAB_TODO\((\d+)\))", std::regex::multiline);
  for (std::sregex_iterator it(program.begin(), program.end(), placeholder), end; it != end; ++it)
    lab_todo(std::stoi((*it)[1]));
}

// One open TODO or more: name each, and fail.
void report_open_todos() {
  if (g_open_todos.empty()) return;
  for (int n : g_open_todos) std::cerr << fmt::format("{}: TODO {} ({}) not done\n", kTool, n, kTodos.at(n));
  throw ToolError(fmt::format("{} of {} TODOs not done", g_open_todos.size(), kTodos.size()));
}

// The name of the lock type a contention_begin flags word stands for. The kernel's locking code
// passes these combinations (kernel/locking/*.c):
//   0              down() and friends on a struct semaphore
//   READ, WRITE    down_read() / down_write() on a struct rw_semaphore
//   SPIN           spinlock_t and raw_spinlock_t (the queued spinlock's slow path)
//   SPIN|READ, SPIN|WRITE      read_lock() / write_lock() on an rwlock_t
//   MUTEX|SPIN, MUTEX          a struct mutex: spinning on its owner, then sleeping
//   RT             an rt_mutex (on PREEMPT_RT also every mutex and spinlock_t)
//   RT|READ, RT|WRITE          PREEMPT_RT's rw_semaphore and rwlock_t (rwbase_rt)
//   PERCPU|READ, PERCPU|WRITE  a percpu_rw_semaphore
// Names as mklockstat prints them, so that its analysis module reads the lab's log too.
std::string type_name(uint32_t flags) {
  // BEGIN TODO 2: the lock type of a contention_begin flags word
  // HINT: Map each combination above to its name: "Semaphore", "Semaphore:R", "Semaphore:W",
  // HINT: "Spinlock", "RWLock:R", "RWLock:W", "Mutex" (both of a mutex's flags words),
  // HINT: "RTMutex", "RTMutex:R", "RTMutex:W", "PercpuRWSem:R", "PercpuRWSem:W". Use the LAB_F_*
  // HINT: bits of mklockstat.h. Any other word is "Unknown_0x<flags in hex>" (fmt's {:#x}): never
  // HINT: guess, a new kernel may pass a combination this table does not know.
  // STUB: lab_todo(2);
  // STUB: return "?";
  switch (flags) {
    case 0: return "Semaphore";
    case LAB_F_READ: return "Semaphore:R";
    case LAB_F_WRITE: return "Semaphore:W";
    case LAB_F_SPIN: return "Spinlock";
    case LAB_F_SPIN | LAB_F_READ: return "RWLock:R";
    case LAB_F_SPIN | LAB_F_WRITE: return "RWLock:W";
    case LAB_F_MUTEX:
    case LAB_F_MUTEX | LAB_F_SPIN: return "Mutex";
    case LAB_F_RT: return "RTMutex";
    case LAB_F_RT | LAB_F_READ: return "RTMutex:R";
    case LAB_F_RT | LAB_F_WRITE: return "RTMutex:W";
    case LAB_F_PERCPU | LAB_F_READ: return "PercpuRWSem:R";
    case LAB_F_PERCPU | LAB_F_WRITE: return "PercpuRWSem:W";
  }
  return fmt::format("Unknown_{:#x}", flags);
  // END TODO 2
}

struct Options {
  pid_t pid = 0;
  std::vector<std::string> command;
  double duration_s = 0;
  uint64_t period_ns = 50000000ull;
  std::string bpf_file;
  std::string output = "-";
  std::string totals_file;
  bool types = false;
  bool help = false;
  std::string help_text;
};

Options parse_options(int argc, char** argv) {
  Options o;
  std::vector<std::string> own;
  split_command(argc, argv, &own, &o.command);
  cxxopts::Options spec(kTool, "Kernel lock waits of one process in fixed periods, as mklockstat logs them (the mklockstat lab).");
  spec.custom_help("[options] -p PID [SECONDS] | [options] -- COMMAND [ARGS...] | --types");
  spec.positional_help("");
  add_target_options(spec, "trace the running process PID");
  spec.add_options()("o,output", "write the log to FILE instead of stdout", cxxopts::value<std::string>(), "FILE")(
      "period", "period length in ms (default: 50)", cxxopts::value<long>(), "MS")(
      "totals", "write every (thread, lock, flags)'s wait count and time over the whole run to FILE as JSON",
      cxxopts::value<std::string>(), "FILE")("types", "print the type name of every flags word and exit")(
      "bpf-text", "load the BPF program from FILE instead of the one built in", cxxopts::value<std::string>(),
      "FILE")("h,help", "show this help");
  add_duration_positional(spec, "seconds to trace (default: until Ctrl+C or the target's exit)");
  auto res = parse_arguments(spec, own);
  o.help = res.count("help") > 0;
  o.help_text = spec.help();
  if (o.help) return o;
  o.types = res.count("types") > 0;
  if (o.types) {
    if (res.count("pid") || !o.command.empty()) throw UsageError("--types traces nothing: give it alone");
    return o;
  }
  o.pid = pid_option(res);
  o.duration_s = duration_positional(res);
  if (res.count("period")) {
    long ms = res["period"].as<long>();
    if (ms <= 0 || ms > 3600000) throw UsageError(fmt::format("--period {}: give 1 to 3600000 ms", ms));
    o.period_ns = uint64_t(ms) * 1000000ull;
  }
  if (res.count("bpf-text")) o.bpf_file = res["bpf-text"].as<std::string>();
  if (res.count("output")) o.output = res["output"].as<std::string>();
  if (res.count("totals")) o.totals_file = res["totals"].as<std::string>();
  if (o.pid && !o.command.empty()) throw UsageError("give -p PID or -- COMMAND, not both");
  if (!o.pid && o.command.empty()) throw UsageError("nothing to trace: give -p PID or -- COMMAND");
  return o;
}

// Commas and control characters would break the comma-separated lines.
std::string field(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (c == ',' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
  return out;
}

// One finished period of one (thread, lock, type): one "s," line.
struct Sample {
  uint64_t start = 0;
  uint32_t pid = 0, tid = 0;
  uint64_t lock = 0;
  std::string type;
  uint64_t wait_ns = 0, count = 0;
  int32_t stackid = -1;
  std::string comm;
};

// Finished periods from wherever they come (the perf buffer, the map), until they are printed.
// Pieces of one (period, thread, lock, type) are merged: a mutex's two flags words are one type.
class Periods {
 public:
  using Key = std::tuple<uint64_t, uint32_t, uint32_t, uint64_t, std::string>;

  void add(const lab_key& k, const lab_period& v) {
    Sample s;
    s.start = v.start;
    s.pid = k.pid;
    s.tid = k.tid;
    s.lock = k.lock;
    s.type = type_name(k.flags);
    s.wait_ns = v.wait_ns;
    s.count = v.count;
    s.stackid = v.stackid;
    s.comm.assign(v.comm, strnlen(v.comm, sizeof(v.comm)));
    if (s.start < released_before_) late_++;
    auto [it, fresh] = pending_.try_emplace(Key{s.start, s.pid, s.tid, s.lock, s.type}, s);
    if (fresh) return;
    it->second.wait_ns += s.wait_ns;
    it->second.count += s.count;
    if (it->second.stackid < 0) it->second.stackid = s.stackid;
  }

  // Removes and returns, in order, the periods that start before `cutoff`.
  std::vector<Sample> take_before(uint64_t cutoff) {
    std::vector<Sample> out;
    auto end = pending_.lower_bound(Key{cutoff, 0, 0, 0, ""});
    for (auto it = pending_.begin(); it != end; ++it) out.push_back(it->second);
    pending_.erase(pending_.begin(), end);
    if (cutoff > released_before_) released_before_ = cutoff;
    return out;
  }

  // Samples that came for a period already printed (printed late, out of order).
  uint64_t late() const { return late_; }

 private:
  std::map<Key, Sample> pending_;
  uint64_t released_before_ = 0;
  uint64_t late_ = 0;
};

// Prints the types of every flags word with a known bit (what --types shows).
void print_types() {
  for (uint32_t flags = 0; flags < 0x40; flags++) std::cout << fmt::format("{:#04x} {}\n", flags, type_name(flags));
}

class LabMklockstat : public Tool {
 public:
  // A bad output path fails before anything is attached; a failed run leaves an existing file as
  // it was (the log goes into a temporary that replaces the file at the end).
  explicit LabMklockstat(Options o) : o_(std::move(o)), out_(o_.output) {
    if (o_.bpf_file.empty()) {
      program_ = probes::kLabMklockstatProgram;
    } else {
      auto text = read_file(o_.bpf_file);
      if (!text) throw UsageError(fmt::format("cannot read --bpf-text {}: {}", o_.bpf_file, errno_text(errno)));
      program_ = *text;
    }
    find_bpf_todos(program_);
    // Every word's name once, now: an open TODO 2 is reported even by a run that sees no wait.
    for (uint32_t flags = 0; flags < 0x40; flags++) type_name(flags);
    if (!o_.totals_file.empty()) totals_ = std::make_unique<OutputFile>(o_.totals_file);
  }

  const char* name() const override { return kTool; }
  TargetRequest target_request() const override {
    TargetRequest r;
    r.pid = o_.pid;
    r.command = o_.command;
    return r;
  }
  std::string bpf_text() const override { return probes::kLabMklockstatHeaders + program_; }
  std::vector<std::string> bpf_defines(const Target* t) const override {
    std::vector<std::string> d = {fmt::format("TARGET_PID={}", t->pid()), fmt::format("PERIOD_NS={}ULL", o_.period_ns),
                                  "MAX_WAITS=4096", "MAX_PERIODS=16384"};
    for (auto& s : stack_map_defines(4096)) d.push_back(s);
    return d;
  }

  void attach(Session& s, Target*) override {
    ksyms_ = KernelSymbols::load();
    session_ = &s;
    periods_fd_ = s.map_fd("periods");
    s.open_perf_buffer(
        "finished",
        [this](const void* data, int size) {
          if (size < int(sizeof(lab_sample))) return;
          lab_sample smp;
          std::memcpy(&smp, data, sizeof(smp));
          periods_.add(smp.key, smp.val);
        },
        [this](uint64_t n) { perf_lost_ += n; }, 64);
    // The end first: every wait whose begin is seen has its end seen too.
    s.attach_tracepoint("lock:contention_end", "tracepoint__lock__contention_end");
    s.attach_tracepoint("lock:contention_begin", "tracepoint__lock__contention_begin");
  }

  void arm(Session&, Target* t) override {
    std::cerr << fmt::format("Tracing kernel lock waits of pid {} in periods of {} ms... Ctrl+C to quit.\n", t->pid(),
                             o_.period_ns / 1000000);
  }

  double duration_s() const override { return o_.duration_s; }
  uint64_t tick_ns() const override { return std::max<uint64_t>(10000000ull, std::min<uint64_t>(o_.period_ns, 200000000ull)); }
  void tick(uint64_t now) override {
    last_tick_ns_ = now;
    flush(now, false);
  }

  void finish(Session& s, const RunEnd&) override {
    finishing_ = true;
    flush(monotonic_ns(), true);
    auto c = read_counters(s.map_fd("counters"), LAB_C_MAX);
    auto in_flight = read_map<lab_wait_key, lab_wait>(s.map_fd("waits"), false);
    std::cerr << fmt::format(
        "{}: {} samples, {} stacks; {} waits timed ({} contention_begin, {} of them again for a wait in flight; "
        "{} contention_end, {} without a begin); {} waits still in flight; lost: {} samples, {} stacks, {} waits; "
        "{} samples late\n",
        kTool, samples_, stacks_printed_.size(), c[LAB_C_WAITS], c[LAB_C_BEGINS], c[LAB_C_REPEATS], c[LAB_C_ENDS],
        c[LAB_C_UNMATCHED], in_flight.size(), perf_lost_ + c[LAB_C_OUTPUT_FAILED], c[LAB_C_STACK_LOST],
        c[LAB_C_PENDING_FULL] + c[LAB_C_PERIODS_FULL], periods_.late());
    // With a TODO open the run has failed: an existing log or totals file stays as it was.
    report_open_todos();
    out_.commit();
    if (totals_) write_totals(s, c, in_flight.size());
  }

 private:
  // Writes the periods that are over to the log: at exit, all of them.
  void flush(uint64_t now, bool final) {
    // BEGIN TODO 3: flush the periods that are over, in order
    // HINT: Periods reach user space two ways: pushed by BPF into the perf buffer
    // HINT: (session_->consume_perf_buffer("finished") hands them to periods_.add), and left open
    // HINT: in the map by threads that stopped waiting. A period is over, and safe to take, once a
    // HINT: whole period has passed since it ended (BPF may still be adding a wait that ended just
    // HINT: before its end): take from the map (fd periods_fd_; read_map<lab_key, lab_period>, then
    // HINT: bpf_lookup_and_delete, which fails when BPF deleted the entry first) every period that
    // HINT: starts before that cutoff, consume the perf buffer, and print (print_samples) what
    // HINT: periods_ holds before the cutoff. At the end (`final`) take everything: the perf
    // HINT: buffer, then the whole map (read_map's drain), then all of periods_.
    // STUB: lab_todo(3);
    if (final) {
      session_->consume_perf_buffer("finished");
      for (auto& [k, v] : read_map<lab_key, lab_period>(periods_fd_, true)) periods_.add(k, v);
      print_samples(periods_.take_before(UINT64_MAX));
      return;
    }
    uint64_t current = now - now % o_.period_ns;
    uint64_t cutoff = current >= o_.period_ns ? current - o_.period_ns : 0;
    for (auto& [k, v] : read_map<lab_key, lab_period>(periods_fd_, false)) {
      if (v.start >= cutoff) continue;
      lab_period got;
      if (bpf_lookup_and_delete(periods_fd_, &k, &got) == 0) periods_.add(k, got);
    }
    session_->consume_perf_buffer("finished");
    print_samples(periods_.take_before(cutoff));
    // END TODO 3
  }

  // One "s," line per sample, each stack's "t," line before the first sample that uses it.
  void print_samples(const std::vector<Sample>& samples) {
    for (auto& s : samples) {
      if (s.stackid >= 0 && stacks_printed_.insert(s.stackid).second) {
        std::string line = fmt::format("t,{}", s.stackid);
        auto ips = read_stack(session_->stack_map(), s.stackid).ips;
        auto frames = resolve_return_addresses(ips, [this](uint64_t a) { return ksyms_.resolve(a); });
        if (frames.empty()) line += ",[stack unavailable]";
        for (auto& f : frames) line += "," + field(format_frame(f));
        out_.stream() << line << '\n';
      }
      out_.stream() << fmt::format("s,{},P{}_T{},{},{:#x},{},{},{},{}\n", field(s.comm), s.pid, s.tid, s.type, s.lock,
                               s.start, s.wait_ns, s.count, s.stackid);
      samples_++;
      if (!finishing_) printed_while_tracing_++;
    }
  }

  // --totals: what BPF counted over the whole run, apart from the periods.
  void write_totals(Session& s, const std::vector<uint64_t>& c, size_t in_flight) {
    static const char* const names[LAB_C_MAX] = {"begins",        "repeats",       "ends",           "unmatched",
                                                 "waits",         "wait_ns",       "pending_full",   "periods_full",
                                                 "output_failed", "rollovers",     "stack_lost",     "totals_full"};
    std::ostream& out = totals_->stream();
    out << fmt::format("{{\"period_ns\": {}, \"in_flight\": {}, \"perf_lost\": {}, \"late\": {}, \"samples\": {}, "
                       "\"printed_while_tracing\": {}, \"last_tick_ns\": {}",
                       o_.period_ns, in_flight, perf_lost_, periods_.late(), samples_, printed_while_tracing_, last_tick_ns_);
    for (int i = 0; i < LAB_C_MAX; i++) out << fmt::format(", \"{}\": {}", names[i], c[i]);
    out << ", \"totals\": [";
    const char* sep = "";
    for (auto& [k, t] : read_map<lab_key, lab_total>(s.map_fd("totals"), false)) {
      out << fmt::format(
          "{}\n  {{\"pid\": {}, \"tid\": {}, \"lock\": {}, \"flags\": {}, \"count\": {}, \"wait_ns\": {}, "
          "\"first_end_ns\": {}, \"last_end_ns\": {}}}",
          sep, k.pid, k.tid, k.lock, k.flags, t.count, t.wait_ns, t.first_end_ns, t.last_end_ns);
      sep = ",";
    }
    out << "]}\n";
    totals_->commit();
  }

  Options o_;
  std::string program_;
  OutputFile out_;
  std::unique_ptr<OutputFile> totals_;
  KernelSymbols ksyms_;
  Session* session_ = nullptr;
  int periods_fd_ = -1;
  Periods periods_;
  std::set<int32_t> stacks_printed_;
  uint64_t samples_ = 0;
  uint64_t printed_while_tracing_ = 0;  // samples printed by tick(), before the end
  uint64_t last_tick_ns_ = 0;
  bool finishing_ = false;
  uint64_t perf_lost_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  return lockkit::tool_main(kTool, argc, argv, [](int argc, char** argv) -> std::unique_ptr<lockkit::Tool> {
    Options o = parse_options(argc, argv);
    if (o.types) {
      print_types();
      std::cout.flush();
      report_open_todos();
      return nullptr;
    }
    return lockkit::tool_or_help<LabMklockstat>(std::move(o));
  });
}
