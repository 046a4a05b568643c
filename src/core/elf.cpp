#include "core/elf.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>
#include <set>

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

}  // namespace

std::shared_ptr<const ElfFile> ElfFile::open(const std::string& path) {
  auto f = std::shared_ptr<ElfFile>(new ElfFile());
  f->path_ = path;
  f->load();
  return f;
}

std::shared_ptr<const ElfFile> ElfFile::open_cached(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const ElfFile>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  auto f = open(path);
  cache[path] = f;
  return f;
}

void ElfFile::load() {
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
  std::set<std::pair<std::string, uint64_t>> seen;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr) continue;
    if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) continue;
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
      all_.push_back({name, sym.st_value, sym.st_size, fn});
    }
  }
  elf_end(elf);
  for (size_t i = 0; i < all_.size(); i++) {
    by_name_.emplace(all_[i].name, i);
    (all_[i].is_function ? functions_ : objects_).push_back(all_[i]);
  }
  auto by_addr = [](const ElfSymbol& a, const ElfSymbol& b) {
    // Prefer sized symbols and global-looking names among aliases.
    if (a.addr != b.addr) return a.addr < b.addr;
    if (a.size != b.size) return a.size < b.size;
    return a.name.size() > b.name.size();
  };
  std::sort(functions_.begin(), functions_.end(), by_addr);
  std::sort(objects_.begin(), objects_.end(), by_addr);
}

const ElfSymbol* ElfFile::symbol_at(uint64_t vaddr, bool functions) const {
  return find_containing(functions ? functions_ : objects_, vaddr);
}

std::vector<ElfSymbol> ElfFile::find(const std::string& name) const {
  std::vector<ElfSymbol> out;
  auto range = by_name_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(all_[it->second]);
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
