#include "lockstat/model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <tuple>

namespace lockkit::lockstat {

namespace {

template <class K>
std::string key_bytes(const K& k) {
  return std::string(reinterpret_cast<const char*>(&k), sizeof(k));
}

void merge_val(lk_stat_val& a, const lk_stat_val& b) {
  a.acquisitions += b.acquisitions;
  a.failed_trylocks += b.failed_trylocks;
  a.timeouts += b.timeouts;
  a.errors += b.errors;
  a.wait_ns += b.wait_ns;
  a.wait_min = std::min<__u64>(a.wait_min, b.wait_min);
  a.wait_max = std::max<__u64>(a.wait_max, b.wait_max);
  a.holds += b.holds;
  a.hold_ns += b.hold_ns;
  a.hold_min = std::min<__u64>(a.hold_min, b.hold_min);
  a.hold_max = std::max<__u64>(a.hold_max, b.hold_max);
  a.cond_waits += b.cond_waits;
  a.cond_wait_ns += b.cond_wait_ns;
  a.handoffs += b.handoffs;
  a.unreleased += b.unreleased;
}

uint64_t scaled(uint64_t v, double f) { return uint64_t(std::llround(double(v) * f)); }

}  // namespace

std::vector<std::pair<lk_stat_key, lk_stat_val>> open_semaphore_rows(
    const std::vector<std::pair<lk_held_key, lk_held>>& held) {
  std::vector<std::pair<lk_stat_key, lk_stat_val>> out;
  for (auto& [hk, h] : held) {
    if (h.kind != LK_SEM) continue;
    lk_stat_key k{};
    k.lock = hk.lock;
    k.caller = h.caller;
    k.tid = hk.tid;
    k.stackid = h.stackid;
    k.kind = h.kind;
    k.mode = h.mode;
    lk_stat_val v{};
    v.wait_min = v.hold_min = UINT64_MAX;
    v.unreleased = 1;
    out.emplace_back(k, v);
  }
  return out;
}

void merge_snapshot(Snapshot& total, const Snapshot& delta) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < total.stats.size(); i++) index[key_bytes(total.stats[i].first)] = i;
  for (auto& [k, v] : delta.stats) {
    auto it = index.find(key_bytes(k));
    if (it == index.end()) {
      index[key_bytes(k)] = total.stats.size();
      total.stats.emplace_back(k, v);
    } else {
      merge_val(total.stats[it->second].second, v);
    }
  }
  std::map<std::string, size_t> hindex;
  for (size_t i = 0; i < total.hists.size(); i++) hindex[key_bytes(total.hists[i].first)] = i;
  for (auto& [k, v] : delta.hists) {
    auto it = hindex.find(key_bytes(k));
    if (it == hindex.end()) {
      hindex[key_bytes(k)] = total.hists.size();
      total.hists.emplace_back(k, v);
    } else {
      total.hists[it->second].second += v;
    }
  }
}

void Totals::add(const lk_stat_val& v) {
  acquisitions += v.acquisitions;
  failed_trylocks += v.failed_trylocks;
  timeouts += v.timeouts;
  errors += v.errors;
  holds += v.holds;
  cond_waits += v.cond_waits;
  wait_ns += v.wait_ns;
  wait_min = std::min<uint64_t>(wait_min, v.wait_min);
  wait_max = std::max<uint64_t>(wait_max, v.wait_max);
  hold_ns += v.hold_ns;
  hold_min = std::min<uint64_t>(hold_min, v.hold_min);
  hold_max = std::max<uint64_t>(hold_max, v.hold_max);
  cond_wait_ns += v.cond_wait_ns;
  handoffs += v.handoffs;
  unreleased += v.unreleased;
}

void Totals::merge(const Totals& o) {
  lk_stat_val v{};
  v.acquisitions = o.acquisitions;
  v.failed_trylocks = o.failed_trylocks;
  v.timeouts = o.timeouts;
  v.errors = o.errors;
  v.holds = o.holds;
  v.cond_waits = o.cond_waits;
  v.wait_ns = o.wait_ns;
  v.wait_min = o.wait_min;
  v.wait_max = o.wait_max;
  v.hold_ns = o.hold_ns;
  v.hold_min = o.hold_min;
  v.hold_max = o.hold_max;
  v.cond_wait_ns = o.cond_wait_ns;
  v.handoffs = o.handoffs;
  v.unreleased = o.unreleased;
  add(v);
}

void Totals::scale(double f) {
  for (uint64_t* p : {&acquisitions, &failed_trylocks, &timeouts, &errors, &holds, &cond_waits,
                      &wait_ns, &hold_ns, &cond_wait_ns, &handoffs, &unreleased})
    *p = scaled(*p, f);
}

