#include "core/attach.h"

#include <fmt/format.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <condition_variable>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "core/elf.h"
#include "core/util.h"

namespace lockkit {

namespace {

constexpr int kBpfLinkCreate = 28;          // BPF_LINK_CREATE
constexpr uint32_t kUprobeMultiReturn = 1;  // BPF_F_UPROBE_MULTI_RETURN

// The BPF_LINK_CREATE part of union bpf_attr as Linux >= 6.6 lays it out for uprobe-multi links.
// The kernel zero-extends a shorter attr, so only the fields used are declared.
struct LinkCreateUprobeMulti {
  uint32_t prog_fd;
  uint32_t target_fd;
  uint32_t attach_type;
  uint32_t flags;
  uint64_t path;
  uint64_t offsets;
  uint64_t ref_ctr_offsets;
  uint64_t cookies;
  uint32_t cnt;
  uint32_t multi_flags;
  uint32_t pid;
  uint32_t pad;
};
static_assert(offsetof(LinkCreateUprobeMulti, path) == 16, "uprobe_multi attr starts at offset 16");
static_assert(offsetof(LinkCreateUprobeMulti, pid) == 56, "uprobe_multi pid at offset 56");

int sys_bpf_link_create(LinkCreateUprobeMulti* attr) {
  long r = syscall(SYS_bpf, kBpfLinkCreate, attr, sizeof(*attr));
  return r < 0 ? -errno : int(r);
}

constexpr uint32_t kAttachPerfEvent = 41;  // BPF_PERF_EVENT

// BPF_LINK_CREATE for a perf event (Linux >= 5.15), with the cookie the program reads.
struct LinkCreatePerfEvent {
  uint32_t prog_fd;
  uint32_t target_fd;
  uint32_t attach_type;
  uint32_t flags;
  uint64_t bpf_cookie;
};
static_assert(offsetof(LinkCreatePerfEvent, bpf_cookie) == 16, "perf_event attr starts at offset 16");

// A dynamic PMU's type number and, when asked, the config bit of its "retprobe" format field.
int pmu_type(const std::string& pmu) {
  auto t = read_file("/sys/bus/event_source/devices/" + pmu + "/type");
  auto v = t ? parse_int(trim(*t)) : std::nullopt;
  return v ? int(*v) : -1;
}

int retprobe_bit(const std::string& pmu) {
  // The format file reads "config:N".
  auto f = read_file("/sys/bus/event_source/devices/" + pmu + "/format/retprobe");
  if (!f) return 0;
  auto colon = f->find(':');
  auto v = colon == std::string::npos ? std::nullopt : parse_int(trim(f->substr(colon + 1)));
  return v ? int(*v) : 0;
}

int open_perf_probe(const std::string& pmu, int prog_fd, const std::string& name, uint64_t offset,
                    bool on_return, pid_t pid, uint64_t cookie) {
  int type = pmu_type(pmu);
  if (type < 0) return -ENOENT;
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = uint32_t(type);
  if (on_return) attr.config |= 1ull << retprobe_bit(pmu);
  attr.config1 = reinterpret_cast<uint64_t>(name.c_str());  // uprobe_path / kprobe_func
  attr.config2 = offset;                                    // probe_offset
  attr.sample_period = 1;
  attr.wakeup_events = 1;
  // A process-bound event follows every thread of the process (the uprobe filters on its mm);
  // a system-wide one is opened on one CPU and fires on all of them.
  long fd = syscall(SYS_perf_event_open, &attr, pid > 0 ? pid : -1, pid > 0 ? -1 : 0, -1,
                    PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) return -errno;
  if (cookie != 0) {
    // The link holds its own reference to the event: the event lives exactly as long as the link.
    LinkCreatePerfEvent link;
    std::memset(&link, 0, sizeof(link));
    link.prog_fd = uint32_t(prog_fd);
    link.target_fd = uint32_t(fd);
    link.attach_type = kAttachPerfEvent;
    link.bpf_cookie = cookie;
    long l = syscall(SYS_bpf, kBpfLinkCreate, &link, sizeof(link));
    if (l < 0) {
      int e = errno;
      close(int(fd));
      return -e;
    }
    if (ioctl(int(fd), PERF_EVENT_IOC_ENABLE, 0) != 0) {
      int e = errno;
      close(int(l));
      close(int(fd));
      return -e;
    }
    close(int(fd));
    return int(l);
  }
  if (ioctl(int(fd), PERF_EVENT_IOC_SET_BPF, prog_fd) != 0 || ioctl(int(fd), PERF_EVENT_IOC_ENABLE, 0) != 0) {
    int e = errno;
    close(int(fd));
    return -e;
  }
  return int(fd);
}

}  // namespace

uint64_t file_offset_of(const ElfFile& elf, uint64_t vaddr) {
  for (auto& s : elf.segments())
    if (vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
  throw ToolError(fmt::format("{}: address {:#x} is in no loadable segment", elf.path(), vaddr));
}

bool uprobe_multi_supported(int prog_fd) {
  // A kernel that knows uprobe-multi links resolves the path and refuses a directory (EBADF);
  // one that does not refuses the attach type itself (EINVAL).
  static const char kRoot[] = "/";
  uint64_t offset = 0;
  LinkCreateUprobeMulti attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_fd = uint32_t(prog_fd);
  attr.attach_type = kAttachUprobeMulti;
  attr.path = reinterpret_cast<uint64_t>(kRoot);
  attr.offsets = reinterpret_cast<uint64_t>(&offset);
  attr.cnt = 1;
  int fd = sys_bpf_link_create(&attr);
  if (fd >= 0) {
    close(fd);
    return false;  // not the kernel we understand: do not use it
  }
  return fd == -EBADF;
}

int open_uprobe_multi(int prog_fd, const std::string& path, const std::vector<uint64_t>& offsets,
                      bool on_return, pid_t pid, const std::vector<uint64_t>& cookies) {
  if (offsets.empty() || (!cookies.empty() && cookies.size() != offsets.size())) return -EINVAL;
  LinkCreateUprobeMulti attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_fd = uint32_t(prog_fd);
  attr.attach_type = kAttachUprobeMulti;
  attr.path = reinterpret_cast<uint64_t>(path.c_str());
  attr.offsets = reinterpret_cast<uint64_t>(offsets.data());
  attr.cookies = cookies.empty() ? 0 : reinterpret_cast<uint64_t>(cookies.data());
  attr.cnt = uint32_t(offsets.size());
  attr.multi_flags = on_return ? kUprobeMultiReturn : 0;
  attr.pid = pid > 0 ? uint32_t(pid) : 0;
  return sys_bpf_link_create(&attr);
}

int open_perf_uprobe(int prog_fd, const std::string& path, uint64_t offset, bool on_return, pid_t pid,
                     uint64_t cookie) {
  return open_perf_probe("uprobe", prog_fd, path, offset, on_return, pid, cookie);
}

int open_perf_kprobe(int prog_fd, const std::string& fn, bool on_return) {
  return open_perf_probe("kprobe", prog_fd, fn, 0, on_return, -1, 0);
}

void close_concurrently(const std::vector<int>& fds, const std::function<void(size_t left)>& on_wait) {
  std::mutex mu;
  std::condition_variable done;
  size_t left = fds.size();
  auto close_one = [&](int fd) {
    close(fd);
    std::lock_guard<std::mutex> g(mu);
    if (--left == 0) done.notify_all();
  };
  std::vector<std::thread> workers;
  workers.reserve(fds.size());
  for (int fd : fds) {
    try {
      workers.emplace_back(close_one, fd);
    } catch (const std::system_error&) {  // no thread to spare: close it here
      close_one(fd);
    }
  }
  {
    std::unique_lock<std::mutex> lk(mu);
    while (left > 0)
      if (!done.wait_for(lk, std::chrono::milliseconds(100), [&] { return left == 0; }) && on_wait) {
        size_t n = left;
        lk.unlock();
        on_wait(n);
        lk.lock();
      }
  }
  for (auto& w : workers) w.join();
}

}  // namespace lockkit
