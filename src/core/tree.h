// Process trees: the processes a run follows besides its target (probes/common.h, "Process trees").
// With `-- COMMAND` a tool follows every process the command starts; with `-p PID --follow-forks`
// the processes PID forks from then on. BPF adds each fork of a traced process to `lk_tree` from
// sched:sched_process_fork, in the parent, before the child first runs: a tool on tracepoints (the
// futex system calls) traces the child from its first system call with nothing else to do.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/report.h"

namespace lockkit {

class Session;

// The -D defines of a program whose lk_traced() follows the target's tree; with `stops`, new
// processes of the tree stop themselves until user space has attached their probes (programs on
// probes bound to one process: uprobes).
std::vector<std::string> tree_defines(bool stops = false);

// The drop reason of forks not followed because lk_tree was full.
extern const DropReason kTreeFull;

// A process of the tree that stopped itself before its first instruction (after its fork, or at
// an exec), waiting for its probes.
struct StoppedProcess {
  pid_t pid = 0;
  pid_t parent = 0;   // the process it was forked by (0 at an exec)
  bool exec = false;  // stopped at an exec: it runs a new program
};

// Continues every process in a stops map when the tool dies, however it dies (SIGKILL included):
// a small process of its own (its own session, so that a signal to the tool's process group does
// not reach it) that holds only the map and a descriptor of the tool, and, once the tool is gone
// (its probes with it), sends SIGCONT to every pid still in the map. It ends then; the tool, on a
// normal end, continues its stopped processes itself first.
class StopGuard {
 public:
  explicit StopGuard(int stops_map_fd);
  ~StopGuard();
  StopGuard(const StopGuard&) = delete;
  StopGuard& operator=(const StopGuard&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int pipe_fd_ = -1;  // our end: its closing (our exit) wakes the guard
};

class ProcessTree {
 public:
  // Attaches lk_tree_fork, lk_tree_exec and lk_tree_free (a program compiled with
  // tree_defines(stops)) for the tree rooted at `root`, and with `stops` lk_tree_child at the exits
  // of fork, vfork, clone and clone3, its ring buffer and the StopGuard. Attach it before the probes
  // that record anything: a fork is followed only once lk_tree_fork is attached.
  ProcessTree(Session& s, pid_t root, bool stops = false);
  ~ProcessTree();
  // With stops: readable when a process stopped (for the run loop's ready_fd()); -1 without.
  int ready_fd() const { return events_fd_; }
  // With stops: the processes waiting for their probes (the wake-ups are drained), oldest first.
  std::vector<StoppedProcess> stopped();
  // Lets a stopped process run (SIGCONT); it leaves the stops map first.
  void resume(pid_t pid);
  // Lets every stopped process run (the end of tracing).
  void resume_all();
  // The processes added to the tree since the last call, oldest pid order, with their parents
  // (0 when unknown). Processes that exited between two calls are only seen through note().
  std::vector<std::pair<pid_t, pid_t>> poll();
  // A process of the tree seen another way (a fork record of the kernel's mapping records).
  // Returns true when it was not known yet.
  bool note(pid_t pid, pid_t parent);
  bool contains(pid_t pid) const { return pid == root_ || parents_.count(pid) > 0; }
  pid_t root() const { return root_; }
  // Every process of the tree seen so far, the root first, then by pid.
  std::vector<pid_t> pids() const;
  // Whether a process of the tree (not the root) still runs (a zombie does not).
  bool alive();
  // The parent a process was forked by (0 for the root or when unknown).
  pid_t parent(pid_t pid) const;
  // Forks lost to a full map, as a drop.
  void add_to(Diagnostics& d) const;

 private:
  int map_fd_ = -1, counts_fd_ = -1, stops_fd_ = -1, events_fd_ = -1;
  void* ring_ = nullptr;  // libbcc's ring buffer reader of lk_tree_events
  std::unique_ptr<StopGuard> guard_;
  pid_t root_;
  std::map<pid_t, pid_t> parents_;
};

}  // namespace lockkit
