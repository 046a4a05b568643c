#include "mklockstat/report.h"

#include <fmt/format.h>

namespace lockkit::mklockstat {

LogWriter::LogWriter(std::ostream& os, StackFrames frames, bool with_names, LockName name)
    : os_(os), frames_(std::move(frames)), with_names_(with_names), name_(std::move(name)) {}

void LogWriter::write(const std::vector<Sample>& samples) {
  for (const Sample& s : samples) {
    if (s.stackid >= 0 && stacks_.insert(s.stackid).second) os_ << format_stack(s.stackid, frames_(s.stackid)) << '\n';
    if (s.stackid < 0) lost_stack_samples_++;
    std::string name;
    if (with_names_) {
      auto it = names_.find(s.lock);
      if (it == names_.end()) it = names_.emplace(s.lock, name_ ? name_(s.lock).value_or("") : "").first;
      name = it->second;
    }
    os_ << format_sample(s, with_names_, name) << '\n';
    periods_.insert(s.start);
    samples_++;
  }
  os_.flush();
}

std::string summary_text(const RunSummary& s) {
  std::string text = fmt::format(
      "mklockstat: {} after {:.1f} s: {} samples in {} periods of {} ms, {} stacks; {} waits",
      s.why, s.seconds, s.samples, s.periods, double(s.period_ns) / 1e6, s.stacks, s.waits);
  if (s.failed_waits) text += fmt::format(" ({} ended without the lock)", s.failed_waits);
  text += fmt::format("; lost: {} samples, {} stacks", s.lost_samples, s.lost_stacks);
  if (s.not_recorded) text += fmt::format(", {} waits (BPF maps full)", s.not_recorded);
  if (s.late) text += fmt::format("; {} samples printed late (out of order)", s.late);
  return text;
}

Diagnostics diagnostics(const RunSummary& s) {
  Diagnostics d;
  d.drop({"samples_lost", "samples were lost: the perf buffer overflowed or a sample could not be read"},
         s.lost_samples);
  d.drop({"maps_full", "waits were not recorded: a BPF map is full"}, s.not_recorded);
  d.lost_stacks = s.lost_stacks;
  return d;
}

}  // namespace lockkit::mklockstat
