#include "core/elf.h"

#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <set>
#include <tuple>

#include "core/util.h"

namespace lockkit {

namespace {

struct FdCloser {
  int fd;
  ~FdCloser() { if (fd >= 0) ::close(fd); }
};

const ElfSymbol* find_containing(const std::vector<ElfSymbol>& v, uint64_t addr) {
  // Last symbol starting at or below addr, then walk back over same-address aliases.
  auto it = std::upper_bound(v.begin(), v.end(), addr,
                             [](uint64_t a, const ElfSymbol& s) { return a < s.addr; });
  while (it != v.begin()) {
    --it;
    if (addr < it->addr) continue;
    if (addr == it->addr || addr < it->addr + it->size) return &*it;
    // A preceding sized symbol does not cover addr: stop looking further back
    // once we are below symbols that could possibly cover it.
    if (it->addr + (1ull << 20) < addr) break;
  }
  return nullptr;
}

// Appends the defined function and data symbols of `elf`'s symbol tables (.symtab, and .dynsym
// when `dynamic`) to `out`, skipping (name, address) pairs already in `seen`.
void read_symbols(Elf* elf, bool dynamic, std::set<std::pair<std::string, uint64_t>>& seen,
                  std::vector<ElfSymbol>& out) {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr) continue;
    if (sh.sh_type != SHT_SYMTAB && !(dynamic && sh.sh_type == SHT_DYNSYM)) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr || sh.sh_entsize == 0) continue;
    size_t count = sh.sh_size / sh.sh_entsize;
    for (size_t i = 0; i < count; i++) {
      GElf_Sym sym;
      if (gelf_getsym(data, int(i), &sym) == nullptr) continue;
      if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
      int type = GELF_ST_TYPE(sym.st_info);
      bool fn = type == STT_FUNC || type == STT_GNU_IFUNC;
      if (!fn && type != STT_OBJECT && type != STT_TLS) continue;
      const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
      if (name == nullptr || *name == '\0') continue;
      if (!seen.insert({name, sym.st_value}).second) continue;
      out.push_back({name, sym.st_value, sym.st_size, fn});
    }
  }
}

std::vector<std::tuple<uint64_t, uint64_t, uint32_t>> load_segments(Elf* elf) {
  std::vector<std::tuple<uint64_t, uint64_t, uint32_t>> out;
  size_t n = 0;
  if (elf_getphdrnum(elf, &n) != 0) return out;
  for (size_t i = 0; i < n; i++) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, int(i), &ph) != nullptr && ph.p_type == PT_LOAD)
      out.emplace_back(ph.p_vaddr, ph.p_memsz, ph.p_flags);
  }
  return out;
}

// Allocated sections by name -> linked address.
std::map<std::string, uint64_t> section_addresses(Elf* elf) {
  std::map<std::string, uint64_t> out;
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return out;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr || !(sh.sh_flags & SHF_ALLOC)) continue;
    const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
    if (name != nullptr && *name != '\0') out.emplace(name, sh.sh_addr);
  }
  return out;
}

std::string hex_build_id(Elf* elf) {
  const void* bits = nullptr;
  ssize_t n = dwelf_elf_gnu_build_id(elf, &bits);
  std::string out;
  for (ssize_t i = 0; i < n; i++) out += fmt::format("{:02x}", static_cast<const unsigned char*>(bits)[i]);
  return out;
}

// Why the debug file `debug` cannot describe `main`'s addresses, or "" when it can: its symbols
// must use the same link-time addresses (same build-id when both have one, same load segments,
// same addresses of the allocated sections both have).
std::string debug_mismatch(Elf* main, Elf* debug) {
  std::string a = hex_build_id(main), b = hex_build_id(debug);
  if (!a.empty() && a != b) return b.empty() ? "it has no build-id" : "its build-id differs";
  if (load_segments(main) != load_segments(debug)) return "its load segments differ";
  auto mine = section_addresses(main);
  for (auto& [name, addr] : section_addresses(debug)) {
    auto it = mine.find(name);
    if (it != mine.end() && it->second != addr) return "its section " + name + " is at another address";
  }
  return "";
}

