// mklockstat's BPF maps and their sizes (see core/map_sizes.h). Stack storage is an option.
#pragma once

#include "core/map_sizes.h"

namespace lockkit::mklockstat {

inline constexpr MapSize kMapSizes[] = {
    {"MAX_PERIODS", 65536},  // periods: open periods per (thread, lock, type)
    {"MAX_PENDING", 16384},  // pending: waits in flight
    {"MAX_FIRST", 65536},    // first_stack: first stacks per (thread, lock, type)
};

}  // namespace lockkit::mklockstat
