#include "core/unwind.h"

#include <bcc/libbpf.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/elf.h"
#include "core/process.h"
#include "core/session.h"
#include "core/symbolizer.h"
#include "core/util.h"

namespace lockkit {

namespace {

// DWARF register numbers on x86-64.
constexpr int kRegRbp = 6, kRegRsp = 7, kRegRip = 16;

struct ElfHandle {
  int fd = -1;
  Elf* elf = nullptr;
  explicit ElfHandle(const std::string& path) {
    if (elf_version(EV_CURRENT) == EV_NONE) throw ToolError("libelf initialisation failed");
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ToolError(path + ": " + errno_text(errno));
    elf = elf_begin(fd, ELF_C_READ, nullptr);
    if (elf == nullptr || elf_kind(elf) != ELF_K_ELF) {
      this->~ElfHandle();
      throw ToolError(path + ": not an ELF file");
    }
  }
  ~ElfHandle() {
    if (elf) elf_end(elf);
    if (fd >= 0) ::close(fd);
    elf = nullptr;
    fd = -1;
  }
  ElfHandle(const ElfHandle&) = delete;
  ElfHandle& operator=(const ElfHandle&) = delete;
};

Elf_Scn* section_named(Elf* elf, const char* name, GElf_Shdr* sh) {
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf, &shstrndx) != 0) return nullptr;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    if (gelf_getshdr(scn, sh) == nullptr) continue;
    const char* n = elf_strptr(elf, shstrndx, sh->sh_name);
    if (n != nullptr && std::strcmp(n, name) == 0) return scn;
  }
  return nullptr;
}

int32_t read_s32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The start addresses of every FDE, from .eh_frame_hdr's sorted search table (the linker writes it
// for every x86-64 program and library).
std::vector<uint64_t> eh_frame_hdr_starts(Elf* elf, const std::string& path) {
  GElf_Shdr sh;
  Elf_Scn* scn = section_named(elf, ".eh_frame_hdr", &sh);
  if (scn == nullptr) throw ToolError(path + ": no .eh_frame_hdr");
  Elf_Data* d = elf_getdata(scn, nullptr);
  if (d == nullptr || d->d_buf == nullptr || d->d_size < 12) throw ToolError(path + ": unreadable .eh_frame_hdr");
  auto* p = static_cast<const uint8_t*>(d->d_buf);
  // version 1; eh_frame_ptr encoding; fde_count encoding (udata4); table encoding (datarel sdata4).
  if (p[0] != 1 || p[2] != DW_EH_PE_udata4 || p[3] != (DW_EH_PE_datarel | DW_EH_PE_sdata4))
    throw ToolError(fmt::format("{}: .eh_frame_hdr encoding {:#x}/{:#x} not supported", path, p[2], p[3]));
  size_t ptr_size = (p[1] & 0x0f) == DW_EH_PE_sdata4 || (p[1] & 0x0f) == DW_EH_PE_udata4 ? 4 : 8;
  size_t at = 4 + ptr_size;
  if (d->d_size < at + 4) throw ToolError(path + ": truncated .eh_frame_hdr");
  uint32_t count;
  std::memcpy(&count, p + at, 4);
  at += 4;
  if (d->d_size < at + size_t(count) * 8) throw ToolError(path + ": truncated .eh_frame_hdr table");
  std::vector<uint64_t> out;
  out.reserve(count);
  for (uint32_t i = 0; i < count; i++) out.push_back(sh.sh_addr + int64_t(read_s32(p + at + 8 * size_t(i))));
  return out;
}

// FDE start addresses of a .debug_frame (absolute 8-byte addresses).
std::vector<uint64_t> debug_frame_starts(Elf* elf, const std::string& path) {
  GElf_Shdr sh;
  Elf_Scn* scn = section_named(elf, ".debug_frame", &sh);
  if (scn == nullptr) throw ToolError(path + ": no .debug_frame");
  Elf_Data* d = elf_getdata(scn, nullptr);
  if (d == nullptr) throw ToolError(path + ": unreadable .debug_frame");
  const unsigned char* ident = reinterpret_cast<const unsigned char*>(elf_getident(elf, nullptr));
  std::vector<uint64_t> out;
  Dwarf_Off off = 0, next = 0;
  Dwarf_CFI_Entry e;
  while (dwarf_next_cfi(ident, d, false, off, &next, &e) == 0) {
    if (!dwarf_cfi_cie_p(&e) && e.fde.start + 8 <= e.fde.end) {
      uint64_t start;
      std::memcpy(&start, e.fde.start, 8);
      out.push_back(start);
    }
    off = next;
  }
  return out;
}

