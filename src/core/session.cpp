#include "core/session.h"

#include <bcc/BPF.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "core/attach.h"
#include "core/elf.h"
#include "core/kheaders.h"
#include "core/process.h"
#include "core/util.h"

namespace lockkit {

bool is_libbcc_noise(const std::string& line) {
  return line.find("sha1 socket not available") != std::string::npos ||
         line.find("cannot get prog tag") != std::string::npos;
}

StderrFilter::StderrFilter() {
  fflush(stderr);
  std::cerr.flush();
  FILE* f = tmpfile();
  if (!f) return;
  tmp_ = dup(fileno(f));
  fclose(f);
  saved_ = dup(2);
  if (tmp_ < 0 || saved_ < 0 || dup2(tmp_, 2) < 0) {
    if (saved_ >= 0) close(saved_);
    if (tmp_ >= 0) close(tmp_);
    saved_ = tmp_ = -1;
  }
}

StderrFilter::~StderrFilter() { std::cerr << finish(); }

std::string StderrFilter::take() { return finish(); }

std::string StderrFilter::finish() {
  if (saved_ < 0) return "";
  fflush(stderr);
  std::cerr.flush();
  dup2(saved_, 2);
  close(saved_);
  std::string text;
  char buf[4096];
  lseek(tmp_, 0, SEEK_SET);
  ssize_t n;
  while ((n = read(tmp_, buf, sizeof(buf))) > 0) text.append(buf, size_t(n));
  close(tmp_);
  saved_ = tmp_ = -1;
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line))
    if (!is_libbcc_noise(line)) out += line + '\n';
  return out;
}

namespace {
// libbcc's failure text plus the kernel's reason it printed, on one line.
std::string attach_reason(const std::string& status, const std::string& captured) {
  std::string reason = trim(status);
  std::istringstream in(captured);
  std::string line, last;
  while (std::getline(in, line))
    if (!trim(line).empty()) last = trim(line);
  if (last.find("error 524") != std::string::npos)
    return "the kernel cannot place a probe on its first instruction (ENOTSUPP)";
  if (!last.empty()) reason += " (" + last + ")";
  return reason;
}
}  // namespace

std::string tracefs_root() {
  for (const char* p : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"})
    if (path_exists(std::string(p) + "/events")) return p;
  return "/sys/kernel/tracing";
}

bool tracefs_has(const std::string& rel) { return path_exists(tracefs_root() + "/" + rel); }

void ensure_tracefs() {
  if (tracefs_has("events")) return;
  if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0)
    throw ToolError(fmt::format(
        "tracefs is not mounted and mounting it at /sys/kernel/tracing failed: {} "
        "(try: mount -t tracefs tracefs /sys/kernel/tracing)",
        errno_text(errno)));
}

void require_root() {
  if (geteuid() != 0) throw ToolError("must be run as root (BPF and uprobes need it)");
}

void prepare_environment(const std::string& tool) {
  require_root();
  ensure_tracefs();
  KernelHeaderChoice k = prepare_kernel_headers();
  if (!k.note.empty()) std::cerr << tool << ": " << k.note << '\n';
}

Session::Session(std::string tool) : tool_(std::move(tool)) {}

Session::~Session() {
  try {
    detach_all();
  } catch (...) {
  }
}

void Session::compile(const std::string& text, const std::vector<std::string>& defines) {
  std::vector<std::string> cflags{"-DLOCKKIT_EMBEDDED"};
  for (auto& d : defines) cflags.push_back("-D" + d);
  bpf_ = std::make_unique<ebpf::BPF>();
  StderrFilter quiet;
  ebpf::StatusTuple st = bpf_->init(text, cflags);
  if (!st.ok()) {
    std::string diag = quiet.take();
    throw ToolError("BPF program failed to compile or load: " + st.msg() + (diag.empty() ? "" : "\n" + diag));
  }
}

