#include "core/tables.h"

#include <fmt/format.h>

#include <algorithm>

#include "common.h"

namespace lockkit {

std::vector<std::string> stack_map_defines(size_t entries) {
  return {fmt::format("STACK_ENTRIES={}", entries), fmt::format("STACK_SPILL_ENTRIES={}", std::max<size_t>(1, entries / 4))};
}

std::vector<uint64_t> read_stack(const StackMaps& maps, int stack_id) {
  std::vector<uint64_t> out;
  if (stack_id < 0) return out;
  bool spilled = (stack_id & LK_STACK_SPILL_BIT) != 0;
  int id = stack_id & ~LK_STACK_SPILL_BIT;
  uint64_t ips[127] = {};
  if (bpf_lookup_elem(spilled ? maps.spill : maps.main, &id, ips) != 0) return out;
  for (uint64_t ip : ips) {
    if (ip == 0) break;
    out.push_back(ip);
  }
  return out;
}

std::vector<uint64_t> read_counters(int fd, uint32_t n) {
  std::vector<uint64_t> out(n, 0);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t v = 0;
    if (bpf_lookup_elem(fd, &i, &v) == 0) out[i] = v;
  }
  return out;
}

}  // namespace lockkit