// Whether `op` is "register `reg` + offset" (DW_OP_bregN, or DW_OP_bregx as libdw spells a CFA
// rule); the offset goes to *off.
bool is_breg(const Dwarf_Op& op, int reg, int64_t* off = nullptr) {
  int64_t o = 0;
  if (op.atom == DW_OP_breg0 + reg) {
    o = int64_t(op.number);
  } else if (op.atom == DW_OP_bregx && op.number == uint64_t(reg)) {
    o = int64_t(op.number2);
  } else {
    return false;
  }
  if (off) *off = o;
  return true;
}

// "CFA + n" as libdw spells a register saved at an offset from the CFA.
bool cfa_offset(const Dwarf_Op* ops, size_t nops, int64_t* off) {
  if (nops == 1 && ops[0].atom == DW_OP_call_frame_cfa) {
    *off = 0;
    return true;
  }
  if (nops == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst) {
    *off = int64_t(ops[1].number);
    return true;
  }
  if (nops == 3 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_consts && ops[2].atom == DW_OP_plus) {
    *off = int64_t(ops[1].number);
    return true;
  }
  return false;
}

// The row for the frame state `f`; LK_CFA_NONE when BPF could not follow it.
lk_unwind_row convert(Dwarf_Frame* f) {
  lk_unwind_row r{};
  r.cfa = LK_CFA_NONE;
  Dwarf_Op mem[3];
  Dwarf_Op* ops = nullptr;
  size_t nops = 0;
  // The return address: undefined in the outermost frame, else at CFA - 8.
  if (dwarf_frame_register(f, kRegRip, mem, &ops, &nops) != 0) return r;
  if (nops == 0 && ops == mem) {
    r.cfa = LK_CFA_END;
    return r;
  }
  int64_t ra_off = 0;
  if (!cfa_offset(ops, nops, &ra_off) || ra_off != -8) return r;
  // The caller's rbp.
  if (dwarf_frame_register(f, kRegRbp, mem, &ops, &nops) != 0) return r;
  int64_t bp_off = 0;
  if (nops == 0 && ops == nullptr) {
    r.rbp = LK_RBP_SAME;
  } else if (cfa_offset(ops, nops, &bp_off) && bp_off >= INT32_MIN && bp_off <= INT32_MAX) {
    r.rbp = LK_RBP_AT_CFA;
    r.rbp_off = int32_t(bp_off);
  } else {
    r.rbp = LK_RBP_UNKNOWN;
  }
  // The CFA.
  if (dwarf_frame_cfa(f, &ops, &nops) != 0 || nops == 0) return r;
  int64_t off = 0;
  if (nops == 1 && (is_breg(ops[0], kRegRsp, &off) || is_breg(ops[0], kRegRbp, &off))) {
    if (off < INT32_MIN || off > INT32_MAX) return r;
    r.cfa = is_breg(ops[0], kRegRsp) ? LK_CFA_RSP : LK_CFA_RBP;
    r.cfa_off = int32_t(off);
    return r;
  }
  // The PLT's expression: rsp + 8 + ((rip & 15) >= N) << 3.
  if (nops == 9 && is_breg(ops[0], kRegRsp, &off) && off == 8 && is_breg(ops[1], kRegRip) &&
      ops[2].atom == DW_OP_lit15 && ops[3].atom == DW_OP_and && ops[4].atom >= DW_OP_lit0 &&
      ops[4].atom <= DW_OP_lit31 && ops[5].atom == DW_OP_ge && ops[6].atom == DW_OP_lit3 &&
      ops[7].atom == DW_OP_shl && ops[8].atom == DW_OP_plus) {
    r.cfa = LK_CFA_PLT;
    r.cfa_off = ops[4].atom - DW_OP_lit0;
    return r;
  }
  return r;
}