std::mutex& cache_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, std::shared_ptr<const ElfFile>>& cache() {
  static std::map<std::string, std::shared_ptr<const ElfFile>> c;
  return c;
}
std::vector<std::string>& cached_debug_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

}  // namespace

std::shared_ptr<const ElfFile> ElfFile::open(const std::string& path, const std::vector<std::string>& debug_dirs) {
  auto f = std::shared_ptr<ElfFile>(new ElfFile());
  f->path_ = path;
  f->load(debug_dirs);
  return f;
}

std::shared_ptr<const ElfFile> ElfFile::open_cached(const std::string& path) {
  std::lock_guard<std::mutex> lock(cache_mutex());
  auto it = cache().find(path);
  if (it != cache().end()) return it->second;
  auto f = open(path, cached_debug_dirs());
  cache()[path] = f;
  return f;
}

std::vector<std::string> ElfFile::debug_dirs() {
  std::lock_guard<std::mutex> lock(cache_mutex());
  return cached_debug_dirs();
}

void ElfFile::set_debug_dirs(const std::vector<std::string>& dirs) {
  std::lock_guard<std::mutex> lock(cache_mutex());
  if (dirs == cached_debug_dirs()) return;
  cached_debug_dirs() = dirs;
  cache().clear();
}

void ElfFile::load(const std::vector<std::string>& debug_dirs) {
  if (elf_version(EV_CURRENT) == EV_NONE) throw ToolError("libelf initialisation failed");
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ToolError(path_ + ": " + errno_text(errno));
  FdCloser closer{fd};
  Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
  if (elf == nullptr || elf_kind(elf) != ELF_K_ELF) {
    if (elf) elf_end(elf);
    throw ToolError(path_ + ": not an ELF file");
  }
  GElf_Ehdr ehdr;
  if (gelf_getehdr(elf, &ehdr) == nullptr) {
    elf_end(elf);
    throw ToolError(path_ + ": unreadable ELF header");
  }
  type_dyn_ = ehdr.e_type == ET_DYN;
  size_t nphdr = 0;
  elf_getphdrnum(elf, &nphdr);
  for (size_t i = 0; i < nphdr; i++) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, int(i), &ph) == nullptr) continue;
    if (ph.p_type == PT_INTERP) has_interp_ = true;
    if (ph.p_type == PT_LOAD)
      segments_.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset, ph.p_filesz, (ph.p_flags & PF_X) != 0});
  }
  build_id_ = hex_build_id(elf);
  std::set<std::pair<std::string, uint64_t>> seen;
  read_symbols(elf, true, seen, all_);
  merge_debug_file(elf, debug_dirs);
  elf_end(elf);
  for (size_t i = 0; i < all_.size(); i++) {
    by_name_.emplace(all_[i].name, i);
    (all_[i].is_function ? functions_ : objects_).push_back(all_[i]);
  }
  auto by_addr = [](const ElfSymbol& a, const ElfSymbol& b) {
    // Among aliases (the last one wins) prefer sized symbols, then the file's own (exported) names
    // over the debug file's local ones (_rtld_global, not _rtld_local), then shorter names.
    if (a.addr != b.addr) return a.addr < b.addr;
    if (a.size != b.size) return a.size < b.size;
    if (a.from_debug_file != b.from_debug_file) return a.from_debug_file;
    return a.name.size() > b.name.size();
  };
  std::sort(functions_.begin(), functions_.end(), by_addr);
  std::sort(objects_.begin(), objects_.end(), by_addr);
}

