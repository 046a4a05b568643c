#include "core/tree.h"

#include <bcc/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "common.h"
#include "core/process.h"
#include "core/session.h"
#include "core/tables.h"
#include "core/util.h"

namespace lockkit {

const DropReason kTreeFull = {
    "tree_full", "forked processes were not followed (the process-tree map was full): their locks are missing"};

std::vector<std::string> tree_defines(bool stops) {
  std::vector<std::string> d = {"TRACE_TREE=1"};
  if (stops) d.push_back("TREE_STOP=1");
  return d;
}

namespace {


int bpf_cmd(int cmd, void* attr, size_t size) { return int(syscall(SYS_bpf, cmd, attr, size)); }

// BPF_MAP_GET_NEXT_KEY / BPF_MAP_DELETE_ELEM on a u32-keyed map, by raw system call: the guard
// runs in a forked child, where only system calls are safe.
struct MapKeyAttr {
  uint32_t map_fd;
  uint32_t pad;
  uint64_t key;
  uint64_t next_key;
  uint64_t flags;
};

// The guard's whole life, in the forked child (system calls only: no allocation, no locks).
[[noreturn]] void guard_main(int map_fd, int pipe_fd, int tool_pidfd) {
  // Wait for the tool's end: its end of the pipe closes when it exits, however it exits; then
  // until it is gone entirely (its pidfd), so that its probes are closed and nothing new stops.
  pollfd p{pipe_fd, POLLIN, 0};
  char c;
  for (;;) {
    int r = poll(&p, 1, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r > 0 && read(pipe_fd, &c, 1) > 0) continue;  // nothing is ever written; EOF ends it
    break;
  }
  if (tool_pidfd >= 0) {
    pollfd q{tool_pidfd, POLLIN, 0};
    while (poll(&q, 1, 5000) < 0 && errno == EINTR) {
    }
  }
  timespec settle{0, 20 * 1000 * 1000};  // a program already running when the probes went
  nanosleep(&settle, nullptr);
  for (int round = 0; round < 2; round++) {
    uint32_t key = 0, next = 0;
    MapKeyAttr a{};
    a.map_fd = uint32_t(map_fd);
    a.key = 0;  // the first key
    a.next_key = reinterpret_cast<uint64_t>(&next);
    while (bpf_cmd(4 /* BPF_MAP_GET_NEXT_KEY */, &a, sizeof(a)) == 0) {
      kill(pid_t(next), SIGCONT);
      key = next;
      a.key = reinterpret_cast<uint64_t>(&key);
    }
    nanosleep(&settle, nullptr);
  }
  _exit(0);
}

}  // namespace

StopGuard::StopGuard(int stops_map_fd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw ToolError("pipe: " + errno_text(errno));
  int tool_pidfd = int(syscall(SYS_pidfd_open, getpid(), 0));
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    if (tool_pidfd >= 0) close(tool_pidfd);
    throw ToolError("fork: " + errno_text(e));
  }
  if (pid == 0) {
    // Keep only the map, our end of the pipe and the tool's pidfd (as 3, 4, 5): any other
    // descriptor of the tool (a probe's) would keep that probe alive after the tool.
    int keep[3] = {stops_map_fd, fds[0], tool_pidfd};
    int moved[3];
    for (int i = 0; i < 3; i++) moved[i] = keep[i] >= 0 ? fcntl(keep[i], F_DUPFD, 100) : -1;
    for (int i = 0; i < 3; i++)
      if (moved[i] >= 0) dup2(moved[i], 3 + i);
    syscall(SYS_close_range, 6, ~0u, 0);
    for (int i = 0; i < 3; i++) {
      if (moved[i] < 0) close(3 + i);
    }
    setsid();  // not in the tool's process group or session: a signal to those does not reach it
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    prctl(PR_SET_NAME, "lockkit-guard", 0, 0, 0);
    guard_main(3, 4, moved[2] >= 0 ? 5 : -1);
  }
  close(fds[0]);
  if (tool_pidfd >= 0) close(tool_pidfd);
  pid_ = pid;
  pipe_fd_ = fds[1];
}

StopGuard::~StopGuard() {
  if (pipe_fd_ >= 0) close(pipe_fd_);
  // The guard ends once we do; it is not waited for (it finishes after our exit).
}

