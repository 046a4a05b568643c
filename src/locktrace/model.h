// locktrace's model: rows from the BPF maps, stack repair, histograms. No BPF here (unit-testable).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/futex_objects.h"
#include "core/hist.h"
#include "core/symbolizer.h"
#include "locktrace.h"

namespace lockkit::locktrace {

static_assert(sizeof(lt_call) == 56, "lt_call layout must match the BPF side");
static_assert(sizeof(lt_stat_key) == 32, "lt_stat_key layout must match the BPF side");
static_assert(sizeof(lt_stat_val) == 88, "lt_stat_val layout must match the BPF side");
static_assert(sizeof(lt_err_key) == 40, "lt_err_key layout must match the BPF side");
static_assert(sizeof(lt_hist_key) == 16, "lt_hist_key layout must match the BPF side");

// What the BPF maps held at the end of tracing.
struct Snapshot {
  std::vector<std::pair<lt_stat_key, lt_stat_val>> stats;
  std::vector<std::pair<lt_err_key, uint64_t>> errs;
  std::vector<std::pair<lt_hist_key, uint64_t>> hists;
};

// The frames of a row's user stack as function names, root first; nullopt when BPF could not store
// the stack.
using StackResolver = std::function<std::optional<std::vector<std::string>>(const lt_stat_key&)>;

// The pthread object a row's futex word lies in (a condvar's two words are one condvar).
struct RowObject {
  uint64_t address = 0;
  FutexKind kind = FutexKind::Other;
  std::optional<std::string> name;  // its data symbol, when it has one
};

// One output row: per process, thread, futex address and (symbolised) user stack.
struct Row {
  uint32_t pid = 0, tid = 0;
  uint64_t addr = 0;
  std::string comm;
  std::optional<std::string> symbol;  // the global or static object at addr, when there is one
  std::optional<RowObject> object;    // the pthread object of the word, when known (classify_rows)
  std::vector<std::string> frames;  // root first
  bool stack_lost = false;
  uint64_t blocked_ns = 0, sys_ns = 0, max_blocked_ns = 0, max_sys_ns = 0;
  uint64_t wait_count = 0, blocked_count = 0, wake_count = 0, other_count = 0, errors = 0;
  std::map<int, uint64_t> errnos;  // errno -> calls

  // The stack column as a list: the task name, then the frames root to leaf ("[lost stack]" when
  // lost). Semicolons and line breaks inside names are replaced so that the joined form splits back.
  std::vector<std::string> stack() const;
  // The same, joined with ';' (the folded form).
  std::string stack_column() const;
};

// Builds rows from a snapshot. Keys whose stacks resolve to the same frames are merged (sums, max of
// maxima, errno counts added).
std::vector<Row> build_rows(const Snapshot& snap, const StackResolver& resolve);

// The data symbol covering an address of a process.
using DataResolver = std::function<std::optional<DataObject>(uint32_t pid, uint64_t addr)>;
// Sets each row's object: the pthread object (mutex, rwlock, condvar, semaphore) its futex word lies
// in, by core's FutexClassifier from the stacks of every row on that word of that process and the
// process's data symbols; none for a word of no known object. Names the object by its symbol.
void classify_rows(std::vector<Row>& rows, const DataResolver& data);

// By pid, then blocked time descending (then tid, address and stack, for a stable order).
void sort_rows(std::vector<Row>& rows);

// Rows whose stack could not be displayed.
size_t lost_stack_rows(const std::vector<Row>& rows);

// Per (process, futex address) log2 histogram of blocked time per wait call, in microseconds.
struct LockHist {
  uint32_t pid = 0;
  uint64_t addr = 0;
  Log2Hist hist;
};
// Sorted by pid, then address.
std::vector<LockHist> build_hists(const Snapshot& snap);

// The prev_state bits of sched:sched_switch that mean "not runnable", from the tracepoint's format
// file: TASK_REPORT_MAX - 1, where TASK_REPORT_MAX is twice the largest state flag the format's
// __print_flags table lists. LT_DEFAULT_STATE_MASK when the text has no such table.
int64_t state_mask_from_format(const std::string& format_text);

// "EAGAIN" for 11, ..., or the number as text for an errno without a name.
std::string errno_name(int err);

// The NUL-terminated task name in a BPF value.
std::string comm_string(const char (&comm)[16]);

}  // namespace lockkit::locktrace
