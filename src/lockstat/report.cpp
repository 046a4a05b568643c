#include "lockstat/report.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/json.h"
#include "core/output.h"
#include "core/report.h"
#include "core/util.h"

namespace lockkit::lockstat {

std::vector<std::string> cut_frames(const std::vector<std::string>& frames, size_t depth) {
  if (depth == 0 || frames.size() <= depth) return frames;
  return std::vector<std::string>(frames.begin(), frames.begin() + long(depth));
}

void print_frames(std::ostream& os, const std::vector<std::string>& frames, size_t depth, int indent) {
  std::string pad(size_t(indent), ' ');
  if (frames.empty()) {
    os << pad << "[no stack]\n";
    return;
  }
  for (auto& f : cut_frames(frames, depth)) os << pad << f << '\n';
  if (depth && frames.size() > depth) os << pad << fmt::format("... {} more frames\n", frames.size() - depth);
}

std::string folded_frame(const std::string& frame) {
  if (starts_with(frame, "[")) {
    auto sp = frame.find(' ');
    return sp == std::string::npos ? frame : frame.substr(0, sp);
  }
  auto plus = frame.rfind("+0x");
  return plus == std::string::npos ? frame : frame.substr(0, plus);
}

namespace {

std::string dur(uint64_t ns) { return format_duration(double(ns)); }

// `sem`: the lock is a semaphore, whose rows also count handoffs and unreleased acquisitions
// (fields other kinds do not have, so they are absent there).
void add_totals(Json& o, const Totals& t, bool sem) {
  o["acquisitions"] = t.acquisitions;
  o["failed_trylocks"] = t.failed_trylocks;
  o["timeouts"] = t.timeouts;
  o["errors"] = t.errors;
  o["wait_ns"] = t.wait_ns;
  o["min_wait_ns"] = t.min_wait();
  o["max_wait_ns"] = t.wait_max;
  o["holds"] = t.holds;
  o["hold_ns"] = t.hold_ns;
  o["min_hold_ns"] = t.min_hold();
  o["max_hold_ns"] = t.hold_max;
  o["cond_waits"] = t.cond_waits;
  o["cond_wait_ns"] = t.cond_wait_ns;
  if (sem) {
    o["handoffs"] = t.handoffs;
    o["unreleased"] = t.unreleased;
  }
}

}  // namespace

void write_text(std::ostream& os, const Report& r, const TextOptions& opt) {
  if (!opt.header.empty()) os << opt.header << '\n';
  if (r.estimated())
    os << fmt::format("NOTE: {}% of acquisitions sampled; counts and totals are scaled estimates\n",
                      r.sample_percent);
  write_diagnostics(os, r.diag);
  if (r.locks.empty()) {
    os << "No lock activity recorded.\n\n";
    return;
  }
  // Grouped by process when there are several (the one with the first lock in the view's order
  // first), each one's locks in the view's order.
  std::vector<uint32_t> order;
  for (auto& l : r.locks)
    if (std::find(order.begin(), order.end(), l.pid) == order.end()) order.push_back(l.pid);
  std::vector<const LockStats*> locks;
  for (uint32_t pid : order)
    for (auto& l : r.locks)
      if (l.pid == pid) locks.push_back(&l);
  bool several = order.size() > 1;
  os << fmt::format("Most contended locks (by {}{}):\n", opt.sort_name, several ? ", per process" : "");
  for (size_t i = 0; i < locks.size(); i++) {
    const LockStats& l = *locks[i];
    bool first_of_process = i == 0 || locks[i - 1]->pid != l.pid;
    if (several && first_of_process) os << fmt::format(" pid {}:\n", l.pid);
    if (i == 0 || (several && first_of_process))
      os << fmt::format("  {:<28} {:<8} {:>9} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "LOCK",
                        "KIND", "ACQUIRED", "FAILED", "WAIT", "AVG WAIT", "MAX WAIT", "HOLD", "AVG HOLD",
                        "MAX HOLD");
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
  std::map<uint32_t, uint32_t> pid_of;
  for (auto* l : locks)
    for (auto& t : l->threads) {
      by_tid[t.tid].push_back({l, &t});
      pid_of[t.tid] = l->pid;
    }
  os << "Per thread:\n";
  for (auto& [tid, entries] : by_tid) {
    if (several)
      os << fmt::format("  tid {} (pid {}):\n", tid, pid_of[tid]);
    else
      os << fmt::format("  tid {}:\n", tid);
    for (auto& [l, t] : entries) {
      for (auto& s : t->stacks) {
        os << fmt::format("    {}  wait time {}  hold time {}  enter count {}", l->display_name(),
                          dur(s.totals.wait_ns), dur(s.totals.hold_ns), s.totals.acquisitions);
        if (s.totals.failed_trylocks) os << fmt::format("  failed trylocks {}", s.totals.failed_trylocks);
        if (s.totals.timeouts) os << fmt::format("  timeouts {}", s.totals.timeouts);
        if (s.totals.handoffs) os << fmt::format("  handoffs {}", s.totals.handoffs);
        if (s.totals.unreleased) os << fmt::format("  unreleased {}", s.totals.unreleased);
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

Json report_json(const Report& r, size_t stack_depth) {
  Json doc;
  doc["mode"] = "full";
  doc["pid"] = r.pid;
  Json pids = Json::array();
  for (uint32_t p : r.pids) pids.push_back(p);
  doc["pids"] = std::move(pids);
  doc["duration_s"] = r.duration_s;
  doc["sample_percent"] = r.sample_percent;
  doc["estimated"] = r.estimated();
  add_diagnostics(doc, r.diag);
  Json locks = Json::array();
  for (auto& l : r.locks) {
    Json lock;
    lock["pid"] = l.pid;
    add_lock_identity(lock, l.identity());
    lock["kind"] = kind_name(l.kind);
    lock["init_stack"] = cut_frames(l.init_frames, stack_depth);
    bool sem = l.kind == LK_SEM;
    add_totals(lock, l.totals, sem);
    if (l.kind == LK_RWLOCK) {
      lock["read_acquisitions"] = l.read_acquisitions;
      lock["write_acquisitions"] = l.write_acquisitions;
    }
    lock["wait_hist"] = l.wait_hist.to_json("us");
    lock["hold_hist"] = l.hold_hist.to_json("us");
    Json threads = Json::array();
    for (auto& t : l.threads) {
      Json thread;
      thread["tid"] = t.tid;
      add_totals(thread, t.totals, sem);
      thread["wait_hist"] = t.wait_hist.to_json("us");
      thread["hold_hist"] = t.hold_hist.to_json("us");
      threads.push_back(std::move(thread));
    }
    lock["threads"] = std::move(threads);
    Json stacks = Json::array();
    for (auto& s : l.stacks) {
      Json stack;
      stack["frames"] = cut_frames(s.frames, stack_depth);
      add_totals(stack, s.totals, sem);
      stacks.push_back(std::move(stack));
    }
    lock["stacks"] = std::move(stacks);
    locks.push_back(std::move(lock));
  }
  doc["locks"] = std::move(locks);
  doc["wait_hist"] = r.wait_hist.to_json("us");
  doc["hold_hist"] = r.hold_hist.to_json("us");
  return doc;
}

void write_json(std::ostream& os, const Report& r, size_t stack_depth) {
  write_json_document(os, report_json(r, stack_depth));
}

void write_folded(std::ostream& os, const Report& r, bool hold) {
  for (auto& l : r.locks) {
    for (auto& s : l.stacks) {
      uint64_t v = hold ? s.totals.hold_ns : s.totals.wait_ns;
      if (v == 0) continue;
      std::vector<std::string> frames{l.display_name()};  // the lock is the leaf
      for (auto& f : s.frames) frames.push_back(folded_frame(f));
      os << folded_line(frames, v) << '\n';
    }
  }
}

}  // namespace lockkit::lockstat
