// Every mapping a traced process makes, as it makes it: the kernel's own mapping records (the ones
// `perf record` uses) instead of /proc/PID/maps snapshots, which miss whatever a short-lived process
// maps and unmaps between two ticks (a program that dies in 0.1 s loses its libc frames).
//
// A dummy software event (it counts nothing) on the target with mmap/mmap2/comm/task records and
// `inherit`, so that new threads and forked children report too. The kernel refuses to mmap the
// ring buffer of an inherited event that is not bound to a CPU, so there is one event per (thread,
// CPU) and one ring per CPU; records from the rings are merged in time order.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/report.h"

namespace lockkit {

class ProcessSymbolizer;
class ProcessTree;

// PERF_RECORD_MMAP2 (and MMAP, which has no device, inode or protection).
struct MmapRecord {
  uint32_t pid = 0, tid = 0;
  uint64_t addr = 0, len = 0;
  uint64_t pgoff = 0;  // file offset in bytes
  uint32_t prot = 0;   // PROT_*; PROT_EXEC for a plain MMAP record (only code is reported)
  uint32_t flags = 0;  // MAP_*
  std::string filename;  // as the mapping process names it: "/usr/lib/...", "[vdso]", "//anon"
};
// PERF_RECORD_COMM: `exec` when the name changed because the process executed a program.
struct CommRecord {
  uint32_t pid = 0, tid = 0;
  std::string comm;
  bool exec = false;
};
// PERF_RECORD_FORK / PERF_RECORD_EXIT. pid and ppid are process ids (thread group ids): a new
// thread is a FORK with pid == ppid.
struct TaskRecord {
  bool fork = true;  // false: EXIT
  uint32_t pid = 0, ppid = 0, tid = 0, ptid = 0;
};
// PERF_RECORD_LOST: `lost` records did not fit into the ring.
struct LostRecord {
  uint64_t lost = 0;
};
struct MappingRecord {
  uint64_t time = 0;  // perf clock, from sample_id_all
  std::variant<MmapRecord, CommRecord, TaskRecord, LostRecord> what;
};

// The perf_event_attr sample_type the records are decoded with (TID | TIME).
uint64_t mapping_sample_type();
// Decodes one record laid out as the tracker asks the kernel to (header first, sample_id trailer of
// mapping_sample_type() last). False for types the tracker does not use or a malformed record.
bool decode_mapping_record(const uint8_t* data, size_t size, MappingRecord* out);

class MmapTracker {
 public:
  enum class Start {
    Now,     // a running process: every thread it has is followed from now on
    OnExec,  // a command held before exec: records start at its exec (not our own mappings)
  };
  // Opens the events on `pid` for every online CPU. Throws ToolError when the kernel refuses them
  // (no perf events, too many threads for the descriptor limit...). `ring_pages` is per CPU (a
  // power of two).
  MmapTracker(pid_t pid, Start start, size_t ring_pages = 16);
  ~MmapTracker();
  MmapTracker(const MmapTracker&) = delete;
  MmapTracker& operator=(const MmapTracker&) = delete;

  // Everything the rings hold, oldest first; the rings are free again afterwards.
  std::vector<MappingRecord> read();
  // Threads of a running process that could not be followed (they exited while being opened are
  // not counted).
  size_t threads_missed() const { return threads_missed_; }

 private:
  struct Ring {
    int fd = -1;
    void* base = nullptr;
    size_t size = 0;  // metadata page + data
  };
  void open_thread(pid_t tid, bool enable_on_exec);
  void close_all();
  void read_ring(Ring& r, std::vector<MappingRecord>& out);
  size_t pages_;
  std::vector<int> cpus_;
  std::vector<Ring> rings_;  // one per CPU, same order as cpus_
  std::vector<int> fds_;     // events whose output goes to a ring
  std::set<pid_t> threads_;
  size_t threads_missed_ = 0;
  bool any_ring_ = false;
  std::vector<uint8_t> scratch_;
};

// The online CPUs, from /sys/devices/system/cpu/online ("0-3,6").
std::vector<int> parse_cpu_list(const std::string& text);

// What a tool does with the records of its target: executable file mappings become modules of the
// target's ProcessSymbolizer, a forked child is said once on stderr and kept as a warning (unless the
// run follows the target's process tree: then the child is noted in the tree and its symbolizer
// starts with its parent's modules), lost records are counted. Without perf events it says so once and does nothing (the
// maps snapshots still work).
class TargetMappings {
 public:
  // `tool` prefixes the stderr lines ("lockstat: pid 12 forked 13 (...)").
  TargetMappings(std::string tool, pid_t pid, MmapTracker::Start start);
  // Drains the rings. Mappings of the target go to `sym` (its pid must be the target's).
  void poll(ProcessSymbolizer& sym);
  // Follows the processes of `tree` (which outlives this): their forks are noted in it, not said.
  void follow(ProcessTree* tree) { tree_ = tree; }
  // Drains the rings. Mappings of the target and of the processes of the tree go to the
  // symbolizer `symbolizer_of(pid)` returns (null: none).
  void poll(const std::function<ProcessSymbolizer*(pid_t)>& symbolizer_of);
  // The forks seen and the records lost, as report diagnostics.
  void add_to(Diagnostics& d) const;
  bool active() const { return tracker_ != nullptr; }
  uint64_t lost() const { return lost_; }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  void on_mmap(const MmapRecord& m, ProcessSymbolizer& sym);
  void on_fork(const TaskRecord& t, const std::function<ProcessSymbolizer*(pid_t)>& symbolizer_of);
  std::string tool_;
  pid_t pid_;
  ProcessTree* tree_ = nullptr;
  std::unique_ptr<MmapTracker> tracker_;
  std::set<uint32_t> children_;
  std::vector<std::string> warnings_;
  uint64_t lost_ = 0;
  bool lost_said_ = false;
  // How the target names its files: the directory it is chrooted to (its paths are under it, as
  // /proc/PID/maps shows them), and the prefix to open them through (another mount namespace).
  // Kept from the last look while the process lived.
  std::string chroot_, open_root_;
};

// The drop reason of lost mapping records.
extern const DropReason kMappingRecordsLost;

}  // namespace lockkit
