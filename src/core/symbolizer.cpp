#include "core/symbolizer.h"

#include <fmt/format.h>

#include <sstream>

#include "core/process.h"
#include "core/util.h"

namespace lockkit {

std::string format_frame(const Frame& f) {
  if (f.resolved())
    return f.module.empty() ? fmt::format("{}+{:#x}", f.function, f.offset)
                            : fmt::format("{}+{:#x} [{}]", f.function, f.offset, f.module);
  if (!f.module.empty()) return fmt::format("[unknown] [{}+{:#x}]", f.module, f.offset);
  return fmt::format("[unknown] {:#x}", f.addr);
}

std::string frame_name(const Frame& f) { return f.resolved() ? f.function : "[unknown]"; }

std::vector<uint64_t> restore_caller(const std::vector<uint64_t>& ips, uint64_t caller,
                                     const std::function<bool(uint64_t)>& is_code) {
  if (ips.empty() || caller == 0 || caller == ips[0]) return ips;
  if (ips.size() >= 2 && ips[1] == caller) return ips;
  if (is_code && !is_code(caller)) return ips;
  std::vector<uint64_t> out;
  out.reserve(ips.size() + 1);
  out.push_back(ips[0]);
  out.push_back(caller);
  out.insert(out.end(), ips.begin() + 1, ips.end());
  return out;
}

std::vector<MappedModule> modules_from_maps(const std::string& maps_text, const std::string& root) {
  std::vector<MappedModule> out;
  std::istringstream in(maps_text);
  std::string line;
  while (std::getline(in, line)) {
    // start-end perms offset dev inode path
    std::istringstream ls(line);
    std::string range, perms, offset, dev, inode, path;
    if (!(ls >> range >> perms >> offset >> dev >> inode)) continue;
    std::getline(ls, path);
    path = trim(path);
    if (path.empty() || path[0] != '/' || inode == "0") continue;
    if (ends_with(path, " (deleted)")) continue;
    auto dash = range.find('-');
    if (dash == std::string::npos) continue;
    uint64_t start = std::stoull(range.substr(0, dash), nullptr, 16);
    uint64_t off = std::stoull(offset, nullptr, 16);
    bool known = false;
    for (auto& m : out)
      if (m.path == path) known = true;
    if (known) continue;  // the first mapping of a file fixes its bias
    if (auto m = module_from_mapping(path, start, off, root)) out.push_back(std::move(*m));
  }
  return out;
}

std::optional<MappedModule> module_from_mapping(const std::string& path, uint64_t start, uint64_t file_offset,
                                                const std::string& root) {
  std::shared_ptr<const ElfFile> elf;
  try {
    elf = ElfFile::open_cached(root + path);
  } catch (const ToolError&) {
    return std::nullopt;  // not ELF (locale archives, fonts, ...), or gone
  }
  uint64_t vaddr = 0;
  if (!elf->offset_to_vaddr(file_offset, &vaddr)) return std::nullopt;
  MappedModule m;
  m.path = path;
  m.elf = elf;
  m.bias = elf->is_shared_or_pie() ? start - vaddr : 0;
  m.lo = elf->min_vaddr() + m.bias;
  m.hi = elf->max_vaddr() + m.bias;
  return m;
}

namespace {
std::function<void(pid_t, const MappedModule&)>& module_listener() {
  static std::function<void(pid_t, const MappedModule&)> l;
  return l;
}
}  // namespace

void set_module_listener(std::function<void(pid_t, const MappedModule&)> listener) {
  module_listener() = std::move(listener);
}

ProcessSymbolizer::ProcessSymbolizer(pid_t pid) : pid_(pid) {}

bool ProcessSymbolizer::refresh() {
  auto text = read_file(fmt::format("/proc/{}/maps", pid_));
  if (!text || text->empty()) return false;
  if (*text == last_maps_) return true;
  last_maps_ = *text;
  add_modules(modules_from_maps(*text, process_root(pid_)));
  // Executable mappings of any kind (JIT code is anonymous): where a return address may point.
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string range, perms;
    if (!(ls >> range >> perms) || perms.size() < 3 || perms[2] != 'x') continue;
    auto dash = range.find('-');
    if (dash == std::string::npos) continue;
    uint64_t lo = std::stoull(range.substr(0, dash), nullptr, 16), hi = std::stoull(range.substr(dash + 1), nullptr, 16);
    exec_ranges_.emplace(lo, hi);
  }
  return true;
}

