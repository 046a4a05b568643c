#include "lockstat/profile.h"

#include "core/report.h"

namespace lockkit::lockstat {

ProfileData report_profile(const Report& r, const StackFrameIndex& frames, int64_t start_wall_ns,
                           const std::string& program) {
  ProfileData p;
  p.sample_types = {{"contentions", "count"}, {"delay", "nanoseconds"}, {"hold", "nanoseconds"}};
  p.default_sample_type = "delay";
  p.time_nanos = start_wall_ns;
  p.main_binary = program;
  p.duration_nanos = int64_t(r.duration_s * 1e9);
  p.comments.push_back("lockstat: pthread lock wait (delay) and hold times per lock, thread and stack");
  if (r.estimated())
    p.comments.push_back("estimated: " + std::to_string(r.sample_percent) + "% of acquisitions recorded, scaled up");
  for (auto& l : r.locks) {
    LockIdentity id = l.identity();
    for (auto& t : l.threads) {
      for (auto& s : t.stacks) {
        ProfileSample ps;
        ps.values = {int64_t(s.totals.acquisitions + s.totals.timeouts), int64_t(s.totals.wait_ns),
                     int64_t(s.totals.hold_ns)};
        ps.frames = frames.frames(s.frames);
        ps.label("lock", id.display()).label("kind", kind_name(l.kind)).label("address", hex_address(l.addr));
        ps.label("pid", int64_t(l.pid ? l.pid : uint32_t(r.pid))).label("tid", t.tid);
        p.samples.push_back(std::move(ps));
      }
    }
  }
  return p;
}

ProfileData contention_profile(const ContentionReport& r, const StackFrameIndex& frames, int64_t start_wall_ns,
                               const std::string& program) {
  ProfileData p;
  p.sample_types = {{"contentions", "count"}, {"delay", "nanoseconds"}};
  p.default_sample_type = "delay";
  p.time_nanos = start_wall_ns;
  p.duration_nanos = int64_t(r.duration_s * 1e9);
  p.main_binary = program;
  p.comments.push_back("lockstat --mode contention: futex waits that slept in the kernel, per lock and waiting stack");
  for (auto& l : r.locks) {
    LockIdentity id = l.identity();
    for (auto& s : l.stacks) {
      ProfileSample ps;
      ps.values = {int64_t(s.contentions), int64_t(s.wait_ns)};
      ps.frames = frames.frames(s.frames);
      ps.label("lock", id.display()).label("kind", futex_kind_name(l.kind)).label("address", hex_address(l.address));
      ps.label("pid", int64_t(l.pid ? l.pid : uint32_t(r.pid)));
      p.samples.push_back(std::move(ps));
    }
  }
  return p;
}

}  // namespace lockkit::lockstat
