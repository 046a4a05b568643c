// mklockstat's model: lock types, period arithmetic, the buffer that puts finished periods in order,
// the log's line format and the monitor filter. No BPF here: unit-testable.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/symbolizer.h"
#include "mklockstat.h"

namespace lockkit::mklockstat {

static_assert(sizeof(mk_key) == 24, "mk_key layout must match the BPF side");
static_assert(sizeof(mk_period) == 48, "mk_period layout must match the BPF side");
static_assert(sizeof(mk_sample) == 72, "mk_sample layout must match the BPF side");
static_assert(sizeof(mk_pending_key) == 16, "mk_pending_key layout must match the BPF side");
static_assert(sizeof(mk_pending) == 24, "mk_pending layout must match the BPF side");
static_assert(sizeof(mk_first_key) == 24, "mk_first_key layout must match the BPF side");
static_assert(sizeof(mk_comm) == MK_COMM_LEN, "mk_comm layout must match the BPF side");

// ---- Lock types

// "Mutex", "Semaphore", "Semaphore:R", "RWLock:W", "Spinlock", "RTMutex", "PercpuRWSem:R", ...;
// unknown codes read "Unknown_0x<flags>".
std::string type_name(uint32_t type);
// The type name of a lock:contention_begin flags word.
inline std::string flags_type_name(uint32_t flags) { return type_name(mk_type_from_flags(flags)); }
// The same types in the lowercase words of the other tools' `kind` (pprof label): "mutex",
// "semaphore", "rwsem-read", "rwsem-write", "spinlock", "rwlock-read", "rwlock-write", "rtmutex",
// "rtmutex-read", "rtmutex-write", "percpu-rwsem-read", "percpu-rwsem-write"; "unknown-0x<flags>".
std::string kind_name(uint32_t type);

// ---- Periods

// The start of the period holding `now` (ns): a multiple of `period`.
inline uint64_t period_start(uint64_t now, uint64_t period) { return mk_period_start(now, period); }

// Periods starting before the returned time are complete at `now`: they ended at least one whole
// period ago. User space takes such periods still open in the map, and prints them.
inline uint64_t complete_before(uint64_t now, uint64_t period) {
  uint64_t cur = period_start(now, period);
  return cur >= period ? cur - period : 0;
}

// One finished period of one (thread, lock, type): one "s," line.
struct Sample {
  uint64_t start = 0;  // period start, ns
  uint32_t pid = 0, tid = 0;
  uint64_t lock = 0;
  uint32_t type = 0;
  uint64_t wait_ns = 0;
  uint64_t count = 0;
  int32_t stackid = -1;
  std::string comm;
};

Sample sample_from(const mk_key& k, const mk_period& v);

// Orders samples as printed: by period, then pid, tid, lock, type.
using SampleKey = std::tuple<uint64_t, uint32_t, uint32_t, uint64_t, uint32_t>;
inline SampleKey sample_key(const Sample& s) { return {s.start, s.pid, s.tid, s.lock, s.type}; }

// Collects finished periods from wherever they come (perf buffer, map sweeps, the final drain) and
// hands them out in order once their period is complete. Pieces of one (period, thread, lock,
// type) are merged: counts and waits add up; the first known stack and comm win.
class PeriodBuffer {
 public:
  void add(const Sample& s);
  // Removes and returns, sorted, the samples of periods that start before `cutoff`.
  std::vector<Sample> take_before(uint64_t cutoff);
  // Removes and returns every sample, sorted (at exit, after the final drain).
  std::vector<Sample> take_all();
  size_t size() const { return pending_.size(); }
  // Samples that arrived for a period already handed out (printed out of order, not lost).
  uint64_t late() const { return late_; }

 private:
  std::map<SampleKey, Sample> pending_;
  uint64_t released_before_ = 0;
  uint64_t late_ = 0;
};

// ---- Log lines

// Text fields (commands, names, frames) go into comma-separated lines: commas and control
// characters become '_'.
std::string sanitize_field(const std::string& comm);

// s,command,P<pid>_T<tid>,typename,lockaddr,starttime,diffsum,lockcount,stackid[,name]
// `name` is appended (possibly empty) only when `with_name`.
std::string format_sample(const Sample& s, bool with_name, const std::string& name = "");

// t,stackid,frame1,frame2,... (leaf first)
std::string format_stack(int32_t stackid, const std::vector<std::string>& frames);

// Kernel frames ("sym+0xoff") of a stack's instruction pointers, leaf first. Return addresses (all
// but the leaf) are resolved at ip-1, so that a call ending a function names that function.
std::vector<std::string> kernel_frames(const std::vector<uint64_t>& ips,
                                       const std::function<Frame(uint64_t)>& resolve);
// The same frames from a stack already resolved (resolve_return_addresses).
std::vector<std::string> kernel_frames(const std::vector<Frame>& frames);

// A name for a lock address worth printing: a data symbol, but not a section boundary marker
// (__start_*, __stop_*, ...), which only says which section the lock lies in.
std::optional<std::string> lock_name(const std::optional<std::string>& data_symbol);

// ---- Monitor filter

// Threads of these commands are not traced unless --no-filter-monitors.
const std::vector<std::string>& default_monitors();

// The key BPF looks a thread's comm up with: the name cut to 15 bytes (the kernel keeps 15 plus
// NUL), zero padded.
mk_comm comm_key(const std::string& name);

// Whether a thread named `comm` (as the kernel shows it) is skipped with filter list `names`.
bool comm_filtered(const std::vector<std::string>& names, const std::string& comm);

}  // namespace lockkit::mklockstat
