#include "lockstat/report.h"

#include <fmt/format.h>

#include "core/json.h"
#include "core/output.h"
#include "core/util.h"

namespace lockkit::lockstat {

namespace {

std::vector<std::string> cut(const std::vector<std::string>& frames, size_t depth) {
  if (depth == 0 || frames.size() <= depth) return frames;
  return std::vector<std::string>(frames.begin(), frames.begin() + long(depth));
}

void print_frames(std::ostream& os, const std::vector<std::string>& frames, size_t depth, int indent) {
  std::string pad(size_t(indent), ' ');
  if (frames.empty()) {
    os << pad << "[no stack]\n";
    return;
  }
  for (auto& f : cut(frames, depth)) os << pad << f << '\n';
  if (depth && frames.size() > depth) os << pad << fmt::format("... {} more frames\n", frames.size() - depth);
}

std::string dur(uint64_t ns) { return format_duration(double(ns)); }

// Function names only (no offsets or modules) for folded output.
std::string bare(const std::string& frame) {
  if (starts_with(frame, "[")) {
    auto sp = frame.find(' ');
    return sp == std::string::npos ? frame : frame.substr(0, sp);
  }
  auto plus = frame.rfind("+0x");
  return plus == std::string::npos ? frame : frame.substr(0, plus);
}

void totals_json(JsonWriter& w, const Totals& t) {
  w.key("acquisitions").value(t.acquisitions);
  w.key("failed_trylocks").value(t.failed_trylocks);
  w.key("timeouts").value(t.timeouts);
  w.key("errors").value(t.errors);
  w.key("wait_ns").value(t.wait_ns);
  w.key("min_wait_ns").value(t.min_wait());
  w.key("max_wait_ns").value(t.wait_max);
  w.key("holds").value(t.holds);
  w.key("hold_ns").value(t.hold_ns);
  w.key("min_hold_ns").value(t.min_hold());
  w.key("max_hold_ns").value(t.hold_max);
  w.key("cond_waits").value(t.cond_waits);
  w.key("cond_wait_ns").value(t.cond_wait_ns);
}

}  // namespace

void write_text(std::ostream& os, const Report& r, const TextOptions& opt) {
  if (!opt.header.empty()) os << opt.header << '\n';
  if (r.estimated())
    os << fmt::format("NOTE: {}% of acquisitions sampled; counts and totals are scaled estimates\n",
                      r.sample_percent);
  for (auto& [reason, n] : r.dropped) os << fmt::format("WARNING: {} {}\n", n, reason);
  for (auto& w : r.warnings) os << "WARNING: " << w << '\n';
  if (r.locks.empty()) {
    os << "No lock activity recorded.\n\n";
    return;
  }
  os << fmt::format("Most contended locks (by {}):\n", opt.sort_name);
  os << fmt::format("  {:<28} {:<8} {:>9} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "LOCK",
                    "KIND", "ACQUIRED", "FAILED", "WAIT", "AVG WAIT", "MAX WAIT", "HOLD", "AVG HOLD",
                    "MAX HOLD");
  for (auto& l : r.locks) {
    const Totals& t = l.totals;
    os << fmt::format("  {:<28} {:<8} {:>9} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
                      l.display_name(), kind_name(l.kind), t.acquisitions,
                      t.failed_trylocks + t.timeouts, dur(t.wait_ns), format_duration(t.avg_wait()),
                      dur(t.wait_max), dur(t.hold_ns), format_duration(t.avg_hold()), dur(t.hold_max));
  }
  os << '\n';

  bool any_init = false;
  for (auto& l : r.locks)
    if (!l.init_frames.empty()) any_init = true;
  if (any_init) {
    os << "Init stacks:\n";
    for (auto& l : r.locks) {
      if (l.init_frames.empty()) continue;
      os << fmt::format("  {} ({:#x}, {})\n", l.display_name(), l.addr, kind_name(l.kind));
      print_frames(os, l.init_frames, opt.stack_depth, 6);
    }
    os << '\n';
  }

  // The lab's per-thread view: each thread, each lock it took, each acquisition stack.
  std::map<uint32_t, std::vector<std::pair<const LockStats*, const ThreadStats*>>> by_tid;
  for (auto& l : r.locks)
    for (auto& t : l.threads) by_tid[t.tid].push_back({&l, &t});
  os << "Per thread:\n";
  for (auto& [tid, entries] : by_tid) {
    os << fmt::format("  tid {}:\n", tid);
    for (auto& [l, t] : entries) {
      for (auto& s : t->stacks) {
        os << fmt::format("    {}  wait time {}  hold time {}  enter count {}", l->display_name(),
                          dur(s.totals.wait_ns), dur(s.totals.hold_ns), s.totals.acquisitions);
        if (s.totals.failed_trylocks) os << fmt::format("  failed trylocks {}", s.totals.failed_trylocks);
        if (s.totals.cond_waits)
          os << fmt::format("  cond waits {} ({})", s.totals.cond_waits, dur(s.totals.cond_wait_ns));
        os << '\n';
        print_frames(os, s.frames, opt.stack_depth, 8);
      }
    }
    if (opt.per_thread_hists) {
      auto it = r.thread_hists.find(tid);
      if (it != r.thread_hists.end()) {
        os << "    wait time of this thread:\n";
        it->second.first.print(os, "usecs", 4);
        os << "    hold time of this thread:\n";
        it->second.second.print(os, "usecs", 4);
      }
    }
  }
  os << '\n';
  for (auto& l : r.locks) {
    os << fmt::format("Wait time of {}:\n", l.display_name());
    l.wait_hist.print(os, "usecs", 2);
    os << fmt::format("Hold time of {}:\n", l.display_name());
    l.hold_hist.print(os, "usecs", 2);
  }
  os << "Wait time, all locks:\n";
  r.wait_hist.print(os, "usecs", 2);
  os << "Hold time, all locks:\n";
  r.hold_hist.print(os, "usecs", 2);
  os << '\n';
}

void write_json(std::ostream& os, const Report& r, size_t stack_depth) {
  JsonWriter w(os);
  w.begin_object();
  w.key("pid").value(r.pid);
  w.key("duration_s").value(r.duration_s);
  w.key("sample_percent").value(r.sample_percent);
  w.key("estimated").value(r.estimated());
  w.key("dropped").begin_object();
  for (auto& [reason, n] : r.dropped) w.key(reason).value(n);
  w.end_object();
  w.key("warnings").string_array(r.warnings);
  w.key("locks").begin_array();
  for (auto& l : r.locks) {
    w.begin_object();
    w.key("address").value(fmt::format("{:#x}", l.addr));
    w.key("name");
    if (l.symbol)
      w.value(*l.symbol);
    else if (l.init_label)
      w.value(fmt::format("#{}", l.init_label));
    else
      w.null();
    w.key("kind").value(kind_name(l.kind));
    w.key("init_stack").string_array(cut(l.init_frames, stack_depth));
    totals_json(w, l.totals);
    if (l.kind == LK_RWLOCK) {
      w.key("read_acquisitions").value(l.read_acquisitions);
      w.key("write_acquisitions").value(l.write_acquisitions);
    }
    w.key("wait_hist");
    l.wait_hist.write_json(w, "us");
    w.key("hold_hist");
    l.hold_hist.write_json(w, "us");
    w.key("threads").begin_array();
    for (auto& t : l.threads) {
      w.begin_object();
      w.key("tid").value(t.tid);
      totals_json(w, t.totals);
      w.key("wait_hist");
      t.wait_hist.write_json(w, "us");
      w.key("hold_hist");
      t.hold_hist.write_json(w, "us");
      w.end_object();
    }
    w.end_array();
    w.key("stacks").begin_array();
    for (auto& s : l.stacks) {
      w.begin_object();
      w.key("frames").string_array(cut(s.frames, stack_depth));
      totals_json(w, s.totals);
      w.end_object();
    }
    w.end_array();
    w.end_object();
  }
  w.end_array();
  w.key("wait_hist");
  r.wait_hist.write_json(w, "us");
  w.key("hold_hist");
  r.hold_hist.write_json(w, "us");
  w.end_object();
}

void write_folded(std::ostream& os, const Report& r, bool hold) {
  for (auto& l : r.locks) {
    for (auto& s : l.stacks) {
      uint64_t v = hold ? s.totals.hold_ns : s.totals.wait_ns;
      if (v == 0) continue;
      std::vector<std::string> frames{l.display_name()};  // the lock is the leaf
      for (auto& f : s.frames) frames.push_back(bare(f));
      os << folded_line(frames, v) << '\n';
    }
  }
}

}  // namespace lockkit::lockstat