bool same_rule(const lk_unwind_row& a, const lk_unwind_row& b) {
  return a.cfa == b.cfa && a.rbp == b.rbp && a.cfa_off == b.cfa_off && a.rbp_off == b.rbp_off;
}

// Rows of every FDE starting at `starts`, with a LK_CFA_NONE row wherever no FDE covers code.
UnwindRows rows_from(Dwarf_CFI* cfi, std::vector<uint64_t> starts, const std::string& path) {
  UnwindRows out;
  std::sort(starts.begin(), starts.end());
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  auto emit = [&](uint64_t pc, lk_unwind_row r) {
    if (pc > UINT32_MAX) return;
    r.pc = uint32_t(pc);
    if (!out.rows.empty()) {
      lk_unwind_row& last = out.rows.back();
      if (last.pc >= r.pc) {
        if (last.pc == r.pc) last = r;  // a zero-length range: the later rule holds
        return;
      }
      if (same_rule(last, r)) return;
    }
    out.rows.push_back(r);
  };
  for (size_t i = 0; i < starts.size(); i++) {
    uint64_t limit = i + 1 < starts.size() ? starts[i + 1] : UINT64_MAX;
    uint64_t pc = starts[i];
    bool any = false;
    while (pc < limit) {
      Dwarf_Frame* f = nullptr;
      if (dwarf_cfi_addrframe(cfi, pc, &f) != 0) break;
      Dwarf_Addr s = 0, e = 0;
      bool signal = false;
      int ra = dwarf_frame_info(f, &s, &e, &signal);
      lk_unwind_row r = ra == kRegRip && !signal ? convert(f) : lk_unwind_row{};
      std::free(f);
      if (r.cfa == LK_CFA_NONE) out.unsupported++;
      emit(pc, r);
      any = true;
      if (e <= pc) break;
      pc = e;
    }
    if (any) out.fdes++;
    if (pc < limit) emit(pc, lk_unwind_row{});  // no FDE until the next one
  }
  if (out.rows.empty()) throw ToolError(path + ": no call-frame information");
  return out;
}

// The interpreter (PT_INTERP) and DT_NEEDED names of `elf`, and its run paths.
void dynamic_deps(Elf* elf, std::string* interp, std::vector<std::string>* needed, std::vector<std::string>* runpath) {
  size_t nphdr = 0;
  elf_getphdrnum(elf, &nphdr);
  for (size_t i = 0; i < nphdr; i++) {
    GElf_Phdr ph;
    if (gelf_getphdr(elf, int(i), &ph) == nullptr || ph.p_type != PT_INTERP) continue;
    size_t size = 0;
    char* raw = elf_rawfile(elf, &size);
    if (raw && ph.p_offset < size && ph.p_filesz > 1 && ph.p_offset + ph.p_filesz <= size)
      *interp = std::string(raw + ph.p_offset, strnlen(raw + ph.p_offset, ph.p_filesz));
  }
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == nullptr || sh.sh_type != SHT_DYNAMIC || sh.sh_entsize == 0) continue;
    Elf_Data* d = elf_getdata(scn, nullptr);
    if (d == nullptr) continue;
    for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
      GElf_Dyn dyn;
      if (gelf_getdyn(d, int(i), &dyn) == nullptr) break;
      if (dyn.d_tag != DT_NEEDED && dyn.d_tag != DT_RUNPATH && dyn.d_tag != DT_RPATH) continue;
      const char* str = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val);
      if (str == nullptr) continue;
      if (dyn.d_tag == DT_NEEDED) {
        needed->push_back(str);
      } else {
        std::string all = str;
        size_t at = 0;
        while (at <= all.size()) {
          size_t colon = all.find(':', at);
          if (colon == std::string::npos) colon = all.size();
          if (colon > at) runpath->push_back(all.substr(at, colon - at));
          at = colon + 1;
        }
      }
    }
  }
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : "";
}

}  // namespace

