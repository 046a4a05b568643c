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

ProfileData samples_profile(const std::vector<Sample>& samples, const ProfileSource& src) {
  ProfileData p;
  p.sample_types = {{"contentions", "count"}, {"delay", "nanoseconds"}};
  p.default_sample_type = "delay";
  std::map<int32_t, std::vector<Frame>> stacks;
  std::map<uint64_t, std::string> locks;
  for (const Sample& s : samples) {
    ProfileSample ps;
    ps.values = {int64_t(s.count), int64_t(s.wait_ns)};
    if (s.stackid < 0) {
      ps.frames = {named_frame("[lost stack]")};
    } else {
      auto it = stacks.find(s.stackid);
      if (it == stacks.end()) it = stacks.emplace(s.stackid, src.frames(s.stackid)).first;
      ps.frames = it->second;
    }
    auto lk = locks.find(s.lock);
    if (lk == locks.end()) {
      std::optional<std::string> name = src.name ? src.name(s.lock) : std::nullopt;
      lk = locks.emplace(s.lock, name && !name->empty() ? *name : hex_address(s.lock)).first;
    }
    ps.label("lock", lk->second).label("kind", kind_name(s.type)).label("address", hex_address(s.lock));
    if (!s.comm.empty()) ps.label("comm", s.comm);
    ps.label("pid", int64_t(s.pid)).label("tid", int64_t(s.tid));
    ps.label("period_start", int64_t(s.start), "nanoseconds");
    p.samples.push_back(std::move(ps));
  }
  return p;
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
