// locktrace's BPF maps and their sizes (see core/map_sizes.h). Stack storage is an option.
#pragma once

#include "core/map_sizes.h"
#include "locktrace.h"

namespace lockkit::locktrace {

inline constexpr MapSize kMapSizes[] = {
    {"MAX_CALLS", 16384},  // calls: threads inside a futex call at once
    {"MAX_STATS", 65536},  // stats: rows per (process, thread, futex, caller, stack)
    {"MAX_ERRS", 16384},   // errs: (row, errno) pairs
    {"MAX_HISTS", 65536},  // hists: (process, futex, slot) buckets
    {"MAX_PIDS", 8192},    // pids: processes seen
    {"MAX_DROPS", LT_DROP_MAX},  // drops: one counter per reason
};

}  // namespace lockkit::locktrace
