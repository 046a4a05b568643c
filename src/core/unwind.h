// Unwind tables for the stack walk BPF does (probes/common.h, "Stacks"): a module's call-frame
// information (.eh_frame, read with elfutils' libdw) becomes compact rows, one per address range
// with its own rule for the canonical frame address, the return address and the caller's rbp.
// Rows are built once per file and loaded once into `unwind_rows`; each process that maps the
// file gets entries in `unwind_maps` pointing its executable mappings at those rows.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common.h"

namespace lockkit {

struct MappedModule;
class ProcessSymbolizer;
class Session;
class Target;
class UnwindTables;

struct UnwindRows {
  std::vector<lk_unwind_row> rows;  // sorted by pc, distinct pcs; the first at the lowest address
  size_t fdes = 0;         // FDEs read
  size_t unsupported = 0;  // rows whose rule BPF cannot follow (LK_CFA_NONE inside an FDE)
  std::string source;      // ".eh_frame" or ".debug_frame"
};

// The rows of ELF file `path` (linked addresses). Throws ToolError when the file has no call-frame
// information that can be read, naming the reason. `debug_file`, when not empty, is the file's
// separate debug file: its .debug_frame is used when the file itself has no .eh_frame.
UnwindRows build_unwind_rows(const std::string& path, const std::string& debug_file = "");

// The files a dynamically linked program maps before its first instruction: itself, its
// interpreter and the libraries it needs (DT_NEEDED, through DT_RUNPATH and the usual
// directories), as real paths. A best effort: a library it cannot find is left out.
std::vector<std::string> startup_modules(const std::string& exe);

// The program's unwind tables, with the rows of `exe`'s startup modules and of `lib` (the pthread
// library) loaded already: for a command not yet started, only where they get mapped is left for
// when its mappings are seen.
std::unique_ptr<UnwindTables> prepare_unwind_tables(Session& s, const std::string& exe, const std::string& lib);
// The same for one more program (a process of the tree that executed `exe`): its rows are loaded
// before it runs.
void prepare_program(UnwindTables& tables, const std::string& exe, const std::string& lib);

// A command not yet released, dynamically linked, stopped once its dynamic linker has mapped every
// library the program needs and before any code of theirs (constructors included) runs: a probe on
// the linker's _dl_debug_state sends the stop (lk_startup_stop in probes/common.h, SIGSTOP). While
// it is stopped, its mappings reach the unwind maps; then it continues. So even its first lock call
// is unwound from the call-frame information.
class StartupStop {
 public:
  // Attaches the probe, for `t` (spawned, not yet released). armed() is false, with nothing
  // attached, when the program has no interpreter or the interpreter lacks _dl_debug_state or
  // _r_debug (a static program): then catch_up_with_start is all there is.
  StartupStop(Session& s, const Target& t);
  bool armed() const { return armed_; }
  // After the release: waits up to `max_ms` for the stop, calls `refresh` (which takes in the new
  // mappings) while the command is stopped, and continues it, also when `refresh` throws. Returns
  // whether it stopped; when it did not in time, the stop is called off and will not come later.
  bool finish(const std::function<void()>& refresh, int max_ms = 2000);

 private:
  pid_t pid_ = 0;
  int map_fd_ = -1;
  bool armed_ = false;
};

// For a command just released: until its mappings reach the unwind maps its stacks are walked by
// frame pointer, and it maps its libraries within a millisecond or so and may lock right after.
// Calls `refresh` (which takes in new mappings) about every 100 us until `sym` maps `lib`, for at
// most `max_ms`.
void catch_up_with_start(const std::function<void()>& refresh, const ProcessSymbolizer& sym, const std::string& lib,
                         int max_ms = 200);

// The LPM trie keys (struct lk_unwind_key) that cover exactly [lo, hi) of process `tgid`.
std::vector<lk_unwind_key> unwind_keys(uint32_t tgid, uint64_t lo, uint64_t hi);

// The -D defines that size the unwind maps (UNWIND_ROWS, UNWIND_MAPS), for a program that unwinds
// user stacks (lk_user_stack, lk_user_stack_syscall).
std::vector<std::string> unwind_map_defines();

// The rows of every module the traced processes map, loaded into a program's unwind maps.
class UnwindTables {
 public:
  // The program's `unwind_rows` array (`rows_capacity` entries) and `unwind_maps` trie.
  UnwindTables(int rows_fd, uint32_t rows_capacity, int maps_fd);
  // The program's maps, sized by unwind_map_defines(). While it lives, every module a
  // ProcessSymbolizer learns is added for its process (set_module_listener).
  explicit UnwindTables(Session& s);
  ~UnwindTables();
  UnwindTables(const UnwindTables&) = delete;
  UnwindTables& operator=(const UnwindTables&) = delete;
  // Builds and loads the rows of `path` (as we open it) unless they are loaded already; false when
  // the file has none or they do not fit (then its frames are unwound by frame pointer).
  bool prepare(const std::string& path, const std::string& build_id, const std::string& debug_file);
  // Process `pid` maps `m`: its executable segments unwind with m's rows from now on.
  void add(pid_t pid, const MappedModule& m);

  // What could not be done, one line each (a module without rows, the row array full...).
  const std::vector<std::string>& warnings() const { return warnings_; }
  size_t rows_used() const { return used_; }
  size_t modules() const { return loaded_.size(); }

 private:
  struct Loaded {
    uint32_t first = 0, count = 0;
    bool ok = false;
  };
  const Loaded& load(const std::string& path, const std::string& build_id, const std::string& debug_file);
  int rows_fd_, maps_fd_;
  uint32_t capacity_;
  uint32_t used_ = 0;
  bool listening_ = false;
  std::set<std::string> said_;
  std::map<std::string, Loaded> loaded_;  // by build-id (or path when it has none)
  std::set<std::tuple<pid_t, uint64_t, uint64_t>> mapped_;
  std::vector<std::string> warnings_;
};

}  // namespace lockkit
