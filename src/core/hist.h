// log2 histograms: the same slots as lk_log2_slot() in probes/common.h.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common.h"

namespace lockkit {

class Log2Hist {
 public:
  Log2Hist() : slots_(LK_HIST_SLOTS, 0) {}
  static uint32_t slot_of(uint64_t v) { return lk_log2_slot(v); }
  static uint64_t slot_low(uint32_t slot) { return slot == 0 ? 0 : 1ull << (slot - 1); }
  static uint64_t slot_high(uint32_t slot) {
    return slot == 0 ? 0 : (slot >= 64 ? UINT64_MAX : (1ull << slot) - 1);
  }

  void add_value(uint64_t v, uint64_t count = 1) { add_slot(slot_of(v), count); }
  void add_slot(uint32_t slot, uint64_t count);
  void merge(const Log2Hist& o);
  void scale(double factor);
  uint64_t total() const;
  bool empty() const { return total() == 0; }
  uint64_t slot(uint32_t s) const { return s < slots_.size() ? slots_[s] : 0; }

  // Text in the bcc style, rows from the lowest to the highest non-empty slot:
  //      usecs               : count     distribution
  //          0 -> 0          : 3        |****                                    |
  void print(std::ostream& os, const std::string& unit, int indent = 0) const;
  // {"unit": "...", "buckets": [{"low": L, "high": H, "count": N}, ...]} over the non-empty range.
  nlohmann::ordered_json to_json(const std::string& unit) const;

 private:
  std::vector<uint64_t> slots_;
};

}  // namespace lockkit
