#include "core/tables.h"

namespace lockkit {

std::vector<uint64_t> read_stack(int fd, int stack_id) {
  std::vector<uint64_t> out;
  if (stack_id < 0) return out;
  uint64_t ips[127] = {};
  if (bpf_lookup_elem(fd, &stack_id, ips) != 0) return out;
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
