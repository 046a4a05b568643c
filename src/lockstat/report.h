// lockstat's report formats: the text report, JSON (docs/lockstat.md) and folded stacks.
#pragma once

#include <ostream>
#include <string>

#include "core/json.h"
#include "lockstat/model.h"

namespace lockkit::lockstat {

struct TextOptions {
  std::string sort_name = "wait";
  bool per_thread_hists = false;
  size_t stack_depth = 0;  // 0 = whole stacks
  std::string header;      // e.g. "[12:00:05] interval 2, 5.0 s"
};

// The first `depth` frames (all when 0).
std::vector<std::string> cut_frames(const std::vector<std::string>& frames, size_t depth);
// One frame a line, indented; "[no stack]" for none, "... N more frames" past `depth`.
void print_frames(std::ostream& os, const std::vector<std::string>& frames, size_t depth, int indent);
// A frame as folded output names it: the function name only (no offset or module), so that
// identical frames merge in flame graphs.
std::string folded_frame(const std::string& frame);

void write_text(std::ostream& os, const Report& r, const TextOptions& opt);
// The JSON document (schema in docs/lockstat.md) and its text, always valid UTF-8.
Json report_json(const Report& r, size_t stack_depth);
void write_json(std::ostream& os, const Report& r, size_t stack_depth);
// One line per (lock, stack): "frame_root;...;frame_leaf;lock_name value" with value the wait or
// hold time in nanoseconds (function names only, so identical frames merge in flame graphs).
void write_folded(std::ostream& os, const Report& r, bool hold);

}  // namespace lockkit::lockstat
