// locktrace's outputs: the CSV (the seed's format), JSON, the --hist file, -d counters, diagnostics.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/pprof.h"
#include "core/report.h"
#include "locktrace/model.h"

namespace lockkit::locktrace {

// The CSV header, exactly as the seed tool printed it.
extern const char* const kCsvHeader;

// The 12 fields of one row (the stack field unquoted; csv_row quotes it).
std::vector<std::string> csv_fields(const Row& r);
void write_csv(std::ostream& os, const std::vector<Row>& rows);

// Named counters: "-d" lines and the JSON "counters" object.
using Counters = std::vector<std::pair<std::string, uint64_t>>;

// Debug counters (indexed by lt_debug) and `unfinished`, the number of calls still in flight when
// tracing stopped: the JSON "counters" object.
Counters debug_counters(const std::vector<uint64_t>& dbg, uint64_t unfinished);
// The -d lines: the debug counters above, then every drop counter (indexed by lt_drop) by name.
Counters debug_counters(const std::vector<uint64_t>& dbg, const std::vector<uint64_t>& drops,
                        uint64_t unfinished);
// "name count" per line.
void write_debug(std::ostream& os, const Counters& counters);

// The reason behind each lt_drop counter (LT_DROP_STACK_LOST counts lost stacks, not a drop).
DropReason drop_reason(uint32_t drop);
// What could not be recorded or shown: the drop counters (indexed by lt_drop) by reason, and lost
// stacks: the calls whose stack BPF could not store, or the rows showing "[lost stack]" when more.
Diagnostics diagnostics(const std::vector<uint64_t>& drops, size_t lost_stack_rows);

struct JsonExtras {
  uint32_t pid = 0;  // 0 when tracing all processes
  uint32_t tid = 0;  // 0 when not filtered by thread
  std::vector<uint32_t> pids;  // the processes traced (the target and its tree), ascending
  double duration_s = 0;
  Diagnostics diag;
  Counters counters;  // debug counters (no drops: those are in diag)
};
// The JSON document (schema in docs/locktrace.md) and its text, always valid UTF-8.
Json report_json(const std::vector<Row>& rows, const JsonExtras& extras);
void write_json(std::ostream& os, const std::vector<Row>& rows, const JsonExtras& extras);

// The rows as a pprof profile: one sample per row (process × thread × futex word × stack) that waited,
// contentions/count = futex wait calls, delay/nanoseconds = time blocked in them; labels lock (the
// object's or word's symbol, else the word's address), kind (the pthread object, else "futex"),
// address, pid, tid. `frames` gives the Frames behind each row's stack.
ProfileData rows_profile(const std::vector<Row>& rows, const StackFrameIndex& frames);

// One block per (pid, futex address): "PID N, LOCK 0xADDR", then the log2 histogram of blocked
// microseconds per wait call; blocks separated by a blank line.
void write_hists(std::ostream& os, const std::vector<LockHist>& hists);

}  // namespace lockkit::locktrace
