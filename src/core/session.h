// One BPF program's life: environment checks, compile with -D flags, attach with errors that name
// the probe, detach everything when it ends. libbcc's noise is kept off the terminal.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tables.h"

namespace ebpf {
class BPF;
}

namespace lockkit {

// Lines libbcc prints on this kind of kernel that mean nothing to the user.
bool is_libbcc_noise(const std::string& line);

// While alive, stderr (fd 2) goes to a temporary file; on destruction the captured lines that are
// not libbcc noise are written back to the real stderr.
class StderrFilter {
 public:
  StderrFilter();
  ~StderrFilter();
  // Stops capturing and returns what was captured (noise removed) instead of printing it.
  std::string take();
  StderrFilter(const StderrFilter&) = delete;
  StderrFilter& operator=(const StderrFilter&) = delete;

 private:
  std::string finish();
  int saved_ = -1;
  int tmp_ = -1;
};

// Checks the host can run BPF at all (root, tracefs mounted or mountable, kernel headers); prints
// the one-line header note when this run sets up the fallback header tree (later runs that reuse
// it say nothing). Throws ToolError with a clear reason.
void prepare_environment(const std::string& tool);
// Throws ToolError unless we run as root.
void require_root();

// Mounts tracefs at /sys/kernel/tracing when no tracefs is mounted. Throws ToolError on failure.
void ensure_tracefs();
// Where tracefs is mounted (/sys/kernel/tracing, or the older debugfs path).
std::string tracefs_root();
// Whether `rel` (e.g. "events/lock/contention_begin") exists under tracefs.
bool tracefs_has(const std::string& rel);

class StopSignals;

// Progress for a detach that takes long: when a stop signal (a second Ctrl-C) arrives while probes
// are still being removed, says on stderr what is happening instead of seeming to hang.
std::function<void(size_t left)> detach_notice(const std::string& tool, StopSignals& signals);

class Session {
 public:
  explicit Session(std::string tool);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Compiles `text`; `defines` become -D flags. Throws ToolError with the compiler's message.
  void compile(const std::string& text, const std::vector<std::string>& defines);
  // Attaches `fn` at `addr` (a linked vaddr, 0 to resolve `symbol`) of `binary` for `pid`. The
  // probe lives as long as a descriptor of ours (never a tracefs event). Throws ToolError naming
  // the probe and the kernel's reason. `cookie` is what bpf_get_attach_cookie() returns there:
  // one program serving several sites tells them apart by it (a program that unwinds stacks is
  // verified once per program, which is most of the start-up time).
  void attach_uprobe(const std::string& binary, const std::string& symbol, uint64_t addr,
                     const std::string& fn, bool on_return, pid_t pid, uint64_t cookie = 0);
  void attach_tracepoint(const std::string& category_name, const std::string& fn);
  void attach_kprobe(const std::string& kernel_fn, const std::string& fn, bool on_return);
  // Removes every probe. Uprobe and kprobe descriptors close concurrently (each removal waits for
  // a grace period; concurrent waits overlap). `on_wait` is called about every 100 ms meanwhile.
  void detach_all(const std::function<void(size_t left)>& on_wait = {});
  // How uprobes are attached here: "uprobe-multi links" or "perf uprobe events".
  std::string uprobe_mechanism() const;
  size_t attached() const { return attached_; }

  // File descriptor of a map declared in the program; throws ToolError when there is none.
  int map_fd(const std::string& name);
  // The program's stack map (probes/common.h: `stacks`).
  int stack_map() { return map_fd("stacks"); }
  // Writes one element of map `name`; throws ToolError naming the map on failure.
  template <typename K, typename V>
  void update(const std::string& name, const K& key, const V& value) {
    update_raw(name, &key, &value);
  }
  // Loads function `fn` as a program of `prog_type` (enum bpf_prog_type): the verifier runs,
  // nothing is attached. Throws ToolError with the verifier's message.
  void load_function(const std::string& fn, int prog_type);
  // Opens the perf buffer map `name` with `pages` pages per CPU; `on_sample` receives each record,
  // `on_lost` each count of records the kernel dropped.
  void open_perf_buffer(const std::string& name, std::function<void(const void* data, int size)> on_sample,
                        std::function<void(uint64_t lost)> on_lost, int pages);
  // Delivers every record waiting in perf buffer `name` to its callbacks.
  void consume_perf_buffer(const std::string& name);
  const std::string& tool() const { return tool_; }

 private:
  std::string tool_;
  std::unique_ptr<ebpf::BPF> bpf_;
  // Tracepoints go through libbcc (a perf event per tracepoint, closed by descriptor); libbcc's
  // detach_all() keeps its records, and its destructor would close them a second time, so each is
  // detached here exactly once.
  std::vector<std::string> tracepoints_;
  // Uprobe and kprobe descriptors (BPF links or perf events) we own.
  std::vector<int> probe_fds_;
  enum class UprobeMode { Unknown, Multi, Perf } uprobe_mode_ = UprobeMode::Unknown;
  int load_uprobe_program(const std::string& fn);
  void update_raw(const std::string& name, const void* key, const void* value);
  struct PerfCallbacks {
    std::function<void(const void*, int)> sample;
    std::function<void(uint64_t)> lost;
  };
  std::vector<std::unique_ptr<PerfCallbacks>> perf_callbacks_;
  size_t attached_ = 0;
};

}  // namespace lockkit