std::vector<std::string> startup_modules(const std::string& exe) {
  std::vector<std::string> out, queue = {exe};
  std::set<std::string> seen;
  const char* dirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"};
  while (!queue.empty() && out.size() < 64) {
    std::string path = real_path(queue.back());
    queue.pop_back();
    if (path.empty() || !seen.insert(path).second) continue;
    out.push_back(path);
    std::string interp;
    std::vector<std::string> needed, runpath;
    try {
      ElfHandle h(path);
      dynamic_deps(h.elf, &interp, &needed, &runpath);
    } catch (const ToolError&) {
      continue;
    }
    if (!interp.empty()) queue.push_back(interp);
    std::string origin = path.substr(0, path.rfind('/'));
    for (auto& name : needed) {
      if (name.find('/') != std::string::npos) {
        queue.push_back(name);
        continue;
      }
      std::vector<std::string> where;
      for (auto rp : runpath) {
        if (rp.rfind("$ORIGIN", 0) == 0) rp = origin + rp.substr(7);
        where.push_back(rp);
      }
      for (auto d : dirs) where.push_back(d);
      for (auto& d : where)
        if (access((d + "/" + name).c_str(), R_OK) == 0) {
          queue.push_back(d + "/" + name);
          break;
        }
    }
  }
  return out;
}

UnwindRows build_unwind_rows(const std::string& path, const std::string& debug_file) {
  ElfHandle h(path);
  GElf_Shdr sh;
  if (section_named(h.elf, ".eh_frame", &sh) != nullptr || debug_file.empty()) {
    Dwarf_CFI* cfi = dwarf_getcfi_elf(h.elf);
    if (cfi == nullptr) throw ToolError(fmt::format("{}: {}", path, dwarf_errmsg(-1)));
    try {
      UnwindRows r = rows_from(cfi, eh_frame_hdr_starts(h.elf, path), path);
      r.source = ".eh_frame";
      dwarf_cfi_end(cfi);
      return r;
    } catch (...) {
      dwarf_cfi_end(cfi);
      throw;
    }
  }
  ElfHandle dh(debug_file);
  Dwarf* dw = dwarf_begin_elf(dh.elf, DWARF_C_READ, nullptr);
  if (dw == nullptr) throw ToolError(fmt::format("{}: {}", debug_file, dwarf_errmsg(-1)));
  Dwarf_CFI* cfi = dwarf_getcfi(dw);
  if (cfi == nullptr) {
    dwarf_end(dw);
    throw ToolError(debug_file + ": no .debug_frame");
  }
  try {
    UnwindRows r = rows_from(cfi, debug_frame_starts(dh.elf, debug_file), debug_file);
    r.source = ".debug_frame";
    dwarf_end(dw);
    return r;
  } catch (...) {
    dwarf_end(dw);
    throw;
  }
}

std::vector<lk_unwind_key> unwind_keys(uint32_t tgid, uint64_t lo, uint64_t hi) {
  std::vector<lk_unwind_key> out;
  uint32_t tgid_be = __builtin_bswap32(tgid);
  while (lo < hi) {
    // The largest aligned block starting at lo that stays inside [lo, hi).
    int bits = lo == 0 ? 64 : __builtin_ctzll(lo);
    while (bits > 0 && (bits >= 64 || (hi - lo) < (uint64_t(1) << bits))) bits--;
    lk_unwind_key k{};
    k.prefixlen = 32 + (64 - bits);
    uint64_t lo_be = __builtin_bswap64(lo);
    std::memcpy(k.data, &tgid_be, 4);
    std::memcpy(k.data + 4, &lo_be, 8);
    out.push_back(k);
    lo += uint64_t(1) << bits;
    if (lo == 0) break;  // wrapped past the top of the address space
  }
  return out;
}

namespace {
// Rows for every module of the traced processes: libc has ~28k, python3.11 ~65k, libstdc++ ~34k.
constexpr uint32_t kUnwindRows = 1u << 20;  // 16 bytes each
// Trie entries: a mapping [lo, hi) takes at most ~2 per address bit, usually a dozen.
constexpr uint32_t kUnwindMaps = 16384;
}  // namespace

std::vector<std::string> unwind_map_defines() {
  return {fmt::format("UNWIND_ROWS={}", kUnwindRows), fmt::format("UNWIND_MAPS={}", kUnwindMaps)};
}

UnwindTables::UnwindTables(int rows_fd, uint32_t rows_capacity, int maps_fd)
    : rows_fd_(rows_fd), maps_fd_(maps_fd), capacity_(rows_capacity) {}

