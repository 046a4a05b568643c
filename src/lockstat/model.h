// lockstat's model: raw BPF rows -> per lock, per thread and per stack statistics, with the views
// the reports need (sort, top N, minimum wait, sampling estimates). No BPF here: unit-testable.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/hist.h"
#include "core/report.h"
#include "lockstat.h"

namespace lockkit::lockstat {

static_assert(sizeof(lk_stat_key) == 40, "lk_stat_key layout must match the BPF side");
static_assert(sizeof(lk_stat_val) == 15 * 8, "lk_stat_val layout must match the BPF side");
static_assert(sizeof(lk_hist_key) == 16, "lk_hist_key layout must match the BPF side");
static_assert(sizeof(lk_init) == 24, "lk_init layout must match the BPF side");
static_assert(sizeof(lk_held_key) == 16, "lk_held_key layout must match the BPF side");
static_assert(sizeof(lk_held) == 48, "lk_held layout must match the BPF side");

// What one read of the BPF maps returned.
struct Snapshot {
  std::vector<std::pair<lk_stat_key, lk_stat_val>> stats;
  std::vector<std::pair<lk_hist_key, uint64_t>> hists;
};

// The semaphore acquisitions still open when tracing ended (rows of the `held` map of kind
// LK_SEM), as stats rows counting one `unreleased` each; other kinds are left out.
std::vector<std::pair<lk_stat_key, lk_stat_val>> open_semaphore_rows(
    const std::vector<std::pair<lk_held_key, lk_held>>& held);

// Adds `delta` into `total` row by row (sums add, minima and maxima combine): used to keep whole-run
// totals when the maps are drained every interval.
void merge_snapshot(Snapshot& total, const Snapshot& delta);

struct Totals {
  uint64_t acquisitions = 0, failed_trylocks = 0, timeouts = 0, errors = 0, holds = 0, cond_waits = 0;
  uint64_t wait_ns = 0, wait_min = UINT64_MAX, wait_max = 0;
  uint64_t hold_ns = 0, hold_min = UINT64_MAX, hold_max = 0;
  uint64_t cond_wait_ns = 0;
  uint64_t handoffs = 0, unreleased = 0;  // semaphores (see probes/lockstat.h)

  void add(const lk_stat_val& v);
  void merge(const Totals& o);
  // Scales counts and sums (not minima or maxima) for sampled runs.
  void scale(double f);
  double avg_wait() const {
    uint64_t n = acquisitions + timeouts;
    return n ? double(wait_ns) / double(n) : 0;
  }
  double avg_hold() const { return holds ? double(hold_ns) / double(holds) : 0; }
  uint64_t min_wait() const { return wait_min == UINT64_MAX ? 0 : wait_min; }
  uint64_t min_hold() const { return hold_min == UINT64_MAX ? 0 : hold_min; }
};

struct StackStats {
  std::vector<std::string> frames;  // leaf first
  Totals totals;
};

struct ThreadStats {
  uint32_t tid = 0;
  Totals totals;
  Log2Hist wait_hist, hold_hist;  // microseconds
  std::vector<StackStats> stacks;
};

struct LockStats {
  uint32_t pid = 0;  // the process the lock lives in (one address in two processes is two locks)
  uint64_t addr = 0;
  uint32_t kind = LK_MUTEX;
  std::optional<std::string> symbol;  // global or static: its ELF symbol
  int init_label = 0;                 // #N when named by its init stack, else 0
  std::vector<std::string> init_frames;
  Totals totals;
  uint64_t read_acquisitions = 0, write_acquisitions = 0;  // rwlocks
  Log2Hist wait_hist, hold_hist;
  std::vector<ThreadStats> threads;  // by tid
  std::vector<StackStats> stacks;    // merged across threads by frames
  // The name reports show: symbol, else "#N", else none (the address is shown).
  LockIdentity identity() const;
  // Display name: symbol, else "#N", else the address.
  std::string display_name() const { return identity().display(); }
};

struct Report {
  int pid = 0;
  std::vector<uint32_t> pids;  // the processes traced: the target and its tree, ascending
  double duration_s = 0;
  double sample_percent = 100;
  std::vector<LockStats> locks;
  Log2Hist wait_hist, hold_hist;  // every lock, every thread
  std::map<uint32_t, std::pair<Log2Hist, Log2Hist>> thread_hists;  // tid -> (wait, hold)
  Diagnostics diag;  // drops, lost stacks, warnings (e.g. probes found missing)
  bool estimated() const { return sample_percent < 100; }
};

// Turns ids and addresses into names; the BPF-free parts of the model get them from here.
// Each takes the process the stack or lock belongs to.
struct Naming {
  std::function<std::vector<std::string>(uint32_t pid, int32_t stackid, uint64_t caller)> frames;
  std::function<std::optional<std::string>(uint32_t pid, uint64_t addr)> data_symbol;
  // Init stack of a lock (frames, kind) when it was seen being initialised.
  std::function<std::optional<std::pair<std::vector<std::string>, uint32_t>>(uint32_t pid, uint64_t addr)> init_stack;
};

// Stable #N labels for locks named by their init stack: a lock keeps its number for the whole run.
class InitLabels {
 public:
  int label(uint64_t addr, uint32_t pid = 0);
 private:
  std::map<std::pair<uint32_t, uint64_t>, int> labels_;
};

const char* kind_name(uint32_t kind);
// The reason behind each lk_drop counter (LK_DROP_STACK_LOST counts lost stacks, not a drop).
DropReason drop_reason(uint32_t reason);
// Adds the BPF drop counters (indexed by lk_drop) to `d`.
void add_drops(Diagnostics& d, const std::vector<uint64_t>& drops);

Report build_report(const Snapshot& snap, const Naming& naming, InitLabels& labels,
                    double sample_percent);

enum class SortKey { Wait, Hold, Count, MaxWait, MaxHold, AvgWait };
std::optional<SortKey> parse_sort_key(const std::string& s);

// Keeps locks whose total wait >= min_wait_ns, sorted by `key` (descending), the first `top`
// (0 = all). Per-thread and global histograms are recomputed from the locks that remain.
void apply_view(Report& r, SortKey key, size_t top, uint64_t min_wait_ns);

}  // namespace lockkit::lockstat
