#include "core/tables.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common.h"

namespace lockkit {

std::vector<std::string> stack_map_defines(size_t entries) { return {fmt::format("STACK_ENTRIES={}", entries)}; }

StoredStack read_stack(int fd, int stack_id) {
  StoredStack out;
  if (stack_id < 0) return out;
  lk_stack s;
  std::memset(&s, 0, sizeof(s));
  if (bpf_lookup_elem(fd, &stack_id, &s) != 0) return out;
  out.flags = s.flags;
  for (uint32_t i = 0; i < s.depth && i < LK_STACK_MAX; i++) out.ips.push_back(s.ips[i]);
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
