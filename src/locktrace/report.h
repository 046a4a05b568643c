// locktrace's outputs: the CSV (the seed's format), JSON, the --hist file, -d counters, warnings.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "locktrace/model.h"

namespace lockkit::locktrace {

// The CSV header, exactly as the seed tool printed it.
extern const char* const kCsvHeader;

// The 12 fields of one row (the stack field unquoted; csv_row quotes it).
std::vector<std::string> csv_fields(const Row& r);
void write_csv(std::ostream& os, const std::vector<Row>& rows);

// Named counters: "-d" lines and the JSON "counters" object.
using Counters = std::vector<std::pair<std::string, uint64_t>>;

// Debug counters (indexed by lt_debug) and drops (indexed by lt_drop) with their names; `unfinished`
// is the number of calls still in flight when tracing stopped.
Counters debug_counters(const std::vector<uint64_t>& dbg, const std::vector<uint64_t>& drops,
                        uint64_t unfinished);
// "name count" per line.
void write_debug(std::ostream& os, const Counters& counters);

// Warning lines for what could not be recorded or displayed (empty when nothing was lost).
std::vector<std::string> warnings(const std::vector<uint64_t>& drops, size_t lost_stack_rows);

struct JsonExtras {
  uint32_t pid = 0;  // 0 when tracing all processes
  uint32_t tid = 0;  // 0 when not filtered by thread
  double duration_s = 0;
  size_t lost_stacks = 0;
  Counters counters;
};
void write_json(std::ostream& os, const std::vector<Row>& rows, const JsonExtras& extras);

// One block per (pid, futex address): "PID N, LOCK 0xADDR", then the log2 histogram of blocked
// microseconds per wait call; blocks separated by a blank line.
void write_hists(std::ostream& os, const std::vector<LockHist>& hists);

}  // namespace lockkit::locktrace
