// ELF symbol tables read with libelf: function and data symbols, load segments.
// BCC only names code; lock names for global and static mutexes come from here.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace lockkit {

struct ElfSymbol {
  std::string name;
  uint64_t addr = 0;  // virtual address as linked
  uint64_t size = 0;
  bool is_function = false;  // STT_FUNC / STT_GNU_IFUNC; otherwise STT_OBJECT / STT_TLS
};

struct LoadSegment {
  uint64_t vaddr = 0, memsz = 0, offset = 0, filesz = 0;
  bool executable = false;  // PF_X: code lives here
};

class ElfFile {
 public:
  // Opens and indexes `path`; throws ToolError when it is not a readable ELF file.
  static std::shared_ptr<const ElfFile> open(const std::string& path);
  // Cached per path for the life of the process (files stay readable after a target exits).
  static std::shared_ptr<const ElfFile> open_cached(const std::string& path);

  const std::string& path() const { return path_; }
  bool is_shared_or_pie() const { return type_dyn_; }
  bool has_interpreter() const { return has_interp_; }
  const std::vector<LoadSegment>& segments() const { return segments_; }

  // The symbol containing `vaddr` (or starting exactly at it when its size is 0).
  const ElfSymbol* symbol_at(uint64_t vaddr, bool functions) const;
  // Every defined symbol named `name` (several symbol versions may have distinct addresses).
  std::vector<ElfSymbol> find(const std::string& name) const;
  // The linked address range covered by the load segments.
  uint64_t min_vaddr() const;
  uint64_t max_vaddr() const;
  // Whether linked address `vaddr` lies in an executable load segment.
  bool is_code(uint64_t vaddr) const;
  // Linked vaddr of a file offset, using the load segment holding it.
  bool offset_to_vaddr(uint64_t offset, uint64_t* vaddr) const;

 private:
  std::string path_;
  bool type_dyn_ = false;
  bool has_interp_ = false;
  std::vector<LoadSegment> segments_;
  std::vector<ElfSymbol> functions_;  // sorted by address
  std::vector<ElfSymbol> objects_;    // sorted by address
  std::multimap<std::string, size_t> by_name_;  // name -> index into all_
  std::vector<ElfSymbol> all_;
  void load();
};

}  // namespace lockkit
