#include "mklockstat/model.h"

#include <fmt/format.h>

#include <cstring>

#include "core/util.h"

namespace lockkit::mklockstat {

std::string type_name(uint32_t type) {
  switch (type) {
    case MK_T_MUTEX: return "Mutex";
    case MK_T_SEM: return "Semaphore";
    case MK_T_SEM_R: return "Semaphore:R";
    case MK_T_SEM_W: return "Semaphore:W";
    case MK_T_RWLOCK_R: return "RWLock:R";
    case MK_T_RWLOCK_W: return "RWLock:W";
    case MK_T_SPIN: return "Spinlock";
    case MK_T_RTMUTEX: return "RTMutex";
    case MK_T_RTMUTEX_R: return "RTMutex:R";
    case MK_T_RTMUTEX_W: return "RTMutex:W";
    case MK_T_PERCPU_R: return "PercpuRWSem:R";
    case MK_T_PERCPU_W: return "PercpuRWSem:W";
    default: return fmt::format("Unknown_{:#x}", type & 0xff);
  }
}

std::string kind_name(uint32_t type) {
  switch (type) {
    case MK_T_MUTEX: return "mutex";
    case MK_T_SEM: return "semaphore";
    case MK_T_SEM_R: return "rwsem-read";
    case MK_T_SEM_W: return "rwsem-write";
    case MK_T_RWLOCK_R: return "rwlock-read";
    case MK_T_RWLOCK_W: return "rwlock-write";
    case MK_T_SPIN: return "spinlock";
    case MK_T_RTMUTEX: return "rtmutex";
    case MK_T_RTMUTEX_R: return "rtmutex-read";
    case MK_T_RTMUTEX_W: return "rtmutex-write";
    case MK_T_PERCPU_R: return "percpu-rwsem-read";
    case MK_T_PERCPU_W: return "percpu-rwsem-write";
    default: return fmt::format("unknown-{:#x}", type & 0xff);
  }
}

Sample sample_from(const mk_key& k, const mk_period& v) {
  Sample s;
  s.start = v.start;
  s.pid = k.pid;
  s.tid = k.tid;
  s.lock = k.lock;
  s.type = k.type;
  s.wait_ns = v.wait_ns;
  s.count = v.count;
  s.stackid = v.stackid;
  s.comm.assign(v.comm, strnlen(v.comm, sizeof(v.comm)));
  return s;
}

void PeriodBuffer::add(const Sample& s) {
  if (s.start < released_before_) late_++;
  auto [it, inserted] = pending_.try_emplace(sample_key(s), s);
  if (inserted) return;
  Sample& m = it->second;
  m.wait_ns += s.wait_ns;
  m.count += s.count;
  if (m.stackid < 0 && s.stackid >= 0) m.stackid = s.stackid;
  if (m.comm.empty()) m.comm = s.comm;
}

std::vector<Sample> PeriodBuffer::take_before(uint64_t cutoff) {
  std::vector<Sample> out;
  auto end = pending_.lower_bound(SampleKey{cutoff, 0, 0, 0, 0});
  for (auto it = pending_.begin(); it != end; ++it) out.push_back(std::move(it->second));
  pending_.erase(pending_.begin(), end);
  if (cutoff > released_before_) released_before_ = cutoff;
  return out;
}

std::vector<Sample> PeriodBuffer::take_all() {
  return take_before(UINT64_MAX);
}

std::string sanitize_field(const std::string& comm) {
  std::string out = comm;
  for (char& c : out)
    if (c == ',' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '_';
  return out;
}

std::string format_sample(const Sample& s, bool with_name, const std::string& name) {
  std::string line = fmt::format("s,{},P{}_T{},{},{:#x},{},{},{},{}", sanitize_field(s.comm), s.pid, s.tid,
                                 type_name(s.type), s.lock, s.start, s.wait_ns, s.count, s.stackid);
  if (with_name) line += "," + sanitize_field(name);
  return line;
}

std::string format_stack(int32_t stackid, const std::vector<std::string>& frames) {
  std::string line = fmt::format("t,{}", stackid);
  for (auto& f : frames) line += "," + sanitize_field(f);
  return line;
}

std::vector<std::string> kernel_frames(const std::vector<uint64_t>& ips,
                                       const std::function<Frame(uint64_t)>& resolve) {
  return kernel_frames(resolve_return_addresses(ips, resolve));
}

std::vector<std::string> kernel_frames(const std::vector<Frame>& frames) {
  std::vector<std::string> out;
  for (auto& f : frames) out.push_back(format_frame(f));
  return out;
}

std::optional<std::string> lock_name(const std::optional<std::string>& sym) {
  if (!sym || sym->empty()) return std::nullopt;
  if (starts_with(*sym, "__start_") || starts_with(*sym, "__stop_") || starts_with(*sym, "__init_") ||
      starts_with(*sym, "__end_"))
    return std::nullopt;
  return sym;
}

const std::vector<std::string>& default_monitors() {
  static const std::vector<std::string> names{"collect", "collectl", "tcplife-bpfcc"};
  return names;
}

mk_comm comm_key(const std::string& name) {
  mk_comm c;
  std::memset(&c, 0, sizeof(c));
  std::memcpy(c.name, name.data(), std::min(name.size(), size_t(MK_COMM_LEN - 1)));
  return c;
}

bool comm_filtered(const std::vector<std::string>& names, const std::string& comm) {
  mk_comm k = comm_key(comm);
  for (auto& n : names)
    if (std::memcmp(comm_key(n).name, k.name, MK_COMM_LEN) == 0) return true;
  return false;
}

}  // namespace lockkit::mklockstat
