#include "locktrace/report.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/json.h"
#include "core/output.h"
#include "core/report.h"

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

Counters debug_counters(const std::vector<uint64_t>& dbg, uint64_t unfinished) {
  Counters out;
  for (uint32_t i = 0; i < LT_DBG_MAX; i++) out.emplace_back(debug_name(i), at(dbg, i));
  out.emplace_back("unfinished", unfinished);
  return out;
}

Counters debug_counters(const std::vector<uint64_t>& dbg, const std::vector<uint64_t>& drops,
                        uint64_t unfinished) {
  Counters out = debug_counters(dbg, unfinished);
  for (uint32_t i = 0; i < LT_DROP_MAX; i++) out.emplace_back(drop_name(i), at(drops, i));
  return out;
}

void write_debug(std::ostream& os, const Counters& counters) {
  for (auto& [name, n] : counters) os << name << ' ' << n << '\n';
}

DropReason drop_reason(uint32_t drop) {
  switch (drop) {
    case LT_DROP_CALLS_FULL:
      return {drop_name(drop), "futex calls were not traced: too many threads inside futex calls at once"};
    case LT_DROP_STATS_FULL: return {drop_name(drop), "futex calls were not recorded: the statistics map is full"};
    case LT_DROP_HIST_FULL:
      return {drop_name(drop), "wait calls are missing from the histograms: the histogram map is full"};
    case LT_DROP_ERRS_FULL:
      return {drop_name(drop), "errors are counted but not broken down by errno: the errno map is full"};
    case LT_DROP_PIDS_FULL:
      return {drop_name(drop), "processes were not followed for symbols: their frames may show as [unknown]"};
    case LT_DROP_STACK_LOST: return {drop_name(drop), "stack traces could not be stored"};
  }
  return {drop_name(drop), "futex calls were not recorded for an unknown reason"};
}

Diagnostics diagnostics(const std::vector<uint64_t>& drops, size_t lost_stack_rows) {
  Diagnostics d;
  for (uint32_t i = 0; i < LT_DROP_MAX; i++)
    if (i != LT_DROP_STACK_LOST) d.drop(drop_reason(i), at(drops, i));
  // Each call whose stack BPF could not store counts once; a stored stack that cannot be read back
  // also shows as "[lost stack]", so the rows are a lower bound too.
  d.lost_stacks = std::max<uint64_t>(at(drops, LT_DROP_STACK_LOST), lost_stack_rows);
  return d;
}

Json report_json(const std::vector<Row>& rows, const JsonExtras& x) {
  Json doc;
  doc["pid"] = x.pid ? Json(x.pid) : Json(nullptr);
  doc["tid"] = x.tid ? Json(x.tid) : Json(nullptr);
  Json pids = Json::array();
  for (uint32_t p : x.pids) pids.push_back(p);
  doc["pids"] = std::move(pids);
  doc["duration_s"] = x.duration_s;
  add_diagnostics(doc, x.diag);
  Json counters = Json::object();
  for (auto& [name, n] : x.counters) counters[name] = n;
  doc["counters"] = std::move(counters);
  Json out = Json::array();
  for (auto& r : rows) {
    Json row;
    row["pid"] = r.pid;
    row["tid"] = r.tid;
    row["comm"] = r.comm;
    add_lock_identity(row, LockIdentity{r.addr, r.symbol});
    if (r.object) {
      Json obj;
      add_lock_identity(obj, LockIdentity{r.object->address, r.object->name});
      obj["kind"] = futex_kind_name(r.object->kind);
      row["object"] = std::move(obj);
    } else {
      row["object"] = nullptr;
    }
    row["blocked_ns"] = r.blocked_ns;
    row["sys_ns"] = r.sys_ns;
    row["max_blocked_ns"] = r.max_blocked_ns;
    row["max_sys_ns"] = r.max_sys_ns;
    row["wait_count"] = r.wait_count;
    row["blocked_count"] = r.blocked_count;
    row["wake_count"] = r.wake_count;
    row["other_count"] = r.other_count;
    row["errors"] = r.errors;
    Json by_errno = Json::object();
    for (auto& [e, n] : r.errnos) by_errno[errno_name(e)] = n;
    row["errors_by_errno"] = std::move(by_errno);
    row["stack"] = r.stack();
    out.push_back(std::move(row));
  }
  doc["rows"] = std::move(out);
  return doc;
}

void write_json(std::ostream& os, const std::vector<Row>& rows, const JsonExtras& x) {
  write_json_document(os, report_json(rows, x));
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

ProfileData rows_profile(const std::vector<Row>& rows, const StackFrameIndex& frames) {
  ProfileData p;
  p.sample_types = {{"contentions", "count"}, {"delay", "nanoseconds"}};
  p.default_sample_type = "delay";
  p.comments.push_back("locktrace: futex wait calls and the time blocked in them, per process, thread, futex word and stack");
  for (auto& r : rows) {
    if (r.wait_count == 0 && r.blocked_ns == 0) continue;  // wakes only
    ProfileSample s;
    s.values = {int64_t(r.wait_count), int64_t(r.blocked_ns)};
    if (r.stack_lost)
      s.frames = {named_frame("[lost stack]")};
    else
      s.frames = frames.frames(r.frames);
    std::string lock = r.object && r.object->name ? *r.object->name : r.symbol ? *r.symbol : hex_address(r.addr);
    s.label("lock", lock).label("kind", r.object ? futex_kind_name(r.object->kind) : "futex");
    s.label("address", hex_address(r.addr)).label("pid", int64_t(r.pid)).label("tid", int64_t(r.tid));
    p.samples.push_back(std::move(s));
  }
  return p;
}

}  // namespace lockkit::locktrace
