#include "core/mmap_tracker.h"

#include <dirent.h>
#include <fmt/format.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <iostream>

#include "core/process.h"
#include "core/symbolizer.h"
#include "core/tree.h"
#include "core/util.h"

namespace lockkit {

const DropReason kMappingRecordsLost = {
    "mapping_records_lost",
    "address-space records were lost (the ring was full): frames in code mapped meanwhile may be unnamed"};

uint64_t mapping_sample_type() { return PERF_SAMPLE_TID | PERF_SAMPLE_TIME; }

namespace {

constexpr size_t kSampleIdSize = 16;  // {u32 pid, tid; u64 time}

template <class T>
T load(const uint8_t* p) {
  T v;
  memcpy(&v, p, sizeof(v));
  return v;
}

// A NUL-terminated string inside [p, end).
std::string bounded_string(const uint8_t* p, const uint8_t* end) {
  const uint8_t* nul = static_cast<const uint8_t*>(memchr(p, 0, size_t(end - p)));
  return std::string(reinterpret_cast<const char*>(p), size_t((nul ? nul : end) - p));
}

std::vector<pid_t> threads_of(pid_t pid) {
  std::vector<pid_t> out;
  DIR* d = opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d))
    if (auto tid = parse_int(e->d_name)) out.push_back(pid_t(*tid));
  closedir(d);
  return out;
}

}  // namespace

bool decode_mapping_record(const uint8_t* data, size_t size, MappingRecord* out) {
  if (size < sizeof(perf_event_header) + kSampleIdSize) return false;
  perf_event_header h = load<perf_event_header>(data);
  if (h.size != size) return false;
  const uint8_t* body = data + sizeof(h);
  const uint8_t* end = data + size - kSampleIdSize;  // the sample_id trailer follows the body
  size_t body_size = size_t(end - body);
  out->time = load<uint64_t>(end + 8);
  switch (h.type) {
    case PERF_RECORD_MMAP2: {
      // pid, tid, addr, len, pgoff, {maj, min, ino, ino_generation | build id}, prot, flags, filename
      constexpr size_t fixed = 4 + 4 + 8 + 8 + 8 + 24 + 4 + 4;
      if (body_size < fixed) return false;
      MmapRecord m;
      m.pid = load<uint32_t>(body);
      m.tid = load<uint32_t>(body + 4);
      m.addr = load<uint64_t>(body + 8);
      m.len = load<uint64_t>(body + 16);
      m.pgoff = load<uint64_t>(body + 24);
      m.prot = load<uint32_t>(body + 56);
      m.flags = load<uint32_t>(body + 60);
      m.filename = bounded_string(body + fixed, end);
      out->what = std::move(m);
      return true;
    }
    case PERF_RECORD_MMAP: {
      constexpr size_t fixed = 4 + 4 + 8 + 8 + 8;
      if (body_size < fixed) return false;
      MmapRecord m;
      m.pid = load<uint32_t>(body);
      m.tid = load<uint32_t>(body + 4);
      m.addr = load<uint64_t>(body + 8);
      m.len = load<uint64_t>(body + 16);
      m.pgoff = load<uint64_t>(body + 24);
      m.prot = (h.misc & PERF_RECORD_MISC_MMAP_DATA) ? 0x1 /* PROT_READ */ : 0x4 /* PROT_EXEC */;
      m.filename = bounded_string(body + fixed, end);
      out->what = std::move(m);
      return true;
    }
    case PERF_RECORD_COMM: {
      if (body_size < 8) return false;
      CommRecord c;
      c.pid = load<uint32_t>(body);
      c.tid = load<uint32_t>(body + 4);
      c.comm = bounded_string(body + 8, end);
      c.exec = (h.misc & PERF_RECORD_MISC_COMM_EXEC) != 0;
      out->what = std::move(c);
      return true;
    }
    case PERF_RECORD_FORK:
    case PERF_RECORD_EXIT: {
      if (body_size < 16) return false;
      TaskRecord t;
      t.fork = h.type == PERF_RECORD_FORK;
      t.pid = load<uint32_t>(body);
      t.ppid = load<uint32_t>(body + 4);
      t.tid = load<uint32_t>(body + 8);
      t.ptid = load<uint32_t>(body + 12);
      out->what = t;
      return true;
    }
    case PERF_RECORD_LOST: {
      if (body_size < 16) return false;
      out->what = LostRecord{load<uint64_t>(body + 8)};
      return true;
    }
  }
  return false;
}