UnwindTables::UnwindTables(Session& s)
    : UnwindTables(s.map_fd("unwind_rows"), kUnwindRows, s.map_fd("unwind_maps")) {
  listening_ = true;
  set_module_listener([this](pid_t pid, const MappedModule& m) { add(pid, m); });
}

UnwindTables::~UnwindTables() {
  if (listening_) set_module_listener(nullptr);
}

const UnwindTables::Loaded& UnwindTables::load(const std::string& path, const std::string& build_id,
                                              const std::string& debug_file) {
  std::string key = build_id.empty() ? "path:" + path : build_id;
  auto it = loaded_.find(key);
  if (it != loaded_.end()) return it->second;
  Loaded l;
  try {
    UnwindRows r = build_unwind_rows(path, debug_file);
    if (r.rows.size() > capacity_ - used_) {
      warnings_.push_back(fmt::format("{}: {} unwind rows do not fit ({} of {} used): its frames are unwound "
                                      "by frame pointer", path, r.rows.size(), used_, capacity_));
    } else {
      uint32_t done = 0;
      while (done < r.rows.size()) {
        // In batches: one system call per few thousand rows.
        uint32_t n = uint32_t(std::min<size_t>(4096, r.rows.size() - done));
        std::vector<uint32_t> keys(n);
        for (uint32_t i = 0; i < n; i++) keys[i] = used_ + done + i;
        uint32_t count = n;
        if (bpf_update_batch(rows_fd_, keys.data(), &r.rows[done], &count) != 0 || count != n) {
          for (uint32_t i = 0; i < n; i++)
            if (bpf_update_elem(rows_fd_, &keys[i], &r.rows[done + i], BPF_ANY) != 0)
              throw ToolError(fmt::format("loading unwind rows: {}", errno_text(errno)));
        }
        done += n;
      }
      l.first = used_;
      l.count = uint32_t(r.rows.size());
      l.ok = true;
      used_ += l.count;
    }
  } catch (const ToolError& e) {
    warnings_.push_back(fmt::format("no unwind rows: {}: its frames are unwound by frame pointer", e.what()));
  }
  return loaded_.emplace(key, l).first->second;
}

bool UnwindTables::prepare(const std::string& path, const std::string& build_id, const std::string& debug_file) {
  return load(path, build_id, debug_file).ok;
}

void UnwindTables::add(pid_t pid, const MappedModule& m) {
  if (!m.elf) return;
  const Loaded& l = load(m.elf->path(), m.elf->build_id(), m.elf->debug_file());
  if (!l.ok) return;
  lk_unwind_map v{};
  v.bias = m.bias;
  v.first = l.first;
  v.count = l.count;
  for (auto& seg : m.elf->segments()) {
    if (!seg.executable || seg.memsz == 0) continue;
    uint64_t lo = (seg.vaddr + m.bias) & ~uint64_t(0xfff);
    uint64_t hi = (seg.vaddr + seg.memsz + m.bias + 0xfff) & ~uint64_t(0xfff);
    if (mapped_.count({pid, lo, hi})) continue;
    // A module mapped over another one's place (after an exec, or a library unloaded and another
    // loaded there): the old entries would outlive it, and a longer prefix of theirs would win.
    for (auto it = mapped_.lower_bound({pid, 0, 0}); it != mapped_.end() && std::get<0>(*it) == pid;) {
      auto [p, olo, ohi] = *it;
      if (olo < hi && lo < ohi) {
        for (auto& k : unwind_keys(uint32_t(pid), olo, ohi)) bpf_delete_elem(maps_fd_, &k);
        it = mapped_.erase(it);
      } else {
        ++it;
      }
    }
    mapped_.insert({pid, lo, hi});
    for (auto& k : unwind_keys(uint32_t(pid), lo, hi)) {
      if (bpf_update_elem(maps_fd_, &k, &v, BPF_ANY) == 0) continue;
      if (said_.insert(m.path).second)
        warnings_.push_back(fmt::format("pid {}: {}: the unwind map is full ({}): frames there are unwound by "
                                        "frame pointer", pid, m.path, errno_text(errno)));
      break;
    }
  }
}

}  // namespace lockkit

