#include "locktrace/model.h"

#include <algorithm>
#include <cstring>
#include <regex>
#include <tuple>

namespace lockkit::locktrace {

namespace {

std::string clean_name(std::string s) {
  for (auto& c : s)
    if (c == ';' || c == '\n' || c == '\r') c = ':';
  return s;
}

void merge_into(Row& a, const Row& b) {
  a.blocked_ns += b.blocked_ns;
  a.sys_ns += b.sys_ns;
  a.max_blocked_ns = std::max(a.max_blocked_ns, b.max_blocked_ns);
  a.max_sys_ns = std::max(a.max_sys_ns, b.max_sys_ns);
  a.wait_count += b.wait_count;
  a.blocked_count += b.blocked_count;
  a.wake_count += b.wake_count;
  a.other_count += b.other_count;
  a.errors += b.errors;
  for (auto& [e, n] : b.errnos) a.errnos[e] += n;
}

std::string key_bytes(const lt_stat_key& k) {
  return std::string(reinterpret_cast<const char*>(&k), sizeof(k));
}

}  // namespace

std::vector<std::string> Row::stack() const {
  std::vector<std::string> out{clean_name(comm.empty() ? std::string("[unknown]") : comm)};
  if (stack_lost) {
    out.push_back("[lost stack]");
    return out;
  }
  for (auto& f : frames) out.push_back(clean_name(f.empty() ? std::string("[unknown]") : f));
  return out;
}

std::string Row::stack_column() const {
  std::string out;
  for (auto& s : stack()) {
    if (!out.empty()) out += ';';
    out += s;
  }
  return out;
}

std::vector<Row> build_rows(const Snapshot& snap, const StackResolver& resolve) {
  // Errors by errno, per BPF row.
  std::map<std::string, std::map<int, uint64_t>> errnos;
  for (auto& [k, n] : snap.errs) errnos[key_bytes(k.row)][k.err] += n;

  std::vector<Row> rows;
  std::map<std::tuple<uint32_t, uint32_t, uint64_t, std::string>, size_t> index;
  for (auto& [k, v] : snap.stats) {
    Row r;
    r.pid = k.pid;
    r.tid = k.tid;
    r.addr = k.uaddr;
    r.comm = comm_string(v.comm);
    std::optional<std::vector<std::string>> frames;
    if (k.stackid >= 0 && resolve) frames = resolve(k);
    if (frames)
      r.frames = std::move(*frames);
    else
      r.stack_lost = true;
    r.blocked_ns = v.blocked_ns;
    r.sys_ns = v.sys_ns;
    r.max_blocked_ns = v.max_blocked_ns;
    r.max_sys_ns = v.max_sys_ns;
    r.wait_count = v.wait_count;
    r.blocked_count = v.blocked_count;
    r.wake_count = v.wake_count;
    r.other_count = v.other_count;
    r.errors = v.errors;
    auto e = errnos.find(key_bytes(k));
    if (e != errnos.end()) r.errnos = e->second;
    auto id = std::make_tuple(r.pid, r.tid, r.addr, r.stack_column());
    auto it = index.find(id);
    if (it == index.end()) {
      index.emplace(id, rows.size());
      rows.push_back(std::move(r));
    } else {
      merge_into(rows[it->second], r);
    }
  }
  return rows;
}

void classify_rows(std::vector<Row>& rows, const DataResolver& data) {
  // Evidence per (process, word): the function names of every row's stack, leaf first.
  std::map<std::pair<uint32_t, uint64_t>, std::vector<FutexEvidence>> evidence;
  for (auto& r : rows) {
    FutexEvidence e;
    if (!r.stack_lost) e.functions.assign(r.frames.rbegin(), r.frames.rend());
    evidence[{r.pid, r.addr}].push_back(std::move(e));
  }
  std::map<std::pair<uint32_t, uint64_t>, std::optional<RowObject>> objects;
  for (auto& [key, ev] : evidence) {
    uint32_t pid = key.first;
    FutexClassifier c([&](uint64_t a) -> std::optional<std::pair<uint64_t, uint64_t>> {
      if (!data) return std::nullopt;
      auto o = data(pid, a);
      if (!o) return std::nullopt;
      return std::make_pair(o->start, o->size);
    });
    FutexObject o = c.classify(key.second, ev);
    if (o.kind == FutexKind::Other) {
      objects[key] = std::nullopt;
      continue;
    }
    RowObject obj{o.address, o.kind, std::nullopt};
    if (data) {
      if (auto d = data(pid, o.address)) obj.name = d->name_at(o.address);
    }
    objects[key] = obj;
  }
  for (auto& r : rows) r.object = objects[{r.pid, r.addr}];
}

void sort_rows(std::vector<Row>& rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.pid != b.pid) return a.pid < b.pid;
    if (a.blocked_ns != b.blocked_ns) return a.blocked_ns > b.blocked_ns;
    if (a.tid != b.tid) return a.tid < b.tid;
    if (a.addr != b.addr) return a.addr < b.addr;
    return a.stack_column() < b.stack_column();
  });
}

size_t lost_stack_rows(const std::vector<Row>& rows) {
  size_t n = 0;
  for (auto& r : rows)
    if (r.stack_lost) n++;
  return n;
}

std::vector<LockHist> build_hists(const Snapshot& snap) {
  std::map<std::pair<uint32_t, uint64_t>, Log2Hist> by_lock;
  for (auto& [k, n] : snap.hists) by_lock[{k.pid, k.uaddr}].add_slot(k.slot, n);
  std::vector<LockHist> out;
  for (auto& [id, h] : by_lock) {
    LockHist lh;
    lh.pid = id.first;
    lh.addr = id.second;
    lh.hist = h;
    out.push_back(std::move(lh));
  }
  return out;
}

int64_t state_mask_from_format(const std::string& text) {
  // __print_flags(..., "|", { 0x00000001, "S" }, { 0x00000002, "D" }, ..., { 0x00000080, "I" })
  static const std::regex flag(R"(\{\s*(0x[0-9a-fA-F]+|[0-9]+)\s*,\s*\")");
  uint64_t max = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), flag); it != std::sregex_iterator(); ++it) {
    uint64_t v = std::stoull((*it)[1].str(), nullptr, 0);
    max = std::max(max, v);
  }
  if (max == 0 || max >= (1ull << 40)) return LT_DEFAULT_STATE_MASK;
  return int64_t((max << 1) - 1);
}

std::string errno_name(int err) {
  const char* n = err > 0 ? strerrorname_np(err) : nullptr;
  return n ? std::string(n) : std::to_string(err);
}

std::string comm_string(const char (&comm)[16]) { return std::string(comm, strnlen(comm, sizeof(comm))); }

}  // namespace lockkit::locktrace
