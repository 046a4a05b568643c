#include "core/pprof.h"

#include <elfutils/libdwfl.h>
#include <fmt/format.h>
#include <zlib.h>

#include <cstdlib>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "core/elf.h"
#include "core/util.h"
#include "profile.pb.h"

namespace lockkit {

namespace pb = perftools::profiles;

ProfileSample& ProfileSample::label(std::string key, std::string value) {
  ProfileLabel l;
  l.key = std::move(key);
  l.str = std::move(value);
  labels.push_back(std::move(l));
  return *this;
}

ProfileSample& ProfileSample::label(std::string key, int64_t value, std::string unit) {
  ProfileLabel l;
  l.key = std::move(key);
  l.num = value;
  l.unit = std::move(unit);
  l.numeric = true;
  labels.push_back(std::move(l));
  return *this;
}

const std::vector<std::string>& StackFrameIndex::add(const std::vector<std::string>& text,
                                                     const std::vector<Frame>& frames) {
  return index_.emplace(text, frames).first->first;
}

std::vector<Frame> StackFrameIndex::frames(const std::vector<std::string>& text) const {
  auto it = index_.find(text);
  if (it != index_.end()) return it->second;
  std::vector<Frame> out;
  for (auto& t : text) out.push_back(named_frame(t));
  return out;
}

Frame named_frame(std::string function, std::string module) {
  Frame f;
  f.function = std::move(function);
  f.module = std::move(module);
  return f;
}

namespace {
std::string real_path(const std::string& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (r == nullptr) return p;
  std::string out(r);
  free(r);
  return out;
}
}  // namespace

int64_t wall_clock_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

namespace {

// Source file and line of code addresses, from the DWARF of a module or of its separate debug file
// (found by libdwfl by build-id or debuglink, in the user's debug directories first).
class SourceLines {
 public:
  ~SourceLines() {
    for (auto& [path, d] : dwfls_)
      if (d.dwfl) dwfl_end(d.dwfl);
  }
  // `vaddr` is a linked address of the file at `path`. False when no line information covers it.
  bool lookup(const std::string& path, uint64_t vaddr, std::string* file, int64_t* line) {
    Dwfl_Module* mod = module(path);
    if (mod == nullptr) return false;
    Dwfl_Line* l = dwfl_module_getsrc(mod, vaddr);
    if (l == nullptr) return false;
    int lineno = 0;
    const char* src = dwfl_lineinfo(l, nullptr, &lineno, nullptr, nullptr, nullptr);
    if (src == nullptr) return false;
    *file = src;
    *line = lineno;
    return true;
  }

 private:
  struct Entry {
    Dwfl* dwfl = nullptr;
    Dwfl_Module* mod = nullptr;
    std::string search;
    char* search_c = nullptr;
    Dwfl_Callbacks cb{};
  };
  Dwfl_Module* module(const std::string& path) {
    auto it = dwfls_.find(path);
    if (it != dwfls_.end()) return it->second.mod;
    Entry& e = dwfls_[path];
    for (auto& d : ElfFile::debug_dirs()) e.search += d + ":";
    e.search += ":.debug:/usr/lib/debug";
    e.search_c = e.search.data();
    e.cb.find_elf = dwfl_build_id_find_elf;
    e.cb.find_debuginfo = dwfl_standard_find_debuginfo;
    e.cb.section_address = dwfl_offline_section_address;
    e.cb.debuginfo_path = &e.search_c;
    e.dwfl = dwfl_begin(&e.cb);
    if (e.dwfl == nullptr) return nullptr;
    std::string abs = absolute_path(path);
    dwfl_report_begin(e.dwfl);
    // Base 0 without p_vaddr: the module's addresses are the file's linked addresses.
    e.mod = dwfl_report_elf(e.dwfl, abs.c_str(), abs.c_str(), -1, 0, false);
    dwfl_report_end(e.dwfl, nullptr, nullptr);
    return e.mod;
  }
  // Entries hold pointers into themselves: a map never moves its values.
  std::map<std::string, Entry> dwfls_;
};

class Builder {
 public:
  explicit Builder(pb::Profile& out) : p_(out) { str(""); }

  int64_t str(const std::string& s) {
    auto it = strings_.find(s);
    if (it != strings_.end()) return it->second;
    int64_t i = int64_t(strings_.size());
    strings_.emplace(s, i);
    p_.add_string_table(s);
    return i;
  }

  // The location of a frame; every frame of a stack but the leaf is a return address.
  uint64_t location(const Frame& f, bool return_address) {
    uint64_t mapping = mapping_id(f);
    auto key = std::make_tuple(mapping, f.addr, f.function, f.module);
    auto it = locations_.find(key);
    if (it != locations_.end()) return it->second;
    pb::Location* loc = p_.add_location();
    uint64_t id = uint64_t(p_.location_size());
    loc->set_id(id);
    loc->set_mapping_id(mapping);
    loc->set_address(f.addr);
    if (f.resolved()) {
      std::string file;
      int64_t line = 0;
      if (f.mapping && f.mapping->elf && f.addr) {
        // A return address points after its call: the call's line is at addr-1.
        uint64_t vaddr = f.addr - f.mapping->bias - (return_address ? 1 : 0);
        if (lines_.lookup(f.mapping->elf->path(), vaddr, &file, &line)) mappings_with_lines_.insert(mapping);
      }
      pb::Line* l = loc->add_line();
      l->set_function_id(function_id(f.function, file));
      l->set_line(line);
      if (mapping) mappings_with_functions_.insert(mapping);
    }
    locations_.emplace(key, id);
    return id;
  }

