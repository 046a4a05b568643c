#include "core/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "core/elf.h"
#include "core/util.h"

namespace lockkit {

namespace {

sigset_t stop_set() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGHUP);
  return s;
}

int open_pidfd(pid_t pid) { return int(syscall(SYS_pidfd_open, pid, 0)); }

bool defines_function(const std::string& path, const std::string& fn) {
  try {
    for (auto& s : ElfFile::open_cached(path)->find(fn))
      if (s.is_function) return true;
  } catch (const ToolError&) {
  }
  return false;
}

}  // namespace

StopSignals::StopSignals() {
  sigset_t s = stop_set();
  if (sigprocmask(SIG_BLOCK, &s, nullptr) != 0) throw ToolError("sigprocmask failed");
  fd_ = signalfd(-1, &s, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd_ < 0) throw ToolError("signalfd: " + errno_text(errno));
}

StopSignals::~StopSignals() {
  if (fd_ >= 0) close(fd_);
}

int StopSignals::take() {
  signalfd_siginfo si;
  ssize_t n = read(fd_, &si, sizeof(si));
  return n == ssize_t(sizeof(si)) ? int(si.ssi_signo) : 0;
}

void StopSignals::throw_if_stopped(const std::string& what) {
  if (int sig = take()) throw ToolError(fmt::format("interrupted ({}) before {}", strsignal(sig), what), 128 + sig);
}

std::string process_root(pid_t pid) {
  // /proc/PID/maps names files as the reader sees them when they are reachable from its root (a
  // chroot in our namespace shows full paths); only another mount namespace names its own paths.
  if (pid <= 0) return "";
  std::string proc = fmt::format("/proc/{}", pid);
  std::string ns = readlink_str(proc + "/ns/mnt");
  return ns.empty() || ns == readlink_str("/proc/self/ns/mnt") ? "" : proc + "/root";
}

