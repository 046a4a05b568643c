#include "core/stacks.h"

#include "core/tables.h"

namespace lockkit {

const std::vector<Frame>& StackNamer::user_stack(const ProcessSymbolizer& sym, int32_t id, uint64_t caller,
                                                 bool caller_must_be_code) {
  auto key = std::make_tuple(sym.pid(), id, caller);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  std::vector<Frame> frames;
  std::vector<uint64_t> ips = read_stack(fd_, id);
  if (!ips.empty()) {
    std::function<bool(uint64_t)> is_code;
    if (caller_must_be_code) is_code = [&](uint64_t a) { return sym.resolve(a - 1).resolved(); };
    frames = sym.resolve_stack(restore_caller(ips, caller, is_code));
  }
  return cache_.emplace(key, std::move(frames)).first->second;
}

}  // namespace lockkit
