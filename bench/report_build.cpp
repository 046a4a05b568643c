// report_build ENTRIES [REPEATS]: how long lockstat takes to turn ENTRIES BPF map entries (half of
// them stats rows, half histogram buckets: both fit lockstat's default map sizes up to 100k) into
// its final reports, through the code the tool itself runs.
//
// The rows sit in real kernel BPF hash maps with lockstat's key and value layouts (probes/lockstat.h),
// created and filled from user space: what the final report costs does not depend on who filled
// the map. Then, as lockstat's finish() does: read_map() on both maps (one get_next_key and one
// lookup system call per row); the text report: build_report() with names from a real
// ProcessSymbolizer (this process's own ELF files; stack ids are synthetic, so the stack-map read of
// each distinct stack is not included), apply_view() (top 10, by wait), write_text(); the JSON
// report: the same model for every lock (as `-n 0 --json` writes it), write_json(). Needs root.
//
// Prints "read S", "text S", "json S" (seconds, median of REPEATS, default 5), then "entries E rows
// N locks L threads T stacks S".
#include <bcc/libbpf.h>
#include <linux/bpf.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/symbolizer.h"
#include "core/tables.h"
#include "lockstat/model.h"
#include "lockstat/report.h"

using namespace lockkit;
using namespace lockkit::lockstat;

namespace {

constexpr uint32_t kThreads = 10;       // threads per lock
constexpr uint32_t kStacksPerLock = 10;  // acquisition stacks per (lock, thread)
constexpr uint32_t kDistinctStacks = 1000;
constexpr uint32_t kHistSlots = 5;      // wait and hold buckets per (lock, thread)

// Global "locks" so that data_symbol() has real symbols to find, as for a program's static mutexes.
pthread_mutex_t bench_locks[4096];

int make_map(const char* name, int key_size, int value_size, uint32_t entries) {
  int fd = bcc_create_map(BPF_MAP_TYPE_HASH, name, key_size, value_size, int(entries), 0);
  if (fd < 0) {
    std::fprintf(stderr, "report_build: cannot create a BPF hash map of %u entries: %s (root needed)\n", entries,
                 std::strerror(errno));
    std::exit(1);
  }
  return fd;
}

void put(int fd, void* key, void* value) {
  if (bpf_update_elem(fd, key, value, BPF_ANY) != 0) {
    std::fprintf(stderr, "report_build: cannot fill the BPF map: %s\n", std::strerror(errno));
    std::exit(1);
  }
}

double seconds_of(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: report_build ENTRIES [REPEATS]\n");
    return 2;
  }
  static_assert(kStacksPerLock == 2 * kHistSlots, "as many histogram buckets as stats rows");
  long entries = std::atol(argv[1]);
  int repeats = argc == 3 ? std::atoi(argv[2]) : 5;
  const long per_lock = 2 * kThreads * kStacksPerLock;
  if (entries < per_lock || entries > 1000000 || repeats < 1 || repeats > 100) {
    std::fprintf(stderr, "report_build: ENTRIES must be %ld to 1000000 and REPEATS 1 to 100\n", per_lock);
    return 2;
  }
  uint32_t nlocks = uint32_t(entries / per_lock);
  uint32_t rows = nlocks * kThreads * kStacksPerLock;

  // Real code addresses to name: functions of this program and of libc.
  const uint64_t code[] = {uint64_t(&main), uint64_t(&make_map), uint64_t(&put), uint64_t(&seconds_of),
                           uint64_t(&pthread_mutex_lock), uint64_t(&pthread_mutex_unlock), uint64_t(&getpid),
                           uint64_t(&close)};
  const size_t ncode = sizeof(code) / sizeof(code[0]);
  auto lock_addr = [&](uint32_t i) {
    // The first locks are globals (named by symbol), the rest heap-like addresses (unnamed).
    return i < 4096 ? uint64_t(&bench_locks[i]) : 0x7f0000000000ull + uint64_t(i) * 64;
  };

