// stack_cost PID SECONDS [COPY_BYTES]: the cost of one user stack at a uprobe on PID's
// pthread_mutex_lock, for the frame-pointer walk, the call-frame-information walk the tools use and
// a copy of the stack window for user space to unwind, timed inside BPF on the same events
// (bench/stack_cost.bpf.c). The unwind rows come from the tools' own code (core/unwind.h). Needs root.
//
// Prints one line: "events N empty_ns E fp_ns F cfi_ns C copy_ns W fp_depth D cfi_depth D copied B
// consumer_ns_per_event U" (ns per event, averaged; the fp_ns, cfi_ns and copy_ns include the clock
// read that empty_ns measures; consumer_ns_per_event is this process's CPU time spent receiving
// the copied windows, without unwinding them).
#include <bcc/libbpf.h>
#include <fmt/format.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "common.h"
#include "core/elf.h"
#include "core/process.h"
#include "core/session.h"
#include "core/symbolizer.h"
#include "core/tables.h"
#include "core/unwind.h"
#include "core/util.h"

namespace lockkit::probes {
extern const std::string kStackCostBpf;
}

using namespace lockkit;

namespace {
uint64_t cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: stack_cost PID SECONDS [COPY_BYTES]\n";
    return 2;
  }
  pid_t pid = atoi(argv[1]);
  double seconds = atof(argv[2]);
  int copy_bytes = argc > 3 ? atoi(argv[3]) : 8192;
  try {
    prepare_environment("stack_cost");
    Session s("stack_cost");
    std::vector<std::string> defines = {fmt::format("TARGET_PID={}", pid), "STACK_ENTRIES=16384",
                                        fmt::format("COPY_BYTES={}", copy_bytes)};
    for (auto& d : unwind_map_defines()) defines.push_back(d);
    s.compile(probes::kStackCostBpf, defines);
    UnwindTables tables(s);
    ProcessSymbolizer sym(pid);
    sym.refresh();  // every module of the running process gets its rows (the module listener)
    auto lib = resolve_pthread_library(pid, "", "");
    auto elf = ElfFile::open_cached(lib.path);
    auto fn = elf->find("pthread_mutex_lock");
    if (fn.empty()) throw ToolError(lib.path + " has no pthread_mutex_lock");
    uint64_t received = 0, lost = 0, bytes = 0;
    s.open_perf_buffer(
        "windows", [&](const void*, int n) { received++; bytes += uint64_t(n); }, [&](uint64_t n) { lost += n; }, 256);
    s.attach_uprobe(lib.path, "pthread_mutex_lock", fn[0].addr, "on_lock", false, pid);
    uint64_t end = monotonic_ns() + uint64_t(seconds * 1e9), consumer = 0;
    while (monotonic_ns() < end) {
      usleep(2000);
      uint64_t c0 = cpu_ns();
      s.consume_perf_buffer("windows");
      consumer += cpu_ns() - c0;
    }
    s.detach_all();
    s.consume_perf_buffer("windows");
    int fd = s.map_fd("cost");
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    uint64_t sum[8] = {};
    for (uint32_t k = 0; k < 8; k++) {
      std::vector<uint64_t> per(size_t(ncpu), 0);
      if (bpf_lookup_elem(fd, &k, per.data()) == 0)
        for (auto v : per) sum[k] += v;
    }
    // The frame-pointer stacks' depth, from their map (each distinct stack once).
    int fp_fd = s.map_fd("fp_stacks");
    uint64_t fp_frames = 0, fp_stacks = 0;
    uint32_t key = 0, next = 0;
    bool first = true;
    while (bpf_get_next_key(fp_fd, first ? nullptr : &key, &next) == 0) {
      first = false;
      key = next;
      uint64_t ips[127] = {};
      if (bpf_lookup_elem(fp_fd, &key, ips) != 0) continue;
      fp_stacks++;
      for (auto ip : ips) fp_frames += ip != 0;
    }
    double n = sum[0] ? double(sum[0]) : 1.0;
    std::printf("events %llu empty_ns %.0f fp_ns %.0f cfi_ns %.0f copy_ns %.0f fp_depth %.1f cfi_depth %.1f "
                "copied %llu lost %llu copy_failed %llu consumer_ns_per_event %.0f rows %zu\n",
                (unsigned long long)sum[0], sum[1] / n, sum[2] / n, sum[3] / n, sum[4] / n,
                fp_stacks ? double(fp_frames) / double(fp_stacks) : 0.0, sum[6] / n,
                (unsigned long long)bytes, (unsigned long long)lost, (unsigned long long)sum[7],
                received ? double(consumer) / double(received) : 0.0, tables.rows_used());
    for (auto& w : tables.warnings()) std::cerr << "stack_cost: " << w << '\n';
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "stack_cost: " << e.what() << '\n';
    return 1;
  }
}
