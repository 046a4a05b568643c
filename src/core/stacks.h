// One place that turns BPF stack ids into frames, for every tool: reads the stack map, restores
// the direct caller a frame-pointer walk from a function's entry skips (only where the leaf's
// module had no unwind rows), resolves return addresses at ip-1 (ProcessSymbolizer::resolve_stack),
// and caches each stack once.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <tuple>
#include <vector>

#include "core/symbolizer.h"
#include "core/tables.h"

namespace lockkit {

// How many leading words of a leaf-first stack to keep: the leaf, then every word up to the first
// one whose call site (word - 1) is not code by `is_code`.
size_t plausible_frames(const std::vector<uint64_t>& ips, const std::function<bool(uint64_t)>& is_code);

class StackNamer {
 public:
  explicit StackNamer(int stacks_fd) : fd_(stacks_fd) {}
  // Leaf-first frames of user stack `id` of the process `sym` symbolises, ending before the first
  // word that is not a return address into the code of one of its modules. `caller` is the word at
  // the stack pointer when the probe fired (0: none); when the leaf was unwound by its frame
  // pointer (no unwind rows for its module) it is put back as the second frame, only when it
  // resolves to a function if `caller_must_be_code` (in a syscall that word need not be a return
  // address). Empty when the id is negative (lost) or no longer in the map.
  const std::vector<Frame>& user_stack(const ProcessSymbolizer& sym, int32_t id, uint64_t caller,
                                       bool caller_must_be_code = false);
  // How many stacks were cut at a word that is no return address.
  size_t truncated() const { return truncated_; }

 private:
  int fd_;
  size_t truncated_ = 0;
  std::map<std::tuple<pid_t, int32_t, uint64_t>, std::vector<Frame>> cache_;
};

}  // namespace lockkit
