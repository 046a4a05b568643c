// lockstat's pprof profile: the report's samples for core's writer (core/pprof.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/pprof.h"
#include "lockstat/contention_model.h"
#include "lockstat/model.h"

namespace lockkit::lockstat {

// One sample per lock × thread × stack of `r` (the same view as the JSON, so totals agree):
// contentions/count = timed lock calls (acquisitions + timeouts), delay/nanoseconds = wait,
// hold/nanoseconds = hold; labels lock, kind, address (strings), pid, tid (numbers).
// `program` is the traced program's file (its mapping comes first).
ProfileData report_profile(const Report& r, const StackFrameIndex& frames, int64_t start_wall_ns,
                           const std::string& program);

// Contention mode: one sample per lock × waiting stack (the mode merges a lock's stacks across
// threads): contentions/count = waits that slept in the kernel, delay/nanoseconds = their time;
// labels lock, kind, address, pid.
ProfileData contention_profile(const ContentionReport& r, const StackFrameIndex& frames, int64_t start_wall_ns,
                               const std::string& program);

}  // namespace lockkit::lockstat
