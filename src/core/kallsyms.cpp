#include "core/kallsyms.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <sstream>

#include "core/util.h"

namespace lockkit {

KernelSymbols KernelSymbols::load(const std::string& path) {
  auto text = read_file(path);
  if (!text) throw ToolError("cannot read " + path);
  KernelSymbols k = parse(*text);
  if (k.syms_.empty())
    throw ToolError(path + " shows no addresses (kernel.kptr_restrict?); run as root");
  return k;
}

KernelSymbols KernelSymbols::parse(const std::string& text) {
  KernelSymbols k;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string addr, type, name, module;
    if (!(ls >> addr >> type >> name)) continue;
    ls >> module;
    uint64_t a = std::stoull(addr, nullptr, 16);
    if (a == 0) continue;
    if (!module.empty() && module.front() == '[') module = module.substr(1, module.size() - 2);
    k.syms_.push_back({a, type.empty() ? '?' : type[0], name, module});
  }
  std::stable_sort(k.syms_.begin(), k.syms_.end(),
                   [](const Sym& a, const Sym& b) { return a.addr < b.addr; });
  return k;
}

const KernelSymbols::Sym* KernelSymbols::at_or_below(uint64_t addr) const {
  auto it = std::upper_bound(syms_.begin(), syms_.end(), addr,
                             [](uint64_t a, const Sym& s) { return a < s.addr; });
  if (it == syms_.begin()) return nullptr;
  return &*(it - 1);
}

Frame KernelSymbols::resolve(uint64_t addr) const {
  Frame f;
  f.addr = addr;
  const Sym* s = at_or_below(addr);
  // Beyond 1 MiB from the nearest symbol the address is not in the kernel image.
  if (s == nullptr || addr - s->addr > (1u << 20)) return f;
  f.function = s->name;
  f.offset = addr - s->addr;
  f.module = s->module;
  return f;
}

bool KernelSymbols::has_function(const std::string& name) const {
  for (auto& s : syms_) {
    char t = char(std::tolower(static_cast<unsigned char>(s.type)));
    if ((t == 't' || t == 'w') && s.name == name) return true;
  }
  return false;
}

std::optional<std::string> KernelSymbols::data_symbol(uint64_t addr) const {
  const Sym* s = at_or_below(addr);
  if (s == nullptr) return std::nullopt;
  char t = char(std::tolower(static_cast<unsigned char>(s->type)));
  if (t != 'd' && t != 'b' && t != 'r') return std::nullopt;
  // The next symbol bounds this object; beyond it the address belongs to something else.
  const Sym* next = s + 1;
  if (next < syms_.data() + syms_.size() && addr >= next->addr) return std::nullopt;
  uint64_t off = addr - s->addr;
  if (off > 4096) return std::nullopt;
  return off == 0 ? s->name : fmt::format("{}+{:#x}", s->name, off);
}

std::optional<uint64_t> KernelSymbols::address_of(const std::string& name) const {
  for (auto& s : syms_)
    if (s.name == name) return s.addr;
  return std::nullopt;
}

std::string build_id_from_notes(const std::string& notes) {
  // Elf_Nhdr: namesz, descsz, type (4 bytes each), then the name and the descriptor, each padded
  // to 4 bytes. A GNU build-id is type NT_GNU_BUILD_ID (3) of name "GNU".
  auto pad4 = [](uint64_t n) { return (n + 3) & ~uint64_t(3); };
  size_t pos = 0;
  while (pos + 12 <= notes.size()) {
    uint32_t hdr[3];
    std::memcpy(hdr, notes.data() + pos, sizeof(hdr));
    uint64_t name_at = pos + 12, desc_at = name_at + pad4(hdr[0]), next = desc_at + pad4(hdr[1]);
    if (next > notes.size()) return "";
    if (hdr[2] == 3 && hdr[0] == 4 && std::memcmp(notes.data() + name_at, "GNU", 4) == 0) {
      std::string hex;
      for (uint32_t i = 0; i < hdr[1]; i++) hex += fmt::format("{:02x}", uint8_t(notes[desc_at + i]));
      return hex;
    }
    pos = next;
  }
  return "";
}

std::shared_ptr<const MappedModule> kernel_image_module(const KernelSymbols& ksyms, const std::string& notes_path) {
  auto m = std::make_shared<MappedModule>();
  m->path = "[kernel.kallsyms]";
  auto lo = ksyms.address_of("_stext"), hi = ksyms.address_of("_etext");
  if (lo && hi && *lo < *hi) {
    m->lo = *lo;
    m->hi = *hi;
  }
  if (auto notes = read_file(notes_path)) m->build_id = build_id_from_notes(*notes);
  return m;
}

Frame kernel_profile_frame(Frame f, const std::shared_ptr<const MappedModule>& image) {
  if (!f.resolved()) return f;
  if (f.module.empty()) {
    f.mapping = image;
    f.module = image->path;
  } else if (f.module.front() != '[') {
    f.module = "[" + f.module + "]";
  }
  return f;
}

}  // namespace lockkit
