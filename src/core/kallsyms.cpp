#include "core/kallsyms.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
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

}  // namespace lockkit
