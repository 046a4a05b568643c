// ELF symbol tables read with libelf: function and data symbols, load segments.
// BCC only names code; lock names for global and static mutexes come from here.
// A stripped file's names come from its separate debug file, found with elfutils' libdwfl by
// build-id (DIR/.build-id/xx/rest.debug) or by .gnu_debuglink (beside the file, in .debug/ beside
// it, DIR/<the file's directory>/), for DIR in the user's debug directories, then /usr/lib/debug.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct Elf;  // libelf's handle

namespace lockkit {

struct ElfSymbol {
  std::string name;
  uint64_t addr = 0;  // virtual address as linked
  uint64_t size = 0;
  bool is_function = false;  // STT_FUNC / STT_GNU_IFUNC; otherwise STT_OBJECT / STT_TLS
  bool from_debug_file = false;  // read from the separate debug file, not the file itself
};

struct LoadSegment {
  uint64_t vaddr = 0, memsz = 0, offset = 0, filesz = 0;
  bool executable = false;  // PF_X: code lives here
};

class ElfFile {
 public:
  // Opens and indexes `path`; throws ToolError when it is not a readable ELF file. When it has no
  // .symtab of its own (a stripped file), the symbols of its separate debug file are merged in,
  // when one is found in `debug_dirs` (absolute directories, searched before the default places)
  // or in the default places, and it matches (same build-id, or else the debuglink CRC; same load
  // segments and section addresses).
  static std::shared_ptr<const ElfFile> open(const std::string& path,
                                             const std::vector<std::string>& debug_dirs = {});
  // Cached per path for the life of the process (files stay readable after a target exits),
  // looking for debug files in the directories last given to set_debug_dirs().
  static std::shared_ptr<const ElfFile> open_cached(const std::string& path);
  // The user's debug directories for open_cached (e.g. from --debug-dir); call before symbolising.
  // Empties the cache when they change.
  static void set_debug_dirs(const std::vector<std::string>& dirs);
  // The directories last given to set_debug_dirs().
  static std::vector<std::string> debug_dirs();

  const std::string& path() const { return path_; }
  // The GNU build-id in hex, or "" when the file has none.
  const std::string& build_id() const { return build_id_; }
  // The separate debug file whose symbols were merged in, or "" when none was.
  const std::string& debug_file() const { return debug_file_; }
  // Why a debug file that was found was not used ("" when none was refused).
  const std::string& debug_file_refused() const { return debug_refused_; }
  bool is_shared_or_pie() const { return type_dyn_; }
  bool has_interpreter() const { return has_interp_; }
  const std::vector<LoadSegment>& segments() const { return segments_; }

  // The symbol containing `vaddr` (or starting exactly at it when its size is 0).
  const ElfSymbol* symbol_at(uint64_t vaddr, bool functions) const;
  // Every defined symbol named `name` (several symbol versions may have distinct addresses). The
  // file's own symbols when it has some of that name, else the debug file's.
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
  std::vector<ElfSymbol> all_;  // the file's own symbols, then the debug file's
  std::string build_id_, debug_file_, debug_refused_;
  void load(const std::vector<std::string>& debug_dirs);
  void merge_debug_file(::Elf* elf, const std::vector<std::string>& debug_dirs);
};

}  // namespace lockkit