std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> out;
  for (auto& part : split(trim(text), ',')) {
    if (part.empty()) continue;
    auto dash = part.find('-');
    auto lo = parse_int(part.substr(0, dash));
    auto hi = dash == std::string::npos ? lo : parse_int(part.substr(dash + 1));
    if (!lo || !hi || *lo < 0 || *hi < *lo) continue;
    for (long long c = *lo; c <= *hi; c++) out.push_back(int(c));
  }
  return out;
}

MmapTracker::MmapTracker(pid_t pid, Start start, size_t ring_pages) : pages_(ring_pages) {
  if (pages_ == 0 || (pages_ & (pages_ - 1)) != 0) throw ToolError("mapping ring size must be a power of two");
  cpus_ = parse_cpu_list(read_file("/sys/devices/system/cpu/online").value_or(""));
  if (cpus_.empty()) throw ToolError("cannot read the online CPUs");
  rings_.resize(cpus_.size());
  try {
    if (start == Start::OnExec) {
      open_thread(pid, true);
    } else {
      // A running process: every thread it has, until a pass finds none new (threads created by a
      // thread already followed inherit its events).
      for (;;) {
        bool fresh = false;
        for (pid_t tid : threads_of(pid))
          if (!threads_.count(tid)) {
            fresh = true;
            open_thread(tid, false);
          }
        if (!fresh) break;
      }
    }
    for (auto& r : rings_)
      if (r.fd < 0) throw ToolError(fmt::format("pid {} could not be followed", pid));
  } catch (...) {
    close_all();
    throw;
  }
}

void MmapTracker::open_thread(pid_t tid, bool enable_on_exec) {
  threads_.insert(tid);
  perf_event_attr a;
  memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.type = PERF_TYPE_SOFTWARE;
  a.config = PERF_COUNT_SW_DUMMY;
  a.sample_type = mapping_sample_type();
  a.sample_id_all = 1;
  a.mmap = 1;
  a.mmap2 = 1;
  a.comm = 1;
  a.comm_exec = 1;
  a.task = 1;
  a.inherit = 1;
  a.exclude_kernel = 1;
  a.exclude_hv = 1;
  if (enable_on_exec) {
    a.disabled = 1;
    a.enable_on_exec = 1;
  }
  long page = sysconf(_SC_PAGESIZE);
  for (size_t i = 0; i < cpus_.size(); i++) {
    int fd = int(syscall(SYS_perf_event_open, &a, tid, cpus_[i], -1, PERF_FLAG_FD_CLOEXEC));
    if (fd < 0) {
      int e = errno;
      if (e == ESRCH) return;  // the thread exited meanwhile (the target itself: no ring, refused below)
      if (!any_ring_) throw ToolError(fmt::format("perf_event_open on {}: {}", tid, errno_text(e)));
      threads_missed_++;
      return;
    }
    Ring& r = rings_[i];
    if (r.fd < 0) {
      size_t size = size_t(page) * (1 + pages_);
      void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (base == MAP_FAILED) {
        int e = errno;
        close(fd);
        throw ToolError(fmt::format("mapping the perf ring of CPU {}: {}", cpus_[i], errno_text(e)));
      }
      r.fd = fd;
      r.base = base;
      r.size = size;
      any_ring_ = true;
      continue;
    }
    if (ioctl(fd, PERF_EVENT_IOC_SET_OUTPUT, r.fd) != 0) {
      close(fd);
      threads_missed_++;
      return;
    }
    fds_.push_back(fd);
  }
}

MmapTracker::~MmapTracker() { close_all(); }

void MmapTracker::close_all() {
  for (int fd : fds_) close(fd);
  fds_.clear();
  for (auto& r : rings_) {
    if (r.base) munmap(r.base, r.size);
    if (r.fd >= 0) close(r.fd);
    r = Ring{};
  }
}

void MmapTracker::read_ring(Ring& r, std::vector<MappingRecord>& out) {
  auto* meta = static_cast<perf_event_mmap_page*>(r.base);
  const uint8_t* data = static_cast<const uint8_t*>(r.base) + meta->data_offset;
  uint64_t size = meta->data_size;
  uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
  uint64_t tail = meta->data_tail;
  while (tail + sizeof(perf_event_header) <= head) {
    perf_event_header h;
    for (size_t i = 0; i < sizeof(h); i++) reinterpret_cast<uint8_t*>(&h)[i] = data[(tail + i) % size];
    if (h.size < sizeof(h) || tail + h.size > head) break;
    scratch_.resize(h.size);
    uint64_t at = tail % size;
    size_t first = size_t(std::min<uint64_t>(h.size, size - at));
    memcpy(scratch_.data(), data + at, first);
    memcpy(scratch_.data() + first, data, h.size - first);  // a record that wraps around
    MappingRecord rec;
    if (decode_mapping_record(scratch_.data(), h.size, &rec)) out.push_back(std::move(rec));
    tail += h.size;
  }
  __atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
}

