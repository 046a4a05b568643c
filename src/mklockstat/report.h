// mklockstat's output: the log (samples, each stack once before its first use) and the summary.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "core/pprof.h"
#include "core/report.h"
#include "mklockstat/model.h"

namespace lockkit::mklockstat {

class LogWriter {
 public:
  using StackFrames = std::function<std::vector<std::string>(int32_t stackid)>;
  using LockName = std::function<std::optional<std::string>(uint64_t lock)>;

  // `frames` gives the frames of a stack id (called once per id); `name`, when --names, the name of
  // a lock (called once per lock).
  LogWriter(std::ostream& os, StackFrames frames, bool with_names, LockName name);

  // Writes samples in the given order; a stack's "t," line goes right before the first sample
  // that uses it. Negative stack ids are lost stacks: no "t," line.
  void write(const std::vector<Sample>& samples);

  uint64_t samples() const { return samples_; }
  uint64_t stacks() const { return stacks_.size(); }
  uint64_t lost_stack_samples() const { return lost_stack_samples_; }
  uint64_t periods() const { return periods_.size(); }
  uint64_t first_period() const { return periods_.empty() ? 0 : *periods_.begin(); }
  uint64_t last_period() const { return periods_.empty() ? 0 : *periods_.rbegin(); }

 private:
  std::ostream& os_;
  StackFrames frames_;
  bool with_names_;
  LockName name_;
  std::set<int32_t> stacks_;
  std::map<uint64_t, std::string> names_;
  std::set<uint64_t> periods_;
  uint64_t samples_ = 0, lost_stack_samples_ = 0;
};

// What the run saw, for the closing line on stderr.
struct RunSummary {
  std::string why;               // "time is up", "interrupted", ...
  double seconds = 0;
  uint64_t period_ns = 0;
  uint64_t samples = 0, periods = 0, stacks = 0;
  uint64_t waits = 0, failed_waits = 0;
  uint64_t lost_stacks = 0;      // waits whose first stack could not be stored
  uint64_t lost_samples = 0;     // perf buffer overflow or failed output: periods that never arrived
  uint64_t not_recorded = 0;     // waits BPF could not record (a map was full)
  uint64_t late = 0;             // samples printed out of order
};

// The log's samples as a pprof profile: one sample per "s," line (period x thread x lock x type),
// contentions/count = lockcount, delay/nanoseconds = diffsum; its stack is the thread's first stack
// on the lock (the line's stackid), "[lost stack]" for a negative id. String labels lock (`name` of
// the lock, else its address), kind (kind_name), address, comm (when known); numeric pid, tid and period_start
// (ns, monotonic clock). `frames` gives the Frames (leaf first) of a stack id >= 0.
struct ProfileSource {
  std::function<std::vector<Frame>(int32_t stackid)> frames;
  std::function<std::optional<std::string>(uint64_t lock)> name;
};
ProfileData samples_profile(const std::vector<Sample>& samples, const ProfileSource& src);

std::string summary_text(const RunSummary& s);
// What the run lost, for the shared warning lines under the summary (empty when nothing was lost).
Diagnostics diagnostics(const RunSummary& s);

}  // namespace lockkit::mklockstat
