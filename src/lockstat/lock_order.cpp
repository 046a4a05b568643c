#include "lockstat/lock_order.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "lockstat/report.h"

namespace lockkit::lockstat {

namespace {

// Depth-first search of the elementary cycles whose lowest node is `start` (Tiernan's scheme: a
// cycle is found once, from its lowest node, through higher nodes only).
class CycleFinder {
 public:
  CycleFinder(const OrderEdges& edges, const CycleLimits& limits) : edges_(edges), limits_(limits) {
    for (size_t i = 0; i < edges.size(); i++) {
      const auto& k = edges[i].first;
      if (k.from == k.to) continue;  // a lock after itself is no cycle of two locks
      variants_[{k.from, k.to}].push_back(i);
      succ_[k.from].insert(k.to);
    }
    // Exclusive-exclusive edges first: the cycle shows the strongest evidence it has.
    for (auto& [pair, v] : variants_)
      std::stable_sort(v.begin(), v.end(), [&](size_t a, size_t b) { return shared_count(a) < shared_count(b); });
  }

  CycleSearch run() {
    std::set<uint64_t> nodes;
    for (auto& [from, tos] : succ_) {
      nodes.insert(from);
      nodes.insert(tos.begin(), tos.end());
    }
    for (uint64_t s : nodes) {
      if (stopped_) break;
      start_ = s;
      path_ = {s};
      on_path_ = {s};
      walk(s);
    }
    std::stable_sort(out_.cycles.begin(), out_.cycles.end(), [](const LockCycle& a, const LockCycle& b) {
      if (a.locks.size() != b.locks.size()) return a.locks.size() < b.locks.size();
      return a.locks < b.locks;
    });
    if (length_cut_ && !out_.cut) {
      out_.cut = true;
      out_.cut_why = fmt::format("paths were followed up to {} locks: longer cycles, if any, are not reported",
                                 limits_.max_length);
    }
    return std::move(out_);
  }

 private:
  int shared_count(size_t i) const {
    const auto& k = edges_[i].first;
    return int(k.from_mode == LK_SHARED) + int(k.to_mode == LK_SHARED);
  }

  void stop(std::string why) {
    stopped_ = true;
    out_.cut = true;
    out_.cut_why = std::move(why);
  }

  void walk(uint64_t node) {
    auto it = succ_.find(node);
    if (it == succ_.end()) return;
    for (uint64_t next : it->second) {
      if (stopped_) return;
      if (++steps_ > limits_.max_steps) {
        stop(fmt::format("the search stopped after {} steps: further cycles, if any, are not reported",
                         limits_.max_steps));
        return;
      }
      if (next == start_) {
        if (path_.size() >= 2) found();
        continue;
      }
      if (next < start_ || on_path_.count(next)) continue;
      if (path_.size() >= limits_.max_length) {
        length_cut_ = true;
        continue;
      }
      path_.push_back(next);
      on_path_.insert(next);
      walk(next);
      on_path_.erase(next);
      path_.pop_back();
    }
  }

  // The path closes into a cycle: pick one edge per hop so that no lock on it is held shared by
  // the edge leaving it while the edge reaching it takes it shared.
  void found() {
    size_t n = path_.size();
    std::vector<const std::vector<size_t>*> hops(n);
    for (size_t i = 0; i < n; i++) hops[i] = &variants_.at({path_[i], path_[(i + 1) % n]});
    std::vector<size_t> chosen(n);
    if (!choose(hops, chosen, 0)) {
      out_.shared_only++;
      return;
    }
    if (out_.cycles.size() >= limits_.max_cycles) {
      stop(fmt::format("the first {} cycles are reported: further cycles, if any, are not", limits_.max_cycles));
      return;
    }
    out_.cycles.push_back({0, path_, chosen});
  }

  bool choose(const std::vector<const std::vector<size_t>*>& hops, std::vector<size_t>& chosen, size_t i) const {
    size_t n = hops.size();
    if (i == n) {  // the junction at the first lock: the last edge reaches it, the first leaves it
      if (chosen.empty()) return false;
      return !(edges_[chosen.back()].first.to_mode == LK_SHARED && edges_[chosen.front()].first.from_mode == LK_SHARED);
    }
    for (size_t e : *hops[i]) {
      if (i > 0 && edges_[chosen[i - 1]].first.to_mode == LK_SHARED && edges_[e].first.from_mode == LK_SHARED)
        continue;
      chosen[i] = e;
      if (choose(hops, chosen, i + 1)) return true;
    }
    return false;
  }