std::vector<MappingRecord> MmapTracker::read() {
  std::vector<MappingRecord> out;
  for (auto& r : rings_)
    if (r.base) read_ring(r, out);
  // Each ring is in order; across CPUs the perf clock orders them (a fork before its child's maps).
  std::stable_sort(out.begin(), out.end(), [](const MappingRecord& a, const MappingRecord& b) { return a.time < b.time; });
  return out;
}

TargetMappings::TargetMappings(std::string tool, pid_t pid, MmapTracker::Start start)
    : tool_(std::move(tool)), pid_(pid) {
  try {
    tracker_ = std::make_unique<MmapTracker>(pid, start);
  } catch (const ToolError& e) {
    std::string w = fmt::format("mappings of pid {} are only seen in /proc snapshots ({}): code a short-lived "
                                "process maps may be unnamed, and forks are not noticed", pid, e.what());
    std::cerr << tool_ << ": warning: " << w << '\n';
    warnings_.push_back(std::move(w));
    return;
  }
  if (size_t n = tracker_->threads_missed()) {
    std::string w = fmt::format("{} threads of pid {} could not be followed: code they map may be unnamed", n, pid);
    std::cerr << tool_ << ": warning: " << w << '\n';
    warnings_.push_back(std::move(w));
  }
}

void TargetMappings::on_mmap(const MmapRecord& m, ProcessSymbolizer& sym) {
  if (!(m.prot & 0x4 /* PROT_EXEC */)) return;
  if (m.filename.empty() || m.filename[0] != '/') return;  // [vdso], //anon, memfd:...
  if (auto mod = module_from_mapping(chroot_ + m.filename, m.addr, m.pgoff, open_root_)) sym.add_modules({*mod});
}

void TargetMappings::on_fork(const TaskRecord& t, const std::function<ProcessSymbolizer*(pid_t)>& symbolizer_of) {
  // A new thread is a FORK within its own thread group.
  if (!t.fork || t.pid == t.ppid) return;
  if (tree_ && tree_->contains(pid_t(t.ppid))) {
    // Followed: the child maps what its parent mapped (no record says so) until it maps more.
    tree_->note(pid_t(t.pid), pid_t(t.ppid));
    ProcessSymbolizer* parent = symbolizer_of(pid_t(t.ppid));
    ProcessSymbolizer* child = symbolizer_of(pid_t(t.pid));
    if (parent && child && parent != child) child->inherit(*parent);
    return;
  }
  // Only the target's own forks are said (a child's forks are no news once the child is named).
  if (tree_ || t.ppid != uint32_t(pid_) || !children_.insert(t.pid).second) return;
  std::string w = fmt::format("pid {} forked {} (not traced: without --follow-forks child processes are not followed)",
                              t.ppid, t.pid);
  std::cerr << tool_ << ": " << w << '\n';
  warnings_.push_back(std::move(w));
}

void TargetMappings::poll(ProcessSymbolizer& sym) {
  poll([&](pid_t pid) { return pid == pid_ ? &sym : nullptr; });
}

void TargetMappings::poll(const std::function<ProcessSymbolizer*(pid_t)>& symbolizer_of) {
  if (!tracker_) return;
  if (process_exists(pid_)) {
    // The kernel names a mapped file from the mapping process' root; /proc/PID/maps from ours.
    open_root_ = process_root(pid_);
    std::string root = open_root_.empty() ? readlink_str(fmt::format("/proc/{}/root", pid_)) : "";
    if (!root.empty()) chroot_ = root == "/" ? "" : root;
  }
  for (auto& rec : tracker_->read()) {
    if (auto* m = std::get_if<MmapRecord>(&rec.what)) {
      bool ours = m->pid == uint32_t(pid_) || (tree_ && tree_->contains(pid_t(m->pid)));
      if (ours)
        if (ProcessSymbolizer* sym = symbolizer_of(pid_t(m->pid))) on_mmap(*m, *sym);
    } else if (auto* t = std::get_if<TaskRecord>(&rec.what)) {
      on_fork(*t, symbolizer_of);
    } else if (auto* l = std::get_if<LostRecord>(&rec.what)) {
      lost_ += l->lost;
    }
  }
  if (lost_ && !lost_said_) {
    lost_said_ = true;
    std::cerr << fmt::format("{}: warning: {} {}\n", tool_, lost_, kMappingRecordsLost.what);
  }
}

void TargetMappings::add_to(Diagnostics& d) const {
  d.drop(kMappingRecordsLost, lost_);
  for (auto& w : warnings_) d.warn(w);
}

}  // namespace lockkit
