// Kernel symbols from /proc/kallsyms: code frames and global kernel lock names.
#pragma once

#include <cstdint>
#include <memory>
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
  // The address of the symbol `name` (the first of that name), e.g. "_stext".
  std::optional<uint64_t> address_of(const std::string& name) const;
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

// The GNU build-id in hex of a block of ELF notes (as /sys/kernel/notes holds the running kernel's
// .notes section), "" when it has none or the block is malformed.
std::string build_id_from_notes(const std::string& notes);

// The running kernel's image as a module of profiles, named "[kernel.kallsyms]" as perf names it:
// the range from _stext to _etext in `ksyms` (0-0 when they are missing) and the build-id of the
// notes at `notes_path` ("" when unreadable: the kernel has no vmlinux file to read one from).
std::shared_ptr<const MappedModule> kernel_image_module(const KernelSymbols& ksyms,
                                                        const std::string& notes_path = "/sys/kernel/notes");

// A frame from KernelSymbols::resolve, for a profile: the kernel's own text gets `image` as its
// mapping; a module's function a mapping named "[module]"; unresolved addresses (code loaded at run
// time and gone) none.
Frame kernel_profile_frame(Frame f, const std::shared_ptr<const MappedModule>& image);

}  // namespace lockkit