bool process_exists(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

std::optional<pid_t> tgid_of(pid_t tid) {
  auto status = read_file(fmt::format("/proc/{}/status", tid));
  if (!status) return std::nullopt;
  for (auto& line : split(*status, '\n'))
    if (starts_with(line, "Tgid:")) {
      auto v = parse_int(trim(line.substr(5)));
      if (v && *v > 0) return pid_t(*v);
    }
  return std::nullopt;
}

TargetIds resolve_target_ids(pid_t pid, pid_t tid) {
  if (!tid) return {pid, 0};
  auto owner = tgid_of(tid);
  if (!owner) throw ToolError(fmt::format("no thread with tid {}", tid));
  if (pid && pid != *owner)
    throw UsageError(fmt::format("tid {} belongs to pid {}, not {}", tid, *owner, pid));
  return {*owner, tid};
}

std::optional<ProcStat> parse_proc_stat(const std::string& text) {
  size_t open = text.find('(');
  size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  ProcStat st;
  st.comm = text.substr(open + 1, close - open - 1);
  // After the command: field 3 (state), 4 ppid, 5 pgrp, 6 session, 7 tty_nr, 8 tpgid, 9 flags.
  std::istringstream rest(text.substr(close + 1));
  std::string state, skip, flags;
  if (!(rest >> state >> skip >> skip >> skip >> skip >> skip >> flags) || state.size() != 1) return std::nullopt;
  auto f = parse_int(flags);
  if (!f || *f < 0) return std::nullopt;
  st.state = state[0];
  st.flags = static_cast<unsigned long>(*f);
  return st;
}

namespace {
std::optional<ProcStat> read_proc_stat(pid_t pid) {
  auto text = read_file(fmt::format("/proc/{}/stat", pid));
  return text ? parse_proc_stat(*text) : std::nullopt;
}
}  // namespace

bool is_kernel_thread(pid_t pid) {
  auto st = read_proc_stat(pid);
  return st && (st->flags & kPfKthread);
}

Target Target::attach(pid_t pid, KernelThreads kthreads) {
  // A thread id is not a process to follow (and pidfd_open refuses it).
  auto tgid = tgid_of(pid);
  if (tgid && *tgid != pid)
    throw UsageError(fmt::format("{} is a thread of process {}: give the process id", pid, *tgid));
  if (kthreads == KernelThreads::Refuse) {
    // A kernel thread has no user space: no maps for uprobes, no futex calls to see.
    auto st = read_proc_stat(pid);
    if (st && (st->flags & kPfKthread))
      throw ToolError(fmt::format("pid {} ({}) is a kernel thread: it has no user space to trace", pid, st->comm));
  }
  Target t;
  t.pid_ = pid;
  t.pidfd_ = open_pidfd(pid);
  if (t.pidfd_ < 0) {
    if (errno == ESRCH) throw ToolError(fmt::format("no process with pid {}", pid));
    throw ToolError(fmt::format("cannot follow pid {}: {}", pid, errno_text(errno)));
  }
  t.exe_ = readlink_str(fmt::format("/proc/{}/exe", pid));
  if (ends_with(t.exe_, " (deleted)")) t.exe_.resize(t.exe_.size() - 10);
  return t;
}

std::string resolve_command(const std::string& name) {
  auto executable = [](const std::string& p) { return access(p.c_str(), X_OK) == 0 && !is_directory(p); };
  if (name.find('/') != std::string::npos) {
    if (!path_exists(name)) throw UsageError(fmt::format("{}: no such file", name));
    if (!executable(name)) throw UsageError(fmt::format("{}: not executable", name));
    char buf[PATH_MAX];
    return realpath(name.c_str(), buf) ? std::string(buf) : name;
  }
  const char* path = std::getenv("PATH");
  for (auto& dir : split(path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    std::string p = (dir.empty() ? "." : dir) + "/" + name;
    if (executable(p)) {
      char buf[PATH_MAX];
      return realpath(p.c_str(), buf) ? std::string(buf) : p;
    }
  }
  throw UsageError(fmt::format("{}: command not found", name));
}

Target Target::spawn(const std::vector<std::string>& argv) {
  if (argv.empty()) throw UsageError("no command given after --");
  Target t;
  t.exe_ = resolve_command(argv[0]);
  int go[2], err[2];
  if (pipe2(go, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
    throw ToolError("pipe: " + errno_text(errno));
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw ToolError("fork: " + errno_text(errno));
  if (pid == 0) {
    close(go[1]);
    close(err[0]);
    sigset_t s = stop_set();
    sigprocmask(SIG_UNBLOCK, &s, nullptr);
    char c;
    ssize_t n;
    do n = read(go[0], &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) _exit(127);  // the tool went away before tracing started
    execv(t.exe_.c_str(), args.data());
    int e = errno;
    ssize_t w = write(err[1], &e, sizeof(e));
    (void)w;
    _exit(127);
  }
  close(go[0]);
  close(err[1]);
  t.pid_ = pid;
  t.spawned_ = true;
  t.go_fd_ = go[1];
  t.err_fd_ = err[0];
  t.pidfd_ = open_pidfd(pid);
  return t;
}

Target::Target(Target&& o) noexcept
    : pid_(o.pid_), pidfd_(o.pidfd_), go_fd_(o.go_fd_), err_fd_(o.err_fd_), spawned_(o.spawned_),
      released_(o.released_), exe_(std::move(o.exe_)), status_(o.status_) {
  o.pidfd_ = o.go_fd_ = o.err_fd_ = -1;
  o.pid_ = -1;
  o.spawned_ = false;
}

Target::~Target() {
  if (go_fd_ >= 0) close(go_fd_);  // an unreleased child sees EOF and exits
  if (err_fd_ >= 0) close(err_fd_);
  if (spawned_ && !status_) {
    if (!released_) {
      int st;
      waitpid(pid_, &st, 0);
    }
  }
  if (pidfd_ >= 0) close(pidfd_);
}

void Target::release() {
  if (!spawned_ || released_) return;
  released_ = true;
  char c = 'g';
  if (write(go_fd_, &c, 1) != 1) throw ToolError("cannot start the command");
  close(go_fd_);
  go_fd_ = -1;
  int e = 0;
  ssize_t n;
  do n = read(err_fd_, &e, sizeof(e));
  while (n < 0 && errno == EINTR);
  close(err_fd_);
  err_fd_ = -1;
  if (n == ssize_t(sizeof(e))) {
    int st;
    waitpid(pid_, &st, 0);
    status_ = 127;
    throw ToolError(fmt::format("cannot run {}: {}", exe_, errno_text(e)));
  }
}

bool Target::exited() {
  if (status_) return true;
  if (spawned_) {
    int st;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return true;
    }
    return false;
  }
  if (pidfd_ >= 0) {
    pollfd p{pidfd_, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  }
  return !process_exists(pid_);
}

bool Target::running_program() const {
  if (!spawned_) return true;
  std::string exe = readlink_str(fmt::format("/proc/{}/exe", pid_));
  return released_ && exe == exe_;
}

Wake wait_until(uint64_t deadline_ns, StopSignals& sig, Target* target, int ready_fd) {
  for (;;) {
    if (target && target->exited()) return Wake::TargetExit;
    uint64_t now = monotonic_ns();
    if (now >= deadline_ns) return Wake::Timeout;
    uint64_t left_ms = (deadline_ns - now + 999999) / 1000000;
    pollfd fds[3] = {{sig.fd(), POLLIN, 0}, {target ? target->pidfd() : -1, POLLIN, 0}, {ready_fd, POLLIN, 0}};
    int r = poll(fds, 3, int(std::min<uint64_t>(left_ms, 1000)));
    if (r < 0 && errno != EINTR) throw ToolError("poll: " + errno_text(errno));
    if (r > 0 && (fds[0].revents & POLLIN) && sig.take() != 0) return Wake::Signal;
    if (r > 0 && (fds[2].revents & POLLIN)) return Wake::Ready;
  }
}

namespace {

// A name part after a library's stem: "", ".so...", "-2.31.so", "_x.so": anything but a letter or
// digit continuing the stem (libcrypto is not libc).
bool stem_ends(const std::string& base, const std::string& stem) {
  if (!starts_with(base, stem) || base.find(".so") == std::string::npos) return false;
  if (base.size() == stem.size()) return false;
  char c = base[stem.size()];
  return c == '.' || c == '-' || c == '_';
}

bool is_static_executable(const std::string& path) {
  try {
    return !ElfFile::open_cached(path)->has_interpreter();
  } catch (const ToolError&) {
    return false;
  }
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

}  // namespace

PthreadCandidate classify_pthread_candidate(const std::string& path) {
  std::string base = basename_of(path);
  if (stem_ends(base, "libpthread")) return PthreadCandidate::Libpthread;
  if (stem_ends(base, "libc") || stem_ends(base, "ld-musl")) return PthreadCandidate::Libc;
  return PthreadCandidate::None;
}

std::vector<std::string> pthread_candidates(const std::string& maps_text, const std::string& root) {
  std::vector<std::string> libpthread, libc;
  std::istringstream in(maps_text);
  std::string line;
  while (std::getline(in, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (ends_with(path, " (deleted)")) path.resize(path.size() - 10);
    path = root + path;
    auto kind = classify_pthread_candidate(path);
    auto& list = kind == PthreadCandidate::Libpthread ? libpthread : libc;
    if (kind != PthreadCandidate::None && std::find(list.begin(), list.end(), path) == list.end())
      list.push_back(path);
  }
  libpthread.insert(libpthread.end(), libc.begin(), libc.end());
  return libpthread;
}

PthreadLibrary resolve_pthread_library(pid_t pid, const std::string& exe, const std::string& override_path) {
  // A process under another root: its executable is reached through /proc/PID/exe.
  std::string exe_file = pid > 0 && !exe.empty() && !process_root(pid).empty() ? fmt::format("/proc/{}/exe", pid) : exe;
  if (!override_path.empty()) {
    if (!path_exists(override_path)) throw UsageError(override_path + ": no such file");
    try {
      ElfFile::open_cached(override_path);
    } catch (const ToolError& e) {
      throw UsageError(fmt::format("--binary {}: {}", override_path,
                                   ends_with(e.what(), "not an ELF file") ? "not an ELF file" : e.what()));
    }
    if (!defines_function(override_path, "pthread_mutex_lock"))
      throw UsageError(override_path + " does not define pthread_mutex_lock");
    std::string path = real_path(override_path);
    bool own_exe = !exe_file.empty() && path == real_path(exe_file);
    return {path, own_exe && is_static_executable(path)};
  }
  if (!exe_file.empty() && defines_function(exe_file, "pthread_mutex_lock"))
    return {exe_file, is_static_executable(exe_file)};
  // A static program maps no library: without its own pthread_mutex_lock there is nothing to probe
  // (a stripped or lock-free program), and our own libc would be the wrong file.
  if (!exe_file.empty() && is_static_executable(exe_file))
    throw ToolError(fmt::format("{} is statically linked and its symbol table names no pthread_mutex_lock "
                                "(stripped, or it uses no mutex): nothing to probe", exe));
  // Candidates from the target's maps, else from our own (same loader and libc for a command).
  std::string maps_pid = pid > 0 && process_exists(pid) ? std::to_string(pid) : "self";
  std::string root = maps_pid == "self" ? "" : process_root(pid);
  auto maps = read_file("/proc/" + maps_pid + "/maps");
  auto candidates = pthread_candidates(maps ? *maps : "", root);
  if (maps_pid != "self" && candidates.empty() && !exe.empty())
    throw ToolError(fmt::format("pid {} maps no libc or libpthread and does not define "
                                "pthread_mutex_lock; use --binary PATH", pid));
  for (auto& c : candidates)
    if (defines_function(c, "pthread_mutex_lock")) return {c, false};
  std::string checked;
  for (auto& c : candidates) checked += (checked.empty() ? " (none of " : ", ") + c;
  if (!checked.empty()) checked += " defines it)";
  throw ToolError(fmt::format("cannot find the library holding pthread_mutex_lock{}; use --binary PATH", checked));
}

}  // namespace lockkit
