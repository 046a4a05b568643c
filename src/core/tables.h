// Typed snapshots of BPF maps. Iteration checks every status: a key that vanishes between
// get_next_key and lookup is skipped (not a silent stop), and draining uses lookup-and-delete so no
// update made between reading and clearing is lost.
#pragma once

#include <bcc/libbpf.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace lockkit {

template <class K, class V>
std::vector<std::pair<K, V>> read_map(int fd, bool drain, size_t limit = 1u << 22) {
  std::vector<std::pair<K, V>> out;
  K key, next;
  std::memset(&key, 0, sizeof(key));
  std::memset(&next, 0, sizeof(next));
  if (drain) {
    // Always restart from the first key: the previous one is gone.
    for (size_t i = 0; i < limit; i++) {
      if (bpf_get_next_key(fd, nullptr, &next) != 0) break;
      V v;
      if (bpf_lookup_and_delete(fd, &next, &v) == 0) out.emplace_back(next, v);
    }
    return out;
  }
  std::set<std::string> seen;
  bool first = true;
  for (size_t i = 0; i < limit; i++) {
    if (bpf_get_next_key(fd, first ? nullptr : &key, &next) != 0) break;
    first = false;
    key = next;
    V v;
    if (bpf_lookup_elem(fd, &key, &v) != 0) continue;  // deleted meanwhile
    // A concurrently deleted key makes the walk restart: skip keys already read.
    if (!seen.insert(std::string(reinterpret_cast<const char*>(&key), sizeof(key))).second) continue;
    out.emplace_back(key, v);
  }
  return out;
}

// One stack of a program's `stacks` map (probes/common.h, "Stacks").
struct StoredStack {
  std::vector<uint64_t> ips;  // leaf first
  uint32_t flags = 0;         // LK_STACK_*
};
// The -D define that sizes the stacks map: STACK_ENTRIES=N.
std::vector<std::string> stack_map_defines(size_t entries);

// Stack `stack_id` of the `stacks` map `fd`; empty when the id is negative (lost) or not there.
StoredStack read_stack(int fd, int stack_id);

// Counters in a BPF array of u64 (per-reason drop counters).
std::vector<uint64_t> read_counters(int array_fd, uint32_t n);

}  // namespace lockkit