ProcessTree::ProcessTree(Session& s, pid_t root, bool stops) : root_(root) {
  map_fd_ = s.map_fd("lk_tree");
  counts_fd_ = s.map_fd("lk_tree_counts");
  // Frees first, so that no entry outlives its process; then execs, the stops, and forks last.
  s.attach_tracepoint("sched:sched_process_free", "lk_tree_free");
  if (stops) {
    // Each process of the tree gets probes of its own, a descriptor each: as many as allowed.
    rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
    }
    stops_fd_ = s.map_fd("lk_tree_stops");
    events_fd_ = s.map_fd("lk_tree_events");
    ring_ = bpf_new_ringbuf(events_fd_, [](void*, void*, size_t) { return 0; }, nullptr);
    if (!ring_) throw ToolError("cannot read the process-tree ring buffer");
    guard_ = std::make_unique<StopGuard>(stops_fd_);
    for (const char* sys : {"fork", "vfork", "clone", "clone3"})
      s.attach_tracepoint(fmt::format("syscalls:sys_exit_{}", sys), "lk_tree_child");
  }
  s.attach_tracepoint("sched:sched_process_exec", "lk_tree_exec");
  s.attach_tracepoint("sched:sched_process_fork", "lk_tree_fork");
}

ProcessTree::~ProcessTree() {
  // A process still stopped (a run that failed half-way) is continued by the guard once we exit:
  // the maps may be gone by now (the session ends first).
  if (ring_) bpf_free_ringbuf(static_cast<ring_buffer*>(ring_));
}

std::vector<StoppedProcess> ProcessTree::stopped() {
  std::vector<StoppedProcess> out;
  if (stops_fd_ < 0) return out;
  bpf_consume_ringbuf(static_cast<ring_buffer*>(ring_));  // the wake-ups: the map says who
  for (auto& [pid, st] : read_map<uint32_t, lk_tree_stop>(stops_fd_, false)) {
    StoppedProcess p;
    p.pid = pid_t(pid);
    p.parent = pid_t(st.parent);
    p.exec = st.exec != 0;
    out.push_back(p);
  }
  std::sort(out.begin(), out.end(), [](const StoppedProcess& a, const StoppedProcess& b) { return a.pid < b.pid; });
  return out;
}

void ProcessTree::resume(pid_t pid) {
  uint32_t key = uint32_t(pid);
  MapKeyAttr a{};
  a.map_fd = uint32_t(stops_fd_);
  a.key = reinterpret_cast<uint64_t>(&key);
  bpf_cmd(3 /* BPF_MAP_DELETE_ELEM */, &a, sizeof(a));
  kill(pid, SIGCONT);
}

void ProcessTree::resume_all() {
  for (auto& p : stopped()) resume(p.pid);
}

std::vector<std::pair<pid_t, pid_t>> ProcessTree::poll() {
  std::vector<std::pair<pid_t, pid_t>> fresh;
  for (auto& [pid, parent] : read_map<uint32_t, uint32_t>(map_fd_, false)) {
    // The value turns 0 at exec: the parent is the one first seen.
    if (note(pid_t(pid), pid_t(parent))) fresh.emplace_back(pid_t(pid), pid_t(parent));
  }
  return fresh;
}

bool ProcessTree::note(pid_t pid, pid_t parent) {
  if (pid == root_) return false;
  auto [it, added] = parents_.emplace(pid, parent);
  if (!added && it->second == 0) it->second = parent;
  return added;
}

std::vector<pid_t> ProcessTree::pids() const {
  std::vector<pid_t> out = {root_};
  for (auto& [pid, parent] : parents_) out.push_back(pid);
  return out;
}

bool ProcessTree::alive() {
  poll();
  for (auto& [pid, parent] : read_map<uint32_t, uint32_t>(map_fd_, false)) {
    auto stat = read_file(fmt::format("/proc/{}/stat", pid));
    auto st = stat ? parse_proc_stat(*stat) : std::nullopt;
    if (st && st->state != 'Z' && st->state != 'X') return true;
  }
  return false;
}

pid_t ProcessTree::parent(pid_t pid) const {
  auto it = parents_.find(pid);
  return it == parents_.end() ? 0 : it->second;
}

void ProcessTree::add_to(Diagnostics& d) const {
  auto counts = read_counters(counts_fd_, LK_TREE_COUNTS);
  if (counts.size() > LK_TREE_FULL) d.drop(kTreeFull, counts[LK_TREE_FULL]);
}

}  // namespace lockkit
