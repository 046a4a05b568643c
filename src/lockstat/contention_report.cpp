#include "lockstat/contention_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "core/output.h"
#include "core/report.h"
#include "core/util.h"
#include "lockstat/report.h"

namespace lockkit::lockstat {

namespace {

std::string dur(uint64_t ns) { return format_duration(double(ns)); }
double avg(uint64_t total, uint64_t n) { return n ? double(total) / double(n) : 0; }

// The locks grouped by process, processes in the order their first lock comes, each one's locks
// in their order.
std::vector<std::reference_wrapper<const ContentionLock>> by_process(const std::vector<ContentionLock>& locks) {
  std::vector<uint32_t> order;
  for (auto& l : locks)
    if (std::find(order.begin(), order.end(), l.pid) == order.end()) order.push_back(l.pid);
  std::vector<std::reference_wrapper<const ContentionLock>> out;
  for (uint32_t pid : order)
    for (auto& l : locks)
      if (l.pid == pid) out.push_back(std::cref(l));
  return out;
}

}  // namespace

void write_contention_text(std::ostream& os, const ContentionReport& r, const ContentionTextOptions& opt) {
  if (!opt.header.empty()) os << opt.header << '\n';
  os << "NOTE: " << kContentionBlindSpots << ".\n";
  write_diagnostics(os, r.diag);
  if (r.locks.empty()) {
    os << "No contended waits recorded.\n\n";
    return;
  }
  // Grouped by process (the one with the most contended lock first), locks in the view's order.
  auto locks = by_process(r.locks);
  bool several = locks.size() > 1 && locks.front().get().pid != locks.back().get().pid;
  os << fmt::format("Most contended locks (by {}{}):\n", opt.sort_name, several ? ", per process" : "");
  for (size_t i = 0; i < locks.size(); i++) {
    const auto& l = locks[i].get();
    if (several && (i == 0 || locks[i - 1].get().pid != l.pid)) os << fmt::format(" pid {}:\n", l.pid);
    if (i == 0 || (several && locks[i - 1].get().pid != l.pid))
      os << fmt::format("  {:<28} {:<9} {:>10} {:>10} {:>10} {:>10} {:>8}\n", "LOCK", "KIND", "CONTENDED", "WAIT",
                        "AVG WAIT", "MAX WAIT", "EAGAIN");
    os << fmt::format("  {:<28} {:<9} {:>10} {:>10} {:>10} {:>10} {:>8}\n", l.display_name(), futex_kind_name(l.kind),
                      l.contentions, dur(l.wait_ns), format_duration(avg(l.wait_ns, l.contentions)),
                      dur(l.max_wait_ns), l.eagain_waits);
  }
  os << '\n';
  for (auto& lr : locks) {
    const auto& l = lr.get();
    os << fmt::format("{} ({}, {}, pid {}): {} contentions, {} waiting", l.display_name(), hex_address(l.address),
                      futex_kind_name(l.kind), l.pid, l.contentions, dur(l.wait_ns));
    if (l.timeouts) os << fmt::format(", {} timed out", l.timeouts);
    if (l.in_progress)
      os << fmt::format("; {} still waiting at the end ({} so far)", l.in_progress, dur(l.in_progress_ns));
    os << '\n';
    if (!l.init_frames.empty()) {
      os << "  initialised at:\n";
      print_frames(os, l.init_frames, opt.stack_depth, 6);
    }
    os << "  waiting threads:\n";
    for (auto& t : l.threads)
      os << fmt::format("    tid {:<8} {:>6} contentions {:>10} waiting  max {:>10}  {} EAGAIN{}\n", t.tid,
                        t.contentions, dur(t.wait_ns), dur(t.max_wait_ns), t.eagain_waits,
                        t.in_progress ? "  (still waiting)" : "");
    if (!l.stacks.empty()) os << "  waiting stacks:\n";
    for (auto& s : l.stacks) {
      os << fmt::format("    {} contentions, {} waiting\n", s.contentions, dur(s.wait_ns));
      print_frames(os, s.frames, opt.stack_depth, 6);
    }
    if (l.has_holders) {
      os << "  holders (the owner when each waiter went to sleep):\n";
      if (l.holders.empty() && l.unknown_holder_contentions == 0) os << "    none seen\n";
      for (auto& h : l.holders) {
        os << fmt::format("    tid {}: caused {} contentions, {} waiting", h.tid, h.contentions, dur(h.wait_ns));
        if (h.in_progress) os << fmt::format("; holds it against {} waiter(s) still sleeping", h.in_progress);
        os << '\n';
        if (h.stacks.empty()) os << "      no release that woke a waiter was seen\n";
        for (auto& s : h.stacks) {
          os << fmt::format("      released {} times (waking a waiter) at:\n", s.count);
          print_frames(os, s.frames, opt.stack_depth, 8);
        }
      }
      if (l.unknown_holder_contentions)
        os << fmt::format("    unknown holder: {} contentions (the owner field was empty or no thread of the process)\n",
                          l.unknown_holder_contentions);
    }
    os << '\n';
  }
}

Json contention_json(const ContentionReport& r, size_t stack_depth) {
  Json doc;
  doc["mode"] = "contention";
  doc["pid"] = r.pid;
  Json pids = Json::array();
  for (uint32_t p : r.pids) pids.push_back(p);
  doc["pids"] = std::move(pids);
  doc["duration_s"] = r.duration_s;
  add_diagnostics(doc, r.diag);
  doc["not_seen"] = kContentionBlindSpots;
  Json locks = Json::array();
  for (auto& l : r.locks) {
    Json lock;
    lock["pid"] = l.pid;
    add_lock_identity(lock, l.identity());
    lock["kind"] = futex_kind_name(l.kind);
    Json words = Json::array();
    for (uint64_t w : l.words) words.push_back(hex_address(w));
    lock["futex_words"] = std::move(words);
    if (!l.init_frames.empty()) lock["init_stack"] = cut_frames(l.init_frames, stack_depth);
    lock["contentions"] = l.contentions;
    lock["wait_ns"] = l.wait_ns;
    lock["max_wait_ns"] = l.max_wait_ns;
    lock["timeouts"] = l.timeouts;
    lock["eagain_waits"] = l.eagain_waits;
    lock["in_progress"] = l.in_progress;
    lock["in_progress_ns"] = l.in_progress_ns;
    Json threads = Json::array();
    for (auto& t : l.threads) {
      Json thread;
      thread["tid"] = t.tid;
      thread["contentions"] = t.contentions;
      thread["wait_ns"] = t.wait_ns;
      thread["max_wait_ns"] = t.max_wait_ns;
      thread["eagain_waits"] = t.eagain_waits;
      thread["in_progress"] = t.in_progress;
      threads.push_back(std::move(thread));
    }
    lock["threads"] = std::move(threads);
    Json stacks = Json::array();
    for (auto& s : l.stacks) {
      Json stack;
      stack["frames"] = cut_frames(s.frames, stack_depth);
      stack["contentions"] = s.contentions;
      stack["wait_ns"] = s.wait_ns;
      stacks.push_back(std::move(stack));
    }
    lock["stacks"] = std::move(stacks);
    if (l.has_holders) {
      Json holders = Json::array();
      for (auto& h : l.holders) {
        Json holder;
        holder["tid"] = h.tid;
        holder["contentions"] = h.contentions;
        holder["wait_ns"] = h.wait_ns;
        holder["in_progress"] = h.in_progress;
        Json hs = Json::array();
        for (auto& s : h.stacks) {
          Json stack;
          stack["frames"] = cut_frames(s.frames, stack_depth);
          stack["count"] = s.count;
          hs.push_back(std::move(stack));
        }
        holder["stacks"] = std::move(hs);
        holders.push_back(std::move(holder));
      }
      lock["holders"] = std::move(holders);
      lock["unknown_holder_contentions"] = l.unknown_holder_contentions;
    }
    locks.push_back(std::move(lock));
  }
  doc["locks"] = std::move(locks);
  return doc;
}

void write_contention_json(std::ostream& os, const ContentionReport& r, size_t stack_depth) {
  write_json_document(os, contention_json(r, stack_depth));
}

void write_contention_folded(std::ostream& os, const ContentionReport& r) {
  for (auto& l : r.locks) {
    for (auto& s : l.stacks) {
      if (s.wait_ns == 0) continue;
      std::vector<std::string> frames{l.display_name()};  // the lock is the leaf
      for (auto& f : s.frames) frames.push_back(folded_frame(f));
      os << folded_line(frames, s.wait_ns) << '\n';
    }
  }
}

}  // namespace lockkit::lockstat
