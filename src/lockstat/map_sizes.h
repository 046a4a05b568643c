// lockstat's BPF maps and their sizes (see core/map_sizes.h). Stack storage is an option.
#pragma once

#include "core/map_sizes.h"
#include "lockstat.h"
#include "lockstat_contention.h"

namespace lockkit::lockstat {

inline constexpr MapSize kMapSizes[] = {
    {"MAX_STATS", 65536},    // stats: rows per (lock, caller, thread, stack, kind, mode)
    {"MAX_THREADS", 8192},   // pending, condwaits: threads inside a lock call or cond wait at once
    {"MAX_HELD", 65536},     // held: (lock, thread) pairs held at once
    {"MAX_HISTS", 131072},   // hists: (lock, thread, wait/hold, slot) buckets
    {"MAX_LOCKS", 65536},    // inits: locks whose init was seen
    {"MAX_DROPS", LK_DROP_MAX},  // drops: one counter per reason
    {"MAX_ORDER_EDGES", 16384},  // order_edges (--lock-order): distinct lock-order edges
};

// --mode contention's maps.
inline constexpr MapSize kContentionMapSizes[] = {
    {"MAX_CALLS", 8192},      // calls: threads inside a futex call at once
    {"MAX_WAITS", 65536},     // waits: rows per (word, waiter, holder, stack)
    {"MAX_RETRIES", 16384},   // retries: (word, thread) pairs with EAGAIN waits
    {"MAX_RELEASES", 32768},  // releases: rows per (word, waker, stack)
    {"MAX_LOCKS", 65536},     // inits: objects whose init was seen
    {"MAX_DROPS", LC_DROP_MAX},
};

}  // namespace lockkit::lockstat
