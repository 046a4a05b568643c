// Address -> symbol for one process, from its memory maps and the ELF files behind them.
// Maps are snapshotted while the process lives and kept (a union over snapshots), so frames and
// data addresses of a process that has exited still resolve.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/elf.h"

namespace lockkit {

struct MappedModule;

struct Frame {
  uint64_t addr = 0;
  std::string function;  // demangled; empty when unresolved
  uint64_t offset = 0;   // from the function start
  std::string module;    // file name of the module, or "" when the address is in no known module
  // The module's mapping in the process (path, runtime range, ELF file with its build-id), for
  // outputs that describe mappings (pprof); null when the address is in no known module.
  std::shared_ptr<const MappedModule> mapping;
  bool resolved() const { return !function.empty(); }
};

// "name+0xoff [module]", "[unknown] [module+0xoff]" or "[unknown] 0xaddr".
std::string format_frame(const Frame& f);
// Just the function name, or "[unknown]" (for folded stacks).
std::string frame_name(const Frame& f);

struct MappedModule {
  std::string path;
  uint64_t bias = 0;  // runtime address = linked vaddr + bias
  uint64_t lo = 0, hi = 0;  // runtime range covered by the load segments
  std::shared_ptr<const ElfFile> elf;
  // The GNU build-id in hex of a module without an ELF file to read it from (the running kernel's,
  // from /sys/kernel/notes); with `elf`, its build_id() is the one.
  std::string build_id;
};

// The frame-pointer walk started at a function's entry, or in a leaf without its own frame (libc's
// syscall(), __lll_lock_wait), skips the direct caller. `caller` is the word that was at the stack
// pointer: it is put back as the second frame unless it already is, or unless `is_code` is given
// and says it is not code (where that word may not be a return address). Leaf first.
std::vector<uint64_t> restore_caller(const std::vector<uint64_t>& ips, uint64_t caller,
                                     const std::function<bool(uint64_t)>& is_code = nullptr);

// Resolves a stack given leaf first with `resolve`. Every frame but the leaf is a return address,
// which points after its call: it is resolved at addr-1 (a call that ends a function still names
// that function), then reported at its own address and offset.
std::vector<Frame> resolve_return_addresses(const std::vector<uint64_t>& ips,
                                            const std::function<Frame(uint64_t)>& resolve);

// Parses /proc/PID/maps text into modules (exported for tests). The files are opened under `root`
// (see process_root()): a process in another mount namespace or chroot names paths of its own.
std::vector<MappedModule> modules_from_maps(const std::string& maps_text, const std::string& root = "");

// The module of one file mapping: `path` as the process names it, mapped at runtime address `start`
// from `file_offset` in the file (opened under `root`). A PIE or shared object is biased by
// start - vaddr(file_offset); an executable linked at a fixed address is not. Nullopt when the file
// is not ELF or the offset is in none of its load segments.
std::optional<MappedModule> module_from_mapping(const std::string& path, uint64_t start, uint64_t file_offset,
                                                const std::string& root = "");

// A global or static object of a process: its symbol, where it starts at run time, and its size.
struct DataObject {
  std::string name;    // demangled
  uint64_t start = 0;  // runtime address
  uint64_t size = 0;
  // How an address inside it is named: "name", or "name+0xoff" past its start.
  std::string name_at(uint64_t addr) const;
};

// Called for every module a ProcessSymbolizer learns, with its process id (e.g. to load the
// module's unwind rows for that process). One listener for the whole program; an empty function
// removes it.
void set_module_listener(std::function<void(pid_t, const MappedModule&)> listener);

class ProcessSymbolizer {
 public:
  explicit ProcessSymbolizer(pid_t pid);
  // Re-reads /proc/PID/maps while the process lives; returns false once it is gone.
  bool refresh();
  void add_modules(const std::vector<MappedModule>& mods);
  // A forked child: the modules its parent maps, which the child maps too from its first
  // instruction (the kernel reports no mapping for what a fork copies).
  void inherit(const ProcessSymbolizer& parent);
  Frame resolve(uint64_t addr) const;
  // A user stack, leaf first. Every frame but the leaf is a return address, which points after the
  // call: it is resolved at addr-1, so a call that ends a function still names that function.
  std::vector<Frame> resolve_stack(const std::vector<uint64_t>& ips) const;
  // Whether `addr` lies in the code (an executable segment) of a module of the process.
  bool is_code(uint64_t addr) const;
  // Names a data address (a global or static lock): "symbol" or "symbol+0xoff".
  std::optional<std::string> data_symbol(uint64_t addr) const;
  // The data symbol containing `addr`, with its runtime start and size.
  std::optional<DataObject> data_object(uint64_t addr) const;
  pid_t pid() const { return pid_; }
  // Whether a module of the process is the file `path` (as the process names it).
  bool maps(const std::string& path) const;

 private:
  const std::shared_ptr<const MappedModule>* module_for(uint64_t addr) const;
  pid_t pid_;
  std::vector<std::shared_ptr<const MappedModule>> modules_;  // newest first
  std::set<std::pair<uint64_t, uint64_t>> exec_ranges_;  // every executable mapping seen
  std::string last_maps_;
};

}  // namespace lockkit
