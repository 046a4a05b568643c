// Kernel symbols from /proc/kallsyms: code frames and global kernel lock names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/symbolizer.h"

namespace lockkit {

class KernelSymbols {
 public:
  // Loads /proc/kallsyms (or the given text, for tests). Throws ToolError when unreadable or
  // when every address reads as zero (kptr_restrict hides them).
  static KernelSymbols load(const std::string& path = "/proc/kallsyms");
  static KernelSymbols parse(const std::string& text);

  Frame resolve(uint64_t addr) const;
  // A global kernel object at `addr` (e.g. "text_mutex"), only for data symbols.
  std::optional<std::string> data_symbol(uint64_t addr) const;
  // Whether the kernel has a function (text symbol) named `name`.
  bool has_function(const std::string& name) const;
  size_t size() const { return syms_.size(); }

 private:
  struct Sym {
    uint64_t addr;
    char type;
    std::string name;
    std::string module;
  };
  std::vector<Sym> syms_;  // sorted by address
  const Sym* at_or_below(uint64_t addr) const;
};

}  // namespace lockkit
