// lockstat --mode contention's model: the futex rows BPF recorded -> one entry per pthread object
// (futex words grouped by core's FutexClassifier), with its contended waits per thread and waiting
// stack, and the holders that caused them with their release stacks. Plain data, no BPF: the
// reports (text, JSON, folded; pprof later) read it as it is.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/futex_objects.h"
#include "core/report.h"
#include "core/symbolizer.h"
#include "lockstat/model.h"
#include "lockstat_contention.h"

namespace lockkit::lockstat {

static_assert(sizeof(lc_call) == 32, "lc_call layout must match the BPF side");
static_assert(sizeof(lc_wait_key) == 40, "lc_wait_key layout must match the BPF side");
static_assert(sizeof(lc_wait_val) == 32, "lc_wait_val layout must match the BPF side");
static_assert(sizeof(lc_retry_key) == 24, "lc_retry_key layout must match the BPF side");
static_assert(sizeof(lc_release_key) == 32, "lc_release_key layout must match the BPF side");
static_assert(sizeof(lc_release_val) == 16, "lc_release_val layout must match the BPF side");
static_assert(sizeof(lc_init_key) == 16, "lc_init_key layout must match the BPF side");
static_assert(sizeof(lc_init) == 24, "lc_init layout must match the BPF side");

// What one read of the BPF maps returned.
struct ContentionSnapshot {
  std::vector<std::pair<lc_wait_key, lc_wait_val>> waits;
  std::vector<std::pair<lc_retry_key, uint64_t>> retries;
  std::vector<std::pair<lc_release_key, lc_release_val>> releases;
  std::vector<std::pair<lc_init_key, lc_init>> inits;
  // Waits still inside the kernel when the maps were read (tid -> call), and when that was
  // (bpf_ktime_get_ns's clock): a thread blocked for good (a deadlock) is one of these.
  std::vector<std::pair<uint32_t, lc_call>> in_progress;
  uint64_t read_ns = 0;
};

struct WaitStack {
  std::vector<std::string> frames;  // leaf first, "function+0xoff [module]"
  uint64_t contentions = 0, wait_ns = 0;
};

struct WaitingThread {
  uint32_t tid = 0;
  uint64_t contentions = 0, wait_ns = 0, max_wait_ns = 0, eagain_waits = 0;
  bool in_progress = false;  // still sleeping on the lock at the end
};

struct ReleaseStack {
  std::vector<std::string> frames;  // leaf first
  uint64_t count = 0;               // wakes from this stack that woke a waiter
};

// A thread that held the lock while others waited in the kernel.
struct Holder {
  uint32_t tid = 0;
  uint64_t contentions = 0, wait_ns = 0;  // the waits it caused
  uint64_t in_progress = 0;               // waits on it still sleeping at the end
  std::vector<ReleaseStack> stacks;       // its wakes of the lock's words that woke someone
};

struct ContentionLock {
  uint32_t pid = 0;      // the process the object lives in
  uint64_t address = 0;  // the object's start
  FutexKind kind = FutexKind::Other;
  FutexObject::Source source = FutexObject::Source::None;  // what told the kind
  std::vector<uint64_t> words;  // the futex words seen, ascending
  std::optional<std::string> symbol;
  int init_label = 0;  // #N when named by its init stack
  std::vector<std::string> init_frames;
  uint64_t contentions = 0;   // waits that slept in the kernel
  uint64_t wait_ns = 0, max_wait_ns = 0;
  uint64_t timeouts = 0;      // of the contentions, waits that timed out
  uint64_t eagain_waits = 0;  // futex waits that returned EAGAIN at once (not contentions)
  uint64_t in_progress = 0;     // waits still sleeping when the report was made (not contentions yet)
  uint64_t in_progress_ns = 0;  // their time so far
  std::vector<WaitingThread> threads;  // by tid
  std::vector<WaitStack> stacks;       // by wait, descending
  // Mutexes only (the only kind with an owner field): who held the lock, by wait caused.
  bool has_holders = false;
  std::vector<Holder> holders;
  uint64_t unknown_holder_contentions = 0;  // the owner field named no thread of the process

  LockIdentity identity() const;
  std::string display_name() const { return identity().display(); }
};

struct ContentionReport {
  int pid = 0;
  std::vector<uint32_t> pids;  // the processes traced: the target and its tree, ascending
  double duration_s = 0;
  std::vector<ContentionLock> locks;
  Diagnostics diag;
};

// Turns ids and addresses of a process into names; tests give their own.
struct ContentionNaming {
  // Leaf-first frames of a stored user stack of process `pid` (empty when lost or gone).
  std::function<std::vector<Frame>(uint32_t pid, int32_t stackid, uint64_t caller)> frames;
  std::function<std::optional<DataObject>(uint32_t pid, uint64_t addr)> data_object;
  // Whether `tid` is a thread of process `pid` (a mutex's owner field is checked with it).
  std::function<bool(uint32_t pid, uint32_t tid)> is_thread;
};

ContentionReport build_contention_report(const ContentionSnapshot& snap, const ContentionNaming& naming,
                                         InitLabels& labels);

// Keeps locks whose total wait >= min_wait_ns, sorted by `key` (Wait, Count = contentions,
// MaxWait, AvgWait; descending), the first `top` (0 = all). Locks are per process: one object
// address in two processes is two locks.
void apply_contention_view(ContentionReport& r, SortKey key, size_t top, uint64_t min_wait_ns);

// The reasons behind each lc_drop counter; adds them (stacks lost apart) to `d`.
void add_contention_drops(Diagnostics& d, const std::vector<uint64_t>& drops);

// What this mode does not see, in one sentence each (help, docs and report headers say the same).
extern const char* const kContentionBlindSpots;

}  // namespace lockkit::lockstat
