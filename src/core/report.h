// The report vocabulary every tool shares besides its own data: what could not be recorded
// (diagnostics) and how a lock is named, each rendered once for text and once for JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/json.h"

namespace lockkit {

// One reason why BPF could not record something: `reason` is the stable JSON key (snake_case),
// `what` the text that follows the count in the warning line ("futex calls were not traced: ...").
struct DropReason {
  const char* reason;
  const char* what;
};

// What a run could not record or show. Every tool fills one and renders it with the functions below,
// so that users read the same words and JSON consumers the same keys whichever tool they ran.
struct Diagnostics {
  struct Drop {
    std::string reason;
    std::string what;
    uint64_t count = 0;
  };
  std::vector<Drop> dropped;          // non-zero only, in the order first added
  uint64_t lost_stacks = 0;           // stack traces that could not be stored (or read back)
  std::vector<std::string> warnings;  // one sentence each, e.g. a breakpoint that vanished

  // Adds `count` under `why.reason` (summed when the reason is already there); 0 adds nothing.
  void drop(const DropReason& why, uint64_t count);
  void warn(std::string message);
  // Drops and lost stacks summed, warnings appended.
  void merge(const Diagnostics& o);
  bool empty() const { return dropped.empty() && lost_stacks == 0 && warnings.empty(); }
  uint64_t dropped_count(const std::string& reason) const;  // 0 when absent
};

// The text form: one "WARNING: ..." line per drop, one for lost stacks, one per warning (no
// newlines; nothing at all when the run lost nothing).
std::vector<std::string> diagnostic_lines(const Diagnostics& d);
// Each of diagnostic_lines() followed by a newline.
void write_diagnostics(std::ostream& os, const Diagnostics& d);
// The JSON form, as top-level keys of `doc`:
//   "dropped": {reason: count, ...}, "lost_stacks": N, "warnings": ["...", ...]
void add_diagnostics(Json& doc, const Diagnostics& d);

// "0x7f12..." (lower-case hex with the 0x prefix): how every output writes an address.
std::string hex_address(uint64_t addr);

// A lock as every tool names it: its address, and a name when one is known (a data symbol such as
// "orders_lock" or "buf+0x8", or a label such as "#3").
struct LockIdentity {
  uint64_t address = 0;
  std::optional<std::string> name;
  // The name, else the address in hex.
  std::string display() const;
};
// Sets "address" (hex string) and "name" (string or null) in `obj`.
void add_lock_identity(Json& obj, const LockIdentity& id);

}  // namespace lockkit