namespace {
// The kernel's reason for refusing a probe, in words a user can act on.
std::string probe_errno_reason(int err, pid_t pid) {
  switch (err) {
    case 524:  // ENOTSUPP, kernel-internal
      return "the kernel cannot place a probe on its first instruction (ENOTSUPP)";
    case ESRCH:
      return fmt::format("process {} no longer exists", pid);
    case ENOENT:
      return "no such file, function or probe type on this kernel";
    default:
      return errno_text(err);
  }
}
}  // namespace

std::function<void(size_t)> detach_notice(const std::string& tool, StopSignals& signals) {
  return [tool, &signals](size_t left) {
    if (signals.take() != 0)
      std::cerr << fmt::format("{}: still removing {} probe{}: the kernel waits for each to quiesce; "
                               "the target keeps running meanwhile\n",
                               tool, left, left == 1 ? "" : "s");
  };
}

int Session::load_uprobe_program(const std::string& fn) {
  auto load = [&](int attach_type) {
    int fd = -1;
    StderrFilter quiet;
    ebpf::StatusTuple st = bpf_->load_func(fn, BPF_PROG_TYPE_KPROBE, fd, 0, bpf_attach_type(attach_type));
    if (!st.ok()) {
      std::string diag = quiet.take();
      throw ToolError(fmt::format("BPF program {} was rejected: {}{}", fn, st.msg(), diag.empty() ? "" : "\n" + diag));
    }
    return fd;
  };
  if (uprobe_mode_ == UprobeMode::Unknown) {
    // LOCKKIT_UPROBE_MECHANISM=perf takes the path of kernels without uprobe-multi links (tests).
    const char* forced = std::getenv("LOCKKIT_UPROBE_MECHANISM");
    bool perf_only = forced && std::string(forced) == "perf";
    int fd = -1;
    if (!perf_only) {
      try {
        fd = load(kAttachUprobeMulti);
      } catch (const ToolError&) {  // a kernel that refuses the attach type at load
        bpf_->unload_func(fn);
        fd = -1;
      }
    }
    if (fd >= 0 && uprobe_multi_supported(fd)) {
      uprobe_mode_ = UprobeMode::Multi;
      return fd;
    }
    uprobe_mode_ = UprobeMode::Perf;
    if (fd >= 0) bpf_->unload_func(fn);
  }
  return load(uprobe_mode_ == UprobeMode::Multi ? kAttachUprobeMulti : -1);
}

std::string Session::uprobe_mechanism() const {
  return uprobe_mode_ == UprobeMode::Multi ? "uprobe-multi links" : "perf uprobe events";
}

void Session::attach_uprobe(const std::string& binary, const std::string& symbol, uint64_t addr,
                            const std::string& fn, bool on_return, pid_t pid, uint64_t cookie) {
  const char* what = on_return ? "uretprobe" : "uprobe";
  auto elf = ElfFile::open_cached(binary);
  if (addr == 0) {
    for (auto& sym : elf->find(symbol))
      if (sym.is_function) {
        addr = sym.addr;
        break;
      }
    if (addr == 0) throw ToolError(fmt::format("cannot attach {} to {}: {} does not define it", what, symbol, binary));
  }
  uint64_t offset = file_offset_of(*elf, addr);
  int prog = load_uprobe_program(fn);
  int fd = uprobe_mode_ == UprobeMode::Multi
               ? open_uprobe_multi(prog, binary, {offset}, on_return, pid, std::vector<uint64_t>{cookie})
               : open_perf_uprobe(prog, binary, offset, on_return, pid, cookie);
  if (fd < 0)
    throw ToolError(fmt::format("cannot attach {} to {} in {}: {}", what, symbol, binary, probe_errno_reason(-fd, pid)));
  probe_fds_.push_back(fd);
  attached_++;
}

void Session::attach_tracepoint(const std::string& tp, const std::string& fn) {
  StderrFilter quiet;
  ebpf::StatusTuple st = bpf_->attach_tracepoint(tp, fn);
  if (!st.ok())
    throw ToolError(fmt::format("cannot attach tracepoint {}: {}", tp, attach_reason(st.msg(), quiet.take())));
  tracepoints_.push_back(tp);
  attached_++;
}