  const OrderEdges& edges_;
  CycleLimits limits_;
  std::map<std::pair<uint64_t, uint64_t>, std::vector<size_t>> variants_;
  std::map<uint64_t, std::set<uint64_t>> succ_;
  uint64_t start_ = 0;
  std::vector<uint64_t> path_;
  std::set<uint64_t> on_path_;
  uint64_t steps_ = 0;
  bool stopped_ = false, length_cut_ = false;
  CycleSearch out_;
};

const char* mode_name(uint32_t kind, uint32_t mode) {
  if (kind != LK_RWLOCK) return "exclusive";
  return mode == LK_SHARED ? "read" : "write";
}

}  // namespace

CycleSearch find_cycles(const OrderEdges& edges, const CycleLimits& limits) {
  CycleLimits l = limits;
  if (l.max_length < 2) l.max_length = 2;
  // One graph per process; the bounds hold for the whole search.
  std::map<uint32_t, std::vector<size_t>> by_pid;
  for (size_t i = 0; i < edges.size(); i++) by_pid[edges[i].first.pid].push_back(i);
  CycleSearch all;
  for (auto& [pid, idx] : by_pid) {
    OrderEdges part;
    for (size_t i : idx) part.push_back(edges[i]);
    CycleSearch cs = CycleFinder(part, l).run();
    for (auto& c : cs.cycles) {
      c.pid = pid;
      for (auto& e : c.edges) e = idx[e];
      all.cycles.push_back(std::move(c));
    }
    all.shared_only += cs.shared_only;
    if (cs.cut && !all.cut) {
      all.cut = true;
      all.cut_why = cs.cut_why;
    }
    l.max_cycles -= std::min(l.max_cycles, cs.cycles.size());
  }
  return all;
}

LockOrderReport build_lock_order(const OrderEdges& raw_in, const Naming& naming, InitLabels& labels,
                                 const CycleLimits& limits) {
  LockOrderReport r;
  r.max_length = std::max<size_t>(limits.max_length, 2);
  OrderEdges raw = raw_in;
  std::sort(raw.begin(), raw.end(), [](const auto& a, const auto& b) {
    const auto &x = a.first, &y = b.first;
    return std::tie(x.pid, x.from, x.to, x.from_mode, x.to_mode) < std::tie(y.pid, y.from, y.to, y.from_mode, y.to_mode);
  });

  using Node = std::pair<uint32_t, uint64_t>;  // (pid, address)
  std::map<Node, uint32_t> kinds;
  for (auto& [k, e] : raw) {
    kinds.emplace(Node{k.pid, k.from}, e.from_kind);
    kinds.emplace(Node{k.pid, k.to}, e.to_kind);
  }
  std::map<Node, size_t> index;
  for (auto& [node, kind] : kinds) {
    auto [pid, addr] = node;
    OrderLock l;
    l.pid = pid;
    l.id.address = addr;
    l.kind = kind;
    if (naming.data_symbol) l.id.name = naming.data_symbol(pid, addr);
    if (naming.init_stack) {
      if (auto init = naming.init_stack(pid, addr)) {
        l.init_frames = init->first;
        if (!l.id.name) l.id.name = fmt::format("#{}", labels.label(addr, pid));
      }
    }
    index[node] = r.locks.size();
    r.locks.push_back(std::move(l));
  }
  for (auto& [k, e] : raw) {
    OrderEdgeView v;
    v.from = index.at(Node{k.pid, k.from});
    v.to = index.at(Node{k.pid, k.to});
    v.tid = e.tid;
    v.from_mode = k.from_mode;
    v.to_mode = k.to_mode;
    if (naming.frames) {
      v.frames = naming.frames(k.pid, e.to_stackid, e.to_caller);
      v.held_frames = naming.frames(k.pid, e.from_stackid, e.from_caller);
    }
    r.edges.push_back(std::move(v));
  }

  CycleSearch cs = find_cycles(raw, limits);
  r.cut = cs.cut;
  r.cut_why = cs.cut_why;
  r.shared_only = cs.shared_only;
  for (auto& c : cs.cycles) {
    LockOrderReport::Cycle out;
    for (uint64_t a : c.locks) out.locks.push_back(index.at(Node{c.pid, a}));
    out.edges = c.edges;  // raw is sorted as r.edges is: the same indices
    r.cycles.push_back(std::move(out));
  }
  return r;
}

void write_lock_order_text(std::ostream& os, const LockOrderReport& r, size_t stack_depth) {
  auto name = [&](size_t i) { return r.locks[i].display(); };
  os << fmt::format("Lock order: {} edge{} between {} lock{}; {} cycle{} (potential deadlock{}), "
                    "searched up to {} locks per cycle\n",
                    r.edges.size(), r.edges.size() == 1 ? "" : "s", r.locks.size(), r.locks.size() == 1 ? "" : "s",
                    r.cycles.size(), r.cycles.size() == 1 ? "" : "s", r.cycles.size() == 1 ? "" : "s",
                    r.max_length);
  if (r.cut) os << "WARNING: lock-order cycle search cut: " << r.cut_why << '\n';
  if (r.shared_only)
    os << fmt::format("  ({} cycle{} through read locks only left out: readers do not wait for each other)\n",
                      r.shared_only, r.shared_only == 1 ? "" : "s");
  int no = 0;
  for (auto& c : r.cycles) {
    std::string chain;
    for (size_t i : c.locks) chain += name(i) + " -> ";
    chain += name(c.locks[0]);
    os << fmt::format("  Potential deadlock {}: {}\n", ++no, chain);
    for (size_t i : c.locks) {
      const OrderLock& l = r.locks[i];
      os << fmt::format("    {} ({:#x}, {})", l.display(), l.id.address, kind_name(l.kind));
      if (!l.init_frames.empty()) {
        os << " initialised at:\n";
        print_frames(os, l.init_frames, stack_depth, 8);
      } else {
        os << '\n';
      }
    }
    for (size_t ei : c.edges) {
      const OrderEdgeView& e = r.edges[ei];
      os << fmt::format("    {} ({}) -> {} ({}) by tid {}; {} taken at:\n", name(e.from),
                        mode_name(r.locks[e.from].kind, e.from_mode), name(e.to),
                        mode_name(r.locks[e.to].kind, e.to_mode), e.tid, name(e.to));
      print_frames(os, e.frames, stack_depth, 8);
      os << fmt::format("      while holding {}, taken at:\n", name(e.from));
      print_frames(os, e.held_frames, stack_depth, 8);
    }
  }
  os << '\n';
}

Json lock_order_json(const LockOrderReport& r, size_t stack_depth) {
  auto id = [&](size_t i) { return r.locks[i].display(); };
  auto edge_json = [&](const OrderEdgeView& e) {
    Json j;
    j["from"] = id(e.from);
    j["to"] = id(e.to);
    j["pid"] = r.locks[e.from].pid;
    j["tid"] = e.tid;
    j["frames"] = cut_frames(e.frames, stack_depth);
    j["from_mode"] = mode_name(r.locks[e.from].kind, e.from_mode);
    j["to_mode"] = mode_name(r.locks[e.to].kind, e.to_mode);
    j["held_frames"] = cut_frames(e.held_frames, stack_depth);
    return j;
  };
  Json doc;
  Json cycles = Json::array();
  for (auto& c : r.cycles) {
    Json cj;
    Json locks = Json::array();
    for (size_t i : c.locks) locks.push_back(id(i));
    cj["locks"] = std::move(locks);
    Json edges = Json::array();
    for (size_t ei : c.edges) edges.push_back(edge_json(r.edges[ei]));
    cj["edges"] = std::move(edges);
    cycles.push_back(std::move(cj));
  }
  doc["cycles"] = std::move(cycles);
  doc["truncated"] = r.cut;
  doc["truncated_why"] = r.cut ? Json(r.cut_why) : Json(nullptr);
  doc["max_cycle_length"] = r.max_length;
  doc["shared_only_cycles"] = r.shared_only;
  Json locks = Json::array();
  for (auto& l : r.locks) {
    Json lj;
    lj["id"] = l.display();
    lj["pid"] = l.pid;
    add_lock_identity(lj, l.id);
    lj["kind"] = kind_name(l.kind);
    lj["init_stack"] = cut_frames(l.init_frames, stack_depth);
    locks.push_back(std::move(lj));
  }
  doc["locks"] = std::move(locks);
  Json edges = Json::array();
  for (auto& e : r.edges) edges.push_back(edge_json(e));
  doc["edges"] = std::move(edges);
  return doc;
}

}  // namespace lockkit::lockstat
