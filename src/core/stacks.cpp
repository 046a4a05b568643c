#include "core/stacks.h"

#include "common.h"
#include "core/tables.h"

namespace lockkit {

size_t plausible_frames(const std::vector<uint64_t>& ips, const std::function<bool(uint64_t)>& is_code) {
  if (ips.empty()) return 0;
  size_t keep = 1;
  while (keep < ips.size() && is_code(ips[keep] - 1)) keep++;
  return keep;
}

const std::vector<Frame>& StackNamer::user_stack(const ProcessSymbolizer& sym, int32_t id, uint64_t caller,
                                                 bool caller_must_be_code) {
  auto key = std::make_tuple(sym.pid(), id, caller);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  std::vector<Frame> frames;
  StoredStack st = read_stack(fd_, id);
  std::vector<uint64_t>& ips = st.ips;
  if (!ips.empty()) {
    if (st.flags & LK_STACK_FP_LEAF) {
      std::function<bool(uint64_t)> is_code;
      if (caller_must_be_code) is_code = [&](uint64_t a) { return sym.resolve(a - 1).resolved(); };
      ips = restore_caller(ips, caller, is_code);
    }
    // Never junk: a frame-pointer walk through code built without frame pointers reads stack
    // words that are no return addresses. The walk ends at the first word that is not one into
    // the code of a module of the process (the leaf is the probed instruction itself). Frames
    // unwound from call-frame information are return addresses; the check costs nothing there.
    size_t keep = plausible_frames(ips, [&](uint64_t a) { return sym.is_code(a); });
    if (keep < ips.size()) {
      ips.resize(keep);
      truncated_++;
    }
    frames = sym.resolve_stack(ips);
  }
  return cache_.emplace(key, std::move(frames)).first->second;
}

}  // namespace lockkit
