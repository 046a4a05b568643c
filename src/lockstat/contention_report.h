// lockstat --mode contention's reports: text, JSON (docs/lockstat.md) and folded stacks.
#pragma once

#include <ostream>
#include <string>

#include "core/json.h"
#include "lockstat/contention_model.h"

namespace lockkit::lockstat {

struct ContentionTextOptions {
  std::string sort_name = "wait";
  size_t stack_depth = 0;  // 0 = whole stacks
  std::string header;      // e.g. "[12:00:05] pid 12, final report, 5.0 s"
};

void write_contention_text(std::ostream& os, const ContentionReport& r, const ContentionTextOptions& opt);
Json contention_json(const ContentionReport& r, size_t stack_depth);
void write_contention_json(std::ostream& os, const ContentionReport& r, size_t stack_depth);
// One line per (lock, waiting stack): "root;...;leaf;lock wait_ns".
void write_contention_folded(std::ostream& os, const ContentionReport& r);

}  // namespace lockkit::lockstat