namespace lockkit {

void prepare_program(UnwindTables& tables, const std::string& exe, const std::string& lib) {
  std::vector<std::string> files = startup_modules(exe);
  files.push_back(lib);
  for (const std::string& path : files) {
    try {
      auto elf = ElfFile::open_cached(path);
      tables.prepare(elf->path(), elf->build_id(), elf->debug_file());
    } catch (const ToolError&) {
      // not readable here: the mapping records name what the process runs
    }
  }
}

std::unique_ptr<UnwindTables> prepare_unwind_tables(Session& s, const std::string& exe, const std::string& lib) {
  auto tables = std::make_unique<UnwindTables>(s);
  prepare_program(*tables, exe, lib);
  return tables;
}

void catch_up_with_start(const std::function<void()>& refresh, const ProcessSymbolizer& sym, const std::string& lib,
                         int max_ms) {
  std::string real = real_path(lib);
  uint64_t end = monotonic_ns() + uint64_t(max_ms) * 1000000;
  for (;;) {
    refresh();
    if (sym.maps(lib) || (!real.empty() && sym.maps(real)) || monotonic_ns() >= end) return;
    usleep(100);
  }
}

namespace {
// offsetof(struct r_debug, r_state) on x86-64 (<link.h>): int r_version; struct link_map* r_map;
// ElfW(Addr) r_brk; enum r_state; ...
constexpr uint64_t kRStateOffset = 24;

enum class ChildState { Running, Stopped, Gone };

// The state of our child `pid`, without reaping it.
ChildState child_state(pid_t pid) {
  siginfo_t si{};
  if (waitid(P_PID, id_t(pid), &si, WSTOPPED | WEXITED | WNOHANG | WNOWAIT) != 0) return ChildState::Gone;
  if (si.si_pid != pid) return ChildState::Running;
  return si.si_code == CLD_STOPPED ? ChildState::Stopped : ChildState::Gone;
}
}  // namespace

StartupStop::StartupStop(Session& s, const Target& t) : pid_(t.pid()) {
  std::string interp;
  try {
    ElfHandle h(t.exe());
    std::vector<std::string> needed, runpath;
    dynamic_deps(h.elf, &interp, &needed, &runpath);
  } catch (const ToolError&) {
    return;
  }
  std::string path = interp.empty() ? "" : real_path(interp);
  if (path.empty()) return;
  uint64_t fn = 0, r_debug = 0;
  try {
    auto ld = ElfFile::open_cached(path);
    for (auto& sym : ld->find("_dl_debug_state"))
      if (sym.is_function) fn = sym.addr;
    for (auto& sym : ld->find("_r_debug"))
      if (!sym.is_function && sym.size >= kRStateOffset + 4) r_debug = sym.addr;
  } catch (const ToolError&) {
    return;
  }
  if (fn == 0 || r_debug == 0) return;
  map_fd_ = s.map_fd("lk_startup_stopped");
  // The cookie takes the probe from _dl_debug_state to _r_debug.r_state, wherever ld.so is mapped.
  s.attach_uprobe(path, "_dl_debug_state", fn, "lk_startup_stop", false, pid_, r_debug + kRStateOffset - fn);
  armed_ = true;
}

bool StartupStop::finish(const std::function<void()>& refresh, int max_ms) {
  if (!armed_) return false;
  armed_ = false;
  uint64_t end = monotonic_ns() + uint64_t(max_ms) * 1000000;
  bool called_off = false;
  for (;;) {
    ChildState st = child_state(pid_);
    if (st == ChildState::Gone) return false;
    if (st == ChildState::Stopped) break;
    if (monotonic_ns() >= end) {
      if (called_off) return false;
      // Too late to help: call the stop off. Whoever inserts the key first decides; when the
      // probe did, its stop is on its way and is waited for after all.
      uint32_t zero = 0, one = 1;
      if (bpf_update_elem(map_fd_, &zero, &one, BPF_NOEXIST) == 0) return false;
      called_off = true;
      end = monotonic_ns() + 5000000000ull;
    }
    usleep(100);
  }
  siginfo_t si{};
  waitid(P_PID, id_t(pid_), &si, WSTOPPED | WNOHANG);  // takes the stop's notification
  try {
    refresh();
  } catch (...) {
    kill(pid_, SIGCONT);
    throw;
  }
  kill(pid_, SIGCONT);
  return true;
}

}  // namespace lockkit