  // A module of a process: its runtime range, the file offset at its start and its build-id. A
  // frame without one but with a module name (a kernel module, "[kernel.kallsyms]") gets a mapping
  // of that name and no range.
  uint64_t mapping_id(const Frame& f) {
    std::tuple<std::string, uint64_t, uint64_t> key;
    const MappedModule* m = f.mapping.get();
    if (m != nullptr)
      key = {m->path, m->lo, m->hi};
    else if (!f.module.empty())
      key = {f.module, 0, 0};
    else
      return 0;
    auto it = mappings_.find(key);
    if (it != mappings_.end()) return it->second;
    pb::Mapping* pm = p_.add_mapping();
    uint64_t id = uint64_t(p_.mapping_size());
    pm->set_id(id);
    if (m != nullptr) {
      pm->set_memory_start(m->lo);
      pm->set_memory_limit(m->hi);
      pm->set_filename(str(m->path));
      if (m->elf) {
        pm->set_build_id(str(m->elf->build_id()));
        // The file offset of the lowest load segment's start (memory_start maps it).
        uint64_t lowest = UINT64_MAX, off = 0;
        for (auto& s : m->elf->segments())
          if (s.vaddr < lowest) {
            lowest = s.vaddr;
            off = s.offset;
          }
        if (lowest != UINT64_MAX) pm->set_file_offset(off);
      } else if (!m->build_id.empty()) {
        pm->set_build_id(str(m->build_id));
      }
    } else {
      pm->set_filename(str(f.module));
    }
    mappings_.emplace(key, id);
    return id;
  }

  void finish_mappings() {
    for (auto& m : *p_.mutable_mapping()) {
      m.set_has_functions(mappings_with_functions_.count(m.id()) > 0);
      bool lines = mappings_with_lines_.count(m.id()) > 0;
      m.set_has_filenames(lines);
      m.set_has_line_numbers(lines);
    }
  }

 private:
  uint64_t function_id(const std::string& name, const std::string& file) {
    auto key = std::make_pair(name, file);
    auto it = functions_.find(key);
    if (it != functions_.end()) return it->second;
    pb::Function* fn = p_.add_function();
    uint64_t id = uint64_t(p_.function_size());
    fn->set_id(id);
    fn->set_name(str(name));
    fn->set_system_name(str(name));
    fn->set_filename(str(file));
    functions_.emplace(key, id);
    return id;
  }

 private:
  pb::Profile& p_;
  std::map<std::string, int64_t> strings_;
  std::map<std::tuple<uint64_t, uint64_t, std::string, std::string>, uint64_t> locations_;
  std::map<std::pair<std::string, std::string>, uint64_t> functions_;
  std::map<std::tuple<std::string, uint64_t, uint64_t>, uint64_t> mappings_;
  std::set<uint64_t> mappings_with_functions_, mappings_with_lines_;
  SourceLines lines_;
};

}  // namespace

std::string encode_profile(const ProfileData& d) {
  pb::Profile p;
  Builder b(p);
  // pprof takes the first mapping for the main program (its name heads every report).
  if (!d.main_binary.empty()) {
    std::string main = real_path(d.main_binary);
    std::set<const MappedModule*> seen;
    for (auto& s : d.samples)
      for (auto& f : s.frames)
        if (f.mapping && seen.insert(f.mapping.get()).second &&
            (f.mapping->path == d.main_binary || real_path(f.mapping->path) == main))
          b.mapping_id(f);
  }
  for (auto& t : d.sample_types) {
    pb::ValueType* vt = p.add_sample_type();
    vt->set_type(b.str(t.type));
    vt->set_unit(b.str(t.unit));
  }
  for (auto& s : d.samples) {
    if (s.values.size() != d.sample_types.size())
      throw ToolError(fmt::format("profile sample with {} values for {} sample types", s.values.size(),
                                  d.sample_types.size()));
    pb::Sample* ps = p.add_sample();
    for (size_t i = 0; i < s.frames.size(); i++) ps->add_location_id(b.location(s.frames[i], i > 0));
    for (int64_t v : s.values) ps->add_value(v);
    for (auto& l : s.labels) {
      pb::Label* pl = ps->add_label();
      pl->set_key(b.str(l.key));
      if (l.numeric) {
        pl->set_num(l.num);
        if (!l.unit.empty()) pl->set_num_unit(b.str(l.unit));
      } else {
        pl->set_str(b.str(l.str));
      }
    }
  }
  b.finish_mappings();
  p.set_time_nanos(d.time_nanos);
  p.set_duration_nanos(d.duration_nanos);
  for (auto& c : d.comments) p.add_comment(b.str(c));
  if (!d.default_sample_type.empty()) p.set_default_sample_type(b.str(d.default_sample_type));
  std::string out;
  if (!p.SerializeToString(&out)) throw ToolError("cannot encode the profile");
  return out;
}

std::string gzip_bytes(const std::string& data) {
  z_stream z{};
  // windowBits 15 + 16: a gzip header and trailer around the deflate stream.
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw ToolError("cannot compress the profile: zlib failed to start");
  std::string out(deflateBound(&z, uLong(data.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = uInt(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  int rc = deflate(&z, Z_FINISH);
  size_t n = out.size() - z.avail_out;
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw ToolError("cannot compress the profile: zlib error");
  out.resize(n);
  return out;
}

void write_profile(OutputFile& out, const ProfileData& p) {
  std::string bytes = gzip_bytes(encode_profile(p));
  out.stream().write(bytes.data(), std::streamsize(bytes.size()));
  out.commit();
}

}  // namespace lockkit
