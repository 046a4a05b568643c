#include "locktrace/report.h"

#include <fmt/format.h>

#include "core/json.h"
#include "core/output.h"

namespace lockkit::locktrace {

const char* const kCsvHeader =
    "pid,tid,addr,blocked_us,sys_us,max_blocked_us,max_sys_us,wait_count,blocked_count,wake_count,"
    "errors,stack";

namespace {

uint64_t us(uint64_t ns) { return ns / 1000; }

const char* drop_name(uint32_t i) {
  switch (i) {
    case LT_DROP_CALLS_FULL: return "calls_map_full";
    case LT_DROP_STATS_FULL: return "stats_map_full";
    case LT_DROP_HIST_FULL: return "hist_map_full";
    case LT_DROP_ERRS_FULL: return "errors_map_full";
    case LT_DROP_PIDS_FULL: return "pids_map_full";
    case LT_DROP_STACK_LOST: return "stack_errors";
    default: return "unknown_drop";
  }
}

const char* debug_name(uint32_t i) {
  switch (i) {
    case LT_DBG_ENTERS: return "enters";
    case LT_DBG_EXITS: return "exits";
    case LT_DBG_ORPHAN_EXITS: return "exits_without_enter";
    case LT_DBG_PREEMPTED: return "preempted";
    case LT_DBG_BLOCKED_TWICE: return "blocked_twice";
    default: return "unknown_counter";
  }
}

uint64_t at(const std::vector<uint64_t>& v, size_t i) { return i < v.size() ? v[i] : 0; }

}  // namespace

std::vector<std::string> csv_fields(const Row& r) {
  return {std::to_string(r.pid),
          std::to_string(r.tid),
          fmt::format("{:#x}", r.addr),
          std::to_string(us(r.blocked_ns)),
          std::to_string(us(r.sys_ns)),
          std::to_string(us(r.max_blocked_ns)),
          std::to_string(us(r.max_sys_ns)),
          std::to_string(r.wait_count),
          std::to_string(r.blocked_count),
          std::to_string(r.wake_count),
          std::to_string(r.errors),
          r.stack_column()};
}

void write_csv(std::ostream& os, const std::vector<Row>& rows) {
  os << kCsvHeader << '\n';
  for (auto& r : rows) os << csv_row(csv_fields(r)) << '\n';
}

Counters debug_counters(const std::vector<uint64_t>& dbg, const std::vector<uint64_t>& drops,
                        uint64_t unfinished) {
  Counters out;
  for (uint32_t i = 0; i < LT_DBG_MAX; i++) out.emplace_back(debug_name(i), at(dbg, i));
  out.emplace_back("unfinished", unfinished);
  for (uint32_t i = 0; i < LT_DROP_MAX; i++) out.emplace_back(drop_name(i), at(drops, i));
  return out;
}

void write_debug(std::ostream& os, const Counters& counters) {
  for (auto& [name, n] : counters) os << name << ' ' << n << '\n';
}

std::vector<std::string> warnings(const std::vector<uint64_t>& drops, size_t lost_stack_rows) {
  std::vector<std::string> out;
  if (uint64_t n = at(drops, LT_DROP_CALLS_FULL))
    out.push_back(fmt::format("WARNING: {} futex calls were not traced: too many threads inside futex calls at once.", n));
  if (uint64_t n = at(drops, LT_DROP_STATS_FULL))
    out.push_back(fmt::format("WARNING: {} futex calls were not recorded: the statistics map is full.", n));
  if (uint64_t n = at(drops, LT_DROP_HIST_FULL))
    out.push_back(fmt::format("WARNING: {} wait calls are missing from the histograms: the histogram map is full.", n));
  if (uint64_t n = at(drops, LT_DROP_ERRS_FULL))
    out.push_back(fmt::format("WARNING: {} errors are counted but not broken down by errno: the errno map is full.", n));
  if (uint64_t n = at(drops, LT_DROP_PIDS_FULL))
    out.push_back(fmt::format("WARNING: {} processes were not followed for symbols: their frames may show as [unknown].", n));
  if (lost_stack_rows)
    out.push_back(fmt::format("WARNING: {} stack traces could not be displayed. Consider increasing --stack-storage-size.",
                              lost_stack_rows));
  return out;
}

void write_json(std::ostream& os, const std::vector<Row>& rows, const JsonExtras& x) {
  JsonWriter w(os);
  w.begin_object();
  w.key("pid");
  if (x.pid) w.value(uint64_t(x.pid)); else w.null();
  w.key("tid");
  if (x.tid) w.value(uint64_t(x.tid)); else w.null();
  w.key("duration_s").value(x.duration_s);
  w.key("lost_stacks").value(uint64_t(x.lost_stacks));
  w.key("counters").begin_object();
  for (auto& [name, n] : x.counters) w.key(name).value(n);
  w.end_object();
  w.key("rows").begin_array();
  for (auto& r : rows) {
    w.begin_object();
    w.key("pid").value(uint64_t(r.pid));
    w.key("tid").value(uint64_t(r.tid));
    w.key("comm").value(r.comm);
    w.key("addr").value(fmt::format("{:#x}", r.addr));
    w.key("symbol");
    if (r.symbol) w.value(*r.symbol); else w.null();
    w.key("blocked_us").value(us(r.blocked_ns));
    w.key("sys_us").value(us(r.sys_ns));
    w.key("max_blocked_us").value(us(r.max_blocked_ns));
    w.key("max_sys_us").value(us(r.max_sys_ns));
    w.key("wait_count").value(r.wait_count);
    w.key("blocked_count").value(r.blocked_count);
    w.key("wake_count").value(r.wake_count);
    w.key("other_count").value(r.other_count);
    w.key("errors").value(r.errors);
    w.key("errors_by_errno").begin_object();
    for (auto& [e, n] : r.errnos) w.key(errno_name(e)).value(n);
    w.end_object();
    w.key("stack").string_array(r.stack());
    w.end_object();
  }
  w.end_array();
  w.end_object();
  os << '\n';
}

void write_hists(std::ostream& os, const std::vector<LockHist>& hists) {
  bool first = true;
  for (auto& h : hists) {
    if (!first) os << '\n';
    first = false;
    os << fmt::format("PID {}, LOCK {:#x}\n", h.pid, h.addr);
    h.hist.print(os, "usecs");
  }
}

}  // namespace lockkit::locktrace
