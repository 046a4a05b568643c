#include "lockstat/contention_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace lockkit::lockstat {

const char* const kContentionBlindSpots =
    "contention mode sees only waits that sleep in the kernel (futex waits): not uncontended "
    "acquisitions, not hold times, not spinning in user space before the system call";

namespace {

struct Frames {
  std::vector<std::string> text;       // formatted, leaf first
  std::vector<std::string> functions;  // function names, leaf first (unresolved ones empty)
};

}  // namespace

LockIdentity ContentionLock::identity() const {
  LockIdentity id{address, symbol};
  if (!id.name && init_label) id.name = fmt::format("#{}", init_label);
  return id;
}

ContentionReport build_contention_report(const ContentionSnapshot& snap, const ContentionNaming& naming,
                                         InitLabels& labels) {
  ContentionReport r;
  std::map<std::tuple<uint32_t, int32_t, uint64_t>, Frames> cache;
  auto frames = [&](uint32_t pid, int32_t id, uint64_t caller) -> const Frames& {
    auto key = std::make_tuple(pid, id, caller);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    Frames f;
    if (id < 0) {
      f.text = {"[lost stack]"};
    } else if (naming.frames) {
      for (auto& fr : naming.frames(pid, id, caller)) {
        f.text.push_back(format_frame(fr));
        f.functions.push_back(fr.function);
      }
    }
    return cache.emplace(key, std::move(f)).first->second;
  };

  // Evidence per futex word of a process: the stacks that waited on it or woke it, and how it was
  // waited on.
  using Word = std::pair<uint32_t, uint64_t>;  // (pid, address)
  std::map<Word, std::vector<FutexEvidence>> evidence;
  for (auto& [k, v] : snap.waits)
    evidence[{k.pid, k.uaddr}].push_back({frames(k.pid, k.stackid, k.caller).functions, lc_hint_mutex_wait(k.hint) != 0});
  for (auto& [k, v] : snap.releases)
    evidence[{k.pid, k.uaddr}].push_back({frames(k.pid, k.stackid, k.caller).functions, false});
  for (auto& [k, n] : snap.retries) evidence[{k.pid, k.uaddr}].push_back({{}, lc_hint_mutex_wait(k.hint) != 0});
  for (auto& [tid, c] : snap.in_progress)
    evidence[{c.pid, c.uaddr}].push_back({{}, lc_hint_mutex_wait(c.hint) != 0});

  // One classifier per process: its init calls and its data symbols.
  std::map<uint32_t, FutexClassifier> classifiers;
  auto classifier = [&](uint32_t pid) -> FutexClassifier& {
    auto it = classifiers.find(pid);
    if (it != classifiers.end()) return it->second;
    FutexClassifier c([&naming, pid](uint64_t a) -> std::optional<std::pair<uint64_t, uint64_t>> {
      if (!naming.data_object) return std::nullopt;
      auto o = naming.data_object(pid, a);
      if (!o) return std::nullopt;
      return std::make_pair(o->start, o->size);
    });
    return classifiers.emplace(pid, std::move(c)).first->second;
  };
  std::map<Word, const lc_init*> inits;
  for (auto& [k, in] : snap.inits) {
    static const FutexKind kinds[] = {FutexKind::Mutex, FutexKind::Rwlock, FutexKind::Condvar, FutexKind::Semaphore};
    if (in.kind < 4) classifier(k.pid).add_init(k.addr, kinds[in.kind]);
    inits[{k.pid, k.addr}] = &in;
  }

  // word -> object; locks keyed by (pid, start, kind).
  std::map<Word, FutexObject> objects;
  for (auto& [word, ev] : evidence) objects[word] = classifier(word.first).classify(word.second, ev);
  using LockKey = std::tuple<uint32_t, uint64_t, FutexKind>;
  std::map<LockKey, ContentionLock> locks;
  auto lock_of = [&](uint32_t pid, uint64_t word) -> ContentionLock& {
    const FutexObject& o = objects.at({pid, word});
    ContentionLock& l = locks[{pid, o.address, o.kind}];
    l.pid = pid;
    l.address = o.address;
    l.kind = o.kind;
    l.source = o.source;
    if (std::find(l.words.begin(), l.words.end(), word) == l.words.end()) {
      l.words.push_back(word);
      std::sort(l.words.begin(), l.words.end());
    }
    return l;
  };
  auto key_of = [](const ContentionLock& l) { return LockKey{l.pid, l.address, l.kind}; };

  std::map<LockKey, std::map<uint32_t, WaitingThread>> threads;
  std::map<LockKey, std::map<std::vector<std::string>, WaitStack>> stacks;
  std::map<LockKey, std::map<uint32_t, Holder>> holders;
  // Whether the owner field read at a wait names a holder: not empty, not the waiter, a thread of
  // the process.
  auto holder_known = [&](uint32_t pid, uint32_t holder, uint32_t waiter) {
    return holder != 0 && holder != waiter && (!naming.is_thread || naming.is_thread(pid, holder));
  };
  for (auto& [k, v] : snap.waits) {
    ContentionLock& l = lock_of(k.pid, k.uaddr);
    LockKey key = key_of(l);
    l.contentions += v.contentions;
    l.wait_ns += v.wait_ns;
    l.max_wait_ns = std::max<uint64_t>(l.max_wait_ns, v.max_wait_ns);
    l.timeouts += v.timeouts;
    WaitingThread& t = threads[key][k.tid];
    t.tid = k.tid;
    t.contentions += v.contentions;
    t.wait_ns += v.wait_ns;
    t.max_wait_ns = std::max<uint64_t>(t.max_wait_ns, v.max_wait_ns);
    const Frames& f = frames(k.pid, k.stackid, k.caller);
    WaitStack& s = stacks[key][f.text];
    s.frames = f.text;
    s.contentions += v.contentions;
    s.wait_ns += v.wait_ns;
    if (l.kind == FutexKind::Mutex) {
      l.has_holders = true;
      if (!holder_known(k.pid, k.holder, k.tid)) {
        l.unknown_holder_contentions += v.contentions;
      } else {
        Holder& h = holders[key][k.holder];
        h.tid = k.holder;
        h.contentions += v.contentions;
        h.wait_ns += v.wait_ns;
      }
    }
  }
  for (auto& [k, n] : snap.retries) {
    ContentionLock& l = lock_of(k.pid, k.uaddr);
    l.eagain_waits += n;
    WaitingThread& t = threads[key_of(l)][k.tid];
    t.tid = k.tid;
    t.eagain_waits += n;
  }
  // A wait still sleeping makes its lock too: a deadlocked lock may have no finished wait at all.
  for (auto& [tid, c] : snap.in_progress) {
    ContentionLock& l = lock_of(c.pid, c.uaddr);
    l.in_progress += 1;
    l.in_progress_ns += snap.read_ns > c.start_ns ? snap.read_ns - c.start_ns : 0;
    WaitingThread& t = threads[key_of(l)][tid];
    t.tid = tid;
    t.in_progress = true;
    if (l.kind == FutexKind::Mutex) {
      l.has_holders = true;
      if (holder_known(c.pid, c.owner, tid)) {
        Holder& h = holders[key_of(l)][c.owner];
        h.tid = c.owner;
        h.in_progress += 1;
      }
    }
  }
  // Locks are made by waits only: a word that was only ever woken (a wake that found its waiter
  // gone, or one before tracing began) is no contention.
  // A holder's release stacks: its wakes of the lock's words that woke a waiter.
  std::map<LockKey, std::map<uint32_t, std::map<std::vector<std::string>, uint64_t>>> releases;
  for (auto& [k, v] : snap.releases) {
    const FutexObject& o = objects.at({k.pid, k.uaddr});
    releases[{k.pid, o.address, o.kind}][k.tid][frames(k.pid, k.stackid, k.caller).text] += v.wakes;
  }

  for (auto& [key, l] : locks) {
    if (naming.data_object) {
      if (auto o = naming.data_object(l.pid, l.address)) l.symbol = o->name_at(l.address);
    }
    auto in = inits.find({l.pid, l.address});
    if (in != inits.end()) {
      l.init_frames = frames(l.pid, in->second->stackid, in->second->caller).text;
      if (!l.symbol) l.init_label = labels.label(l.address);
    }
    for (auto& [tid, t] : threads[key]) l.threads.push_back(t);
    for (auto& [f, s] : stacks[key]) l.stacks.push_back(s);
    std::sort(l.stacks.begin(), l.stacks.end(), [](const WaitStack& a, const WaitStack& b) {
      return std::tie(b.wait_ns, a.frames) < std::tie(a.wait_ns, b.frames);
    });
    for (auto& [tid, h] : holders[key]) {
      for (auto& [f, n] : releases[key][tid]) h.stacks.push_back({f, n});
      std::sort(h.stacks.begin(), h.stacks.end(), [](const ReleaseStack& a, const ReleaseStack& b) {
        return std::tie(b.count, a.frames) < std::tie(a.count, b.frames);
      });
      l.holders.push_back(std::move(h));
    }
    std::sort(l.holders.begin(), l.holders.end(), [](const Holder& a, const Holder& b) {
      return std::tie(b.wait_ns, a.tid) < std::tie(a.wait_ns, b.tid);
    });
    r.locks.push_back(std::move(l));
  }
  apply_contention_view(r, SortKey::Wait, 0, 0);
  return r;
}

