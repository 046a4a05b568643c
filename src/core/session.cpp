#include "core/session.h"

#include <bcc/BPF.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <sstream>

#include "core/kheaders.h"
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

void prepare_environment(const std::string& tool) {
  if (geteuid() != 0) throw ToolError("must be run as root (BPF and uprobes need it)");
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

void Session::attach_uprobe(const std::string& binary, const std::string& symbol, uint64_t addr,
                            const std::string& fn, bool on_return, pid_t pid) {
  StderrFilter quiet;
  ebpf::StatusTuple st = bpf_->attach_uprobe(binary, addr ? "" : symbol, fn, addr,
                                             on_return ? BPF_PROBE_RETURN : BPF_PROBE_ENTRY, pid);
  if (!st.ok())
    throw ToolError(fmt::format("cannot attach {} to {} in {}: {}", on_return ? "uretprobe" : "uprobe",
                                symbol, binary, attach_reason(st.msg(), quiet.take())));
  probes_.push_back({on_return ? Probe::Uretprobe : Probe::Uprobe, binary, addr ? "" : symbol, addr, pid});
  attached_++;
}

void Session::attach_tracepoint(const std::string& tp, const std::string& fn) {
  StderrFilter quiet;
  ebpf::StatusTuple st = bpf_->attach_tracepoint(tp, fn);
  if (!st.ok())
    throw ToolError(fmt::format("cannot attach tracepoint {}: {}", tp, attach_reason(st.msg(), quiet.take())));
  probes_.push_back({Probe::Tracepoint, tp, "", 0, -1});
  attached_++;
}

void Session::attach_kprobe(const std::string& kernel_fn, const std::string& fn, bool on_return) {
  StderrFilter quiet;
  ebpf::StatusTuple st = bpf_->attach_kprobe(kernel_fn, fn, 0, on_return ? BPF_PROBE_RETURN : BPF_PROBE_ENTRY);
  if (!st.ok())
    throw ToolError(fmt::format("cannot attach {} to {}: {}", on_return ? "kretprobe" : "kprobe",
                                kernel_fn, attach_reason(st.msg(), quiet.take())));
  probes_.push_back({on_return ? Probe::Kretprobe : Probe::Kprobe, kernel_fn, "", 0, -1});
  attached_++;
}

void Session::detach_all() {
  if (!bpf_) return;
  StderrFilter quiet;
  for (auto it = probes_.rbegin(); it != probes_.rend(); ++it) {
    switch (it->type) {
      case Probe::Uprobe:
      case Probe::Uretprobe:
        bpf_->detach_uprobe(it->where, it->symbol, it->addr,
                            it->type == Probe::Uretprobe ? BPF_PROBE_RETURN : BPF_PROBE_ENTRY, it->pid);
        break;
      case Probe::Tracepoint:
        bpf_->detach_tracepoint(it->where);
        break;
      case Probe::Kprobe:
      case Probe::Kretprobe:
        bpf_->detach_kprobe(it->where, it->type == Probe::Kretprobe ? BPF_PROBE_RETURN : BPF_PROBE_ENTRY);
        break;
    }
  }
  probes_.clear();
  attached_ = 0;
}

int Session::map_fd(const std::string& name) {
  int fd = bpf_ ? bpf_->get_table(name).get_fd() : -1;
  if (fd < 0) throw ToolError("internal: BPF map '" + name + "' not found");
  return fd;
}

}  // namespace lockkit