  int stats_fd = make_map("stats", sizeof(lk_stat_key), sizeof(lk_stat_val), rows);
  int hists_fd = make_map("hists", sizeof(lk_hist_key), sizeof(uint64_t), nlocks * kThreads * kHistSlots * 2);
  uint32_t hist_rows = 0;
  for (uint32_t l = 0; l < nlocks; l++) {
    for (uint32_t t = 0; t < kThreads; t++) {
      for (uint32_t s = 0; s < kStacksPerLock; s++) {
        lk_stat_key k;
        std::memset(&k, 0, sizeof(k));
        k.lock = lock_addr(l);
        k.tid = 1000 + t;
        k.stackid = int32_t((l * kStacksPerLock + s) % kDistinctStacks);
        k.caller = code[(l + s) % ncode] + 4;
        k.kind = LK_MUTEX;
        k.mode = LK_EXCLUSIVE;
        lk_stat_val v;
        std::memset(&v, 0, sizeof(v));
        v.acquisitions = v.holds = 100 + s;
        v.wait_ns = 50000ull * (l % 97 + 1) + t;
        v.wait_min = 100;
        v.wait_max = 9000 + l;
        v.hold_ns = 20000ull * (s + 1);
        v.hold_min = 50;
        v.hold_max = 4000 + s;
        put(stats_fd, &k, &v);
      }
      for (uint16_t which = 0; which < 2; which++) {
        for (uint32_t slot = 0; slot < kHistSlots; slot++) {
          lk_hist_key h;
          std::memset(&h, 0, sizeof(h));
          h.lock = lock_addr(l);
          h.tid = 1000 + t;
          h.which = which;
          h.slot = uint16_t(slot + 2);
          uint64_t count = 10 + slot;
          put(hists_fd, &h, &count);
          hist_rows++;
        }
      }
    }
  }

  std::vector<double> t_read, t_text, t_json;
  for (int r = 0; r < repeats; r++) {
    ProcessSymbolizer sym(getpid());  // a fresh symbol cache each time, as in a new run
    sym.refresh();
    Naming naming;
    naming.frames = [&](uint32_t, int32_t id, uint64_t caller) {
      std::vector<uint64_t> ips = {caller};
      for (uint32_t d = 1; d < 5; d++) ips.push_back(code[(uint32_t(id) + d) % ncode] + 8 * d);
      std::vector<std::string> out;
      for (auto& f : sym.resolve_stack(ips)) out.push_back(format_frame(f));
      return out;
    };
    naming.data_symbol = [&](uint32_t, uint64_t a) { return sym.data_symbol(a); };
    InitLabels labels;
    Snapshot snap;
    t_read.push_back(seconds_of([&] {
      snap.stats = read_map<lk_stat_key, lk_stat_val>(stats_fd, false);
      snap.hists = read_map<lk_hist_key, uint64_t>(hists_fd, false);
    }));
    if (snap.stats.size() != rows || snap.hists.size() != hist_rows) {
      std::fprintf(stderr, "report_build: read %zu stats rows and %zu histogram rows, expected %u and %u\n",
                   snap.stats.size(), snap.hists.size(), rows, hist_rows);
      return 1;
    }
    Report text_report, whole;
    std::ostringstream text, json;
    TextOptions topt;
    t_text.push_back(seconds_of([&] {
      text_report = build_report(snap, naming, labels, 100);
      apply_view(text_report, SortKey::Wait, 10, 0);
      write_text(text, text_report, topt);
    }));
    t_json.push_back(seconds_of([&] {
      whole = build_report(snap, naming, labels, 100);
      apply_view(whole, SortKey::Wait, 0, 0);
      write_json(json, whole, 0);
    }));
    if (text_report.locks.size() != std::min<size_t>(10, nlocks) || whole.locks.size() != nlocks) {
      std::fprintf(stderr, "report_build: the report has %zu locks, expected %u\n", whole.locks.size(), nlocks);
      return 1;
    }
  }
  std::printf("read %.4f\ntext %.4f\njson %.4f\n", median(t_read), median(t_text), median(t_json));
  std::printf("entries %u rows %u locks %u threads %u stacks %u\n", rows + hist_rows, rows, nlocks, kThreads,
              kDistinctStacks);
  return 0;
}
