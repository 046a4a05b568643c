// lockstat --lock-order: the lock-order graph BPF records (an edge A -> B each time a thread took B,
// blocking, while it held A) and its elementary cycles, each a potential deadlock. No BPF here:
// unit-testable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/report.h"
#include "lockstat.h"
#include "lockstat/model.h"

namespace lockkit::lockstat {

static_assert(sizeof(lk_order_key) == 32, "lk_order_key layout must match the BPF side");
static_assert(sizeof(lk_order_edge) == 32, "lk_order_edge layout must match the BPF side");
static_assert(sizeof(lk_order_held) == 16 * 8 * 2 + 16 * 4 + 16, "lk_order_held layout must match the BPF side");

using OrderEdges = std::vector<std::pair<lk_order_key, lk_order_edge>>;

// How far the cycle search goes. A cycle longer than max_length locks is not looked for; past
// max_cycles cycles or max_steps search steps the search stops. Either way the result says so.
struct CycleLimits {
  size_t max_length = 8;
  size_t max_cycles = 1000;
  uint64_t max_steps = 2'000'000;
};

// One elementary cycle: locks[i] -> locks[i+1] (and the last -> locks[0]) along edges[i], an index
// into the searched edges. locks[0] is the cycle's lowest address, so each cycle has one form. A
// lock is an address in one process: edges of different processes never meet.
struct LockCycle {
  uint32_t pid = 0;
  std::vector<uint64_t> locks;
  std::vector<size_t> edges;
};

struct CycleSearch {
  std::vector<LockCycle> cycles;  // ordered by length, then by their locks' addresses
  bool cut = false;               // the search was bounded: longer or further cycles may exist
  std::string cut_why;            // what bound it, for the report ("" when not cut)
  size_t shared_only = 0;         // cycles left out: at some lock both sides are read (shared) holds
};

// Every elementary cycle of length 2 and more, up to the limits. A cycle counts as a potential
// deadlock when, at every lock on it, the edge that takes the lock and the edge that leaves it do
// not both hold it shared: a read lock waits for no reader. Between two locks there may be edges
// of several modes; the cycle takes, among those that make it a deadlock, exclusive ones first.
CycleSearch find_cycles(const OrderEdges& edges, const CycleLimits& limits = {});

// ---- The report's view: locks named, stacks as frames ----

struct OrderLock {
  uint32_t pid = 0;
  LockIdentity id;
  uint32_t kind = LK_MUTEX;
  std::vector<std::string> init_frames;  // when its init was seen
  std::string display() const { return id.display(); }
};

struct OrderEdgeView {
  size_t from = 0, to = 0;  // into LockOrderReport::locks
  uint32_t tid = 0;
  uint32_t from_mode = LK_EXCLUSIVE, to_mode = LK_EXCLUSIVE;
  std::vector<std::string> frames;       // the call that took `to`
  std::vector<std::string> held_frames;  // where `from` had been taken
};

struct LockOrderReport {
  std::vector<OrderLock> locks;      // every lock on an edge, by address
  std::vector<OrderEdgeView> edges;  // every edge, by (from, to) address
  struct Cycle {
    std::vector<size_t> locks;  // into locks
    std::vector<size_t> edges;  // into edges
  };
  std::vector<Cycle> cycles;
  bool cut = false;
  std::string cut_why;
  size_t shared_only = 0;
  size_t max_length = 0;
};

// Names the locks (data symbols, else #N labels from their init stacks, else addresses) and the
// stacks of `raw`, and finds its cycles.
LockOrderReport build_lock_order(const OrderEdges& raw, const Naming& naming, InitLabels& labels,
                                 const CycleLimits& limits = {});

// "Lock order: ..." and one block per cycle: its locks, then each edge with its thread and stacks.
void write_lock_order_text(std::ostream& os, const LockOrderReport& r, size_t stack_depth);
// {"cycles": [{"locks": [id, ...], "edges": [{"from", "to", "tid", "frames", ...}]}], "edges": [...],
//  "locks": [...], "truncated": bool, ...}: the document's "lock_order" (docs/lockstat.md).
Json lock_order_json(const LockOrderReport& r, size_t stack_depth);

}  // namespace lockkit::lockstat