void ElfFile::merge_debug_file(Elf* elf, const std::vector<std::string>& debug_dirs) {
  // Without a build-id or a debuglink CRC nothing could vouch for a file found by name.
  GElf_Word crc = 0;
  const char* link = dwelf_elf_gnu_debuglink(elf, &crc);
  if (build_id_.empty() && (link == nullptr || crc == 0)) return;
  // libdwfl's search path: the user's directories (absolute: build-id and debuglink under them),
  // then "" (beside the file), ".debug" (a subdirectory beside it) and the system directory.
  std::string search;
  for (auto& d : debug_dirs) search += d + ":";
  search += ":.debug:/usr/lib/debug";
  char* search_c = search.data();
  Dwfl_Callbacks cb{};
  cb.find_elf = dwfl_build_id_find_elf;
  cb.find_debuginfo = dwfl_standard_find_debuginfo;
  cb.section_address = dwfl_offline_section_address;
  cb.debuginfo_path = &search_c;
  Dwfl* dwfl = dwfl_begin(&cb);
  if (dwfl == nullptr) return;
  std::string abs = absolute_path(path_);
  dwfl_report_begin(dwfl);
  // Linked addresses (base 0, no p_vaddr added): the module's addresses are the file's own.
  Dwfl_Module* mod = dwfl_report_elf(dwfl, abs.c_str(), abs.c_str(), -1, 0, false);
  dwfl_report_end(dwfl, nullptr, nullptr);
  // Asking for the symbol table makes libdwfl look for the debug file (a file with its own .symtab
  // needs none): by build-id first, then by the debuglink name, checking the build-id (or else the
  // CRC). libdwfl owns what it opens; we read the file it names on our own descriptor.
  std::string found;
  if (mod != nullptr && dwfl_module_getsymtab(mod) >= 0) {
    const char* debugfile = nullptr;
    dwfl_module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, &debugfile);
    if (debugfile != nullptr) found = debugfile;
  }
  dwfl_end(dwfl);
  if (found.empty()) return;

  int fd = ::open(found.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  FdCloser closer{fd};
  Elf* debug = elf_begin(fd, ELF_C_READ, nullptr);
  if (debug == nullptr) return;
  if (elf_kind(debug) == ELF_K_ELF) {
    std::string why = debug_mismatch(elf, debug);
    if (why.empty()) {
      std::set<std::pair<std::string, uint64_t>> seen;
      for (auto& sym : all_) seen.insert({sym.name, sym.addr});
      size_t first = all_.size();
      read_symbols(debug, false, seen, all_);
      for (size_t i = first; i < all_.size(); i++) all_[i].from_debug_file = true;
      debug_file_ = found;
    } else {
      debug_refused_ = found + ": " + why;
    }
  }
  elf_end(debug);
}

const ElfSymbol* ElfFile::symbol_at(uint64_t vaddr, bool functions) const {
  return find_containing(functions ? functions_ : objects_, vaddr);
}

std::vector<ElfSymbol> ElfFile::find(const std::string& name) const {
  std::vector<ElfSymbol> own, debug;
  auto range = by_name_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it)
    (all_[it->second].from_debug_file ? debug : own).push_back(all_[it->second]);
  std::vector<ElfSymbol> out = own.empty() ? debug : own;
  std::sort(out.begin(), out.end(), [](const ElfSymbol& a, const ElfSymbol& b) { return a.addr < b.addr; });
  return out;
}

uint64_t ElfFile::min_vaddr() const {
  uint64_t v = UINT64_MAX;
  for (auto& s : segments_) v = std::min(v, s.vaddr);
  return segments_.empty() ? 0 : v;
}

uint64_t ElfFile::max_vaddr() const {
  uint64_t v = 0;
  for (auto& s : segments_) v = std::max(v, s.vaddr + s.memsz);
  return v;
}

bool ElfFile::is_code(uint64_t vaddr) const {
  for (auto& s : segments_)
    if (s.executable && vaddr >= s.vaddr && vaddr < s.vaddr + s.memsz) return true;
  return false;
}

bool ElfFile::offset_to_vaddr(uint64_t offset, uint64_t* vaddr) const {
  for (auto& s : segments_) {
    uint64_t page_start = s.offset & ~uint64_t(0xfff);
    if (offset >= page_start && offset < s.offset + std::max(s.filesz, uint64_t(1))) {
      *vaddr = s.vaddr + offset - s.offset;  // may precede s.vaddr by the page remainder
      return true;
    }
  }
  return false;
}

}  // namespace lockkit