void ProcessSymbolizer::add_modules(const std::vector<MappedModule>& mods) {
  for (auto it = mods.rbegin(); it != mods.rend(); ++it) {
    bool dup = false;
    for (auto& m : modules_)
      if (m->path == it->path && m->bias == it->bias) dup = true;
    if (dup) continue;
    modules_.insert(modules_.begin(), std::make_shared<const MappedModule>(*it));
    if (module_listener()) module_listener()(pid_, *it);
  }
}

void ProcessSymbolizer::inherit(const ProcessSymbolizer& parent) {
  std::vector<MappedModule> mods;
  for (auto& m : parent.modules_) mods.push_back(*m);  // newest first, as add_modules takes them
  add_modules(mods);
  exec_ranges_.insert(parent.exec_ranges_.begin(), parent.exec_ranges_.end());
}

const std::shared_ptr<const MappedModule>* ProcessSymbolizer::module_for(uint64_t addr) const {
  for (auto& m : modules_)
    if (addr >= m->lo && addr < m->hi) return &m;
  return nullptr;
}

Frame ProcessSymbolizer::resolve(uint64_t addr) const {
  Frame f;
  f.addr = addr;
  auto* mp = module_for(addr);
  if (mp == nullptr) return f;
  const MappedModule* m = mp->get();
  f.mapping = *mp;
  f.module = basename_of(m->path);
  uint64_t vaddr = addr - m->bias;
  f.offset = vaddr;
  if (const ElfSymbol* s = m->elf->symbol_at(vaddr, true)) {
    f.function = demangle(s->name);
    f.offset = vaddr - s->addr;
  }
  return f;
}

std::vector<Frame> resolve_return_addresses(const std::vector<uint64_t>& ips,
                                            const std::function<Frame(uint64_t)>& resolve) {
  std::vector<Frame> out;
  out.reserve(ips.size());
  for (size_t i = 0; i < ips.size(); i++) {
    if (i == 0) {
      out.push_back(resolve(ips[0]));
      continue;
    }
    Frame f = resolve(ips[i] - 1);
    f.addr = ips[i];
    f.offset += 1;
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<Frame> ProcessSymbolizer::resolve_stack(const std::vector<uint64_t>& ips) const {
  return resolve_return_addresses(ips, [this](uint64_t a) { return resolve(a); });
}

bool ProcessSymbolizer::maps(const std::string& path) const {
  for (auto& m : modules_)
    if (m->path == path) return true;
  return false;
}

bool ProcessSymbolizer::is_code(uint64_t addr) const {
  auto* m = module_for(addr);
  if (m != nullptr && (*m)->elf->is_code(addr - (*m)->bias)) return true;
  for (auto& [lo, hi] : exec_ranges_)
    if (addr >= lo && addr < hi) return true;
  return false;
}

std::optional<DataObject> ProcessSymbolizer::data_object(uint64_t addr) const {
  auto* mp = module_for(addr);
  if (mp == nullptr) return std::nullopt;
  const MappedModule* m = mp->get();
  const ElfSymbol* s = m->elf->symbol_at(addr - m->bias, false);
  if (s == nullptr) return std::nullopt;
  return DataObject{demangle(s->name), s->addr + m->bias, s->size};
}

std::string DataObject::name_at(uint64_t addr) const {
  return addr == start ? name : fmt::format("{}+{:#x}", name, addr - start);
}

std::optional<std::string> ProcessSymbolizer::data_symbol(uint64_t addr) const {
  auto o = data_object(addr);
  if (!o) return std::nullopt;
  return o->name_at(addr);
}

}  // namespace lockkit
