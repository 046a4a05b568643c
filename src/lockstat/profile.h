// lockstat's pprof profile: the report's samples for core's writer (core/pprof.h).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/pprof.h"
#include "lockstat/model.h"

namespace lockkit::lockstat {

// The Frames behind a stack's formatted frames (as the report holds them), leaf first.
using StackFrames = std::function<std::vector<Frame>(const std::vector<std::string>& formatted)>;

// One sample per lock × thread × stack of `r` (the same view as the JSON, so totals agree):
// contentions/count = timed lock calls (acquisitions + timeouts), delay/nanoseconds = wait,
// hold/nanoseconds = hold; labels lock, kind, address (strings), pid, tid (numbers).
// `program` is the traced program's file (its mapping comes first).
ProfileData report_profile(const Report& r, const StackFrames& frames, int64_t start_wall_ns,
                           const std::string& program);

}  // namespace lockkit::lockstat