LockIdentity LockStats::identity() const {
  LockIdentity id{addr, symbol};
  if (!id.name && init_label) id.name = fmt::format("#{}", init_label);
  return id;
}

int InitLabels::label(uint64_t addr, uint32_t pid) {
  auto it = labels_.find({pid, addr});
  if (it != labels_.end()) return it->second;
  int n = int(labels_.size()) + 1;
  labels_[{pid, addr}] = n;
  return n;
}

const char* kind_name(uint32_t kind) {
  switch (kind) {
    case LK_MUTEX: return "mutex";
    case LK_RWLOCK: return "rwlock";
    case LK_SPIN: return "spinlock";
    case LK_SEM: return "semaphore";
  }
  return "unknown";
}

DropReason drop_reason(uint32_t reason) {
  switch (reason) {
    case LK_DROP_STATS_FULL: return {"stats_map_full", "lock events were not recorded: the statistics map is full"};
    case LK_DROP_PENDING_FULL: return {"pending_map_full", "lock calls were not traced: too many threads inside lock calls at once"};
    case LK_DROP_HELD_FULL: return {"held_map_full", "holds were not timed: too many locks held at once"};
    case LK_DROP_HIST_FULL: return {"hist_map_full", "samples are missing from the histograms: the histogram map is full"};
    case LK_DROP_INIT_FULL: return {"init_map_full", "init stacks were not recorded: the init map is full"};
    case LK_DROP_COND_FULL:
      return {"cond_map_full", "condition waits were not tracked (their time counts as hold time): too many threads inside condition waits at once"};
    case LK_DROP_STACK_LOST: return {"stack_lost", "stack traces could not be stored"};
    case LK_DROP_ORDER_HELD_FULL:
      return {"order_held_full", "locks made no lock-order edges: their thread already held 16 locks"};
    case LK_DROP_ORDER_THREADS_FULL:
      return {"order_threads_full", "locks made no lock-order edges: too many threads held locks at once"};
    case LK_DROP_ORDER_EDGES_FULL:
      return {"order_edges_full", "lock-order edges were not recorded: the edge map is full"};
  }
  return {"unknown", "events were not recorded for an unknown reason"};
}

void add_drops(Diagnostics& d, const std::vector<uint64_t>& drops) {
  for (uint32_t i = 0; i < drops.size(); i++) {
    if (i == LK_DROP_STACK_LOST)
      d.lost_stacks += drops[i];
    else
      d.drop(drop_reason(i), drops[i]);
  }
}