void apply_contention_view(ContentionReport& r, SortKey key, size_t top, uint64_t min_wait_ns) {
  auto metric = [key](const ContentionLock& l) -> double {
    switch (key) {
      case SortKey::Count: return double(l.contentions);
      case SortKey::MaxWait: return double(l.max_wait_ns);
      case SortKey::AvgWait: return l.contentions ? double(l.wait_ns) / double(l.contentions) : 0;
      default: return double(l.wait_ns);
    }
  };
  r.locks.erase(std::remove_if(r.locks.begin(), r.locks.end(),
                               [&](const ContentionLock& l) { return l.wait_ns < min_wait_ns; }),
                r.locks.end());
  std::stable_sort(r.locks.begin(), r.locks.end(), [&](const ContentionLock& a, const ContentionLock& b) {
    double ma = metric(a), mb = metric(b);
    if (ma != mb) return ma > mb;
    if (a.eagain_waits != b.eagain_waits) return a.eagain_waits > b.eagain_waits;
    return std::tie(a.pid, a.address) < std::tie(b.pid, b.address);
  });
  if (top > 0 && r.locks.size() > top) r.locks.resize(top);
}

void add_contention_drops(Diagnostics& d, const std::vector<uint64_t>& drops) {
  static const DropReason reasons[LC_DROP_MAX] = {
      {"calls_map_full", "futex calls were not traced: too many threads inside futex calls at once"},
      {"waits_map_full", "contended waits were not recorded: the wait map is full"},
      {"retries_map_full", "EAGAIN waits were not counted: the retry map is full"},
      {"releases_map_full", "releases were not recorded: the release map is full"},
      {"init_map_full", "init stacks were not recorded: the init map is full"},
      {"stack_lost", "stack traces could not be stored"},
  };
  for (uint32_t i = 0; i < drops.size() && i < LC_DROP_MAX; i++) {
    if (i == LC_DROP_STACK_LOST)
      d.lost_stacks += drops[i];
    else
      d.drop(reasons[i], drops[i]);
  }
}

}  // namespace lockkit::lockstat