void Session::attach_kprobe(const std::string& kernel_fn, const std::string& fn, bool on_return) {
  const char* what = on_return ? "kretprobe" : "kprobe";
  int prog = -1;
  {
    StderrFilter quiet;
    ebpf::StatusTuple st = bpf_->load_func(fn, BPF_PROG_TYPE_KPROBE, prog);
    if (!st.ok()) {
      std::string diag = quiet.take();
      throw ToolError(fmt::format("BPF program {} was rejected: {}{}", fn, st.msg(), diag.empty() ? "" : "\n" + diag));
    }
  }
  int fd = open_perf_kprobe(prog, kernel_fn, on_return);
  if (fd == -ENOENT && !path_exists("/sys/bus/event_source/devices/kprobe"))
    throw ToolError(fmt::format("cannot attach {} to {}: this kernel has no kprobe PMU (CONFIG_KPROBES is off)",
                                what, kernel_fn));
  if (fd < 0)
    throw ToolError(fmt::format("cannot attach {} to {}: {}", what, kernel_fn, probe_errno_reason(-fd, -1)));
  probe_fds_.push_back(fd);
  attached_++;
}

void Session::detach_all(const std::function<void(size_t left)>& on_wait) {
  if (!bpf_) return;
  std::vector<int> fds;
  fds.swap(probe_fds_);
  close_concurrently(fds, on_wait);
  StderrFilter quiet;
  for (auto it = tracepoints_.rbegin(); it != tracepoints_.rend(); ++it) bpf_->detach_tracepoint(*it);
  tracepoints_.clear();
  attached_ = 0;
}

void Session::update_raw(const std::string& name, const void* key, const void* value) {
  if (bpf_update_elem(map_fd(name), const_cast<void*>(key), const_cast<void*>(value), 0) != 0)
    throw ToolError(fmt::format("cannot update BPF map '{}': {}", name, errno_text(errno)));
}

void Session::load_function(const std::string& fn, int prog_type) {
  int fd = -1;
  StderrFilter quiet;
  ebpf::StatusTuple st = bpf_->load_func(fn, bpf_prog_type(prog_type), fd);
  if (!st.ok()) {
    std::string diag = quiet.take();
    throw ToolError(fmt::format("BPF program {} was rejected: {}{}", fn, st.msg(), diag.empty() ? "" : "\n" + diag));
  }
}

void Session::open_perf_buffer(const std::string& name, std::function<void(const void*, int)> on_sample,
                               std::function<void(uint64_t)> on_lost, int pages) {
  auto cb = std::make_unique<PerfCallbacks>(PerfCallbacks{std::move(on_sample), std::move(on_lost)});
  auto sample = [](void* cookie, void* data, int size) { static_cast<PerfCallbacks*>(cookie)->sample(data, size); };
  auto lost = [](void* cookie, uint64_t n) { static_cast<PerfCallbacks*>(cookie)->lost(n); };
  StderrFilter quiet;
  ebpf::StatusTuple st = bpf_->open_perf_buffer(name, sample, lost, cb.get(), pages);
  if (!st.ok()) throw ToolError(fmt::format("cannot open the perf buffer '{}': {}", name, st.msg()));
  perf_callbacks_.push_back(std::move(cb));
}

void Session::consume_perf_buffer(const std::string& name) {
  ebpf::BPFPerfBuffer* perf = bpf_->get_perf_buffer(name);
  if (!perf) throw ToolError("internal: perf buffer '" + name + "' is not open");
  perf->consume();
}

int Session::map_fd(const std::string& name) {
  int fd = bpf_ ? bpf_->get_table(name).get_fd() : -1;
  if (fd < 0) throw ToolError("internal: BPF map '" + name + "' not found");
  return fd;
}

}  // namespace lockkit