Report build_report(const Snapshot& snap, const Naming& naming, InitLabels& labels,
                    double sample_percent) {
  Report r;
  r.sample_percent = sample_percent;
  double f = sample_percent < 100 ? 100.0 / sample_percent : 1.0;

  // A lock is (process, address): after a fork, parent and child have their locks at the same
  // addresses.
  using LockKey = std::pair<uint32_t, uint64_t>;
  std::map<LockKey, LockStats> locks;
  // Per lock: tid -> ThreadStats; per (lock, tid): frames -> stack stats; per lock: frames -> stats.
  std::map<LockKey, std::map<uint32_t, ThreadStats>> threads;
  std::map<LockKey, std::map<uint32_t, std::map<std::vector<std::string>, Totals>>> thread_stacks;
  std::map<LockKey, std::map<std::vector<std::string>, Totals>> lock_stacks;
  std::map<std::tuple<uint32_t, int32_t, uint64_t>, std::vector<std::string>> frame_cache;
  // Histogram rows (and the rows of semaphores never posted back, from the held map) name the
  // thread only: its process comes from the thread's other rows.
  std::map<uint32_t, uint32_t> pid_of_tid;
  for (auto& [k, v] : snap.stats)
    if (k.pid) pid_of_tid[k.tid] = k.pid;

  for (auto& [key, v] : snap.stats) {
    lk_stat_key k = key;
    if (!k.pid) {
      auto pit = pid_of_tid.find(k.tid);
      if (pit != pid_of_tid.end()) k.pid = pit->second;
    }
    LockKey lk{k.pid, k.lock};
    LockStats& l = locks[lk];
    l.pid = k.pid;
    l.addr = k.lock;
    l.kind = k.kind;
    l.totals.add(v);
    if (k.kind == LK_RWLOCK) (k.mode == LK_SHARED ? l.read_acquisitions : l.write_acquisitions) += v.acquisitions;
    ThreadStats& t = threads[lk][k.tid];
    t.tid = k.tid;
    t.totals.add(v);
    auto fk = std::make_tuple(k.pid, k.stackid, k.caller);
    auto fit = frame_cache.find(fk);
    if (fit == frame_cache.end())
      fit = frame_cache.emplace(fk, naming.frames ? naming.frames(k.pid, k.stackid, k.caller)
                                                  : std::vector<std::string>{})
                .first;
    thread_stacks[lk][k.tid][fit->second].add(v);
    lock_stacks[lk][fit->second].add(v);
  }
  for (auto& [k, count] : snap.hists) {
    uint64_t c = scaled(count, f);
    auto pit = pid_of_tid.find(k.tid);
    LockKey lk{pit == pid_of_tid.end() ? 0 : pit->second, k.lock};
    auto& l = locks[lk];
    if (l.addr == 0) {  // histogram rows without stats rows (map full)
      l.addr = k.lock;
      l.pid = lk.first;
    }
    auto& t = threads[lk][k.tid];
    t.tid = k.tid;
    (k.which == LK_WAIT ? l.wait_hist : l.hold_hist).add_slot(k.slot, c);
    (k.which == LK_WAIT ? t.wait_hist : t.hold_hist).add_slot(k.slot, c);
  }

  for (auto& [lk, l] : locks) {
    uint64_t addr = lk.second;
    l.totals.scale(f);
    l.read_acquisitions = scaled(l.read_acquisitions, f);
    l.write_acquisitions = scaled(l.write_acquisitions, f);
    if (naming.data_symbol) l.symbol = naming.data_symbol(l.pid, addr);
    if (naming.init_stack) {
      if (auto init = naming.init_stack(l.pid, addr)) {
        l.init_frames = init->first;
        if (!l.symbol) l.init_label = labels.label(addr, l.pid);
      }
    }
    for (auto& [tid, t] : threads[lk]) {
      t.totals.scale(f);
      for (auto& [frames, tot] : thread_stacks[lk][tid]) {
        StackStats s{frames, tot};
        s.totals.scale(f);
        t.stacks.push_back(std::move(s));
      }
      std::sort(t.stacks.begin(), t.stacks.end(),
                [](const StackStats& a, const StackStats& b) { return a.totals.wait_ns > b.totals.wait_ns; });
      l.threads.push_back(std::move(t));
    }
    for (auto& [frames, tot] : lock_stacks[lk]) {
      StackStats s{frames, tot};
      s.totals.scale(f);
      l.stacks.push_back(std::move(s));
    }
    std::sort(l.stacks.begin(), l.stacks.end(),
              [](const StackStats& a, const StackStats& b) { return a.totals.wait_ns > b.totals.wait_ns; });
    r.locks.push_back(std::move(l));
  }
  apply_view(r, SortKey::Wait, 0, 0);
  return r;
}

std::optional<SortKey> parse_sort_key(const std::string& s) {
  if (s == "wait") return SortKey::Wait;
  if (s == "hold") return SortKey::Hold;
  if (s == "count") return SortKey::Count;
  if (s == "max_wait") return SortKey::MaxWait;
  if (s == "max_hold") return SortKey::MaxHold;
  if (s == "avg_wait") return SortKey::AvgWait;
  return std::nullopt;
}

void apply_view(Report& r, SortKey key, size_t top, uint64_t min_wait_ns) {
  auto metric = [key](const LockStats& l) -> double {
    switch (key) {
      case SortKey::Wait: return double(l.totals.wait_ns);
      case SortKey::Hold: return double(l.totals.hold_ns);
      case SortKey::Count: return double(l.totals.acquisitions);
      case SortKey::MaxWait: return double(l.totals.wait_max);
      case SortKey::MaxHold: return double(l.totals.hold_max);
      case SortKey::AvgWait: return l.totals.avg_wait();
    }
    return 0;
  };
  r.locks.erase(std::remove_if(r.locks.begin(), r.locks.end(),
                               [&](const LockStats& l) { return l.totals.wait_ns < min_wait_ns; }),
                r.locks.end());
  std::stable_sort(r.locks.begin(), r.locks.end(), [&](const LockStats& a, const LockStats& b) {
    double ma = metric(a), mb = metric(b);
    if (ma != mb) return ma > mb;
    if (a.addr != b.addr) return a.addr < b.addr;
    return a.pid < b.pid;
  });
  if (top > 0 && r.locks.size() > top) r.locks.resize(top);
  r.wait_hist = Log2Hist();
  r.hold_hist = Log2Hist();
  r.thread_hists.clear();
  for (auto& l : r.locks) {
    r.wait_hist.merge(l.wait_hist);
    r.hold_hist.merge(l.hold_hist);
    for (auto& t : l.threads) {
      auto& th = r.thread_hists[t.tid];
      th.first.merge(t.wait_hist);
      th.second.merge(t.hold_hist);
    }
  }
}

}  // namespace lockkit::lockstat
